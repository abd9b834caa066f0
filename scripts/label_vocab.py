"""Probe: write the first labels from the neighbourhood's label vocabulary (issue 7).

Why: the labels only help the clusters where they are both purer than the embedder's
nearest neighbours and widely shared (reports/sharpen_labels.md). The first prompt asks
for a label from a text and its two nearest neighbours alone, so every text gets its own
wording: massive_intent's 2,970 texts carry 2,060 distinct first labels, and refinement
then copies labels by a rule that needs T = 4 of 10 neighbours to carry one. This writes
the first labels one text after another instead, densest texts first (the mean cosine to
their ``--m`` nearest neighbours, so a group's typical texts set its words before its
outliers), and shows each text the labels its already labelled neighbours carry, most
carried first, asking the model to answer with one of them when it names the text's
intent, or else to write a new one. That is the paper's selection step moved into the
first label: the vocabulary stays the model's own, but one intent should keep one name.
A text with no labelled neighbour yet keeps the run's first label (the same question).
Refinement and clustering then run as the product's, through
``scripts/min_share.py --initial FILE``. Gold intents only score: the prompt shows no
benchmark's intent names, and the order depends on the vectors alone.

    python scripts/label_vocab.py SET STORE:RUN --out VOCAB.jsonl [--m 10] [--offer 5]
        [--min-carriers 1]
    python scripts/label_vocab.py SET STORE:RUN --check VOCAB.jsonl [--n 150] [--llm MODEL]
    python scripts/sharpen_labels.py SET STORE:RUN --stats VOCAB.jsonl   # the label table

``--check`` asks the questions of a written file again, the same prompt and the same
offered labels, of ``--n`` texts spread over it (another writer with ``--llm``), and
scores the decision, which is what the method rests on: an offered label is right for a
text when one of its labelled neighbours that carries it is the text's gold intent, and
"write a new one" is right when no offered label is. Both the file's answers and the new
ones are scored on the same texts.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SYSTEM = """You name the intent behind short customer messages: what the customer wants to do, get or know.
You will see one message, several similar messages, and the intent labels already given to similar messages.
If one of those labels names exactly what this message wants, answer with that label, spelled the same.
If none of them fits, write a new intent label: 2 to 5 lowercase English words joined by underscores, naming the action or question and what it is about.
Answer with the label only."""  # noqa: E501
USER = """Message: {target}

Similar messages:
{neighbours}

Labels of similar messages:
{labels}"""


def density_order(x: np.ndarray, near: np.ndarray) -> list[int]:
    """Texts by the mean cosine to their nearest neighbours, densest first; ties by
    index, so the order is the same on every run."""
    dens = np.einsum("ij,ikj->i", x, x[near]) / max(1, near.shape[1])
    return [int(i) for i in np.lexsort((np.arange(len(x)), -dens))]


def offered(near: list[int], given: dict[int, str], limit: int, min_carriers: int
            ) -> list[str]:
    """The labels the text's labelled neighbours carry, most carried first (ties: the
    nearest carrier first), those carried by fewer than ``min_carriers`` left out."""
    from intentlocal.pipeline.augment import label_key

    counts: collections.Counter[str] = collections.Counter()
    spelled: dict[str, str] = {}
    first: dict[str, int] = {}
    for rank, j in enumerate(near):
        if j in given:
            key = label_key(given[j])
            counts[key] += 1
            spelled.setdefault(key, given[j])
            first.setdefault(key, rank)
    keys = sorted((k for k in counts if counts[k] >= min_carriers),
                  key=lambda k: (-counts[k], first[k]))
    return [spelled[k] for k in keys[:limit]]


def ask(generator, sr, s, u: int, near_p: np.ndarray, labels: list[str]) -> str:
    """The label ``generator`` gives text ``u`` offered ``labels``: one function for the
    written pass and ``--check``'s replay, so the replay asks the very same question."""
    from intentlocal.backends.base import Message
    from intentlocal.grammars import label_grammar, parse_label
    from intentlocal.pipeline.labels import clip

    user = USER.format(
        target=clip(sr.uniques[u], 4 * s.neighbour_chars),
        neighbours="\n".join(f"- {clip(sr.uniques[j], s.neighbour_chars)}" for j in near_p[u]),
        labels="\n".join(f"- {lab}" for lab in labels))
    g = generator.generate([Message("system", SYSTEM)], [Message("user", user)],
                           label_grammar(), 40)
    return parse_label(g.text)


def decision_scores(rows: list[dict], answers: list[str], near: np.ndarray,
                    known: list[dict[int, str]], gold: np.ndarray) -> dict[str, float]:
    """How well ``answers`` (one per row, to its ``offered`` labels) choose: the share
    copied, the share of copies right (a neighbour carrying the copied label, among the
    row's ``known`` labels, those given before it was asked, is the text's gold intent),
    and where no offered label is right, the share answered with a new label."""
    from intentlocal.pipeline.augment import label_key

    copies = right = none_fit = rejected = 0
    for row, ans, labels_of in zip(rows, answers, known, strict=True):
        u = row["uid"]
        fits = {label_key(labels_of[j]) for j in near[u].tolist()
                if j in labels_of and gold[j] == gold[u]}
        offered_keys = {label_key(lab) for lab in row["offered"]}
        if label_key(ans) in offered_keys:
            copies += 1
            right += label_key(ans) in fits
        if not (fits & offered_keys):
            none_fit += 1
            rejected += label_key(ans) not in offered_keys
    n = max(1, len(rows))
    return {"n": len(rows), "copied": copies / n, "copies_right": right / max(1, copies),
            "none_fit": none_fit, "none_fit_rejected": rejected / max(1, none_fit)}


