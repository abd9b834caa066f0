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
