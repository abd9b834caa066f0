"""scripts/transcript_check.py: the made-up call transcript and its scoring."""

from __future__ import annotations

import json
from pathlib import Path

from intentlocal.ingest import read_corpus
from scripts.transcript_check import main, score


def _gold(tmp_path: Path) -> Path:
    p = tmp_path / "gold.jsonl"
    rows = [(f"{intent} question number {i}", intent) for intent in ("card", "pin", "fee")
            for i in range(4)]
    p.write_text("".join(json.dumps({"text": t, "label": g}) + "\n" for t, g in rows))
    return p


def test_made_transcript_has_both_sides_and_speaker_keeps_the_customer(tmp_path: Path) -> None:
    out = tmp_path / "tc"
    assert main(["make", str(_gold(tmp_path)), str(out), "--intents", "3",
                 "--per-intent", "4"]) == 0
    answer = json.loads((out / "gold.json").read_text())
    assert len(answer) == 12
    everything = read_corpus(out / "calls.csv")
    assert len(everything.texts) > 2 * 12 and "column 'speaker'" in (everything.note or "")
    customer = read_corpus(out / "calls.csv", speaker="customer")
    assert sorted(customer.texts) == sorted(answer)


def test_score_counts_agent_clusters_and_scores_customer_texts(tmp_path: Path) -> None:
    gold = {"card a": "card", "card b": "card", "pin a": "pin", "pin b": "pin"}
    (tmp_path / "gold.json").write_text(json.dumps(gold))
    texts = [("card a", 0), ("card b", 0), ("pin a", 2), ("pin b", 2),
             ("Hello, Sam here", 2), ("Goodbye!", 2), ("One moment", 2)]
    doc = {
        "texts": [{"text": t, "cluster_id": c} for t, c in texts],
        "clusters": [{"id": 0, "name": "card"}, {"id": 1, "name": "pin"},
                     {"id": 2, "name": "greeting"}],
        "clustering": {"k": 3, "clusterer": "kmeans"},
    }
    result = tmp_path / "r.json"
    result.write_text(json.dumps(doc))
    r = score(tmp_path / "gold.json", result)
    assert r["customer_texts"] == 4 and r["clusters_mostly_agent"] == 1
    assert r["customer_texts_in_agent_clusters"] == 2
    assert r["intents_hidden_in_agent_clusters"] == ["pin"]
    assert r["names_of_agent_clusters"] == ["greeting"]
    assert r["acc"] == 100.0  # Hungarian matching credits the agents' cluster with "pin"


def test_follow_ups_are_customer_turns_without_an_intent(tmp_path: Path) -> None:
    from scripts.transcript_check import FOLLOW_UPS

    out = tmp_path / "tc"
    assert main(["make", str(_gold(tmp_path)), str(out), "--intents", "3",
                 "--per-intent", "4", "--follow-ups", "1.0"]) == 0
    answer = json.loads((out / "gold.json").read_text())
    customer = read_corpus(out / "calls.csv", speaker="customer")
    assert len(customer.texts) == 24
    assert all(t in answer or t in FOLLOW_UPS for t in customer.texts)
    first = read_corpus(out / "calls.csv", speaker="customer", first_turn=True)
    assert sorted(first.texts) == sorted(answer)
