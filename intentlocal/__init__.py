"""intentlocal: find and name the intents in a pile of short texts, offline.

The public API is imported lazily so that ``import intentlocal`` stays cheap and
never pulls in Textual, llama.cpp or onnxruntime.
"""

from __future__ import annotations

import os
from typing import Any

# onnxruntime >= 1.29 on Linux and macOS uploads usage telemetry, with a persistent
# device id kept in ~/.cache/Microsoft, to mobile.events.data.microsoft.com unless
# this is set before it initialises (measured here with strace: DNS lookups every few
# seconds during a run). intentlocal promises that nothing leaves the machine, so it
# is set unconditionally, at the first import of the package, before anything can
# import onnxruntime; child processes inherit it.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"

__version__ = "0.1.0"
__all__ = ["IntentClusterer", "IntentLocalError", "Settings", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "IntentClusterer":
        from intentlocal.api import IntentClusterer

        return IntentClusterer
    if name == "Settings":
        from intentlocal.config import Settings

        return Settings
    if name == "IntentLocalError":
        from intentlocal.errors import IntentLocalError

        return IntentLocalError
    raise AttributeError(name)
