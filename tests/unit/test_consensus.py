"""The consensus clusterer: the co-association counts the share of partitions that put two
texts together, and its consensus recovers groups that single partitions each break."""

from __future__ import annotations

import numpy as np

from intentlocal.pipeline.cluster import (
    ConsensusClusterer,
    coassociation,
    consensus_partition,
)
from intentlocal.pipeline.metrics import scores


def test_coassociation_is_the_share_of_partitions_agreeing() -> None:
    c = coassociation([np.array([0, 0, 1]), np.array([0, 1, 1])]).toarray()
    assert np.allclose(c, [[1, 0.5, 0], [0.5, 1, 0.5], [0, 0.5, 1]])


def test_consensus_recovers_groups_each_partition_gets_partly_wrong() -> None:
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(4), 30)
    parts = []
    for _ in range(6):  # each partition moves a different 15 % of texts at random
        p = truth.copy()
        moved = rng.choice(len(p), 18, replace=False)
        p[moved] = rng.integers(0, 4, len(moved))
        parts.append(p)
    got = consensus_partition(parts, 4, seed=0)
    assert scores(truth, got)["acc"] == 100.0
    assert all(scores(truth, p)["acc"] < 100.0 for p in parts)


def test_the_consensus_clusterer_combines_its_candidates() -> None:
    class Fixed:
        def __init__(self, part: np.ndarray) -> None:
            self.part = part

        def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
            return self.part

    class Refuses:
        def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
            from intentlocal.errors import RunError

            raise RunError("too large")

    truth = np.repeat(np.arange(3), 20)
    a, b, c = truth.copy(), truth.copy(), truth.copy()
    a[:5], b[20:25], c[40:45] = 1, 2, 0  # each gets a different 5 texts wrong
    cc = ConsensusClusterer(candidates={"a": Fixed(a), "b": Fixed(b), "c": Fixed(c),
                                        "big": Refuses()})
    got = cc.fit_predict(np.zeros((60, 2), dtype=np.float32), 3)
    assert scores(truth, got)["acc"] == 100.0
    assert cc.chosen_ == "consensus" and set(cc.partitions_) == {"a", "b", "c"}
    assert "big" in cc.seconds_ and "consensus" in cc.seconds_


def test_select_with_consensus_scores_it_as_one_more_candidate() -> None:
    from intentlocal.pipeline.cluster import SelectClusterer

    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 12))
    x = np.repeat(centres, 30, axis=0) + 0.35 * rng.normal(size=(120, 12))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    sel = SelectClusterer()  # the consensus is a candidate by default
    part = sel.fit_predict(x, 4)
    assert list(sel.partitions_)[-1] == "consensus"  # last in the order
    assert "consensus" in sel.silhouettes_ and "consensus" in sel.modularities_
    assert "consensus" in sel.scores_ and "consensus" in sel.seconds_
    assert np.array_equal(part, sel.partitions_[sel.chosen_])
    plain = SelectClusterer(consensus=False)
    plain.fit_predict(x, 4)
    assert "consensus" not in plain.partitions_


def test_partitions_agreeing_on_fewer_than_k_groups_are_kept_as_they_are() -> None:
    same = [np.zeros(6, dtype=np.int64)] * 3
    assert consensus_partition(same, 3, seed=0).tolist() == [0] * 6
    two = [np.array([0, 0, 1, 1]), np.array([1, 1, 0, 0])]
    assert consensus_partition(two, 3, seed=0).tolist() == [0, 0, 1, 1]


class _ByVectors:
    """A candidate that takes a layout, as umap-hdbscan does: one partition when it
    clusters the layout (the labels mixed in), another on the texts' own vectors."""

    def __init__(self, on_texts: np.ndarray, on_layout: np.ndarray) -> None:
        self.on_texts, self.on_layout = on_texts, on_layout
        self.found_, self.split_ = 0, ""

    def fit_predict(self, x: np.ndarray, k: int, labels=None, layout=None) -> np.ndarray:
        self.found_, self.split_ = (7, "share") if layout is not None else (5, "widest")
        return self.on_layout if layout is not None else self.on_texts


class _Fixed:
    def __init__(self, part: np.ndarray) -> None:
        self.part = part

    def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
        return self.part


def test_texts_consensus_combines_the_texts_partitions_not_the_layouts() -> None:
    """With texts_consensus, the consensus is the one the texts alone give (the mixed-in
    labels reach the selection through the density candidate only), while that
    candidate's own partition and its reported counts are still the layout's."""
    from intentlocal.pipeline.cluster import SelectClusterer

    truth = np.repeat(np.arange(3), 20)
    a, b = truth.copy(), truth.copy()
    a[:5], b[20:25] = 1, 2
    mixed = np.random.default_rng(1).integers(0, 3, 60)  # the layout's: unrelated
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    layout = x + 1.0

    def select(texts_consensus: bool) -> SelectClusterer:
        sel = SelectClusterer(texts_consensus=texts_consensus, candidates={
            "a": _Fixed(a), "b": _Fixed(b), "umap-hdbscan": _ByVectors(truth, mixed)})
        sel.fit_predict(x, 3, layout=layout)
        return sel

    on, off = select(True), select(False)
    assert np.array_equal(on.partitions_["umap-hdbscan"], mixed)
    assert scores(truth, on.partitions_["consensus"])["acc"] == 100.0
    assert scores(truth, off.partitions_["consensus"])["acc"] < 100.0
    assert on.scores_["umap-hdbscan"]["groups_found"] == 7  # the layout fit's, kept
    assert on.scores_["umap-hdbscan"]["split"] == "share"
    assert "consensus inputs" in on.seconds_ and "consensus inputs" not in off.seconds_
    without_layout = SelectClusterer(texts_consensus=True, candidates={
        "a": _Fixed(a), "b": _Fixed(b), "umap-hdbscan": _ByVectors(truth, mixed)})
    without_layout.fit_predict(x, 3)  # nothing mixed in: nothing fitted twice
    assert "consensus inputs" not in without_layout.seconds_


def test_the_consensus_clusterer_can_combine_the_texts_partitions_too() -> None:
    truth = np.repeat(np.arange(3), 20)
    a, b = truth.copy(), truth.copy()
    a[:5], b[20:25] = 1, 2
    mixed = np.random.default_rng(1).integers(0, 3, 60)
    x = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    cc = ConsensusClusterer(texts_consensus=True, candidates={
        "a": _Fixed(a), "b": _Fixed(b), "umap-hdbscan": _ByVectors(truth, mixed)})
    got = cc.fit_predict(x, 3, layout=x + 1.0)
    assert scores(truth, got)["acc"] == 100.0
