"""The evaluation every report rests on: Hungarian-matched accuracy and the seed summary."""

from __future__ import annotations

import pytest

from intentlocal.pipeline.metrics import cluster_acc, scores, summarise


def test_acc_ignores_cluster_ids_but_not_mistakes() -> None:
    gold = ["a", "a", "b", "b", "c", "c"]
    assert cluster_acc(gold, [7, 7, 3, 3, 5, 5]) == 1.0  # any renaming is a perfect match
    # one cluster may map to one class only: merging b and c costs the smaller of the two
    assert cluster_acc(gold, [0, 0, 1, 1, 1, 1]) == pytest.approx(4 / 6)
    assert cluster_acc(gold, [0, 1, 0, 1, 0, 1]) == pytest.approx(2 / 6)


def test_scores_are_percentages() -> None:
    s = scores(["a", "a", "b", "b"], [1, 1, 0, 0])
    assert s == {"acc": 100.0, "nmi": 100.0, "ari": 100.0}


def test_summarise_gives_mean_and_population_sd() -> None:
    out = summarise([{"acc": 80, "nmi": 90, "ari": 70}, {"acc": 84, "nmi": 90, "ari": 72}])
    assert out == {"acc": 82.0, "acc_sd": 2.0, "nmi": 90.0, "nmi_sd": 0.0,
                   "ari": 71.0, "ari_sd": 1.0}


def test_summarise_does_not_round_twice_on_the_way_to_a_report() -> None:
    # mean 86.149: the reports print one decimal, which must be 86.1, not 86.2
    out = summarise([{"acc": 86.148, "nmi": 0, "ari": 0}, {"acc": 86.150, "nmi": 0, "ari": 0}])
    assert f"{out['acc']:.1f}" == "86.1"
