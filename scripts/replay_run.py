"""Run the whole product path again on a finished run's texts, with its LLM labels
replayed instead of asked for: what `intentlocal run` gives with other settings
after the LLM stage, in minutes instead of the 15-25 of a set's LLM calls.

Since 30 Nov the LLM writes only the initial labels (refinement is the shared rule,
no call), and at temperature 0 the same model, prompt and neighbours write the same
label, so a run with other refinement or clustering settings would ask the LLM the
same questions and get the same answers. This answers each initial-label request
with the label the source run's LLM wrote for that text, through the real runner,
embedder (its cache in the store), store, refinement and clusterer, then scores the
run's own stored clusters against the gold file, as scripts/score_run.py does. The
history names the labeller "replay:<model>", not the model itself.

    python scripts/replay_run.py STORE:RUN GOLD.jsonl [--defaults] [--set NAME=VALUE ...]

``--defaults``: the settings of today's defaults (the source run's LLM and embedder),
else the source run's own settings; ``--set`` overrides either (e.g. ``--set k=59``).
Settings that change what the LLM is asked (llm, initial_prompt, prompt_neighbours,
neighbours, embedder, selector = llm) are refused: those need a real run.
The new run goes into the source run's store, beside it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

ASKED = ("llm", "embedder", "initial_prompt", "prompt_neighbours", "neighbours",
         "neighbour_chars", "initial_neighbours", "temperature")


class ReplayGenerator:
    """Answers initial-label requests with a stored label per text; nothing else."""

    def __init__(self, labels: dict[str, str], model_id: str) -> None:
        self.labels, self.model_id = labels, f"replay:{model_id}"
        self.calls = 0

    def generate(self, static_messages: Sequence[Any], messages: Sequence[Any],
                 grammar: Any, max_tokens: int = 48) -> Any:
        from intentlocal.backends.base import Generation, conversation
        from intentlocal.errors import ModelError

        if grammar.name != "label":
            raise ModelError("a replay answers initial-label requests only (selector shared)")
        user = conversation(static_messages, messages)[-1].content
        target = user.split("Message:", 1)[1].strip().split("\n", 1)[0].strip()
        if target not in self.labels:
            raise ModelError(f"no stored label for {target[:60]!r}")
        self.calls += 1
        return Generation(text=self.labels[target], prompt_tokens=0, completion_tokens=1,
                          seconds=0.0)


def main(argv: list[str] | None = None) -> int:
    from intentlocal.api import build_backends, execute_run, start_run
    from intentlocal.config import Settings, settings_from_dict
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.labels import clip
    from intentlocal.store import Store
    from scripts.score_run import score_run

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", help="STORE:RUN of a finished run (selector shared)")
    ap.add_argument("gold", help="the gold-labelled JSONL the run was made from")
    ap.add_argument("--defaults", action="store_true",
                    help="today's default settings instead of the source run's")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--json", type=Path, help="write the scores here")
    a = ap.parse_args(argv)

    path, _, run_s = a.run.rpartition(":")
    store, src = Store(path), int(run_s)
    stored = settings_from_dict(store.run(src).settings)
    base = Settings(llm=stored.llm, embedder=stored.embedder) if a.defaults else stored
    changes = dict(kv.split("=", 1) for kv in a.set)
    asked = [n for n in ASKED if n in changes]
    if asked:
        raise SystemExit(f"{', '.join(asked)} change what the LLM is asked: run it for real")
    settings = base.replace(**changes)
    if settings.selector != "shared":
        raise SystemExit("selector llm asks the LLM in refinement: run it for real")
    if any(getattr(settings, n) != getattr(stored, n) for n in ASKED):
        raise SystemExit("the source run asked the LLM other questions (its llm, prompt or "
                         "neighbours differ from these settings): replay it with its own")

    uniques = store.uniques(src)
    initial = store.label_sets(src, len(uniques), 0)
    labels = {clip(t, 4 * settings.neighbour_chars): s[0] for t, s in zip(uniques, initial,
                                                                          strict=True)}
    rows = store.texts(src)
    corpus = Corpus([t for _, _, t in rows], list(range(1, len(rows) + 1)), a.gold)
    run_id = start_run(store, corpus, settings, f"replay of run {src}")
    embedder, _ = build_backends(settings)
    gen = ReplayGenerator(labels, store.run(src).llm_id or settings.llm)
    started = time.perf_counter()
    execute_run(store, run_id, embedder=embedder, generator=gen)
    seconds = round(time.perf_counter() - started, 1)
    out = score_run(store, run_id, a.gold)
    out.pop("names", None)
    out.update(source_run=src, replayed_calls=gen.calls, seconds=seconds,
               changed={k: v for k, v in settings.to_dict().items()
                        if v != stored.to_dict().get(k)})
    print(json.dumps(out, indent=1))
    if a.json:
        a.json.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
