"""Do the pseudo-labels improve the clusters when they cut UMAP's edges?

reports/label_distance.md let the labels *add* links (distances shortened by label
overlap): generic labels pulled whole cliques of texts of several intents together
and every setting lost. Here the labels may only *weaken* links the embedder already
made: in UMAP's fuzzy k-NN graph (the graph the umap-hdbscan candidate lays out), an
edge between two texts whose label sets share no label is multiplied by
``1 - beta``; edges between texts that share a label keep their weight. No edge is
ever added, so a generic label cannot merge intents the geometry keeps apart; it can
only fail to cut. This is UMAP's semi-supervised idea (a categorical target
intersected with the graph) with label *sets* instead of one class per text.

The rest is DensityClusterer unchanged (HDBSCAN on the 5-d layout, outliers to the
nearest centroid, merged or split to K on the text vectors), the true K, 5 seeds, the
run's distinct texts, every input row scored. ``beta = 0`` is the texts alone on the
same code path. Before clustering the script prints which share of the 15-NN graph's
edges join one gold intent, among edges whose texts share a label and those that do
not: the labels can only help if the second share is clearly lower.

The vectors come through the run store's embedding cache, keyed by the embedder and its
int8 precision option (backends.base.vectors_id), so a store filled before that option is
embedded again rather than reused.

    python scripts/label_edges.py SET STORE:RUN [--betas 0,0.25,0.5,0.75]
        [--source initial,final] [--seeds 0,1,2,3,4] [--report reports/label_edges.md]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def cut_factor(rows: np.ndarray, cols: np.ndarray, overlap: np.ndarray, beta: float) -> np.ndarray:
    """Each edge's multiplier: 1 where the two texts share a label, 1 - beta where not."""
    shared = overlap[rows, cols] > 0
    return np.where(shared, 1.0, 1.0 - beta)


def labelled_umap(overlap: np.ndarray, beta: float, **kw: object) -> object:
    """A umap.UMAP whose fuzzy graph is reweighted by ``cut_factor`` just before the
    layout (``_fit_embed_data`` is the hook umap-learn documents for subclasses);
    ``cut_graph_`` is the graph the layout was given."""
    import umap
    from scipy import sparse

    class LabelledUMAP(umap.UMAP):
        def _fit_embed_data(self, X, n_epochs, init, random_state, **kwargs):
            if beta > 0:
                g = self.graph_.tocoo()
                w = g.data * cut_factor(g.row, g.col, overlap, beta)
                self.graph_ = sparse.csr_matrix((w, (g.row, g.col)), shape=g.shape)
                self.graph_.eliminate_zeros()
            # the layout prunes weak edges of graph_ in place: keep what it was given
            self.cut_graph_ = self.graph_.copy()
            return super()._fit_embed_data(X, n_epochs, init, random_state, **kwargs)

    return LabelledUMAP(**kw)


def density_with_cuts(overlap: np.ndarray, beta: float, seed: int) -> object:
    """DensityClusterer whose layout is the product's ``umap_layout`` (same distances,
    same parameters) run by ``labelled_umap``: at beta 0 it is the candidate itself."""
    from sklearn.cluster import HDBSCAN

    from intentlocal.pipeline.cluster import DensityClusterer, umap_layout

    class Shim:  # umap_layout calls ``module.UMAP(**kw)``
        @staticmethod
        def UMAP(**kw: object) -> object:
            return labelled_umap(overlap, beta, **kw)

    class CutDensity(DensityClusterer):
        def groups(self, xv: np.ndarray) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                layout = umap_layout(Shim, xv, self.n_neighbors, self.n_components,
                                     self.min_dist, self.random_state)
            return HDBSCAN(min_cluster_size=self.min_cluster_size, copy=True).fit_predict(layout)

    return CutDensity(random_state=seed)


def edge_purity(x: np.ndarray, overlap: np.ndarray, gold: np.ndarray,
                n_neighbors: int = 15) -> list[tuple[str, int, float]]:
    """(edges, share of one gold intent) of the 15-NN graph, all / sharing / not sharing."""
    from scripts.label_distance import cosine_distance, knn_links

    knn = knn_links(cosine_distance(x), n_neighbors)
    same = gold[:, None] == gold[None, :]
    shared = overlap > 0
    return [(what, int(m.sum() // 2), float(same[m].mean()))
            for what, m in (("all edges", knn), ("texts share a label", knn & shared),
                            ("texts share no label", knn & ~shared))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("run", metavar="STORE:RUN")
    ap.add_argument("--betas", default="0,0.25,0.5,0.75")
    ap.add_argument("--source", default="initial,final")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--report", help="append the tables to this Markdown file")
    a = ap.parse_args()

    from intentlocal.backends.registry import load_embedder
    from intentlocal.config import load_settings
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.store import Store
    from scripts.label_distance import jaccard, label_sets, load_run
    from scripts.selector_ablation import show_table

    sr = load_run(a.run, a.set)
    path, run, uniques, uid_of, gold, gold_u = (
        sr.path, sr.run, sr.uniques, sr.uid_of, sr.gold, sr.gold_u)
    k = len(set(gold))
    seeds = [int(s) for s in a.seeds.split(",")]

    embedder = load_embedder(load_settings().embedder)
    t = time.perf_counter()
    x = embed_cached(Store(path), embedder, uniques)
    print(f"embedded {len(uniques)} texts in {time.perf_counter() - t:.0f} s", file=sys.stderr)

    purity: list[str] = []
    lines: list[str] = []
    for source in a.source.split(","):
        sets = label_sets(path, run, len(uniques), source == "initial")
        overlap = jaccard(sets)
        for what, n, share in edge_purity(x, overlap, gold_u):
            purity.append(f"| {a.set} | {source} | {what} | {n:,} | {share:.3f} |")
        print(*purity[-3:], sep="\n", file=sys.stderr)
        for beta in (float(v) for v in a.betas.split(",")):
            if beta == 0 and source != a.source.split(",")[0]:
                continue  # the texts alone: once is enough
            t = time.perf_counter()
            parts = [density_with_cuts(overlap, beta, s).fit_predict(x, k) for s in seeds]
            per = [scores(gold, np.asarray(p)[uid_of]) for p in parts]
            s = summarise(per)
            what = "texts alone" if beta == 0 else f"{source} labels cut, beta {beta:g}"
            lines.append(
                f"| {a.set} | {what} | {s['acc']:.1f} ± {s['acc_sd']:.1f} | "
                f"{s['nmi']:.1f} ± {s['nmi_sd']:.1f} | {s['ari']:.1f} | "
                f"{' '.join(format(p['acc'], '.1f') for p in per)} |")
            print(lines[-1], f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
    show_table("| set | labels | 15-NN edges | edges | share of one gold intent |\n"
               "|---|---|---|---|---|", purity, a.report)
    show_table("| set | umap-hdbscan graph | ACC | NMI | ARI | ACC per seed |\n"
               "|---|---|---|---|---|---|", lines, a.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
