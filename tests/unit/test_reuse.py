"""Answers reused from the store: the same question asked again costs no call, gives
the same labels, and says so in the history; anything that changes the question, or
sampling, decodes again."""

from __future__ import annotations

from pathlib import Path

import pytest

from intentlocal.api import execute_run, start_run
from intentlocal.backends.base import Generation, Request, request_key
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.config import Settings
from intentlocal.errors import RunError
from intentlocal.grammars import label_grammar
from intentlocal.ingest import Corpus
from intentlocal.pipeline.labels import load_prompt
from intentlocal.pipeline.reuse import ReusingGenerator, keep_answers
from intentlocal.store import Store
from tests.conftest import SUPPORT_TEXTS


def _corpus() -> Corpus:
    return Corpus(list(SUPPORT_TEXTS), list(range(1, len(SUPPORT_TEXTS) + 1)), "mem")


def _run(store: Store, settings: Settings, gen: FakeGenerator):
    run_id = start_run(store, _corpus(), settings)
    return run_id, execute_run(store, run_id, embedder=FakeEmbedder(), generator=gen)


def test_a_second_run_of_the_same_texts_asks_nothing_and_ends_the_same(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.sqlite3")
    first, second = FakeGenerator(), FakeGenerator()
    a_id, a = _run(store, Settings(k="4", neighbours=3, max_iterations=2), first)
    # another K and clusterer: the same questions to the LLM, other clusters
    b_id, b = _run(store, Settings(k="3", neighbours=3, max_iterations=2,
                                   clusterer="kmeans"), second)
    assert first.calls and not second.calls
    assert a.label_sets == b.label_sets
    stats_a, stats_b = store.call_stats(a_id), store.call_stats(b_id)
    assert stats_a["reused_calls"] == 0
    assert stats_b["reused_calls"] == stats_b["calls"] == stats_a["calls"]
    assert stats_b["llm_seconds"] == 0
    step = store.history(b_id, 0)[0]
    # the label is still the model's, under the prompt that asked for it
    assert step["model_id"] == "fake-llm" and step["reused_seconds"] is not None
    assert step["added"][0]["model_id"] == "fake-llm"
    assert step["prompt_hash"] == store.history(a_id, 0)[0]["prompt_hash"]


@pytest.mark.parametrize("change", [
    {"reuse_answers": False},            # the user asked for every call decoded
    {"temperature": 0.7},                # sampled: an answer is not the question's
    {"prompt_neighbours": 1},            # another question
])
def test_what_changes_the_question_or_sampling_decodes_again(
        tmp_path: Path, change: dict) -> None:
    store = Store(tmp_path / "runs.sqlite3")
    base = dict(k="4", neighbours=3, max_iterations=0)
    _run(store, Settings(**base), FakeGenerator())
    again = FakeGenerator()
    _, _ = _run(store, Settings(**{**base, **change}), again)
    assert len(again.calls) == len(set(SUPPORT_TEXTS))


def test_another_model_is_another_question(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.sqlite3")
    _run(store, Settings(k="4", neighbours=3, max_iterations=0), FakeGenerator())
    other = FakeGenerator(model_id="other-llm")
    _run(store, Settings(k="4", neighbours=3, max_iterations=0), other)
    assert len(other.calls) == len(set(SUPPORT_TEXTS))


def test_only_the_unanswered_calls_of_a_batch_are_decoded(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.sqlite3")
    prompt = load_prompt("initial_label")
    reqs = [Request(*prompt.messages(target=t, neighbours="- (none)"), label_grammar(), 40)
            for t in ("card lost", "refund please", "hello")]
    inner = FakeGenerator(lambda msgs, g: "some_label")
    writer = ReusingGenerator(inner, store, 0.0)
    writer.generate_many(reqs[:2])
    assert len(inner.calls) == 2
    out = writer.generate_many(reqs)
    assert len(inner.calls) == 3  # only "hello"
    assert [g.reused_seconds is not None for g in out] == [True, True, False]
    assert all(isinstance(g, Generation) and g.text == "some_label" for g in out)


def test_the_key_is_the_chat_not_where_its_static_head_is_cut() -> None:
    prompt = load_prompt("initial_label")
    static, msgs = prompt.messages(target="card lost", neighbours="- (none)")
    from intentlocal.backends.base import conversation

    whole = conversation(static, msgs)
    cut = Request(static, msgs, label_grammar(), 40)
    uncut = Request(whole[:-1], whole[-1:], label_grammar(), 40)
    assert request_key("m", cut, 0.0) == request_key("m", uncut, 0.0)
    assert request_key("m", cut, 0.0) != request_key("m", Request(static, msgs,
                                                                  label_grammar(), 41), 0.0)


def test_a_run_made_before_answers_were_kept_gives_them_to_later_runs(tmp_path: Path) -> None:
    """keep_answers rebuilds each initial question from what the old run stored: a new
    run then asks the same questions and decodes none of them."""
    store = Store(tmp_path / "runs.sqlite3")
    old_id, old = _run(store, Settings(k="4", neighbours=3, max_iterations=0,
                                       reuse_answers=False), FakeGenerator())
    assert store.answers([]) == {} and not store.db.execute(
        "SELECT COUNT(*) FROM answers").fetchone()[0]  # reuse off: nothing kept
    kept, skipped = keep_answers(store, old_id)
    assert (kept, skipped) == (len(set(SUPPORT_TEXTS)), 0)
    new = FakeGenerator()
    _, res = _run(store, Settings(k="4", neighbours=3, max_iterations=0), new)
    assert not new.calls and res.label_sets == old.label_sets


def test_keep_answers_refuses_a_sampled_run(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.sqlite3")
    run_id, _ = _run(store, Settings(k="4", neighbours=3, max_iterations=0, temperature=0.5),
                     FakeGenerator())
    with pytest.raises(RunError, match=r"temperature 0\.5"):
        keep_answers(store, run_id)


def test_the_keep_answers_script(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "keep_answers", Path(__file__).resolve().parents[2] / "scripts" / "keep_answers.py")
    assert spec and spec.loader
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    path = tmp_path / "runs.sqlite3"
    store = Store(path)
    _run(store, Settings(k="4", neighbours=3, max_iterations=0, reuse_answers=False),
         FakeGenerator())
    _run(store, Settings(k="4", neighbours=3, max_iterations=0, temperature=0.5,
                         reuse_answers=False), FakeGenerator())
    assert script.main([str(path)]) == 0
    captured = capsys.readouterr()
    assert f"run 1: {len(set(SUPPORT_TEXTS))} answers kept, 0 steps skipped" in captured.out
    assert "run 2: skipped" in captured.err and "temperature 0.5" in captured.err
    assert script.main([str(tmp_path / "missing.sqlite3")]) == 2


def test_a_users_own_gguf_is_keyed_by_its_bytes_not_its_name(tmp_path: Path) -> None:
    """Two files called model.gguf are two models: neither gets the other's answers; a
    manifest name (bytes checked at fetch) is its own key."""
    from intentlocal.backends.llm import LlamaCppGenerator

    ids = []
    for folder, body in (("a", b"one"), ("b", b"two")):
        (tmp_path / folder).mkdir()
        path = tmp_path / folder / "model.gguf"
        path.write_bytes(b"GGUF" + body * 1000)
        gen = LlamaCppGenerator(path)
        assert gen.model_id == "model.gguf"
        ids.append(gen.answers_id)
        assert ReusingGenerator(gen, Store(tmp_path / "s.sqlite3"), 0.0).key_id == ids[-1]
    assert ids[0] != ids[1] and all(i.startswith("model.gguf@") for i in ids)
    named = LlamaCppGenerator(tmp_path / "a" / "model.gguf", model_id="qwen2.5-coder-0.5b")
    assert named.answers_id == "qwen2.5-coder-0.5b"


def test_keep_answers_refuses_a_run_of_an_own_gguf_file(tmp_path: Path) -> None:
    store = Store(tmp_path / "runs.sqlite3")
    run_id, _ = _run(store, Settings(k="4", neighbours=3, max_iterations=0,
                                     llm=str(tmp_path / "mine.gguf")), FakeGenerator())
    with pytest.raises(RunError, match=r"mine\.gguf"):
        keep_answers(store, run_id)
