"""The Q4_0 variant made by the real llama.cpp quantiser from the fetched Q4_K_M file:
byte-for-byte the file the manifest measured, a working label writer, and the default
of a real run."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentlocal.backends.manifest import load_manifest
from intentlocal.backends.requantize import derive, own_hash
from intentlocal.grammars import LABEL_RE

pytestmark = pytest.mark.integration


def test_the_q4_0_copy_is_reproducible_and_writes_labels(qwen_path: Path,
                                                          tmp_path: Path) -> None:
    from intentlocal.backends.llm import LlamaCppGenerator
    from intentlocal.pipeline.labels import initial_request, load_prompt, read_initial_label

    variant = load_manifest()["qwen2.5-coder-0.5b"].variants["q4_0"]
    made = derive(qwen_path, variant, tmp_path / variant.path)
    assert own_hash(made) is None, "this llama.cpp build quantises to other bytes"
    assert made.stat().st_size < qwen_path.stat().st_size
    assert not list(tmp_path.glob("*.partial"))
    gen = LlamaCppGenerator(made, model_id="qwen2.5-coder-0.5b:q4_0", n_ctx=512)
    req = initial_request(load_prompt("initial_label"), "my card has not arrived yet",
                          ["when will my new card arrive", "the card you sent never came"], 160)
    out = gen.generate(req.static_messages, req.messages, req.grammar, req.max_tokens)
    label = read_initial_label(gen.model_id, out)
    assert LABEL_RE.fullmatch(label) and "card" in label, label


def test_a_run_on_the_defaults_labels_with_q4_0_and_shares_labels_without_calls(
    qwen_path: Path, minilm_dir: Path, tmp_path: Path
) -> None:
    from intentlocal import cli
    from intentlocal.pipeline.runner import SHARED_RULE
    from intentlocal.store import Store

    data = tmp_path / "in.txt"
    data.write_text("\n".join([
        "my card has not arrived yet", "when will my new card arrive",
        "the card you sent never came", "still waiting for my card",
        "I forgot my pin", "how do I reset my pin", "my pin is blocked",
        "what is my pin code", "cancel my transfer", "I want to stop a transfer",
        "how do I undo a payment I sent", "reverse the transfer I made",
    ]) + "\n")
    # the default LLM (no --llm): the Q4_0 copy, made from the fetched file if missing
    # --min-share 2: each intent has four texts here, so a text has at most three
    # neighbours of its own intent and the default 4 (of 4 neighbours) shares nothing
    assert cli.main(["run", str(data), "--embedder", str(minilm_dir), "--k", "3",
                     "--neighbours", "4", "--min-share", "2", "--out", str(tmp_path)]) == 0
    store = Store()
    run = store.run(1)
    assert run.llm_id.startswith("qwen2.5-coder-0.5b:q4_0")  # "@hash" on another build
    n = len(store.uniques(1))
    initial = [h for uid in range(n) for h in store.history(1, uid) if h["iteration"] == 0]
    assert all(h["called"] and h["model_id"] == run.llm_id for h in initial)
    refined = [h for uid in range(n) for h in store.history(1, uid) if h["iteration"] == 1]
    added = [a for h in refined for a in h["added"]]
    assert added, "four neighbours of twelve texts should offer labels"
    assert not any(h["called"] for h in refined)
    assert {a["model_id"] for a in added} == {SHARED_RULE}
