"""Probe: ask the LLM again for a more specific label where its first one is too general (issue 7).

Why: on banking77 and clinc150 two texts that share an initial label but are not already
neighbours are one intent in only 21 % and 37 % of cases (reports/label_purity.md): the
0.5B writer's frequent labels ("top_up", "transfer_money") cover several intents, so the
labels add nothing the embedder's neighbours do not already say. The first prompt shows
only the text's nearest neighbours, which mostly share its intent, so the model has no
reason to be specific. This second pass shows, for each text whose label at least
``--min-group`` texts carry, the texts carrying it that lie farthest from the text (most
likely another intent) beside its nearest neighbours, and asks for a label that fits the
text and not them (``--prompt v1`` showed the general label itself and asked for a more
specific one). The new label replaces the first; refinement and clustering then run
as the product's, through ``scripts/min_share.py --initial FILE``. Gold intents only
score: the prompt shows no benchmark's intent names, and which texts are asked depends
on the labels and the vectors alone.

    python scripts/sharpen_labels.py SET STORE:RUN --out SHARP.jsonl [--min-group 4]
        [--contrasts 3] [--prompt v1|v2] [--llm MODEL]
    python scripts/sharpen_labels.py SET STORE:RUN --stats SHARP.jsonl
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM_V1 = """You name the intent behind short customer messages: what the customer wants to do, get or know.
A message was given an intent label that is too general: other messages that want something different got the same label.
Write a more specific intent label for the message: 2 to 5 lowercase English words joined by underscores, naming the action or question and what it is about, so that it tells the message's intent apart from the other messages' intents.
Answer with the label only."""  # noqa: E501
USER_V1 = """Message: {target}
General label: {label}

Other messages with the same general label:
{others}"""
# v1 showed the general label; the 0.5B then appended a word to it ("change_pin_urgent",
# "activate_card_activated") in 1,394 of 1,713 answers. v2 hides it and shows the nearest
# neighbours beside the contrasts, so the new label is written from the texts alone.
SYSTEM = """You name the intent behind short customer messages: what the customer wants to do, get or know.
You will see one message, some similar messages that may share its intent, and some messages that use similar words but may want something different.
Write one intent label for the message: 2 to 5 lowercase English words joined by underscores, naming the action or question and what it is about.
The label must fit the message and the similar messages with the same intent, and must not fit messages that want something different.
Answer with the label only."""  # noqa: E501
USER = """Message: {target}

Similar messages:
{neighbours}

Messages that may want something different:
{others}"""


def contrasts(x: np.ndarray, members: list[int], target: int, n: int) -> list[int]:
    """The ``n`` other members of the target's label farthest from it by cosine: the
    ones most likely to want something else, which the new label must exclude."""
    others = [m for m in members if m != target]
    sims = x[others] @ x[target]
    return [others[i] for i in np.argsort(sims, kind="stable")[:n]]


def print_stats(set_name: str, sr: Any, initial: list[list[str]], path: Path) -> int:
    """The label table of reports/sharpen_labels.md: the run's initial labels and the
    same with this file's replacements, before refinement (one label a text)."""
    from scripts.iterations import label_stats
    from scripts.min_share import replace_initial
    from scripts.prompt_neighbours import score

    gold = sr.gold_u
    print(f"| {set_name} labels | distinct | texts sharing a label | pairs / one intent | "
          "H / C / V |\n|---|---|---|---|---|")
    for name, sets in (("first (the run's)", initial),
                       (path.name, replace_initial(initial, sr.uniques, path))):
        st = label_stats(sets, gold)
        sc = score([ls[0] if ls else "" for ls in sets], gold.tolist())
        print(f"| {name} | {st['distinct']:,} | {100 * st['texts_sharing']:.1f} % | "
              f"{st['pairs']:,} / {100 * st['pair_purity']:.1f} % | "
              f"{sc['homogeneity']:.1f} / {sc['completeness']:.1f} / {sc['v_measure']:.1f} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    from intentlocal.api import build_backends
    from intentlocal.backends.base import Message, Request, generate_all
    from intentlocal.grammars import label_grammar, parse_label
    from intentlocal.pipeline.augment import label_key
    from intentlocal.pipeline.labels import clip
    from intentlocal.pipeline.neighbours import nearest_neighbours
    from scripts.label_distance import open_shared_run

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set_name")
    ap.add_argument("run", help="STORE:RUN of a finished run of the set's test JSONL")
    ap.add_argument("--out", type=Path, help="where the new labels go (JSONL)")
    ap.add_argument("--stats", type=Path,
                    help="no LLM: compare the run's initial labels with those of this JSONL "
                         "(how widely shared, how pure, H / C / V against gold)")
    ap.add_argument("--min-group", type=int, default=4,
                    help="ask again for texts whose initial label at least this many carry")
    ap.add_argument("--contrasts", type=int, default=3)
    ap.add_argument("--prompt", choices=("v1", "v2"), default="v2")
    ap.add_argument("--llm", help="another label writer for this pass (default: the run's)")
    a = ap.parse_args(argv)

    if (a.out is None) == (a.stats is None):
        ap.error("give --out (write new labels) or --stats (compare written ones)")
    sr, store, run_id, s, embed = open_shared_run(a.run, a.set_name)
    n = len(sr.uniques)
    initial = store.label_sets(run_id, n, 0)
    if a.stats:
        return print_stats(a.set_name, sr, initial, a.stats)
    x = embed(sr.uniques)
    groups: dict[str, list[int]] = collections.defaultdict(list)
    for u, labels in enumerate(initial):
        for lab in labels:
            groups[label_key(lab)].append(u)
    asked = [(u, lab) for u, labels in enumerate(initial) for lab in labels
             if len(groups[label_key(lab)]) >= a.min_group]
    if a.llm:
        s = dataclasses.replace(s, llm=a.llm)
    _, generator = build_backends(s)
    grammar = label_grammar()
    system = SYSTEM if a.prompt == "v2" else SYSTEM_V1
    def lines(ids: list[int]) -> str:
        return "\n".join(f"- {clip(sr.uniques[o], s.neighbour_chars)}" for o in ids)

    near = nearest_neighbours(x, s.prompt_neighbours)  # the first prompt's neighbours
    reqs = []
    for u, lab in asked:
        others = lines(contrasts(x, groups[label_key(lab)], u, a.contrasts))
        user = (USER.format(target=clip(sr.uniques[u], 4 * s.neighbour_chars),
                            neighbours=lines(near[u].tolist()), others=others)
                if a.prompt == "v2" else
                USER_V1.format(target=clip(sr.uniques[u], 4 * s.neighbour_chars), label=lab,
                               others=others))
        reqs.append(Request([Message("system", system)], [Message("user", user)],
                            grammar, max_tokens=40))
    print(f"{a.set_name}: {len(asked)} of {n} texts carry a label of >= {a.min_group} texts",
          file=sys.stderr, flush=True)
    started = time.perf_counter()
    gens = generate_all(generator, reqs)
    secs = time.perf_counter() - started
    with a.out.open("w") as f:
        for (u, lab), g in zip(asked, gens, strict=True):
            f.write(json.dumps({"uid": u, "text": sr.uniques[u], "old": lab,
                                "new": parse_label(g.text)}) + "\n")
    changed = sum(1 for (_, lab), g in zip(asked, gens, strict=True)
                  if label_key(parse_label(g.text)) != label_key(lab))
    print(f"{a.set_name}: {len(asked)} calls, {secs / max(1, len(asked)):.3f} s a call, "
          f"{changed} labels changed, model {generator.model_id}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
