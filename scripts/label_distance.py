"""Do the pseudo-labels improve the clusters when they shorten distances?

Every earlier way of letting the labels act (joined as text, mixed into the vectors,
choosing where HDBSCAN's groups split) left the default clusterer's partitions where
the texts' vectors alone put them (README, issue 7). Here the labels act on the
geometry both of the default's winning candidates see: the cosine distance between
two texts is lowered by ``alpha`` x the Jaccard overlap of their label sets,

    d'(i, j) = max(0, d(i, j) - alpha * |L_i & L_j| / |L_i | L_j|)

so that texts the LLM named alike move closer even where the embedder put them
apart. Both candidates are then run on d' with the true K, 5 seeds, on a finished
run's distinct texts (every input row scored by its text's cluster, as a run does):

* ``spectral-15``: K-means in the spectral embedding of the 15-NN graph of d';
* ``umap-hdbscan``: UMAP given d' (precomputed), HDBSCAN, brought to K exactly as
  ``DensityClusterer`` does (centroids, merges and splits on the text vectors).

``alpha = 0`` is the texts alone (the same code path, so the comparison is fair).
``--source initial`` uses only the labels the LLM wrote for the text itself
(iteration 0); ``final`` adds refinement's shared labels; ``confident`` keeps only the
initial labels the model was surest of (``--confident CALLS.json --keep 0.5``, the traced
calls of scripts/label_confidence.py). Gold labels score only.

    python scripts/label_distance.py SET STORE:RUN [--alphas 0,0.05,0.1,0.2]
        [--source initial,final] [--seeds 0,1,2,3,4] [--report reports/label_distance.md]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def label_sets(store_path: str, run: int, n: int, initial_only: bool) -> list[list[str]]:
    """Each distinct text's labels (uid order): iteration 0 only, or all iterations;
    spelling variants count as one (``label_key``, as refinement counts them)."""
    from intentlocal.pipeline.augment import label_key

    con = sqlite3.connect(store_path)
    sets: list[list[str]] = [[] for _ in range(n)]
    where = " AND iteration=0" if initial_only else ""
    for uid, label in con.execute(
        f"SELECT uid, label FROM labels WHERE run_id=?{where} ORDER BY id", (run,)
    ):
        if label_key(label) not in sets[uid]:
            sets[uid].append(label_key(label))
    return sets


def confident_sets(calls: str, n: int, keep: float) -> list[list[str]]:
    """Each distinct text's initial label (``label_key``) when its mean token
    log-probability is among the top ``keep`` share of the run's, else none: the labels
    scripts/label_confidence.py found the model sure of (reports/label_confidence.md)."""
    import json

    from intentlocal.pipeline.augment import label_key
    from scripts.label_confidence import kept_labels

    recs = {int(u): r for u, r in json.loads(Path(calls).read_text()).items()}
    return [[label_key(lab) for lab in labs]
            for labs in kept_labels(recs, n, "mean_raw", keep, calls)]


def jaccard(sets: list[list[str]]) -> np.ndarray:
    """Dense n x n Jaccard overlap of the label sets (0 on the diagonal)."""
    from scipy import sparse

    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for lab in s:
            rows.append(i)
            cols.append(vocab.setdefault(lab, len(vocab)))
    b = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(sets), len(vocab)))
    inter = (b @ b.T).toarray()
    size = np.asarray(b.sum(axis=1)).ravel()
    union = size[:, None] + size[None, :] - inter
    j = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    np.fill_diagonal(j, 0.0)
    return j


def nearest_by_distance(d: np.ndarray, k: int) -> np.ndarray:
    """Indices (n, k) of each row's k nearest other rows under the distance matrix
    ``d``, nearest first, ties broken by index (deterministic)."""
    dd = d.copy()
    np.fill_diagonal(dd, np.inf)
    return np.argsort(dd, axis=1, kind="stable")[:, :k]


def knn_links(d: np.ndarray, n_neighbors: int) -> np.ndarray:
    """The symmetric k-NN graph under ``d`` as an n x n boolean matrix (no self-links)."""
    n = len(d)
    idx = nearest_by_distance(d, n_neighbors)
    knn = np.zeros((n, n), dtype=bool)
    knn[np.repeat(np.arange(n), n_neighbors), idx.ravel()] = True
    return knn | knn.T


@dataclass
class StoredRun:
    """A finished run's distinct texts beside the labelled set it was made from."""

    path: str
    run: int
    uniques: list[str]
    uid_of: np.ndarray  # each input row's distinct text
    gold: list  # each input row's gold intent (scoring only)

    @property
    def gold_u(self) -> np.ndarray:
        """Each distinct text's gold intent (its first row's)."""
        out: dict[int, object] = {}
        for u, g in zip(self.uid_of.tolist(), self.gold, strict=True):
            out.setdefault(u, g)
        return np.array([out[u] for u in range(len(self.uniques))])


