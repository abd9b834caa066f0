"""Does the HDBSCAN implementation explain the gap to BERTopic on massive_intent?

The bar there (75.2 / 81.7, ../shared/benchmarks.md) is BERTopic 0.17's path: UMAP
(5-d, cosine, 15 neighbours, min_dist 0, seed 42), then the ``hdbscan`` package's
HDBSCAN (min_cluster_size 15, euclidean, eom), outliers to the nearest topic embedding.
The product's umap-hdbscan candidate uses scikit-learn's HDBSCAN on the same layout and
scores 72.5 with its own groups at seed 42 (reports/k_forcing.md). This clusters one
UMAP layout per seed with both implementations, keeps each one's own groups (outliers
joined to the nearest centroid, nothing merged or split), and scores them. Gold labels
score only; the ``hdbscan`` package is needed for this script, not for the product.

    OMP_NUM_THREADS=1 python scripts/hdbscan_impl.py [--sets massive_intent] \\
        [--seeds 0,1,2,3,4,42] [--report reports/hdbscan_impl.md]
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))


def joined(x: np.ndarray, lab: np.ndarray) -> np.ndarray:
    """``lab`` with its outliers (-1) moved to the cluster of the nearest centroid."""
    from intentlocal.pipeline.cluster import join_outliers

    return np.unique(join_outliers(x, lab, "centroid"), return_inverse=True)[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--sets", default="massive_intent")
    ap.add_argument("--seeds", default="0,1,2,3,4,42")
    ap.add_argument("--cache", default=str(CHECKOUT / ".cache" / "clusterers.sqlite3"))
    ap.add_argument("--report", help="append the table to this Markdown file")
    args = ap.parse_args()
    warnings.simplefilter("ignore")

    import hdbscan
    import umap
    from sklearn.cluster import HDBSCAN

    from intentlocal.api import build_backends
    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.cluster import umap_layout
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores
    from intentlocal.pipeline.vectors import unit_rows
    from intentlocal.store import Store
    from scripts.selector_ablation import show_table

    embedder, _ = build_backends(load_settings())
    store = Store(args.cache)
    lines = []
    for name in args.sets.split(","):
        texts, gold = load_labelled(Path(args.data) / name / "test.jsonl", None, 0)
        uniques, rows_of = Corpus(texts, [], name).unique()
        x = unit_rows(embed_cached(store, embedder, uniques))
        res: dict[str, list[tuple[int, dict]]] = {"sklearn": [], "hdbscan": []}
        for seed in [int(s) for s in args.seeds.split(",")]:
            layout = umap_layout(umap, x, 15, 5, 0.0, seed)
            parts = {
                "sklearn": HDBSCAN(min_cluster_size=15, copy=True).fit_predict(layout),
                "hdbscan": hdbscan.HDBSCAN(
                    min_cluster_size=15, metric="euclidean", cluster_selection_method="eom",
                    prediction_data=True).fit_predict(layout),
            }
            for impl, lab in parts.items():
                found = len(set(lab.tolist()) - {-1})
                sc = scores(gold, joined(x, lab)[rows_of])
                res[impl].append((seed, found, sc))
                lines.append(f"| {name} | {seed} | {impl} | {found} | {(lab < 0).mean():.1%} | "
                             f"{sc['acc']:.1f} / {sc['nmi']:.1f} / {sc['ari']:.1f} |")
                print(lines[-1], file=sys.stderr, flush=True)
        for impl, rows in res.items():
            main_rows = [r for r in rows if r[0] != 42]
            if not main_rows:
                continue
            acc = np.array([r[2]["acc"] for r in main_rows])
            nmi = np.array([r[2]["nmi"] for r in main_rows])
            lines.append(f"| {name} | mean of {len(main_rows)} (not 42) | {impl} | "
                         f"{np.mean([r[1] for r in main_rows]):.1f} | | "
                         f"{acc.mean():.1f} ± {acc.std():.1f} / {nmi.mean():.1f} | |")
    head = ("| set | UMAP seed | HDBSCAN | groups | outliers | own groups, outliers joined: "
            "ACC / NMI / ARI |\n|---|---|---|---|---|---|")
    show_table(head, lines, args.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
