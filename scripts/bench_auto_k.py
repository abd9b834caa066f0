"""Measure auto-K estimators on the four intent benchmarks.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \\
        python scripts/bench_auto_k.py [--embedder minilm-l6-int8] [--estimators all]

For each set under --data (banking77, clinc150, massive_intent, mtop_intent; test.jsonl
with {"text", "label"}) it embeds the texts once per embedder (cached as .npy under
--cache), runs every estimator on the same vectors and reports K_true, K_est, the
relative error |K_est - K_true| / K_true and the seconds the estimate took. Labels are
used for scoring only. ``K_eff`` is the number of labels with at least 5 texts (what
any geometric estimator can hope to see: mtop_intent has 37 labels with < 5 texts).

Writes reports/auto_k_<embedder>.md (and .json). The chosen estimator lives in
intentlocal/pipeline/autok.py; the others are implemented here, compactly, only to be
measured against it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

CHECKOUT = Path(__file__).resolve().parent.parent
SETS = ["banking77", "clinc150", "massive_intent", "mtop_intent"]


# --------------------------------------------------------------------------- data


def load_jsonl(path: Path) -> tuple[list[str], np.ndarray]:
    """Texts and integer gold labels (for scoring only)."""
    from intentlocal.bench import load_labelled

    texts, labels = load_labelled(path, None, 0)
    index = {lab: i for i, lab in enumerate(sorted(set(labels)))}
    return texts, np.array([index[lab] for lab in labels], dtype=np.int64)


def embeddings(name: str, texts: list[str], embedder: str, cache: Path) -> np.ndarray:
    cache.mkdir(parents=True, exist_ok=True)
    f = cache / f"{name}__{re.sub(r'[^A-Za-z0-9_.-]+', '_', embedder)}.npy"
    if f.exists():
        x = np.load(f)
        if len(x) == len(texts):
            return x
    from intentlocal.backends.registry import load_embedder

    t = time.perf_counter()
    x = np.asarray(load_embedder(embedder).embed(texts), dtype=np.float32)
    print(f"  embedded {name} with {embedder} in {time.perf_counter() - t:.0f}s", flush=True)
    np.save(f, x)
    return x


# --------------------------------------------------------------- K-means grid family


class _Grid:
    """One K-means fit per K on the SilhouetteK grid, shared by the grid criteria."""

    def __init__(self, x: np.ndarray, seed: int, grid: int = 16, n_init: int = 3) -> None:
        from sklearn.cluster import KMeans
        from sklearn.metrics import (
            calinski_harabasz_score,
            davies_bouldin_score,
            silhouette_score,
        )

        n = len(x)
        hi = max(3, min(int(4 * np.sqrt(n)), n - 1))
        self.ks = sorted({round(float(v)) for v in np.geomspace(2, hi, grid)})
        self.rows = {}
        for k in self.ks:
            km = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(x)
            lab = km.labels_
            self.rows[k] = {
                "inertia": float(km.inertia_),
                "ch": float(calinski_harabasz_score(x, lab)),
                "db": float(davies_bouldin_score(x, lab)),
                "sil_euc": float(
                    silhouette_score(x, lab, sample_size=min(n, 4000), random_state=seed)
                ),
            }


_GRID_CACHE: dict[int, _Grid] = {}


def _grid(x: np.ndarray, seed: int) -> _Grid:
    key = id(x)
    if key not in _GRID_CACHE:
        _GRID_CACHE.clear()
        _GRID_CACHE[key] = _Grid(x, seed)
    return _GRID_CACHE[key]


def est_silhouette_cosine(x: np.ndarray, seed: int) -> int:
    """The product's former estimator (autok.SilhouetteK)."""
    from intentlocal.pipeline.autok import SilhouetteK

    return SilhouetteK(random_state=seed).estimate(x)


def est_silhouette_euclid(x: np.ndarray, seed: int) -> int:
    g = _grid(x, seed)
    return max(g.ks, key=lambda k: g.rows[k]["sil_euc"])


