"""Cluster names written by the LLM (pipeline.naming), on fakes."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.errors import ModelError
from intentlocal.pipeline.labels import load_prompt
from intentlocal.pipeline.naming import typical, write_names

TEXTS = ["call my dad", "call mum now", "ring my sister", "phone grandma",
         "set an alarm for 7", "wake me at six"]
LABELS = [["call_dad"], ["call_mom"], ["call_sister"], ["call_dad", "call_grandma"],
          ["set_alarm"], ["set_alarm", "wake_up"]]
ASSIGN = [0, 0, 0, 0, 1, 1]
CLUSTERS = [{"id": 0, "name": "call_dad", "size": 4, "top_labels": [["call_dad", 2]]},
            {"id": 1, "name": "set_alarm", "size": 2, "top_labels": [["set_alarm", 2]]}]


def _vectors() -> np.ndarray:
    return FakeEmbedder().embed(TEXTS)


def _answering(names: dict[str, str]) -> FakeGenerator:
    """Answers by the first label the prompt shows."""

    def responder(messages, grammar):
        prompt = messages[-1].content
        first = prompt.split("Labels (messages carrying each):\n- ")[1].split(" ")[0]
        return names.get(first, first)

    return FakeGenerator(responder)


def test_the_models_name_replaces_the_rules_pick_which_is_kept() -> None:
    gen = _answering({"call_dad": "make_phone_call"})
    prompt = load_prompt("name_cluster")
    named = write_names(gen, prompt, CLUSTERS, ASSIGN, LABELS, TEXTS, _vectors())
    assert [c["name"] for c in named] == ["make_phone_call", "set_alarm"]
    assert named[0]["label_name"] == "call_dad"
    assert named[0]["written_name"] == "make_phone_call"
    assert named[0]["name_model"] == "fake-llm"
    assert named[0]["name_prompt"] == prompt.hash
    # the model saw the cluster's labels with their counts, most shared first, and its
    # texts, nothing of the other cluster
    shown = gen.calls[0][0][-1].content
    assert "- call_dad (2)\n- call_grandma (1)" in shown
    assert all(t in shown for t in TEXTS[:4]) and "alarm" not in shown
    assert gen.calls[0][1].name == "name4"  # grammar-constrained, at most 4 words


def test_a_name_already_taken_falls_back_to_the_rules_pick() -> None:
    gen = _answering({"call_dad": "reminder", "set_alarm": "reminder"})
    named = write_names(gen, load_prompt("name_cluster"), CLUSTERS, ASSIGN, LABELS, TEXTS,
                        _vectors())
    assert [c["name"] for c in named] == ["reminder", "set_alarm"]  # larger chose first
    assert named[1]["written_name"] == "reminder"


def test_names_stay_unique_when_every_pick_is_taken() -> None:
    clusters = [{"id": 0, "name": "aa", "size": 4, "top_labels": []},
                {"id": 1, "name": "aa", "size": 2, "top_labels": [["aa", 2]]}]
    gen = FakeGenerator(lambda m, g: "aa")
    named = write_names(gen, load_prompt("name_cluster"), clusters, ASSIGN, LABELS, TEXTS,
                        _vectors())
    assert [c["name"] for c in named] == ["aa", "aa_2"]


def test_a_broken_answer_is_a_clear_error_naming_the_cluster() -> None:
    gen = FakeGenerator(lambda m, g: "Not A Label!")
    with pytest.raises(ModelError, match="naming cluster 0"):
        write_names(gen, load_prompt("name_cluster"), CLUSTERS, ASSIGN, LABELS, TEXTS,
                    _vectors())


def test_progress_is_reported_per_chunk() -> None:
    seen: list[tuple[int, int]] = []
    write_names(_answering({}), load_prompt("name_cluster"), CLUSTERS, ASSIGN, LABELS, TEXTS,
                _vectors(), chunk=1, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(1, 2), (2, 2)]


def test_typical_texts_are_those_nearest_the_centre() -> None:
    x = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.8, 0.2]])
    assert typical(x, [0, 1, 2, 3], 2) == [3, 1]  # the outlier [0, 1] is not
    assert typical(x, [2], 5) == [2]


def test_a_run_with_llm_names_stores_who_named_each_cluster() -> None:
    from intentlocal.api import IntentClusterer
    from tests.conftest import SUPPORT_TEXTS

    def responder(messages, grammar):
        prompt = messages[-1].content
        if "Labels (messages carrying each)" in prompt:
            first = prompt.split("carrying each):\n- ")[1].split(" ")[0]
            return "group_" + first
        from intentlocal.backends.fakes import keyword_responder

        return keyword_responder(messages, grammar)

    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(responder), k="4",
                        neighbours=3, max_iterations=1, llm_names=True,
                        name_llm="").fit(SUPPORT_TEXTS)
    stored = m.store_.clusters(m.run_id_)
    assert len(stored) == 4
    for c in stored:  # the model's name where the check kept it, else the rule's
        if c["name"].startswith("group_"):
            assert c["name_model"] == "fake-llm" and len(c["name_prompt"]) == 16
        else:
            assert c["name"] == c["label_name"] and c["name_model"] is None
    assert set(m.cluster_names_.values()) == {c["name"] for c in stored}
    assert "name" in m.store_.stages(m.run_id_)
    # the prompt is kept by hash, like the labels' prompts
    body = m.store_.db.execute("SELECT body FROM prompts WHERE name='name_cluster'").fetchone()
    assert body is not None
    # off (the default): the rule's pick, nobody's model
    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="4",
                        neighbours=3, max_iterations=1).fit(SUPPORT_TEXTS)
    stored = m.store_.clusters(m.run_id_)
    assert all(c["name_model"] is None and c["label_name"] == c["name"] for c in stored)


def test_a_users_rename_survives_the_llms_names() -> None:
    """save_cluster_names never overwrites a name the user gave."""
    from tests.unit.test_store_edits import _finished

    store, run_id = _finished()
    a, b = (c["id"] for c in store.clusters(run_id)[:2])
    store.rename_cluster(run_id, a, "my_name")
    store.save_cluster_names(run_id, [
        {"id": a, "name": "llm_a", "label_name": "x", "name_model": "m", "name_prompt": "p"},
        {"id": b, "name": "llm_b", "label_name": "y", "name_model": "m", "name_prompt": "p"}])
    by_id = {c["id"]: c for c in store.clusters(run_id)}
    assert by_id[a]["name"] == "my_name" and by_id[a]["name_model"] is None
    assert by_id[b]["name"] == "llm_b" and by_id[b]["label_name"] == "y"


def test_stores_made_before_cluster_names_gain_the_columns(tmp_path) -> None:
    """A store of an earlier version (three migrations) opens and its clusters read
    back with the rule's name as their own."""
    from intentlocal.store import MIGRATIONS, Store

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:3]:
        migration(db)
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()
    store = Store(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    cols = {r[1] for r in store.db.execute("PRAGMA table_info(clusters)")}
    assert {"label_name", "name_model", "name_prompt"} <= cols


def test_a_keep_filter_leaves_the_rules_pick_where_it_says_no() -> None:
    """Scripts measure filters on the written names through ``keep``; where it says no,
    the rule's pick stays the name and nobody's model is recorded for it."""
    seen: list[tuple[int, str]] = []

    def keep(cluster: dict, written: str) -> bool:
        seen.append((cluster["id"], written))
        return written != "rock_music"

    gen = _answering({"call_dad": "make_call", "set_alarm": "rock_music"})
    named = write_names(gen, load_prompt("name_cluster"), CLUSTERS, ASSIGN, LABELS, TEXTS,
                        _vectors(), keep=keep)
    assert seen == [(0, "make_call"), (1, "rock_music")]
    assert [c["name"] for c in named] == ["make_call", "set_alarm"]
    assert [c["name_accepted"] for c in named] == [True, False]
    assert named[1]["written_name"] == "rock_music" and named[1]["name_model"] is None
    assert named[0]["name_model"] == "fake-llm"


def test_repeated_words_are_dropped_from_a_written_name() -> None:
    from intentlocal.pipeline.naming import tidy

    assert tidy("meeting_reminder_reminder_reminder") == "meeting_reminder"
    assert tidy("set_alarm") == "set_alarm"


def test_a_contrast_prompt_shows_the_nearest_clusters_names() -> None:
    from intentlocal import paths
    from intentlocal.pipeline.naming import nearest_clusters

    prompt = load_prompt("name_cluster_contrast", paths.prompts_dir() / "variants" / "names")
    gen = _answering({})
    write_names(gen, prompt, CLUSTERS, ASSIGN, LABELS, TEXTS, _vectors())
    first, second = (call[0][-1].content for call in gen.calls)
    assert first.endswith("Similar groups:\n- set_alarm")
    assert second.endswith("Similar groups:\n- call_dad")
    # the shipped prompt shows none
    gen = _answering({})
    write_names(gen, load_prompt("name_cluster"), CLUSTERS, ASSIGN, LABELS, TEXTS, _vectors())
    assert "Similar groups" not in gen.calls[0][0][-1].content
    x = np.array([[1.0, 0.0], [1.0, 0.1], [0.9, 0.3], [0.0, 1.0]])
    assert nearest_clusters(x, {0: [0], 1: [1], 2: [2], 3: [3]}, 2) == \
        {0: [1, 2], 1: [0, 2], 2: [1, 0], 3: [2, 1]}


def test_a_missing_naming_model_stops_the_run_before_any_llm_call(tmp_path, monkeypatch) -> None:
    from intentlocal.api import IntentClusterer
    from tests.conftest import SUPPORT_TEXTS

    monkeypatch.setenv("INTENTLOCAL_MODELS", str(tmp_path / "no-models"))
    gen = FakeGenerator()
    with pytest.raises(ModelError, match=r"qwen2\.5-coder-1\.5b is not fetched") as err:
        IntentClusterer(embedder=FakeEmbedder(), generator=gen, k="4", neighbours=3,
                        max_iterations=1, llm_names=True).fit(SUPPORT_TEXTS)
    assert "intentlocal models fetch qwen2.5-coder-1.5b" in (err.value.hint or "")
    assert gen.calls == []


def test_the_naming_model_writes_the_names_and_is_recorded() -> None:
    """With its own namer the run's LLM writes labels only, the namer every name."""
    from intentlocal.api import execute_run, start_run
    from intentlocal.config import Settings
    from intentlocal.ingest import Corpus
    from intentlocal.store import Store
    from tests.conftest import SUPPORT_TEXTS

    store = Store()
    corpus = Corpus(list(SUPPORT_TEXTS), list(range(1, len(SUPPORT_TEXTS) + 1)), "mem")
    run_id = start_run(store, corpus, Settings(k="4", neighbours=3, max_iterations=1,
                                               llm_names=True))
    labeller = FakeGenerator()
    namer = FakeGenerator(lambda m, g: "named_by_namer", model_id="fake-namer")
    execute_run(store, run_id, embedder=FakeEmbedder(), generator=labeller, namer=namer)
    assert len(namer.calls) == 4
    assert all(g.name == "label" or g.name.startswith("select") for _, g in labeller.calls)
    stored = store.clusters(run_id)
    assert stored[0]["name"] == "named_by_namer" and stored[0]["name_model"] == "fake-namer"


def test_stores_made_before_speakers_gain_the_column(tmp_path) -> None:
    """A store of four migrations keeps its runs; their texts read back with no speaker."""
    from intentlocal.store import MIGRATIONS, Store

    path = tmp_path / "old.sqlite3"
    db = sqlite3.connect(path)
    for migration in MIGRATIONS[:4]:
        migration(db)
    db.execute("PRAGMA user_version=4")
    db.execute("INSERT INTO runs (id, name, created_at, updated_at, status, settings_json)"
               " VALUES (1, 'old', 0, 0, 'finished', '{}')")
    db.execute("INSERT INTO texts (run_id, idx, uid, text, source_line) VALUES (1, 0, 0, 'hi', 3)")
    db.commit()
    db.close()
    store = Store(path)
    assert store.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert store.origins(1) == [(3, None)]
