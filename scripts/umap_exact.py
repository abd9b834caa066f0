"""UMAP's own pairwise cosine vs the distance matrix handed over (cluster.umap_layout).

For sets under cluster.UMAP_EXACT_MAX texts UMAP computes every pairwise distance; it
used to do so through scikit-learn calling its numba cosine once per pair. This runs
the umap-hdbscan candidate at the true K both ways, 5 seeds, and prints ACC / NMI and
the seconds per seed (the first seed of the first way includes numba's compile).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/umap_exact.py \\
        [--sets banking77,massive_intent] [--cache PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))


def umap_itself(umap: Any, x: np.ndarray, nn: int, nc: int, md: float, seed: int) -> np.ndarray:
    """What cluster.py did before 1 Dec: UMAP computes the cosine distances itself."""
    return umap.UMAP(n_neighbors=nn, n_components=nc, min_dist=md, metric="cosine",
                     random_state=seed, n_jobs=1).fit_transform(x)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--sets", default="banking77,massive_intent")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--cache", default=str(CHECKOUT / ".cache" / "clusterers.sqlite3"))
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    from intentlocal.api import build_backends
    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.pipeline.cluster import density as C  # its umap_layout is swapped
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.store import Store

    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.cache)
    embedder, _ = build_backends(load_settings())
    matrix = C.umap_layout
    print("| set | UMAP gets | ACC | NMI | seconds per seed |\n|---|---|---|---|---|")
    for name in args.sets.split(","):
        texts, gold = load_labelled(Path(args.data) / name / "test.jsonl", None, 0)
        x = embed_cached(store, embedder, texts)
        k = len(set(gold))
        for way, fn in (("vectors (UMAP's own cosine)", umap_itself),
                        ("distance matrix", matrix)):
            C.umap_layout = fn
            got, took = [], []
            for seed in (int(s) for s in args.seeds.split(",")):
                t = time.perf_counter()
                pred = C.DensityClusterer(random_state=seed).fit_predict(x, k)
                took.append(time.perf_counter() - t)
                got.append(scores(gold, pred))
            s = summarise(got)
            print(f"| {name} | {way} | {s['acc']:.1f} ± {s['acc_sd']:.1f} | "
                  f"{s['nmi']:.1f} ± {s['nmi_sd']:.1f} | "
                  f"{', '.join(f'{t:.1f}' for t in took)} |", flush=True)
        C.umap_layout = matrix
    return 0


if __name__ == "__main__":
    sys.exit(main())