def est_calinski_harabasz(x: np.ndarray, seed: int) -> int:
    g = _grid(x, seed)
    return max(g.ks, key=lambda k: g.rows[k]["ch"])


def est_davies_bouldin(x: np.ndarray, seed: int) -> int:
    g = _grid(x, seed)
    return min(g.ks, key=lambda k: g.rows[k]["db"])


def est_kneedle_inertia(x: np.ndarray, seed: int) -> int:
    """Kneedle (Satopaa et al. 2011) on the inertia curve, K on a log axis."""
    g = _grid(x, seed)
    ks = np.array(g.ks, dtype=float)
    w = np.array([g.rows[k]["inertia"] for k in g.ks])
    xs = (np.log(ks) - np.log(ks[0])) / (np.log(ks[-1]) - np.log(ks[0]))
    ys = (w - w.min()) / (w.max() - w.min())
    # decreasing convex curve: knee = max of (1 - x) - y ... distance to the chord
    diff = (1 - xs) - ys
    return int(ks[int(np.argmax(diff))])


# ------------------------------------------------------------------- graph family


def knn_graph(x: np.ndarray, k: int):
    from intentlocal.pipeline.autok import knn_graph as graph

    return graph(x, k)


def est_eigengap(x: np.ndarray, seed: int, k: int = 10, kmax: int = 0) -> int:
    """Largest gap among the smallest eigenvalues of the normalised kNN Laplacian."""
    from scipy import sparse
    from scipy.sparse.linalg import eigsh

    n = len(x)
    a = knn_graph(x, k)
    d = np.asarray(a.sum(1)).ravel()
    dm = sparse.diags(1 / np.sqrt(d))
    m = dm @ a @ dm
    kmax = kmax or min(n - 2, int(4 * np.sqrt(n)))
    v0 = np.random.default_rng(seed).normal(size=n)
    ev = eigsh(m, k=kmax + 1, which="LA", v0=v0, return_eigenvectors=False)
    lam = np.sort(1 - ev)
    gaps = np.diff(lam)[1:kmax]  # gap after the 2nd, 3rd, ... eigenvalue
    return int(np.argmax(gaps) + 2)


def est_louvain(x: np.ndarray, seed: int, k: int = 10) -> int:
    """Louvain modularity (resolution 1) on the union kNN graph."""
    from intentlocal.pipeline.autok import graph_communities

    return int(graph_communities(knn_graph(x, k), "modularity", seed).max() + 1)


def est_infomap_greedy(x: np.ndarray, seed: int, k: int = 10) -> int:
    """Map equation on the union 10-NN graph, local moving only (no merge path)."""
    from scipy import sparse

    from intentlocal.pipeline.autok import _multilevel

    a = sparse.csr_matrix(knn_graph(x, k), dtype=np.float64)
    return int(_multilevel(a, "mapequation", np.random.default_rng(seed)).max() + 1)


def est_hdbscan(x: np.ndarray, seed: int, min_cluster_size: int = 5) -> int:
    from sklearn.cluster import HDBSCAN

    # copy=True is given, so sklearn 1.9 raises no warning here: none is hidden.
    lab = HDBSCAN(min_cluster_size=min_cluster_size, copy=True).fit_predict(x)
    return int(max(1, lab.max() + 1))


def est_kmeans_stability(x: np.ndarray, seed: int, runs: int = 4) -> int:
    """K-means with a large K, several seeds: clusters matched (Jaccard >= 0.5) in all
    other runs are 'stable'; iterate K <- #stable from K = 4 sqrt(n) until it settles."""
    from scipy import sparse
    from sklearn.cluster import KMeans

    n = len(x)
    k = max(2, min(int(4 * np.sqrt(n)), n - 1))
    for _ in range(6):
        labs = [KMeans(k, n_init=1, random_state=seed + r).fit_predict(x) for r in range(runs)]
        counts = []
        for i in range(runs):
            ok = np.ones(k, dtype=bool)
            for j in range(runs):
                if i == j:
                    continue
                c = sparse.coo_matrix((np.ones(n), (labs[i], labs[j])), shape=(k, k)).toarray()
                jac = c / (c.sum(1)[:, None] + c.sum(0)[None, :] - c)
                ok &= jac.max(1) >= 0.5
            counts.append(int(ok.sum()))
        new = max(2, int(np.median(counts)))
        if abs(new - k) <= max(1, 0.05 * k):
            return new
        k = new
    return k


