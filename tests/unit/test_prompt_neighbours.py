"""scripts/prompt_neighbours.py: the sample gives completeness something to measure, and
a finished run's initial labels are read back per distinct text with the right gold."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from intentlocal.api import execute_run, start_run
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator, content_words
from intentlocal.config import Settings
from intentlocal.ingest import Corpus
from intentlocal.store import Store
from scripts.prompt_neighbours import pick_targets, run_labels, score
from tests.conftest import SUPPORT_TEXTS


def test_targets_are_several_texts_of_a_few_intents() -> None:
    gold = ["a"] * 10 + ["b"] * 3 + ["c"] * 8 + ["d"] * 6
    picked = pick_targets(gold, intents=2, per_intent=5, seed=1)
    counts = Counter(gold[i] for i in picked)
    assert sorted(counts.values()) == [5, 5]
    assert "b" not in counts  # too few texts to give 5
    assert picked == pick_targets(gold, intents=2, per_intent=5, seed=1)
    assert len(set(picked)) == len(picked)


def test_score_tells_one_label_per_intent_from_one_per_text() -> None:
    gold = ["x", "x", "y", "y"]
    shared = score(["card", "card", "fee", "fee"], gold)
    split = score(["card", "lost card", "fee", "charge"], gold)
    assert shared["completeness"] == pytest.approx(100.0) and split["completeness"] < 99.0
    assert split["homogeneity"] == pytest.approx(100.0) and split["distinct"] == 4


def test_run_labels_reads_a_finished_runs_initial_labels(tmp_path: Path) -> None:
    texts = [*SUPPORT_TEXTS[:8], SUPPORT_TEXTS[0]]  # the last row repeats the first
    gold = [f"intent{i // 4}" for i in range(8)] + ["intent0"]
    data = tmp_path / "test.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": g}) + "\n"
                            for t, g in zip(texts, gold, strict=True)))
    store_path = tmp_path / "runs.sqlite3"
    store = Store(store_path)
    corpus = Corpus(texts, list(range(1, len(texts) + 1)), str(data))
    run_id = start_run(store, corpus, Settings(k="2", neighbours=3, prompt_neighbours=1))
    execute_run(store, run_id, embedder=FakeEmbedder(), generator=FakeGenerator())
    labels, got_gold, k = run_labels(str(store_path), run_id, data)
    assert k == 1
    assert got_gold == gold[:8]  # one per distinct text, the repeat not counted twice
    # the fake writer's initial label is a text's first two content words; the labels
    # refinement added later are not read
    assert labels == ["_".join(content_words(t)[:2]) for t in texts[:8]]
