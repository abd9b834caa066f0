"""Auto-K on UMAP's layout instead of the raw vectors (issue 7; measured negative, 6 Dec).

MapEquationK, the product's estimator, reads the cosine 10-NN graph of the texts' own
vectors: 91 modules for banking77's 77 intents (+18 %), 77 for mtop_intent's 102. BERTopic
finds its own K with HDBSCAN on a UMAP layout (82 topics on banking77 in
../shared/benchmarks.md), and the umap-hdbscan candidate already computes such a layout.
This counts, on each finished run's distinct texts and for each UMAP seed, the groups of:

* HDBSCAN (min_cluster_size 10 and 15, outliers not counted) on the candidate's layout
  (10-d from 20 neighbours) and on BERTopic's (5-d from 15);
* the map equation on the layout's Euclidean k-NN graph (k = 10, 15).

Gold intents give K only. No clusters are scored: an estimator has to be within 10 % on
every set before its clusters are worth a bench.

    python scripts/auto_k_layout.py SET=STORE:RUN [...] [--seeds 0,1,2]
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.stored_runs import command, parser, seed_list, set_and_run, write_report

LAYOUTS = {"10-d from 20 neighbours (the candidate's)": (20, 10),
           "5-d from 15 neighbours (BERTopic's)": (15, 5)}


def euclidean_map_equation(layout: np.ndarray, k: int, seed: int) -> int:
    """Modules of the map equation on the union k-NN graph of the layout (Euclidean:
    UMAP's coordinates are not directions, so MapEquationK's cosine does not apply)."""
    from scipy import sparse
    from sklearn.neighbors import NearestNeighbors

    from intentlocal.pipeline.autok import graph_communities

    n = len(layout)
    idx = NearestNeighbors(n_neighbors=k + 1).fit(layout).kneighbors(
        layout, return_distance=False)[:, 1:]
    a = sparse.csr_matrix((np.ones(idx.size), (np.repeat(np.arange(n), k), idx.ravel())),
                          shape=(n, n))
    return int(graph_communities(a.maximum(a.T).tocsr(), "mapequation", seed=seed,
                                 trials=2).max() + 1)


def counts(layout: np.ndarray, seed: int) -> dict[str, int]:
    """Every estimator's K on one layout."""
    from sklearn.cluster import HDBSCAN

    out = {}
    for mcs in (10, 15):
        lab = HDBSCAN(min_cluster_size=mcs, copy=True).fit_predict(layout)
        out[f"HDBSCAN min_cluster_size {mcs}"] = len(set(lab.tolist()) - {-1})
    for k in (10, 15):
        out[f"map equation, Euclidean {k}-NN"] = euclidean_map_equation(layout, k, seed)
    return out


def main(argv: list[str] | None = None) -> int:
    import umap

    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.cluster.density import cache_umap_jit, umap_layout
    from scripts.label_distance import open_shared_run

    ap = parser(__doc__, "auto_k_layout.md", seeds="0,1,2")
    a = ap.parse_args(argv)
    seeds = seed_list(a.seeds)
    cache_umap_jit()
    report: dict[str, Any] = {"command": command(), "seeds": seeds, "sets": []}
    for spec in a.runs:
        name, run = set_and_run(spec)
        sr, _store, _run_id, s, embed = open_shared_run(run, name)
        x = embed(sr.uniques)
        k_true = len(set(sr.gold))
        est = MapEquationK(n_neighbors=s.auto_k_neighbours, random_state=s.seed)
        out: dict[str, Any] = {"set": name, "k_true": k_true, "n": len(sr.uniques),
                               "rows": {"MapEquationK on the vectors (the product's)":
                                        [est.estimate(x)]}}
        report["sets"].append(out)
        for title, (nn, nc) in LAYOUTS.items():
            for seed in seeds:
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # numba / sklearn chatter
                    layout = umap_layout(umap, x, nn, nc, 0.0, seed)
                for row, k in counts(layout, seed).items():
                    out["rows"].setdefault(f"{row} on {title}", []).append(k)
                print(json.dumps({"set": name, "layout": title, "seed": seed,
                                  "s": round(time.perf_counter() - t0, 1)}), flush=True)
    write_report(report, a.report, markdown)
    return 0


def markdown(r: dict[str, Any]) -> str:
    sets = r["sets"]
    head = " | ".join(f"{s['set']} (K={s['k_true']})" for s in sets)
    lines = ["# Auto-K on UMAP's layout (issue 7)", "",
             f"Command: `{r['command']}`  ", f"UMAP seeds {r['seeds']}; each cell: the "
             "estimates per seed, then the error of their mean against the true K.", "",
             f"| estimator | {head} | max error |", "|---|" + "---|" * (len(sets) + 1)]
    for row in sets[0]["rows"]:
        cells, worst = [], 0.0
        for s in sets:
            ks = s["rows"][row]
            err = 100 * (float(np.mean(ks)) - s["k_true"]) / s["k_true"]
            worst = max(worst, abs(err))
            cells.append(f"{', '.join(map(str, ks))} ({err:+.0f} %)")
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {worst:.0f} % |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