def set_file(set_name: str) -> Path:
    """A set's labelled JSONL: ``banking77`` is its test split, ``banking77/train`` the
    named split (the data the defaults were never chosen on)."""
    name, _, split = set_name.partition("/")
    return DATA / name / f"{split or 'test'}.jsonl"


def load_run(spec: str, set_name: str, gold_path: str | None = None) -> StoredRun:
    """``STORE:RUN`` read and checked against the set's test JSONL (or ``gold_path``):
    the run must have been made from exactly those rows, in that order."""
    from intentlocal.bench import load_labelled

    path, _, run_s = spec.rpartition(":")
    run = int(run_s)
    con = sqlite3.connect(path)
    uniques = [t for (t,) in con.execute(
        "SELECT text FROM uniques WHERE run_id=? ORDER BY uid", (run,))]
    rows_in = con.execute(
        "SELECT uid, text FROM texts WHERE run_id=? ORDER BY idx", (run,)).fetchall()
    where = gold_path or set_file(set_name)
    texts, gold = load_labelled(where, None, 0)
    if [t for _, t in rows_in] != texts:
        raise SystemExit(f"{spec} was not made from {where}")
    return StoredRun(path, run, uniques, np.array([u for u, _ in rows_in]), gold)


def open_shared_run(spec: str, set_name: str,
                    gold_path: str | None = None) -> tuple[StoredRun, Any, int, Any, Any]:
    """A finished run whose refinement a script can replay (join mix, selector shared:
    the defaults since 1 Dec), as (run, store, run id, its settings, an embed function
    through the store's cache for its embedder). Other runs are refused: a replay of
    theirs would not be what they did."""
    from intentlocal.api import build_backends
    from intentlocal.config import settings_from_dict
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store

    sr = load_run(spec, set_name, gold_path)
    path, _, run_s = spec.rpartition(":")
    store, run_id = Store(path), int(run_s)
    settings = settings_from_dict(store.run(run_id).settings)
    if settings.join != "mix" or settings.selector != "shared":
        raise SystemExit(f"{spec}: refinement is not the default (join mix, selector shared)")
    embedder, _ = build_backends(settings)
    from intentlocal.backends.cpu import busy_cpu_note

    note = busy_cpu_note()  # the scripts time calls and clusterers: say when not alone
    if note:
        print(note, file=sys.stderr)

    def embed(batch: list[str]) -> np.ndarray:
        return embed_cached(store, embedder, batch)

    return sr, store, run_id, settings, embed


