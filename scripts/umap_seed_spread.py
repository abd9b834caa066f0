"""How much the umap-hdbscan candidate moves with the seed, and with a few duplicate rows.

A run clusters its distinct texts; the benchmark scripts cluster every row. On a set
with duplicates (mtop_intent: 4,381 distinct of 4,386) this prints, per seed, the
candidate's ACC at the true K and HDBSCAN's own group count both ways, then mean ± sd.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/umap_seed_spread.py \\
        [--set mtop_intent] [--seeds 5,6,...] [--cache PATH]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--set", default="mtop_intent")
    ap.add_argument("--seeds", default=",".join(str(s) for s in range(5, 15)))
    ap.add_argument("--cache", default=str(CHECKOUT / ".cache" / "clusterers.sqlite3"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    from intentlocal.api import build_backends
    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.cluster import DensityClusterer
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores
    from intentlocal.store import Store

    texts, gold = load_labelled(Path(args.data) / args.set / "test.jsonl", None, 0)
    uniques, rows_of = Corpus(texts, [], args.set).unique()
    embedder, _ = build_backends(load_settings())
    store = Store(args.cache)
    x_distinct = embed_cached(store, embedder, uniques)
    x_rows = embed_cached(store, embedder, texts)
    k = len(set(gold))
    print(f"{args.set}: {len(texts)} rows, {len(uniques)} distinct, K {k}")
    print("| seed | distinct texts: ACC | groups | all rows: ACC | groups |\n|---|---|---|---|---|")
    got: dict[str, list[float]] = {"distinct": [], "rows": []}
    for seed in (int(s) for s in args.seeds.split(",")):
        d = DensityClusterer(random_state=seed)
        a_d = scores(gold, d.fit_predict(x_distinct, k)[rows_of])["acc"]
        g_d = d.found_
        d = DensityClusterer(random_state=seed)
        a_r = scores(gold, d.fit_predict(x_rows, k))["acc"]
        got["distinct"].append(a_d)
        got["rows"].append(a_r)
        print(f"| {seed} | {a_d:.1f} | {g_d} | {a_r:.1f} | {d.found_} |", flush=True)
    for way, v in got.items():
        print(f"{way}: ACC {np.mean(v):.1f} ± {np.std(v):.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
