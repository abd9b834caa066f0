"""One exception family: the CLI and the TUI translate these into a clear message.

Anything that is not an ``IntentLocalError`` reaching the edges is a bug, and is
shown as one; everything a user can cause (bad input, missing model, full disk)
is raised as one of these, with a title and a message that says what and where.
"""

from __future__ import annotations


class IntentLocalError(Exception):
    """Base of every error a user can cause or fix."""

    title = "intentlocal error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class InputError(IntentLocalError):
    title = "Cannot read the input"


class ModelError(IntentLocalError):
    title = "Model problem"


class FetchError(ModelError):
    title = "Cannot fetch the model"


class ConfigError(IntentLocalError):
    title = "Bad settings"


class StoreError(IntentLocalError):
    title = "Run store problem"


class RunError(IntentLocalError):
    title = "The run cannot go on"
