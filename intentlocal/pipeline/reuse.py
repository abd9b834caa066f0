"""Answers the LLM gave, reused when a run asks the same question again.

Why: the LLM calls are most of a run's time (13-22 minutes on a benchmark set, against
about a minute for everything else), and at temperature 0 the same model, grammar and
prompt give the same answer. A user who runs the same transcripts again with another
K, clusterer or refinement rule asks the same initial-label questions; so does a
benchmark of new defaults. The store keeps each answer by its question
(backends.base.request_key) and this wrapper answers from it, decoding only the rest.

The labels stay the model's: a reused answer is recorded under the model that wrote
it, with the seconds its first call took (``Generation.reused_seconds``), so a run's
history and its cost stay true.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from intentlocal.backends.base import Generation, Generator, Request, generate_all, request_key
from intentlocal.store import Store


class ReusingGenerator:
    """A Generator that answers from the store what it can and decodes the rest."""

    def __init__(self, inner: Generator, store: Store, temperature: float) -> None:
        self.inner, self.store, self.temperature = inner, store, temperature
        self.model_id = inner.model_id
        # A backend whose model_id does not identify its weights says what does.
        self.key_id = str(getattr(inner, "answers_id", None) or inner.model_id)

    def generate(self, static_messages: Sequence[Any], messages: Sequence[Any], grammar: Any,
                 max_tokens: int = 48) -> Generation:
        return self.generate_many([Request(static_messages, messages, grammar, max_tokens)])[0]

    def generate_many(self, requests: Sequence[Request]) -> list[Generation]:
        keys = [request_key(self.key_id, r, self.temperature) for r in requests]
        known = self.store.answers(keys)
        out: list[Generation | None] = [None] * len(requests)
        for i, key in enumerate(keys):
            row = known.get(key)
            if row is not None:
                out[i] = Generation(text=row["output"], prompt_tokens=row["prompt_tokens"],
                                    completion_tokens=row["completion_tokens"], seconds=0.0,
                                    reused_seconds=row["seconds"])
        todo = [i for i, g in enumerate(out) if g is None]
        if todo:
            fresh = generate_all(self.inner, [requests[i] for i in todo])
            # Kept before the run records its steps: a crash between the two loses no
            # decoded answer (the resumed run reuses it).
            self.store.save_answers([
                (keys[i], self.key_id, g.text, g.prompt_tokens, g.completion_tokens,
                 g.seconds) for i, g in zip(todo, fresh, strict=True)])
            for i, g in zip(todo, fresh, strict=True):
                out[i] = g
        return [g for g in out if g is not None]

    def release(self) -> None:
        release = getattr(self.inner, "release", None)
        if release is not None:
            release()


def answers_writer(generator: Generator, store: Store, settings: Any) -> Generator:
    """The generator a run decodes through: reusing answers only at temperature 0,
    where an answer is the question's, and when the settings allow it."""
    if settings.reuse_answers and settings.temperature == 0:
        return ReusingGenerator(generator, store, settings.temperature)
    return generator


def keep_answers(store: Store, run_id: int) -> tuple[int, int]:
    """Puts the initial-label answers of a run made before the store kept answers
    (before 5 Dec) into it, so later runs on the same texts reuse them. Each question
    is rebuilt from what the run stored (its settings, the prompt body by hash, each
    text's neighbours) and kept only if its grammar is today's, so a rebuilt question
    is the one a new run asks. Returns (answers kept, steps skipped)."""
    from intentlocal.backends.registry import is_llm_path
    from intentlocal.config import settings_from_dict
    from intentlocal.errors import RunError
    from intentlocal.pipeline.labels import PromptTemplate, initial_request, prompt_from_body

    settings = settings_from_dict(store.run(run_id).settings)
    if settings.temperature != 0:
        raise RunError(f"run {run_id} sampled at temperature {settings.temperature}: its "
                       "answers are not the questions' (only temperature 0 is kept)")
    if is_llm_path(settings.llm):
        raise RunError(f"run {run_id} used the LLM file {settings.llm}: its answers are kept "
                       "by the file's bytes, which the run did not record")
    uniques = store.uniques(run_id)
    prompts: dict[str, PromptTemplate] = {}
    rows, skipped = [], 0
    for uid, step in sorted(store.steps(run_id, 0).items()):
        if not step["called"] or step["output"] is None:
            continue
        ph = step["prompt_hash"]
        if ph not in prompts:
            stored = store.prompt(ph)
            if stored is None:
                skipped += 1
                continue
            prompts[ph] = prompt_from_body(*stored)
        nbs = json.loads(step["neighbours_json"])[: settings.prompt_neighbours]
        req = initial_request(prompts[ph], uniques[uid],
                              [uniques[j] for j in nbs] if settings.initial_neighbours else [],
                              settings.neighbour_chars)
        if req.grammar.grammar_id != step["grammar_id"]:
            skipped += 1
            continue
        rows.append((request_key(step["model_id"], req, settings.temperature),
                     step["model_id"], step["output"], step["prompt_tokens"],
                     step["completion_tokens"], step["seconds"]))
    store.save_answers(rows)
    return len(rows), skipped
