"""backends.llm.cpu_in_use: what the busy-CPU note is decided on (the conftest replaces
it with an idle machine for every other test; this module keeps the real one)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from intentlocal.backends.llm import cpu_in_use as real_cpu_in_use


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_busy_core_is_seen_at_once() -> None:
    stop = time.monotonic() + 1.0

    def spin() -> None:
        while time.monotonic() < stop:
            pass

    t = threading.Thread(target=spin)
    t.start()
    try:
        busy = real_cpu_in_use(0.4)
    finally:
        t.join()
    cores = os.cpu_count() or 1
    assert busy is not None and 0.5 <= busy <= cores + 1e-6


def test_without_proc_stat_the_load_average_is_used(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (1.25, 3.0, 3.0), raising=False)
    assert real_cpu_in_use(0.0, stat=str(tmp_path / "missing")) == 1.25
    monkeypatch.delattr(os, "getloadavg")  # Windows: neither, so no note
    assert real_cpu_in_use(0.0, stat=str(tmp_path / "missing")) is None
