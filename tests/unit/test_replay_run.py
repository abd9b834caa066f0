"""scripts/replay_run.py: the product path again on a finished run's LLM labels."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intentlocal.api import IntentClusterer
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.store import Store
from scripts import replay_run
from tests.conftest import SUPPORT_TEXTS


def _source(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "runs.sqlite3"
    IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="4", neighbours=3,
                    store=Store(db)).fit(SUPPORT_TEXTS)
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"text": t, "label": t.split()[1]}) + "\n"
                            for t in SUPPORT_TEXTS))
    return db, gold


def test_replay_keeps_the_llm_labels_and_applies_new_settings(tmp_path: Path,
                                                              monkeypatch) -> None:
    import intentlocal.api as api

    db, gold = _source(tmp_path)
    monkeypatch.setattr(api, "build_backends", lambda s: (FakeEmbedder(), None))
    out = tmp_path / "out.json"
    assert replay_run.main([f"{db}:1", str(gold), "--set", "min_share=2",
                            "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    store = Store(db)
    n = len(store.uniques(1))
    assert got["source_run"] == 1 and got["run_id"] == 2 and got["replayed_calls"] == n
    assert got["changed"] == {"min_share": 2}
    assert store.label_sets(2, n, 0) == store.label_sets(1, n, 0)  # the LLM's, replayed
    assert store.label_sets(2, n, 1) != store.label_sets(1, n, 1)  # refined by T = 2
    assert store.run(2).status == "finished" and 0 <= got["acc"] <= 100
    labeller = {r["model_id"] for r in store.db.execute(
        "SELECT model_id FROM labels WHERE run_id=2 AND iteration=0")}
    assert labeller == {"replay:fake-llm"}


def test_replay_refuses_settings_that_change_the_questions(tmp_path: Path) -> None:
    db, gold = _source(tmp_path)
    with pytest.raises(SystemExit, match="prompt_neighbours change what the LLM is asked"):
        replay_run.main([f"{db}:1", str(gold), "--set", "prompt_neighbours=5"])
    assert len(Store(db).runs()) == 1  # nothing stored