def check(a: argparse.Namespace, sr, s, x: np.ndarray) -> int:
    """Replays ``--n`` of a file's questions on ``--llm`` and scores both writers."""
    import dataclasses

    from intentlocal.api import build_backends
    from intentlocal.pipeline.neighbours import nearest_neighbours

    rows = [json.loads(line) for line in a.check.read_text().splitlines()]
    order = {r["uid"]: i for i, r in enumerate(rows)}
    asked = [r for r in rows if r["offered"]]
    pick = asked[:: max(1, len(asked) // a.n)][: a.n]
    near_m = nearest_neighbours(x, a.m)
    near_p = nearest_neighbours(x, s.prompt_neighbours)
    if a.llm:
        s = dataclasses.replace(s, llm=a.llm)
    _, generator = build_backends(s)
    answers = []
    started = time.perf_counter()
    for r in pick:
        answers.append(ask(generator, sr, s, r["uid"], near_p, r["offered"]))
    secs = (time.perf_counter() - started) / max(1, len(pick))
    gold = sr.gold_u
    known = [{j: rows[order[j]]["new"] for j in near_m[r["uid"]].tolist()
              if order[j] < order[r["uid"]]} for r in pick]
    print("| set | writer | questions | copied an offered label | copies right | "
          "no offered label right | of those, a new label |\n|---|---|---|---|---|---|---|")
    for who, ans in ((f"the file's ({a.check.name})", [r["new"] for r in pick]),
                     (generator.model_id, answers)):
        sc = decision_scores(pick, ans, near_m, known, gold)
        print(f"| {a.set_name} | {who} | {sc['n']} | {100 * sc['copied']:.1f} % | "
              f"{100 * sc['copies_right']:.1f} % | {sc['none_fit']} | "
              f"{100 * sc['none_fit_rejected']:.1f} % |")
    print(f"{a.set_name}: {len(pick)} questions, {secs:.3f} s a call, model "
          f"{generator.model_id}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    from intentlocal.api import build_backends
    from intentlocal.pipeline.augment import label_key
    from intentlocal.pipeline.neighbours import nearest_neighbours
    from scripts.label_distance import open_shared_run

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set_name")
    ap.add_argument("run", help="STORE:RUN of a finished run of the set's test JSONL")
    ap.add_argument("--out", type=Path, help="where the labels go (JSONL)")
    ap.add_argument("--check", type=Path,
                    help="ask a written file's questions again and score the decisions")
    ap.add_argument("--n", type=int, default=150, help="--check: this many questions")
    ap.add_argument("--llm", help="--check: the writer asked (default: the run's)")
    ap.add_argument("--m", type=int, default=10, help="neighbours whose labels are offered")
    ap.add_argument("--offer", type=int, default=5, help="at most this many labels offered")
    ap.add_argument("--min-carriers", type=int, default=1,
                    help="offer a label only when this many labelled neighbours carry it")
    a = ap.parse_args(argv)

    if (a.out is None) == (a.check is None):
        ap.error("give --out (write labels) or --check (score a written file's decisions)")
    sr, store, run_id, s, embed = open_shared_run(a.run, a.set_name)
    n = len(sr.uniques)
    initial = store.label_sets(run_id, n, 0)
    x = embed(sr.uniques)
    if a.check:
        return check(a, sr, s, x)
    near_m = nearest_neighbours(x, a.m)
    near_p = nearest_neighbours(x, s.prompt_neighbours)  # the first prompt's neighbours
    _, generator = build_backends(s)
    given: dict[int, str] = {}
    calls = kept = copied = 0
    started = time.perf_counter()
    with a.out.open("w") as f:
        for step, u in enumerate(density_order(x, near_m)):
            old = initial[u][0]
            labels = offered(near_m[u].tolist(), given, a.offer, a.min_carriers)
            if not labels:
                new = old
                kept += 1
            else:
                new = ask(generator, sr, s, u, near_p, labels)
                calls += 1
                copied += label_key(new) in {label_key(lab) for lab in labels}
            given[u] = new
            f.write(json.dumps({"uid": u, "text": sr.uniques[u], "old": old, "new": new,
                                "offered": labels}) + "\n")
            if step % 250 == 0:
                print(f"{a.set_name}: {step}/{n} texts, {calls} calls, {copied} copied, "
                      f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    secs = time.perf_counter() - started
    distinct = len({label_key(v) for v in given.values()})
    print(f"{a.set_name}: {calls} calls ({secs / max(1, calls):.3f} s a call), {copied} "
          f"answered with an offered label, {kept} kept the run's first label (nothing "
          f"offered); {distinct} distinct labels (the run's first: "
          f"{len({label_key(ls[0]) for ls in initial})}); model {generator.model_id}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
