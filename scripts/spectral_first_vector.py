"""Spectral clustering with and without the Laplacian's first eigenvector.

`SpectralKMeans` keeps the first eigenvector since 2 Dec (``drop_first=False``): dropping
it lost one of ten separate components on an AMD EPYC (tests/unit/test_cluster.py). This
measures both ways on the benchmarks, each candidate alone and the default selection,
true K, 5 seeds, on the vectors of finished bench runs (their stores cache them):

    python scripts/spectral_first_vector.py SET=STORE [SET=STORE ...]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def main(argv: list[str]) -> int:
    import sklearn.manifold as manifold

    from intentlocal.backends.registry import load_embedder
    from intentlocal.bench import kmeans_scores, load_labelled
    from intentlocal.pipeline import cluster as C
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.store import Store

    original = manifold.spectral_embedding
    emb = load_embedder("embeddinggemma-300m")
    print("| set | clusterer | first eigenvector | ACC / NMI | kept | seconds |")
    print("|---|---|---|---|---|---|")
    for arg in argv:
        name, store = arg.split("=", 1)
        texts, gold = load_labelled(DATA / name / "test.jsonl", None, 0)
        x = embed_cached(Store(store), emb, texts)
        k = len(set(gold))
        for drop in (True, False):
            manifold.spectral_embedding = (  # what SpectralKMeans calls, either way
                lambda *a, _d=drop, **kw: original(*a, **{**kw, "drop_first": _d}))
            for cname in ("spectral-15", "spectral-25", "select"):
                t = time.time()
                if cname == "select":  # the bench's own loop over its seeds (0-4)
                    r = kmeans_scores(x, gold, k, select=True)
                else:
                    r = summarise([scores(gold, C.SpectralKMeans(
                        int(cname.split("-")[1]), random_state=seed).fit_predict(x, k))
                        for seed in range(5)])
                print(f"| {name} | {cname} | {'dropped' if drop else 'kept'} | "
                      f"{r['acc']:.1f} ± {r['acc_sd']:.1f} / {r['nmi']:.1f} | "
                      f"{', '.join(r.get('chosen', []))} | {time.time() - t:.0f} |", flush=True)
    manifold.spectral_embedding = original
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
