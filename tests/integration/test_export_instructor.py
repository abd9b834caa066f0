"""The Instructor export path, on a tiny randomly initialised T5 encoder built here.

No Instructor weights can be fetched (see shared/models.md), so this checks the path
itself: export -> OnnxEmbedder must give what InstructorEmbedding computes from the
same torch model (mean over the text tokens only, then Dense, then L2), to ~1e-5.
Needs the export extra (torch, transformers, onnx), which CI installs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.integration

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("onnx")

from tokenizers import Tokenizer, models, pre_tokenizers, processors, trainers  # noqa: E402

from intentlocal.backends.onnx_embedder import OnnxEmbedder  # noqa: E402
from intentlocal.export import export_instructor, instruction_token_count  # noqa: E402

PROMPT = "Represent the intent of the message for clustering: "
TEXTS = [
    "where is my new card",
    "I was charged twice for the same coffee this morning",
    "cancel my transfer please",
    "how do I top up my account with cash",
    "card",
    "why is the exchange rate so bad for my payment in euros today",
]


def _tokenizer(path: Path) -> Tokenizer:
    """WordLevel vocabulary over the texts and the prompt; T5-like: </s> appended, <pad>."""
    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.WordLevelTrainer(special_tokens=["<pad>", "</s>", "<unk>"])
    tok.train_from_iterator([PROMPT, *TEXTS, "the message intent of a payment"], trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>",
        pair="$A </s> $B </s>",
        special_tokens=[("</s>", tok.token_to_id("</s>"))],
    )
    tok.save(str(path))
    return tok


def _model(tok: Tokenizer) -> tuple[object, object]:
    torch.manual_seed(1234)
    config = transformers.T5Config(
        vocab_size=tok.get_vocab_size(),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        pad_token_id=tok.token_to_id("<pad>"),
        eos_token_id=tok.token_to_id("</s>"),
    )
    encoder = transformers.T5EncoderModel(config).eval()
    dense = torch.nn.Linear(32, 24, bias=False)
    return encoder, dense


def _instructor_reference(
    encoder, dense, tok: Tokenizer, texts: list[str], *, exclude_instruction: bool = True
) -> np.ndarray:
    """What InstructorEmbedding computes, written out independently of the export code.

    InstructorEmbedding joins instruction.strip() + text.strip(), tokenises the joined
    text and the instruction alone, drops one position of the instruction's mask
    (``[:, 1:]``, i.e. the closing </s>) and zeroes that many leading positions of
    the pooling mask; the encoder itself attends to every token. (With this word-level
    tokeniser the stripped join tokenises like the runtime's ``prompt + text``; with
    T5's SentencePiece it need not.)
    """
    pad = tok.token_to_id("<pad>")
    joined = [tok.encode(PROMPT.strip() + t.strip()).ids for t in texts]
    n_instr = len(tok.encode(PROMPT.strip()).ids) - 1
    width = max(len(ids) for ids in joined)
    ids = torch.full((len(texts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(texts), width), dtype=torch.long)
    for r, row in enumerate(joined):
        ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
    pool = mask.clone()
    if exclude_instruction:
        pool[:, :n_instr] = 0
    with torch.no_grad():
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        w = pool.unsqueeze(-1).float()
        pooled = (hidden * w).sum(1) / w.sum(1).clamp(min=1e-9)
        out = torch.nn.functional.normalize(dense(pooled), p=2, dim=1)
    return out.numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("instructor")
    tok = _tokenizer(root / "tokenizer.json")
    encoder, dense = _model(tok)
    folder = export_instructor(
        encoder, dense, root / "tokenizer.json", root / "model", PROMPT, check_texts=TEXTS
    )
    return folder, tok, encoder, dense


def test_folder_layout(exported):
    folder, *_ = exported
    cfg = json.loads((folder / "intentlocal.json").read_text())
    assert cfg["instruction_pooling"] == "exclude"
    assert cfg["prompt"] == PROMPT
    assert cfg["normalize"] is True
    assert cfg["variants"] == {"fp32": "model.onnx", "int8": "model_int8.onnx"}
    assert cfg["default_variant"] in cfg["variants"]
    assert cfg["export"]["instruction_tokens_are_a_prefix"] is True
    for name in ("model.onnx", "model_int8.onnx", "tokenizer.json"):
        assert (folder / name).is_file()


def test_instruction_count_matches_instructorembedding(exported):
    folder, tok, *_ = exported
    # InstructorEmbedding: attention_mask of the instruction alone, minus one position.
    assert instruction_token_count(folder / "tokenizer.json", PROMPT) == (
        len(tok.encode(PROMPT.strip()).ids) - 1
    )


def test_onnx_matches_instructor_pooling(exported):
    folder, tok, encoder, dense = exported
    got = OnnxEmbedder(folder, variant="fp32", batch_size=4).embed(TEXTS)
    want = _instructor_reference(encoder, dense, tok, TEXTS)
    assert got.shape == (len(TEXTS), 24)
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)

    # The check can fail: pooling over the instruction too gives other vectors.
    everything = _instructor_reference(encoder, dense, tok, TEXTS, exclude_instruction=False)
    assert np.abs(got - everything).max() > 1e-2


def test_int8_variant_runs(exported):
    folder, *_ = exported
    vecs = OnnxEmbedder(folder, variant="int8").embed(TEXTS)
    assert vecs.shape == (len(TEXTS), 24)
    assert np.all(np.isfinite(vecs))


def test_cli_fails_clearly_on_a_missing_folder(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "intentlocal.export",
            "instructor",
            str(tmp_path / "nope"),
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr
