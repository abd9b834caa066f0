"""scripts/label_confidence.py: the confidence summaries and how they order labels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scripts.label_confidence import by_confidence, confidences


def test_confidences_of_a_traced_label() -> None:
    rec = {"trace": [(-0.1, 0.9), (-2.0, 0.5), (-0.3, 1.0)]}
    c = confidences(rec)
    assert c["mean_raw"] == pytest.approx(-0.8)
    assert c["min_raw"] == pytest.approx(-2.0)
    assert c["grammar_logp"] == pytest.approx(math.log(0.9) + math.log(0.5))


def test_confident_labels_that_are_pure_rank_high() -> None:
    # "a" and "b" are each given to one intent (confident); "c" is given to three
    # intents (unsure); "d" to one text only.
    keys = ["a"] * 4 + ["b"] * 4 + ["c"] * 6 + ["d"]
    gold = np.array([0] * 4 + [1] * 4 + [0, 1, 2, 0, 1, 2] + [2])
    conf = np.array([-0.1] * 8 + [-3.0] * 6 + [-5.0])
    r = by_confidence(keys, gold, conf)
    assert r["shared"] == 14 and r["labels"] == 4
    assert r["pairs"] == 6 + 6 + 15
    assert r["pair_purity"] == pytest.approx((12 + 3) / 27)
    assert r["spearman"] > 0.8
    low, high = r["quartiles"][0], r["quartiles"][-1]
    assert high["precision"] == 1.0 and low["precision"] == pytest.approx(0.2)
    assert r["mean_single"] == -5.0
    # the same labels with the confidence reversed: the order flips
    assert by_confidence(keys, gold, -conf)["spearman"] < -0.8
