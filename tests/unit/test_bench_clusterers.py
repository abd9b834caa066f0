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
    monkeypatch.setattr(C, "SelectClusterer", lambda consensus=False: _FixedSelect([0, 0, 1]))
    monkeypatch.setattr(C, "AverageLinkage", lambda: _FixedSelect([0, 0, 1]))
    rows = {r["clusterer"]: r for r in evaluate(x, gold, 2, [0], rows_of=rows_of)}
    # a and b share a cluster: 5 of the 6 input rows are right, not 2 of the 3 texts
    assert abs(rows["fixed"]["acc"] - 100 * 5 / 6) < 0.01  # summarise rounds to 4 places
    assert abs(rows["select by tie-break"]["acc"] - 100 * 5 / 6) < 0.01


def test_modularity_on_another_graph_can_change_the_choice_and_leaves_the_fit_alone() -> None:
    # two candidates tied on silhouette; "coarse" joins two nearby blobs, "fine" keeps
    # them apart. On a graph of 3 neighbours (blobs of 4) the blobs are separate
    # components and "fine" has the higher modularity; on a graph of 10, edges join
    # the nearby blobs and "coarse" gains.
    from scripts.bench_clusterers import choose_on_graph

    rng = np.random.default_rng(0)
    centres = np.array([[1, 0, 0], [0.95, 0.3, 0], [0, 0, 1]], dtype=np.float32)
    x = np.concatenate([c + 0.01 * rng.standard_normal((4, 3)) for c in centres])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    sel = C.SelectClusterer(candidates={})
    sel.partitions_ = {"coarse": np.repeat([0, 0, 1], 4), "fine": np.repeat([0, 1, 2], 4)}
    sel.silhouettes_ = {"coarse": 0.5, "fine": 0.5}
    sel.modularities_ = {"coarse": 0.0, "fine": 0.0}
    assert choose_on_graph(sel, x, 3) == "fine"
    assert choose_on_graph(sel, x, 10) == "coarse"
    assert sel.modularities_ == {"coarse": 0.0, "fine": 0.0}  # the fit's own criteria kept


def test_evenness_is_one_for_equal_sizes_and_falls_with_imbalance() -> None:
    from scripts.bench_clusterers import evenness

    assert abs(evenness(np.repeat([0, 1, 2], 5)) - 1.0) < 1e-9
    assert 0 < evenness(np.array([0] * 13 + [1, 2])) < 0.6
    assert evenness(np.zeros(4, dtype=int)) == 0.0


def test_even_tie_break_keeps_the_more_even_of_the_tied_candidates_only() -> None:
    from scripts.bench_clusterers import choose_even

    sel = C.SelectClusterer(candidates={})
    sel.partitions_ = {"lopsided": np.array([0] * 10 + [1, 2]),
                       "even": np.repeat([0, 1, 2], 4),
                       "far": np.repeat([0, 1, 2], 4)}
    sel.silhouettes_ = {"lopsided": 0.50, "even": 0.49, "far": 0.10}
    assert choose_even(sel) == "even"
    sel.silhouettes_["even"] = 0.40  # no longer tied with the best: not a candidate
    assert choose_even(sel) == "lopsided"


class _TwoSelect(_FixedSelect):
    """Two candidates: "lumpy" wins the default rule (silhouette tie, higher
    modularity), "even" has the more even sizes and is right."""

    silhouette_ties = C.SelectClusterer.silhouette_ties  # the real rule's first step

    def __init__(self, consensus: bool = False) -> None:
        super().__init__([0, 0, 0, 1])
        self.tie = 0.02

    def fit_predict(self, x, k, labels=None):  # type: ignore[no-untyped-def]
        self.partitions_ = {"lumpy": np.array([0, 0, 0, 1]), "even": np.array([0, 0, 1, 1])}
        self.silhouettes_ = {"lumpy": 0.5, "even": 0.5}
        self.modularities_ = {"lumpy": 0.9, "even": 0.1}
        return self.partitions_["lumpy"]

    def choose(self, criterion: str) -> str:
        assert criterion in ("tie-break", "modularity", "silhouette")
        return "lumpy"


def test_variant_rows_hold_their_own_choice_on_every_seed(monkeypatch) -> None:
    # over 3 seeds the "most even" row must score the even partition each time; a
    # variant's name must never be asked of the default rule (it would add the
    # default's choice to the variant's row from the second seed on)
    x = np.eye(4, dtype=np.float32)
    gold = ["a", "a", "b", "b"]
    monkeypatch.setattr(C, "SelectClusterer", _TwoSelect)
    monkeypatch.setattr(C, "AverageLinkage", lambda: _FixedSelect([0, 0, 1, 1]))
    rows = {r["clusterer"]: r for r in evaluate(x, gold, 2, [0, 1, 2], balance=True)}
    even = rows["select by tie-break, ties to the most even sizes"]
    assert even["acc"] == 100.0 and even["acc_sd"] == 0.0
    assert even["chosen"] == ["even"]
    assert rows["select by tie-break"]["acc"] == 75.0
