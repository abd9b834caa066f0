"""The umap-hdbscan candidate's UMAP and HDBSCAN parameters, on all four sets (issue 7).

Until 5 Dec the candidate copied BERTopic's defaults (UMAP to 5 dimensions from 15
neighbours, HDBSCAN min_cluster_size 15, min_samples = min_cluster_size), never varied
under the product's own inputs; reports/umap_params.md has what this measured. Two
steps, on finished runs' stored labels (no LLM call), distinct texts clustered, every
input row scored, true K unless said:

* ``screen``: the candidate alone (DensityClusterer, the labels mixed into its layout at
  the run's density weight and choosing its splits, as in a run), each parameter set
  over seeds 0-2;
* ``confirm``: the product's select clusterer, 5 seeds, with the candidate at the old
  and at the given parameters: texts alone, the default (labels), and the default at the
  K the run would estimate.

    python scripts/umap_params.py screen SET=STORE:RUN [...] [--grid nn/nc/mcs/ms,...]
        [--weights 0,0.1,...]
    python scripts/umap_params.py confirm SET=STORE:RUN [...] --new NN/NC [--old NN/NC]

Each result is one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intentlocal.pipeline import cluster as C

SCREEN = "15/5/15/0,15/5/15/5,15/5/10/0,30/5/15/0,15/10/15/0,30/10/15/0,20/10/15/0,50/5/15/0," \
         "15/20/15/0,30/5/20/0"


def candidate(nn: int, nc: int, mcs: int = 15, ms: int = 0, seed: int = 0) -> Any:
    """The umap-hdbscan candidate at these parameters; ``ms`` 0 = HDBSCAN's default
    min_samples."""
    return C.DensityClusterer(n_neighbors=nn, n_components=nc, min_cluster_size=mcs,
                              min_samples=ms or None, random_state=seed)


def main(argv: list[str] | None = None) -> int:
    from intentlocal.pipeline.augment import mix_vectors
    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.metrics import scores, summarise
    from scripts.label_distance import open_shared_run
    from scripts.stored_runs import select_over_seeds, set_and_run

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=("screen", "confirm"))
    ap.add_argument("runs", nargs="+", help="SET=STORE:RUN of finished runs")
    ap.add_argument("--grid", default=SCREEN, help="screen: nn/nc/mcs/ms,...")
    ap.add_argument("--weights", default="",
                    help="screen: density weights to try (default: the run's own)")
    ap.add_argument("--new", default="20/10", help="confirm: NN/NC")
    ap.add_argument("--old", default="15/5", help="confirm: NN/NC")
    a = ap.parse_args(argv)
    for spec in a.runs:
        name, run = set_and_run(spec)
        sr, store, run_id, s, embed = open_shared_run(run, name)
        n = len(sr.uniques)
        x = embed(sr.uniques)
        k = len(set(sr.gold))
        ref = store.label_sets(run_id, n, 1)
        if a.mode == "screen":
            weights = [float(v) for v in a.weights.split(",")] if a.weights else [
                s.density_weight]
            layouts = {w: mix_vectors(x, ref, embed, w) if w else None for w in weights}
            for g, w in ((g, w) for g in a.grid.split(",") for w in weights):
                nn, nc, mcs, ms = (int(v) for v in g.split("/"))
                t0, res = time.perf_counter(), []
                for seed in (0, 1, 2):
                    d = candidate(nn, nc, mcs, ms, seed)
                    part = d.fit_predict(x, k, labels=ref, layout=layouts[w])
                    res.append({**scores(sr.gold, part[sr.uid_of]), "found": d.found_})
                print(json.dumps(dict(set=name, nn=nn, nc=nc, mcs=mcs, ms=ms, weight=w,
                                      **summarise(res),
                                      per=[round(r["acc"], 1) for r in res],
                                      found=[r["found"] for r in res],
                                      s=round(time.perf_counter() - t0))), flush=True)
            continue
        mix = mix_vectors(x, ref, embed, s.density_weight)
        k_auto = MapEquationK(n_neighbors=s.auto_k_neighbours, random_state=s.seed).estimate(x)
        for params in (a.old, a.new):
            nn, nc = (int(v) for v in params.split("/"))
            rows: list[tuple[str, Any, Any, int]] = [
                ("texts alone", None, None, k), ("default", ref, mix, k),
                ("default auto-K", ref, mix, k_auto)]

            def make(seed: int, nn: int = nn, nc: int = nc) -> Any:
                sel = C.SelectClusterer(candidates={
                    **C.default_candidates(10, seed), "umap-hdbscan": candidate(nn, nc)})
                sel.set_seed(seed)
                return sel

            for row, labels, layout, at in rows:
                t0 = time.perf_counter()
                per, chosen = select_over_seeds(make, x, at, (0, 1, 2, 3, 4), sr.gold,
                                                sr.uid_of, labels=labels, layout=layout)
                print(json.dumps(dict(set=name, params=params, row=row, k=at, **summarise(per),
                                      per=[round(p["acc"], 1) for p in per], chosen=chosen,
                                      s=round(time.perf_counter() - t0))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