def _anderson_darling_p(v: np.ndarray) -> float:
    """p of the Anderson-Darling normality test, mean and variance estimated
    (D'Agostino & Stephens 1986)."""
    from scipy.special import log_ndtr

    n = len(v)
    sd = v.std(ddof=1)
    if n < 8 or sd <= 0:
        return 1.0
    z = np.sort((v - v.mean()) / sd)
    i = np.arange(1, n + 1)
    a = (-n - np.mean((2 * i - 1) * (log_ndtr(z) + log_ndtr(-z[::-1])))) * (
        1 + 0.75 / n + 2.25 / n**2
    )
    if a >= 10:
        return 0.0
    if a >= 0.6:
        return float(np.exp(1.2937 - 5.709 * a + 0.0186 * a * a))
    if a > 0.34:
        return float(np.exp(0.9177 - 4.279 * a - 1.38 * a * a))
    if a > 0.2:
        return float(1 - np.exp(-8.318 + 42.796 * a - 59.938 * a * a))
    return float(1 - np.exp(-13.436 + 101.14 * a - 223.73 * a * a))


def gmeans(
    x: np.ndarray,
    seed: int,
    alpha: float = 0.01,
    min_size: int = 8,
    n_components: int = 0,
    runs: int = 3,
) -> int:
    """G-means (Hamerly & Elkan 2003), top-down: split a cluster by 2-means while the
    projection on the line through the two centres is not Gaussian (Anderson-Darling)
    at level alpha / n (Bonferroni over the n points); children >= min_size; optional
    PCA first; median over ``runs`` seeds."""
    from sklearn.cluster import KMeans

    z = np.asarray(x, dtype=np.float64)
    n = len(z)
    if n_components and n_components < z.shape[1]:
        zc = z - z.mean(0)
        z = zc @ np.linalg.svd(zc, full_matrices=False)[2][:n_components].T
    counts = []
    for r in range(runs):
        rng = np.random.RandomState(seed + r)
        todo, done = [np.arange(n)], 0
        while todo:
            idx = todo.pop()
            if len(idx) < 2 * min_size:
                done += 1
                continue
            km = KMeans(2, n_init=2, random_state=rng.randint(1 << 30)).fit(z[idx])
            sizes = np.bincount(km.labels_, minlength=2)
            v = km.cluster_centers_[0] - km.cluster_centers_[1]
            if sizes.min() >= min_size and _anderson_darling_p(z[idx] @ v) < alpha / n:
                todo += [idx[km.labels_ == 0], idx[km.labels_ == 1]]
            else:
                done += 1
        counts.append(done)
    return int(np.median(counts))


def est_gmeans(x: np.ndarray, seed: int) -> int:
    return gmeans(x, seed)


def est_gmeans_pca(x: np.ndarray, seed: int) -> int:
    return gmeans(x, seed, n_components=64)


def est_mapeq_k(k: int) -> Callable[[np.ndarray, int], int]:
    def run(x: np.ndarray, seed: int) -> int:
        from intentlocal.pipeline.autok import MapEquationK

        return MapEquationK(n_neighbors=k, random_state=seed).estimate(x)

    return run


def est_chosen(x: np.ndarray, seed: int) -> int:
    from intentlocal.pipeline.autok import MapEquationK

    return MapEquationK(random_state=seed).estimate(x)


