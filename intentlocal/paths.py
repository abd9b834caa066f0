"""Every path the tool reads or writes is resolved here, and only here.

``INTENTLOCAL_HOME`` moves all user state (run store, settings file) at once;
tests point it at a temporary folder so a user's own settings never leak in.
``INTENTLOCAL_MODELS`` moves the model folder separately, because weights are
large and shared across homes (tests reuse the fetched models).
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def home() -> Path:
    env = os.environ.get("INTENTLOCAL_HOME")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "intentlocal"


def store_path() -> Path:
    env = os.environ.get("INTENTLOCAL_STORE")
    return Path(env).expanduser() if env else home() / "runs.sqlite3"


def settings_path() -> Path:
    env = os.environ.get("INTENTLOCAL_CONFIG")
    return Path(env).expanduser() if env else home() / "settings.toml"


def models_dir() -> Path:
    """Fetched weights live in the checkout's models/ when run from one, else in home."""
    env = os.environ.get("INTENTLOCAL_MODELS")
    if env:
        return Path(env).expanduser()
    checkout_models = _CHECKOUT / "models"
    if (checkout_models / "manifest.toml").is_file():
        return checkout_models
    return home() / "models"


def resource(*parts: str) -> Path:
    """A file shipped with the package: wheel data first, then the checkout."""
    packaged = _PACKAGE / "_data" / Path(*parts)
    if packaged.exists():
        return packaged
    return _CHECKOUT / Path(*parts)


def manifest_path() -> Path:
    return resource("models", "manifest.toml")


def prompts_dir() -> Path:
    return resource("prompts")


def sample_path() -> Path:
    return _PACKAGE / "samples" / "support_sample.csv"
