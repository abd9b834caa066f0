"""scripts/cluster_names.py: its rules, the product's two among them."""

from __future__ import annotations

from collections import Counter

import numpy as np

from scripts.cluster_names import name_by


def _unit(v: list[float]) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    return a / np.linalg.norm(a)


def test_rules_name_the_same_clusters_differently() -> None:
    labels = [["call_dad"]] * 5 + [["call_mom"]] * 4 + [["make_call"]] * 3 + [["weather"]] * 4
    members = {0: list(range(12)), 1: list(range(12, 16))}
    vec = {"call_dad": _unit([1, 0.5, 0]), "call_mom": _unit([1, -0.5, 0]),
           "make_call": _unit([1, 0.05, 0]), "weather": _unit([0, 0, 1])}
    counts = Counter(lab for s in labels for lab in s)
    counts["call_dad"] += 20  # carried mostly elsewhere in the run: not specific here
    got = {r: name_by(r, members, labels, vec, counts, 3)
           for r in ("most shared", "central", "central of the frequent", "specific")}
    assert got["most shared"] == {0: "call_dad", 1: "weather"}
    assert got["central"][0] == "make_call"
    assert got["central of the frequent"][0] == "make_call"
    assert got["specific"][0] == "call_mom"
    assert all(len(set(n.values())) == 2 for n in got.values())  # unique names
