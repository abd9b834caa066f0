"""scripts/small_inputs.py: the subsets it draws and the rules it replays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from scripts.small_inputs import main, subsets


def test_subsets_take_whole_intents_with_enough_texts() -> None:
    gold = np.array(["a"] * 30 + ["b"] * 30 + ["c"] * 5 + ["d"] * 40)
    picks = subsets(gold, samples=3, intents=2, per_intent=25)
    assert len(picks) == 3
    for rows in picks:
        assert len(rows) == 50 and len(set(rows.tolist())) == 50
        counts = {g: int((gold[rows] == g).sum()) for g in set(gold[rows].tolist())}
        assert len(counts) == 2 and set(counts.values()) == {25} and "c" not in counts
    assert [r.tolist() for r in picks] == [r.tolist() for r in subsets(gold, 3, 2, 25)]


def test_rules_replay_the_selection_over_records(tmp_path: Path, capsys) -> None:
    """One record where K-means wins on silhouette alone with a modularity far below the
    rest: the current rule keeps it, the guard keeps the consensus."""
    cands = {
        "kmeans": {"silhouette": 0.46, "modularity": 0.813, "acc": 82.0},
        "spectral-15": {"silhouette": 0.431, "modularity": 0.846, "acc": 96.0},
        "consensus": {"silhouette": 0.4306, "modularity": 0.843, "acc": 95.0},
    }
    rec = {"set": "s", "sample": 0, "k_mode": "true", "chosen": "kmeans", "candidates": cands}
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps(rec) + "\n")
    assert main(["rules", str(path), "--guards", "0.015"]) == 0
    row = capsys.readouterr().out.splitlines()[-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["s", "subsets", "true", "1"]
    assert cells[4] == "82.0"  # no guard, the rule until 6 Dec
    assert cells[7] == "95.0 (1 changed)"  # the guard
    assert cells[8] == "95.0 (1 changed)"  # today's default
    assert cells[-1] == "96.0"  # the best candidate
