"""scripts/score_run.py: a finished run's own clusters scored against gold labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intentlocal.api import IntentClusterer
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.errors import InputError
from intentlocal.store import Store
from scripts.score_run import main, score_run
from tests.conftest import SUPPORT_TEXTS


def _gold_file(tmp_path: Path, texts: list[str]) -> Path:
    p = tmp_path / "gold.jsonl"
    # the second word is the intent of each support text (card, pin, top, exchange...)
    p.write_text("".join(json.dumps({"text": t, "label": t.split()[1]}) + "\n" for t in texts))
    return p


def test_scores_the_partition_the_run_stored(tmp_path: Path, capsys) -> None:
    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="4",
                        neighbours=3, clusterer="kmeans").fit(SUPPORT_TEXTS)
    gold = _gold_file(tmp_path, SUPPORT_TEXTS)
    r = score_run(Store(), m.run_id_, str(gold))
    assert r["k"] == 4 and r["k_estimated"] is False and r["clusterer"] == "kmeans"
    # the same figure computed by hand from the run's own labels
    from intentlocal.pipeline.metrics import scores

    want = scores([t.split()[1] for t in SUPPORT_TEXTS], list(m.labels_))
    assert r["acc"] == pytest.approx(want["acc"], abs=0.01)
    assert {"initial", "refine-1", "cluster"} <= set(r["stages"])
    assert sum(n["size"] for n in r["names"]) == len(SUPPORT_TEXTS)
    assert all(n["purity"] > 0 and n["gold"] for n in r["names"])
    assert main([str(m.run_id_), str(gold), "--names", "2"]) == 0
    out = capsys.readouterr().out
    assert f"run {m.run_id_}: K 4 (given; true" in out
    first = r["names"][0]
    assert f"| {first['name']} | {first['size']} | {first['gold']} |" in out


def test_refuses_a_gold_file_the_run_was_not_made_from(tmp_path: Path) -> None:
    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="4",
                        neighbours=3, clusterer="kmeans").fit(SUPPORT_TEXTS)
    other = _gold_file(tmp_path, list(reversed(SUPPORT_TEXTS)))
    with pytest.raises(InputError, match="was not made from"):
        score_run(Store(), m.run_id_, str(other))
    assert main([str(m.run_id_), str(other)]) == 2
