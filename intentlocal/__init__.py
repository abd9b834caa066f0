"""intentlocal: find and name the intents in a pile of short texts, offline.

The public API is imported lazily so that ``import intentlocal`` stays cheap and
never pulls in Textual, llama.cpp or onnxruntime.
"""

from __future__ import annotations

from typing import Any

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
