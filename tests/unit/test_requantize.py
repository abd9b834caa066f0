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


def test_a_build_that_quantises_differently_keeps_its_copy_under_its_own_hash(
    tmp_path: Path, monkeypatch
) -> None:
    """Q4_0 is the default label writer: another build's bytes must not stop a first run,
    but must be told, kept verifiable, and never mistaken for the measured copy."""
    import hashlib

    import llama_cpp

    from intentlocal.backends.requantize import own_hash

    def other_build(src: bytes, dst: bytes, params) -> int:
        Path(dst.decode()).write_bytes(b"another build's bytes")
        return 0

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", other_build)
    target = tmp_path / "x-q4_0.gguf"
    with pytest.warns(UserWarning, match="not the measured"):
        assert derive(tmp_path / "source.gguf", _variant(), target) == target
    assert own_hash(target) == hashlib.sha256(b"another build's bytes").hexdigest()
    assert not list(tmp_path.glob("*.partial"))
    assert derive(tmp_path / "source.gguf", _variant(), target) == target  # next use: accepted
    target.write_bytes(b"changed afterwards")
    with pytest.raises(ModelError, match="changed or cut short"):
        derive(tmp_path / "source.gguf", _variant(), target)


def test_the_model_id_names_a_copy_that_differs_from_the_measured_one(
    tmp_path: Path, monkeypatch
) -> None:
    from intentlocal.backends import registry
    from intentlocal.backends.fetch import sha256_file
    from intentlocal.backends.manifest import load_manifest

    spec = load_manifest()["qwen2.5-coder-0.5b"]
    folder = tmp_path / "qwen2.5-coder-0.5b"
    folder.mkdir()
    (folder / spec.files[0].path).write_bytes(b"source")
    made = folder / spec.variants["q4_0"].path
    made.write_bytes(b"measured elsewhere")
    monkeypatch.setattr(registry, "model_dir", lambda name: tmp_path / name)
    monkeypatch.setattr(registry, "is_installed", lambda name: True)
    (folder / (made.name + ".sha256")).write_text(sha256_file(made) + "\n")
    path, model_id = registry.resolve_llm_path("qwen2.5-coder-0.5b:q4_0")
    assert path == made
    assert model_id == "qwen2.5-coder-0.5b:q4_0@" + sha256_file(made)[:12]


def test_two_processes_making_the_same_copy_do_not_clobber_each_other(
    tmp_path: Path, monkeypatch
) -> None:
    """A TUI and a CLI started together both make the Q4_0 copy. Simulated by a
    quantiser that, halfway through writing, lets a second derive run to completion:
    with one shared ".partial" name the second renamed the first's half-written file
    away and the first failed; each now writes its own partial file."""
    import hashlib

    import llama_cpp

    full = b"the whole requantised model"
    variant = _variant(sha=hashlib.sha256(full).hexdigest())
    target = tmp_path / "x-q4_0.gguf"
    depth = [0]

    def quantise(src: bytes, dst: bytes, params) -> int:
        with open(dst.decode(), "wb") as out:  # one open file, as llama.cpp writes
            out.write(full[:5])  # half written ...
            out.flush()
            depth[0] += 1
            if depth[0] == 1:  # ... when the other process runs start to finish
                assert derive(tmp_path / "source.gguf", variant, target) == target
            out.write(full[5:])
        return 0

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", quantise)
    assert derive(tmp_path / "source.gguf", variant, target) == target
    assert target.read_bytes() == full
    assert target.stat().st_mode & 0o777 == 0o644
    assert not list(tmp_path.glob("*.partial"))
