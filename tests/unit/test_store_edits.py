"""A person's edits to a finished run (merge, move, rename) keep sizes and top
labels true to the utterances each cluster now holds."""

from __future__ import annotations

from collections import Counter

from intentlocal.api import execute_run, start_run
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.config import Settings
from intentlocal.ingest import Corpus
from intentlocal.store import Store
from tests.conftest import SUPPORT_TEXTS


def _finished() -> tuple[Store, int]:
    store = Store()
    corpus = Corpus(SUPPORT_TEXTS, list(range(1, len(SUPPORT_TEXTS) + 1)), "mem")
    run_id = start_run(store, corpus, Settings(k="4", neighbours=3, max_iterations=1))
    execute_run(store, run_id, embedder=FakeEmbedder(), generator=FakeGenerator())
    return store, run_id


def _expected_top(store: Store, run_id: int, cid: int) -> list[list]:
    sets = store.label_sets(run_id, len(store.uniques(run_id)), 10**6)
    uid = {idx: u for idx, u, _ in store.texts(run_id)}
    members = [i for i, a in enumerate(store.assignments(run_id)) if a == cid]
    counts = Counter(lab for i in members for lab in set(sets[uid[i]]))
    return [[lab, n] for lab, n in sorted(counts.items(), key=lambda p: (-p[1], p[0]))[:3]]


def test_merge_and_move_recompute_sizes_and_top_labels() -> None:
    store, run_id = _finished()
    a, b = (c["id"] for c in store.clusters(run_id)[:2])
    name_a = next(c["name"] for c in store.clusters(run_id) if c["id"] == a)
    store.merge_clusters(run_id, a, b)
    merged = next(c for c in store.clusters(run_id) if c["id"] == a)
    assert merged["size"] == store.assignments(run_id).count(a)
    assert merged["name"] == name_a
    assert merged["top_labels"] == _expected_top(store, run_id, a)
    assert b not in {c["id"] for c in store.clusters(run_id)}

    other = next(c["id"] for c in store.clusters(run_id) if c["id"] != a)
    idx = store.assignments(run_id).index(a)
    store.move_utterance(run_id, idx, other)
    for cid in (a, other):
        c = next(c for c in store.clusters(run_id) if c["id"] == cid)
        assert c["size"] == store.assignments(run_id).count(cid)
        assert c["top_labels"] == _expected_top(store, run_id, cid)
