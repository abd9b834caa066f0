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
    from intentlocal.bench import load_labelled
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
            for cname, make in (("spectral-15", lambda: C.SpectralKMeans(15)),
                                ("spectral-25", lambda: C.SpectralKMeans(25)),
                                ("select", C.SelectClusterer)):
                c, per, kept, t = make(), [], [], time.time()
                for seed in range(5):
                    if cname == "select":
                        c.set_seed(seed)
                    else:
                        c.random_state = seed
                    per.append(scores(gold, c.fit_predict(x, k)))
                    kept.append(getattr(c, "chosen_", ""))
                r = summarise(per)
                print(f"| {name} | {cname} | {'dropped' if drop else 'kept'} | "
                      f"{r['acc']:.1f} ± {r['acc_sd']:.1f} / {r['nmi']:.1f} | "
                      f"{', '.join(sorted(set(kept)))} | {time.time() - t:.0f} |", flush=True)
    manifold.spectral_embedding = original
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
