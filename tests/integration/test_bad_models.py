"""Broken model files met through the real CLI and the real backends: a clear
error naming the file, exit code 2, and no half-made run in the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from intentlocal import cli
from intentlocal.store import Store

pytestmark = pytest.mark.integration

BAD = Path(__file__).resolve().parent.parent / "data" / "bad"


def _run(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(["run", str(BAD / "two_texts.txt"), "--k", "2", *args])
    return code, capsys.readouterr().err


def test_corrupt_gguf(capsys, minilm_dir: Path, tmp_path: Path) -> None:
    code, err = _run(capsys, "--embedder", str(minilm_dir), "--llm", str(BAD / "corrupt.gguf"),
                     "--out", str(tmp_path))
    assert code == 2 and "corrupt.gguf is not a GGUF file" in err and "Traceback" not in err
    assert Store().runs() == []


def test_onnx_folder_without_tokenizer(capsys, minilm_dir: Path, qwen_path: Path,
                                       tmp_path: Path) -> None:
    folder = tmp_path / "emb"
    shutil.copytree(minilm_dir, folder, ignore=shutil.ignore_patterns("tokenizer.json"))
    code, err = _run(capsys, "--embedder", str(folder), "--llm", str(qwen_path),
                     "--out", str(tmp_path))
    assert code == 2 and f"the embedder folder {folder} has no tokenizer.json" in err
    assert Store().runs() == []


def test_truncated_gguf(capsys, minilm_dir: Path, qwen_path: Path, tmp_path: Path) -> None:
    """A download cut short: the header is right, the tensors are missing."""
    cut = tmp_path / "cut.gguf"
    with qwen_path.open("rb") as src:
        cut.write_bytes(src.read(4 << 20))
    code, err = _run(capsys, "--embedder", str(minilm_dir), "--llm", str(cut),
                     "--out", str(tmp_path))
    assert code == 2 and "cut.gguf" in err and "Traceback" not in err
