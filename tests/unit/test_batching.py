"""Batched LLM calls: fixed batches, all-or-none records, same results after a resume."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest

from intentlocal.api import execute_run, start_run
from intentlocal.backends.base import Generation, Message, Request, generate_all
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.config import Settings
from intentlocal.errors import ConfigError
from intentlocal.ingest import Corpus
from intentlocal.pipeline.runner import Cancelled
from intentlocal.store import Store
from tests.conftest import SUPPORT_TEXTS


class BatchingFake(FakeGenerator):
    """Decodes requests together; like llama.cpp, an answer may depend on its batch
    mates (here: a label gets a suffix from the batch's size), so a resume that cut
    batches differently would end differently."""

    def __init__(self, cancel: threading.Event | None = None, after: int = 0) -> None:
        super().__init__()
        self.batches: list[tuple[str, ...]] = []
        self.cancel, self.after = cancel, after

    def generate_many(self, requests: Sequence[Request]) -> list[Generation]:
        self.batches.append(tuple(str(r.messages) for r in requests))
        out = []
        for r in requests:
            gen = self.generate(r.static_messages, r.messages, r.grammar, r.max_tokens)
            if r.grammar.name == "label":
                gen = Generation(f"{gen.text}_b{len(requests)}", gen.prompt_tokens, 1, 0.0)
            out.append(gen)
        if self.cancel is not None and len(self.batches) == self.after:
            self.cancel.set()
        return out


def _corpus() -> Corpus:
    return Corpus(list(SUPPORT_TEXTS), list(range(1, len(SUPPORT_TEXTS) + 1)), "mem")


def test_generate_all_falls_back_to_one_call_at_a_time() -> None:
    gen = FakeGenerator()
    reqs = [Request([], [Message("user", f"Message: text {i}")], _label(), 8) for i in range(3)]
    assert len(generate_all(gen, reqs)) == 3 and len(gen.calls) == 3


def _label():
    from intentlocal.grammars import label_grammar

    return label_grammar()


def test_the_runner_sends_batches_of_parallel_calls() -> None:
    settings = Settings(k="4", neighbours=3, max_iterations=2, parallel=5)
    store = Store()
    gen = BatchingFake()
    execute_run(store, start_run(store, _corpus(), settings), embedder=FakeEmbedder(),
                generator=gen)
    sizes = [len(b) for b in gen.batches]
    assert sizes[:4] == [5, 5, 5, 1]  # 16 initial calls
    assert max(sizes) == 5 and sum(sizes) == len(gen.calls)


@pytest.mark.parametrize("after", [1, 2, 4, 5])
def test_a_resumed_run_decodes_the_same_batches_and_ends_the_same(after: int) -> None:
    # no reuse: the reference run's answers (same store) would answer the resumed run's
    settings = Settings(k="4", neighbours=3, max_iterations=3, parallel=3, reuse_answers=False)
    ref_store, ref = Store(), BatchingFake()
    ref_res = execute_run(ref_store, start_run(ref_store, _corpus(), settings),
                          embedder=FakeEmbedder(), generator=ref)

    store = Store()
    run_id = start_run(store, _corpus(), settings)
    cancel = threading.Event()
    first = BatchingFake(cancel, after)
    with pytest.raises(Cancelled):
        execute_run(store, run_id, embedder=FakeEmbedder(), generator=first, cancel=cancel)
    second = BatchingFake()
    res = execute_run(store, run_id, embedder=FakeEmbedder(), generator=second)
    assert first.batches + second.batches == ref.batches
    assert res.label_sets == ref_res.label_sets and res.assignment == ref_res.assignment
    assert any(lab.endswith("_b3") for labs in res.label_sets for lab in labs)


def test_a_batch_is_recorded_all_or_none() -> None:
    settings = Settings(k="4", neighbours=3, max_iterations=0, parallel=4)
    store = Store()
    run_id = start_run(store, _corpus(), settings)

    class Failing(BatchingFake):
        def generate_many(self, requests):
            out = super().generate_many(requests)
            if len(self.batches) == 2:
                out[-1] = Generation("Not A Label!", 1, 1, 0.0)  # breaks the grammar
            return out

    from intentlocal.errors import ModelError

    with pytest.raises(ModelError):
        execute_run(store, run_id, embedder=FakeEmbedder(), generator=Failing())
    assert sorted(store.steps(run_id, 0)) == [0, 1, 2, 3]


def test_parallel_is_validated() -> None:
    with pytest.raises(ConfigError, match="parallel"):
        Settings(parallel=0).validate()
