"""scripts/auto_k_layout.py: every estimator counts separated groups of a layout right,
and the report gives each set's per-seed estimates with the error of their mean."""

from __future__ import annotations

import numpy as np

from scripts.auto_k_layout import counts, markdown


def test_every_estimator_finds_separated_groups() -> None:
    rng = np.random.default_rng(0)
    layout = np.concatenate([c * 5 + 0.1 * rng.standard_normal((40, 10))
                             for c in np.eye(6, 10)]).astype(np.float32)
    assert set(counts(layout, 0).values()) == {6}


def test_the_report_gives_the_error_of_the_mean_and_the_worst_set() -> None:
    r = {"command": "python scripts/auto_k_layout.py x", "seeds": [0, 1], "sets": [
        {"set": "a", "k_true": 10, "rows": {"est": [11, 13]}},
        {"set": "b", "k_true": 100, "rows": {"est": [80, 80]}}]}
    row = next(ln for ln in markdown(r).splitlines() if ln.startswith("| est |"))
    assert row == "| est | 11, 13 (+20 %) | 80, 80 (-20 %) | 20 % |"
