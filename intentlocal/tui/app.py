"""The terminal app: home (past runs) -> new run -> live progress -> results -> history.

Model work runs in thread workers that post progress back with
``call_from_thread``; the UI never waits on a model. Errors from the core
(IntentLocalError) become notifications; anything else is a bug and still
becomes a notification rather than a traceback over the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding

from intentlocal.backends.base import Embedder, Generator
from intentlocal.config import Settings
from intentlocal.errors import IntentLocalError
from intentlocal.store import Store

BackendFactory = Callable[[Settings], tuple[Embedder, Generator]]


class IntentLocalApp(App[None]):
    CSS_PATH = "app.tcss"
    TITLE = "intentlocal"
    SUB_TITLE = "offline intent discovery"
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, staged_file: str | None = None, *, store_path: Path | None = None,
                 backends: BackendFactory | None = None) -> None:
        super().__init__()
        self.staged_file = staged_file
        self.store_path = store_path
        self.backends = backends
        self._store: Store | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = Store(self.store_path)
        return self._store

    def new_store(self) -> Store:
        """A connection for a worker thread (SQLite connections stay in one thread)."""
        return Store(self.store_path)

    def build_backends(self, settings: Settings) -> tuple[Embedder, Generator]:
        if self.backends is not None:
            return self.backends(settings)
        from intentlocal.api import build_backends

        return build_backends(settings)

    def on_mount(self) -> None:
        from intentlocal.tui.screens import HomeScreen, NewRunScreen

        try:
            self.push_screen(HomeScreen())
        except IntentLocalError as exc:
            self.report(exc)
        if self.staged_file:
            self.push_screen(NewRunScreen(self.staged_file))

    def report(self, exc: BaseException) -> None:
        if isinstance(exc, IntentLocalError):
            text = exc.message + (f"\n{exc.hint}" if exc.hint else "")
            self.notify(text, title=exc.title, severity="error", timeout=10)
        else:
            self.notify(f"{type(exc).__name__}: {exc}", title="Unexpected error",
                        severity="error", timeout=10)

    def action_help(self) -> None:
        from intentlocal.tui.screens import HelpScreen

        self.push_screen(HelpScreen())


def run_app(file: str | None = None, **kwargs: Any) -> int:
    IntentLocalApp(file, **kwargs).run()
    return 0