def pair_purity(d: np.ndarray, j: np.ndarray, gold: np.ndarray,
                n_neighbors: int = 15) -> dict[str, tuple[int, float]]:
    """How many text pairs each source links, and which share of them are one gold
    intent: the 15-NN graph's pairs, the pairs sharing a label, and the pairs sharing
    a label that the graph does not already link (what labels could add)."""
    knn = knn_links(d, n_neighbors)
    same = gold[:, None] == gold[None, :]
    shared = j > 0
    out = {}
    for name, m in (("15-NN graph", knn), ("sharing a label", shared),
                    ("sharing a label, not in the graph", shared & ~knn)):
        out[name] = (int(m.sum() // 2), float(same[m].mean()) if m.any() else float("nan"))
    return out


def cosine_distance(x: np.ndarray) -> np.ndarray:
    xx = x.astype(np.float64)
    xx /= np.maximum(np.linalg.norm(xx, axis=1, keepdims=True), 1e-12)
    d = np.clip(1.0 - xx @ xx.T, 0.0, 2.0)
    np.fill_diagonal(d, 0.0)
    return d


def spectral_on(d: np.ndarray, k: int, seeds: list[int], n_neighbors: int = 15) -> list[np.ndarray]:
    """SpectralKMeans' graph and embedding, built from the distance matrix ``d``."""
    from scipy import sparse
    from sklearn.cluster import KMeans
    from sklearn.manifold import spectral_embedding

    from intentlocal.pipeline.vectors import unit_rows

    n = len(d)
    idx = nearest_by_distance(d, n_neighbors)
    rows = np.repeat(np.arange(n), n_neighbors)
    a = sparse.csr_matrix((np.ones(idx.size), (rows, idx.ravel())), shape=(n, n))
    g = (0.5 * (a + a.T)).tocsr()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Graph is not fully connected")
        e = unit_rows(spectral_embedding(g, n_components=k, random_state=0))
    return [KMeans(k, n_init=10, random_state=s).fit_predict(e) for s in seeds]


def umap_hdbscan_on(d: np.ndarray, x: np.ndarray, k: int, seeds: list[int]) -> list[np.ndarray]:
    """DensityClusterer with UMAP's layout computed from ``d`` instead of the vectors."""
    import umap
    from sklearn.cluster import HDBSCAN

    from intentlocal.pipeline.cluster import DensityClusterer

    class OnDistances(DensityClusterer):
        def groups(self, xv: np.ndarray) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                layout = umap.UMAP(n_neighbors=self.n_neighbors, n_components=self.n_components,
                                   min_dist=self.min_dist, metric="precomputed",
                                   random_state=self.random_state, n_jobs=1).fit_transform(d)
            return HDBSCAN(min_cluster_size=self.min_cluster_size, copy=True).fit_predict(layout)

    return [OnDistances(random_state=s).fit_predict(x, k) for s in seeds]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("run", metavar="STORE:RUN")
    ap.add_argument("--alphas", default="0,0.05,0.1,0.2")
    ap.add_argument("--source", default="initial,final")
    ap.add_argument("--clusterers", default="spectral-15,umap-hdbscan")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--report", help="append the table's rows to this Markdown file")
    ap.add_argument("--gold", help="labelled JSONL the run was made from (default: the "
                    "set's test.jsonl)")
    ap.add_argument("--purity-only", action="store_true",
                    help="only the table of which text pairs the labels link")
    ap.add_argument("--confident", help="with --source confident: the traced calls of "
                    "scripts/label_confidence.py (its --cache) for this run")
    ap.add_argument("--keep", type=float, default=0.5,
                    help="with --source confident: the share of initial labels kept, the "
                    "most confident by mean token log-probability")
    a = ap.parse_args()
    if "confident" in a.source.split(",") and not a.confident:
        ap.error("--source confident needs --confident CALLS.json")

    from intentlocal.api import build_backends
    from intentlocal.config import load_settings
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.store import Store
    from scripts.selector_ablation import show_table

    sr = load_run(a.run, a.set, a.gold)
    path, run, uniques, uid_of, gold, gold_u = (
        sr.path, sr.run, sr.uniques, sr.uid_of, sr.gold, sr.gold_u)
    k = len(set(gold))
    seeds = [int(s) for s in a.seeds.split(",")]

    embedder, _ = build_backends(load_settings())
    x = embed_cached(Store(path), embedder, uniques)  # the run's own vectors: a cache hit
    d = cosine_distance(x)
    lines: list[str] = []
    purity: list[str] = []
    for source in a.source.split(","):
        if source == "confident":
            sets = confident_sets(a.confident, len(uniques), a.keep)
        else:
            sets = label_sets(path, run, len(uniques), source == "initial")
        j = jaccard(sets)
        linked = float((j > 0).sum(axis=1).mean())
        for what, (pairs, share) in pair_purity(d, j, gold_u).items():
            if what == "15-NN graph" and purity:
                continue
            src = "" if what == "15-NN graph" else f"{source} labels, "
            purity.append(f"| {a.set} | {src}{what} | {pairs:,} | {share:.3f} |")
        print(*purity, sep="\n", file=sys.stderr)
        for alpha in ([] if a.purity_only else (float(v) for v in a.alphas.split(","))):
            if alpha == 0 and source != a.source.split(",")[0]:
                continue  # the texts alone: once is enough
            dl = np.maximum(d - alpha * j, 0.0)
            np.fill_diagonal(dl, 0.0)
            for name in a.clusterers.split(","):
                t = time.perf_counter()
                parts = (spectral_on(dl, k, seeds) if name == "spectral-15"
                         else umap_hdbscan_on(dl, x, k, seeds))
                s = summarise([scores(gold, np.asarray(p)[uid_of]) for p in parts])
                what = "texts alone" if alpha == 0 else f"{source} labels, alpha {alpha:g}"
                lines.append(
                    f"| {a.set} | {name} | {what} | {linked if alpha else 0:.1f} | "
                    f"{s['acc']:.1f} ± {s['acc_sd']:.1f} | {s['nmi']:.1f} ± {s['nmi_sd']:.1f} "
                    f"| {s['ari']:.1f} |")
                print(lines[-1], f"{time.perf_counter() - t:.0f} s", file=sys.stderr)
    head = ("| set | clusterer | distances | texts sharing a label (mean per text) | ACC | NMI "
            "| ARI |\n|---|---|---|---|---|---|---|")
    if lines:
        show_table(head, lines, a.report)
    base = float(np.mean(gold_u[:, None] == gold_u[None, :]))
    show_table("| set | text pairs | pairs | share of one gold intent |\n|---|---|---|---|",
               [*purity, f"| {a.set} | any two texts | | {base:.3f} |"], a.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
