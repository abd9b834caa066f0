"""scripts/min_share.py: the per-seed (paired) difference to the texts alone."""

from __future__ import annotations

import pytest

from scripts.min_share import paired


def test_paired_differences_are_per_seed_not_of_the_means() -> None:
    # seed-to-seed spread is large (sd 2 of each row), the gain steady (+1 or +2)
    base = [{"acc": 70.0, "nmi": 80.0}, {"acc": 74.0, "nmi": 82.0}]
    rows = [{"acc": 71.0, "nmi": 80.0}, {"acc": 76.0, "nmi": 81.0}]
    d = paired(rows, base)
    assert d["d_acc"] == pytest.approx(1.5) and d["d_acc_sd"] == pytest.approx(0.5)
    assert d["d_nmi"] == pytest.approx(-0.5) and d["d_nmi_sd"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        paired(rows, base[:1])  # not the same seeds