ESTIMATORS: dict[str, Callable[[np.ndarray, int], int]] = {
    "MapEquationK (chosen, k=10)": est_chosen,
    "MapEquationK k=8 (sensitivity)": est_mapeq_k(8),
    "MapEquationK k=12 (sensitivity)": est_mapeq_k(12),
    "silhouette-cosine (SilhouetteK)": est_silhouette_cosine,
    "silhouette-euclid grid": est_silhouette_euclid,
    "calinski-harabasz grid": est_calinski_harabasz,
    "davies-bouldin grid": est_davies_bouldin,
    "kneedle inertia grid": est_kneedle_inertia,
    "eigengap kNN(10) Laplacian": est_eigengap,
    "louvain modularity kNN(10)": est_louvain,
    "map equation kNN(10), no merge path": est_infomap_greedy,
    "hdbscan mcs=5": est_hdbscan,
    "kmeans stability": est_kmeans_stability,
    "g-means alpha=0.01/n": est_gmeans,
    "g-means alpha=0.01/n, PCA-64": est_gmeans_pca,
}


# ------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--embedder", default="minilm-l6-int8")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--sets", nargs="+", default=SETS)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/autok_cache"))
    ap.add_argument(
        "--estimators",
        default="all",
        help="comma-separated substrings of estimator names, or 'all'",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=CHECKOUT / "reports")
    args = ap.parse_args(argv)

    names = list(ESTIMATORS)
    if args.estimators != "all":
        wanted = [w.strip().lower() for w in args.estimators.split(",") if w.strip()]
        names = [n for n in names if any(w in n.lower() for w in wanted)]
    cmd = " ".join(
        shlex.quote(a)
        for a in [
            "python",
            "scripts/bench_auto_k.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
    )
    threads = {v: os.environ.get(v, "") for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    results: dict[str, dict] = {}
    truth: dict[str, dict] = {}
    for ds in args.sets:
        texts, y = load_jsonl(args.data / ds / "test.jsonl")
        x = embeddings(ds, texts, args.embedder, args.cache)
        sizes = np.bincount(y)
        truth[ds] = {"n": len(y), "K": len(sizes), "K_eff": int((sizes >= 5).sum())}
        print(
            f"{ds}: n={len(y)} K={truth[ds]['K']} K_eff(>=5 texts)={truth[ds]['K_eff']}", flush=True
        )
        _GRID_CACHE.clear()
        for name in names:
            t = time.perf_counter()
            k = int(ESTIMATORS[name](x, args.seed))
            sec = time.perf_counter() - t
            err = abs(k - truth[ds]["K"]) / truth[ds]["K"]
            results.setdefault(name, {})[ds] = {"k": k, "err": err, "seconds": sec}
            print(f"  {name:34s} K={k:4d} err={100 * err:5.1f}%  {sec:6.1f}s", flush=True)

    lines = [
        f"# Auto-K estimators, embedder `{args.embedder}`",
        "",
        f"Command: `{cmd}`  ",
        f"Threads: {threads}; {platform.platform()}; python {platform.python_version()}; "
        f"seed {args.seed}.",
        "",
        "K_est / error |K_est - K_true| / K_true / seconds for the estimate alone "
        "(embedding excluded; the grid criteria share one K-means grid, whose time is "
        "charged to the first of them that runs). K_eff = labels with >= 5 texts.",
        "",
    ]
    head = (
        "| estimator | "
        + " | ".join(
            f"{ds} (K={truth[ds]['K']}, K_eff={truth[ds]['K_eff']}, n={truth[ds]['n']})"
            for ds in args.sets
        )
        + " | max err | mean err |"
    )
    lines += [head, "|" + "---|" * (len(args.sets) + 3)]
    for name in names:
        r = results[name]
        errs = [r[ds]["err"] for ds in args.sets]
        cells = [
            f"{r[ds]['k']} / {100 * r[ds]['err']:.0f}% / {r[ds]['seconds']:.1f}s"
            for ds in args.sets
        ]
        lines.append(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {100 * max(errs):.0f}% | {100 * float(np.mean(errs)):.0f}% |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "auto_k_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", args.embedder)
    (args.out / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (args.out / f"{stem}.json").write_text(
        json.dumps({"command": cmd, "truth": truth, "results": results}, indent=1),
        encoding="utf-8",
    )
    print("\n".join(lines))
    print(f"wrote {args.out / (stem + '.md')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
