"""How MapEquationK's estimate moves with the number of texts and the neighbour count.

At a fixed neighbour count the kNN graph's neighbourhoods shrink as texts are added,
so the map equation finds finer modules: the 10,003 banking77 training texts gave
K 252 for 77 intents where the 3,080 test texts give 89. This measures K_est over
random subsets of each set's distinct texts (seeded) over a grid of neighbour counts;
k = 0 in --ks is the default rule (autok.neighbours_for). Gold labels only count the
intents present in a subset.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/auto_k_scaling.py \\
        [--sets banking77,banking77/train,...] [--fractions 0.25,0.5,1] \\
        [--ks 5,7,10,14,20,28,40] [--report reports/auto_k_scaling.md]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))
SETS = ["banking77", "clinc150", "massive_intent", "mtop_intent", "banking77/train"]


def subset(n: int, fraction: float, seed: int = 0) -> np.ndarray:
    """Sorted indices of a seeded random ``fraction`` of ``n`` rows (all rows at 1)."""
    if fraction >= 1:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max(2, round(fraction * n)), replace=False))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--fractions", default="0.25,0.5,1")
    ap.add_argument("--ks", default="5,7,10,14,20,28,40")
    ap.add_argument("--cache", default=str(CHECKOUT / ".cache" / "clusterers.sqlite3"))
    ap.add_argument("--report", help="append the table to this Markdown file")
    args = ap.parse_args()

    from intentlocal.api import build_backends
    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store
    from scripts.selector_ablation import show_table

    embedder, _ = build_backends(load_settings())
    store = Store(args.cache)
    ks = [int(k) for k in args.ks.split(",")]
    fractions = [float(f) for f in args.fractions.split(",")]
    lines = []
    for name in args.sets.split(","):
        split = "test"
        if "/" in name:
            name, split = name.split("/")
        texts, gold = load_labelled(Path(args.data) / name / f"{split}.jsonl", None, 0)
        uniques, rows_of = Corpus(texts, [], name).unique()
        x = embed_cached(store, embedder, uniques)
        gold_u = np.empty(len(uniques), dtype=object)
        gold_u[rows_of] = gold  # a duplicated text keeps one of its labels
        for f in fractions:
            pick = subset(len(uniques), f)
            counts = np.unique(gold_u[pick].astype(str), return_counts=True)[1]
            row = [f"{name}/{split}", f"{len(pick)}", f"{len(counts)} ({(counts >= 5).sum()})"]
            for k in ks:
                t = time.perf_counter()
                m = MapEquationK(n_neighbors=k)  # 0: the default, scaled with n
                est = m.estimate(x[pick])
                row.append(f"{est}" if k else f"{est} (k={m.n_neighbors_})")
                print(f"{name}/{split} n={len(pick)} k={k}: {est} "
                      f"({time.perf_counter() - t:.1f}s)", file=sys.stderr, flush=True)
            lines.append("| " + " | ".join(row) + " |")
    head = ("| set | texts | intents present (with >= 5 texts) | "
            + " | ".join(f"K_est, k={k}" if k else "K_est, default (k used)" for k in ks)
            + " |\n|"
            + "---|" * (3 + len(ks)))
    show_table(head, lines, args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
