"""scripts/auto_k_scaling.py: subsets are seeded, sorted and of the asked share."""

from __future__ import annotations

import numpy as np

from scripts.auto_k_scaling import subset


def test_subsets_are_seeded_sorted_and_sized() -> None:
    a, b = subset(1000, 0.25), subset(1000, 0.25)
    assert np.array_equal(a, b) and len(a) == 250 and len(set(a.tolist())) == 250
    assert np.all(np.diff(a) > 0)
    assert not np.array_equal(a, subset(1000, 0.25, seed=1))
    assert np.array_equal(subset(7, 1.0), np.arange(7))
