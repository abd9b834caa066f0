"""scripts/bench_clusterers.py --distinct: distinct texts clustered, every input row scored."""

from __future__ import annotations

import numpy as np

from intentlocal.pipeline import cluster as C
from scripts.bench_clusterers import evaluate


class _FixedSelect:
    """One candidate whose partition of the distinct rows is fixed."""

    def __init__(self, partition: list[int]) -> None:
        self.partition = np.asarray(partition)
        self.partitions_: dict[str, np.ndarray] = {}
        self.candidates: dict = {}
        self.silhouettes_ = {"fixed": 0.0}
        self.modularities_ = {"fixed": 0.0}

    def set_seed(self, seed: int) -> None:
        pass

    def fit_predict(self, x, k, labels=None):  # type: ignore[no-untyped-def]
        assert len(x) == len(self.partition)  # the distinct rows, not the input rows
        self.partitions_ = {"fixed": self.partition}
        return self.partition

    def choose(self, criterion: str) -> str:
        return "fixed"


def test_distinct_rows_are_scored_once_per_input_row(monkeypatch) -> None:
    # three distinct texts; the input repeats the third one four times
    x = np.eye(3, dtype=np.float32)
    rows_of = [0, 1, 2, 2, 2, 2]
    gold = ["a", "b", "c", "c", "c", "c"]
    monkeypatch.setattr(C, "SelectClusterer", lambda: _FixedSelect([0, 0, 1]))
    monkeypatch.setattr(C, "AverageLinkage", lambda: _FixedSelect([0, 0, 1]))
    rows = {r["clusterer"]: r for r in evaluate(x, gold, 2, [0], rows_of=rows_of)}
    # a and b share a cluster: 5 of the 6 input rows are right, not 2 of the 3 texts
    assert abs(rows["fixed"]["acc"] - 100 * 5 / 6) < 0.01  # summarise rounds to 2 places
    assert abs(rows["select by tie-break"]["acc"] - 100 * 5 / 6) < 0.01
