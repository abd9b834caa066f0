"""Screen: a one-sentence intent description instead of a 2-5-word label (issue 7).

Why: on banking77 and clinc150 the 0.5B's labels are coarser than the intents and do not
move the clusters (reports/label_purity.md). A description ("the user wants to know when
the new card arrives") could keep the distinctions a label drops while still evening out
the wording. This asks the LLM, grammar-constrained (3-12 lowercase words), to complete
"The user wants to" for each text of a sample (25 random intents per set, at most 30 of
each intent's distinct texts), embeds the descriptions, and clusters the sample's texts,
the descriptions, the initial labels of a finished run, and the texts with either mixed in
(text + w * description / label, row-normalised), with K-means and the default clusterer
at the sample's true K. Gold intents only score.

    python scripts/intent_descriptions.py write SET [SET ...] --out DESCRIPTIONS.jsonl
    python scripts/intent_descriptions.py score SET --descriptions DESCRIPTIONS.jsonl \\
        --labels STORE.sqlite3 [--cache CACHE.sqlite3]
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))

SYSTEM = """You describe the intent behind short messages that people send to a customer service or a virtual assistant.
Complete the sentence "The user wants to" for the message: say precisely what the user wants done or wants to know, and what it is about, in 3 to 12 lowercase words.
Use plain, common words, so that two messages with the same intent get the same description.
Answer with the completion only."""  # noqa: E501
GBNF = 'root ::= word (" " word){2,11}\nword ::= [a-z] [a-z0-9]{0,19}\n'
# the 0.5B model often repeats the sentence's start; it carries nothing
PREFIXES = ("the user wants to ", "user wants to ", "the user wants ", "user wants ")


def sample(data: Path, name: str, intents: int = 25, per: int = 30, seed: int = 0
           ) -> tuple[list[str], list[str]]:
    """``intents`` random intents' distinct texts (a run's dedupe), at most ``per`` each,
    in file order."""
    from scripts.prompt_neighbours import load_set

    texts, gold = load_set(data / name / "test.jsonl")
    rng = random.Random(seed)
    chosen = set(rng.sample(sorted(set(gold)), intents))
    by: dict[str, list[int]] = collections.defaultdict(list)
    for i, g in enumerate(gold):
        if g in chosen:
            by[g].append(i)
    idx = sorted(i for g in by for i in rng.sample(by[g], min(per, len(by[g]))))  # file order
    return [texts[i] for i in idx], [gold[i] for i in idx]


def strip(description: str) -> str:
    for p in PREFIXES:
        if description.startswith(p):
            return description[len(p):]
    return description


def write(args: argparse.Namespace) -> int:
    from intentlocal.api import build_backends
    from intentlocal.backends.base import Grammar, Message, Request, generate_all
    from intentlocal.config import Settings
    from intentlocal.pipeline.labels import clip

    _, generator = build_backends(Settings())
    grammar = Grammar("describe12", GBNF)
    for name in args.sets:
        texts, gold = sample(Path(args.data), name)
        reqs = [Request([Message("system", SYSTEM)], [Message("user", f"Message: {clip(t, 640)}")],
                        grammar, max_tokens=40) for t in texts]
        started = time.perf_counter()
        gens = generate_all(generator, reqs)
        secs = time.perf_counter() - started
        with Path(args.out).open("a") as f:
            for t, g, x in zip(texts, gold, gens, strict=True):
                f.write(json.dumps({"set": name, "text": t, "gold": g, "desc": x.text.strip(),
                                    "ctok": x.completion_tokens}) + "\n")
        print(f"{name}: {len(texts)} texts, {secs / len(texts):.3f} s a call", flush=True)
    return 0


def score(args: argparse.Namespace) -> int:
    import sqlite3

    from sklearn.cluster import KMeans

    from intentlocal.api import build_backends
    from intentlocal.config import load_settings
    from intentlocal.pipeline.cluster import make_clusterer
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores
    from intentlocal.pipeline.vectors import unit_rows
    from intentlocal.store import Store

    rows = [json.loads(line) for line in Path(args.descriptions).read_text().splitlines()]
    rows = [r for r in rows if r["set"] == args.set]
    texts, gold = [r["text"] for r in rows], [r["gold"] for r in rows]
    descriptions = [strip(r["desc"]) for r in rows]
    db = sqlite3.connect(args.labels)
    run = db.execute("SELECT min(run_id) FROM uniques").fetchone()[0]
    uid = {t: u for u, t in db.execute("SELECT uid, text FROM uniques WHERE run_id=?", (run,))}
    initial: dict[int, list[str]] = collections.defaultdict(list)
    for u, label in db.execute(
            "SELECT uid, label FROM labels WHERE run_id=? AND iteration=0 ORDER BY id", (run,)):
        initial[u].append(label)
    labels = [" ".join(initial[uid[t]]).replace("_", " ") for t in texts]
    embedder, _ = build_backends(load_settings())
    store = Store(Path(args.cache))
    x = embed_cached(store, embedder, texts)
    d = embed_cached(store, embedder, descriptions)
    lab = embed_cached(store, embedder, labels)
    k = len(set(gold))
    inputs = {"texts": x, "descriptions": d, "initial labels": lab}
    for w in args.weights:
        inputs[f"texts + {w} x description"] = unit_rows(x + w * d)
        inputs[f"texts + {w} x label"] = unit_rows(x + w * lab)
    print(f"{args.set}: {len(texts)} texts, {k} intents; ACC / NMI x 100, mean ± sd over seeds")
    print("| input | K-means (5 seeds) | default clusterer (3 seeds) |\n|---|---|---|")
    for name, v in inputs.items():
        cells = []
        for fit, seeds in ((lambda s, v=v: KMeans(k, n_init=10, random_state=s).fit_predict(v), 5),
                           (lambda s, v=v: make_clusterer("select", 10, s).fit_predict(v, k), 3)):
            got = [scores(gold, fit(s)) for s in range(seeds)]
            acc = np.array([g["acc"] for g in got])
            nmi = np.array([g["nmi"] for g in got])
            cells.append(f"{acc.mean():.1f} ± {acc.std():.1f} / {nmi.mean():.1f}")
        print(f"| {name} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("sets", nargs="+")
    w.add_argument("--out", required=True)
    s = sub.add_parser("score")
    s.add_argument("set")
    s.add_argument("--descriptions", required=True)
    s.add_argument("--labels", required=True, help="a finished run's store: its initial labels")
    s.add_argument("--cache", default=str(CHECKOUT / ".cache" / "clusterers.sqlite3"))
    s.add_argument("--weights", type=float, nargs="+", default=[0.1, 0.25, 0.5, 1.0])
    args = ap.parse_args()
    return write(args) if args.cmd == "write" else score(args)


if __name__ == "__main__":
    sys.exit(main())
