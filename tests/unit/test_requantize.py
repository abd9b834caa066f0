"""Requantised LLM variants: resolution by name and the checks that guard them
(the real quantiser runs in tests/integration/test_requantize_real.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentlocal.backends.manifest import VariantSpec
from intentlocal.backends.requantize import derive
from intentlocal.errors import ModelError


def _variant(sha: str = "0" * 64, kind: str = "Q4_0") -> VariantSpec:
    return VariantSpec(name="q4_0", requantize=kind, path="x-q4_0.gguf", sha256=sha)


def test_a_changed_derived_file_is_refused_with_a_remedy(tmp_path: Path) -> None:
    target = tmp_path / "x-q4_0.gguf"
    target.write_bytes(b"not the measured bytes")
    with pytest.raises(ModelError, match="changed or cut short") as err:
        derive(tmp_path / "source.gguf", _variant(), target)
    assert "delete" in (err.value.hint or "")
    assert target.exists()  # nothing of the user's is deleted for them


def test_an_unknown_target_type_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot requantise to 'IQ1_S'"):
        derive(tmp_path / "source.gguf", _variant(kind="IQ1_S"), tmp_path / "t.gguf")


def test_variant_names_resolve_or_say_which_exist() -> None:
    from intentlocal.backends.manifest import load_manifest
    from intentlocal.backends.registry import resolve_llm_path

    assert "q4_0" in load_manifest()["qwen2.5-coder-0.5b"].variants
    with pytest.raises(ModelError, match=r"no variant 'q9' \(known: qwen2.5-coder-0.5b:q4_0\)"):
        resolve_llm_path("qwen2.5-coder-0.5b:q9")
    with pytest.raises(ModelError, match="unknown LLM"):
        resolve_llm_path("no-such-model:q4_0")
