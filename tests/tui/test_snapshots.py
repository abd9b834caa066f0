"""Snapshots of the main screens at 80x24 (pytest-textual-snapshot).

Regenerate after an intended change with: pytest tests/tui --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

import pytest

from intentlocal.api import IntentClusterer
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.store import Store
from intentlocal.tui.app import IntentLocalApp
from tests.conftest import SUPPORT_TEXTS

SIZE = (80, 24)


def _fakes(settings):
    return FakeEmbedder(), FakeGenerator()


@pytest.fixture
def finished_run() -> int:
    # min_share 1: the history screen shows refinement's shared labels (on 3 fake
    # neighbours the default 4 would share few)
    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="4",
                        neighbours=3, min_share=1).fit(SUPPORT_TEXTS, name="support.csv")
    store = Store()
    store.db.execute("UPDATE runs SET created_at = 1767225600, pid = NULL")  # fixed date
    return m.run_id_


def test_home_empty(snap_compare) -> None:
    assert snap_compare(IntentLocalApp(backends=_fakes), terminal_size=SIZE)


def test_home_with_run(snap_compare, finished_run) -> None:
    assert snap_compare(IntentLocalApp(backends=_fakes), terminal_size=SIZE)


def test_help(snap_compare) -> None:
    assert snap_compare(IntentLocalApp(backends=_fakes), press=["question_mark"],
                        terminal_size=SIZE)


def test_results(snap_compare, finished_run) -> None:
    assert snap_compare(IntentLocalApp(backends=_fakes), press=["enter"], terminal_size=SIZE)


def test_history(snap_compare, finished_run) -> None:
    assert snap_compare(IntentLocalApp(backends=_fakes), press=["enter", "tab", "tab", "tab", "h"],
                        terminal_size=SIZE)


def test_new_run(snap_compare, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("INTENTLOCAL_MODELS", str(tmp_path / "no-models"))  # same screen anywhere
    p = tmp_path / "chats.csv"
    p.write_text("id,message\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(SUPPORT_TEXTS)))
    # the path is part of the screen: use a fixed one
    fixed = Path("/tmp/intentlocal-snapshot-chats.csv")
    fixed.write_text(p.read_text())
    assert snap_compare(IntentLocalApp(str(fixed), backends=_fakes), terminal_size=SIZE,
                        run_before=_steady_cursor)


async def _steady_cursor(pilot) -> None:
    """The focused input's cursor blinks on a timer: on a loaded machine the snapshot
    caught it off and failed. A steady cursor makes the screen the same every time."""
    from textual.widgets import Input

    for widget in pilot.app.screen.query(Input):
        widget.cursor_blink = False
    await pilot.pause()
