"""The Q4_0 variant made by the real llama.cpp quantiser from the fetched Q4_K_M file:
byte-for-byte the file the manifest measured, and a working label writer."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentlocal.backends.manifest import load_manifest
from intentlocal.backends.requantize import derive
from intentlocal.grammars import LABEL_RE

pytestmark = pytest.mark.integration


def test_the_q4_0_copy_is_reproducible_and_writes_labels(qwen_path: Path,
                                                          tmp_path: Path) -> None:
    from intentlocal.backends.llm import LlamaCppGenerator
    from intentlocal.pipeline.labels import initial_request, load_prompt, read_initial_label

    variant = load_manifest()["qwen2.5-coder-0.5b"].variants["q4_0"]
    made = derive(qwen_path, variant, tmp_path / variant.path)  # raises on another SHA-256
    assert made.stat().st_size < qwen_path.stat().st_size
    assert not list(tmp_path.glob("*.partial"))
    gen = LlamaCppGenerator(made, model_id="qwen2.5-coder-0.5b:q4_0", n_ctx=512)
    req = initial_request(load_prompt("initial_label"), "my card has not arrived yet",
                          ["when will my new card arrive", "the card you sent never came"], 160)
    out = gen.generate(req.static_messages, req.messages, req.grammar, req.max_tokens)
    label = read_initial_label(gen.model_id, out)
    assert LABEL_RE.fullmatch(label) and "card" in label, label
