"""scripts/candidate_scoring.py: the AUC that says whether a score tells right candidates."""

from __future__ import annotations

import math

from scripts.candidate_scoring import auc


def test_auc_counts_pairs_and_half_ties() -> None:
    assert auc([2.0, 3.0], [1.0]) == 1.0
    assert auc([1.0], [2.0, 3.0]) == 0.0
    assert auc([1.0, 3.0], [2.0]) == 0.5
    assert auc([1.0], [1.0]) == 0.5  # a constant score knows nothing
    assert math.isnan(auc([], [1.0]))

