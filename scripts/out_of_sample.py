"""The defaults on data they were never chosen on (issue 7).

Every default of the refinement and the clusterer was chosen on the four test sets
(reports/umap_params.md and the reports before it); ../shared/benchmarks.md promises a
check on data the tool was never tuned on. This scores one finished run of such data
(banking77's 10,003 training texts: the same 77 intents, other texts, 3.2x as many)
the way the test sets were scored, on the run's stored labels (no LLM call), distinct
texts clustered, every input row scored, gold labels used only to score:

* the LLM-free bars of ../shared/benchmarks.md on the same vectors: UMAP (5-d, cosine,
  15 neighbours, seed 42) then K-means at the true K (one K-means seed per seed), and
  BERTopic's path (UMAP 5-d from 15 neighbours, seed 42, HDBSCAN min_cluster_size 10
  and 15, outliers joined to the nearest centroid, its own number of topics; one
  figure, as the benchmark's);
* the select clusterer, as a run builds it, on the texts alone and with the run's
  labels (mixed into the umap-hdbscan candidate's layout at the run's density weight,
  choosing its splits: the default), at the true K and at the K the run would
  estimate; the labels' gain paired per seed.

    python scripts/out_of_sample.py banking77/train=STORE:RUN [--seeds 0,1,2,3,4]
        [--report reports/out_of_sample_banking77_train.md]

A set name with a slash names a split of ../shared/data (``banking77/train``); without
one, the test split. Each row is also printed as a JSON line while the script runs.
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

from scripts.stored_runs import (
    command,
    parser,
    seed_list,
    select_over_seeds,
    set_and_run,
    write_report,
)


def bertopic_path(x: np.ndarray, mcs: int) -> tuple[np.ndarray, int]:
    """BERTopic's default path as ../shared/benchmarks.md ran it, on the product's
    DensityClusterer: UMAP 5-d from 15 neighbours (seed 42), HDBSCAN, every outlier to
    the nearest centroid, nothing merged or split. Returns the partition and its size."""
    from intentlocal.pipeline.cluster import DensityClusterer
    from intentlocal.pipeline.vectors import unit_rows

    d = DensityClusterer(n_neighbors=15, n_components=5, min_cluster_size=mcs,
                         random_state=42)
    found = len(set(d.groups(unit_rows(x)).tolist()) - {-1})
    # Asked for its own count, the candidate joins the outliers (nearest centroid, its
    # default) and merges or splits nothing; the layout is memoised, not made twice.
    return d.fit_predict(x, max(found, 1)), found


def add_row(out: dict[str, Any], title: str, k_used: int, per: list[dict],
            **extra: Any) -> None:
    """One pipeline's scores over seeds into the set's report, and on stdout at once."""
    from intentlocal.pipeline.metrics import summarise

    r = {"row": title, "k": k_used, **summarise(per),
         "per_seed_acc": [round(p["acc"], 1) for p in per], **extra}
    out["rows"].append(r)
    print(json.dumps({"set": out["set"], **r}), flush=True)


def main(argv: list[str] | None = None) -> int:
    from intentlocal.bench import umap_5d
    from intentlocal.pipeline import cluster as C
    from intentlocal.pipeline.augment import mix_vectors
    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.metrics import scores
    from scripts.label_distance import open_shared_run

    ap = parser(__doc__, "out_of_sample.md")
    a = ap.parse_args(argv)
    seeds = seed_list(a.seeds)
    warnings.simplefilter("ignore")  # numba / sklearn deprecation chatter
    report: dict[str, Any] = {"command": command(), "seeds": seeds, "sets": []}
    for spec in a.runs:
        name, run = set_and_run(spec)
        sr, store, run_id, s, embed = open_shared_run(run, name)
        x = embed(sr.uniques)
        k = len(set(sr.gold))
        labels = store.label_sets(run_id, len(sr.uniques), store.run(run_id).iterations)
        t0 = time.perf_counter()
        k_auto = MapEquationK(n_neighbors=s.auto_k_neighbours,
                              random_state=s.seed).estimate(x)
        out: dict[str, Any] = {"set": name, "run": run, "n_rows": len(sr.gold),
                               "n_distinct": len(sr.uniques), "k_true": k, "k_auto": k_auto,
                               "auto_k_seconds": round(time.perf_counter() - t0, 1),
                               "density_weight": s.density_weight, "rows": []}
        report["sets"].append(out)

        t0 = time.perf_counter()
        layout5 = umap_5d(x)
        add_row(out, "LLM-free: UMAP 5-d then K-means", k,
            [scores(sr.gold, C.KMeansClusterer(10, seed).fit_predict(layout5, k)[sr.uid_of])
             for seed in seeds], seconds=round(time.perf_counter() - t0))
        for mcs in (10, 15):
            t0 = time.perf_counter()
            part, found = bertopic_path(x, mcs)
            add_row(out, f"LLM-free: BERTopic path, min_cluster_size {mcs} (its own K)", found,
                [scores(sr.gold, part[sr.uid_of])], seconds=round(time.perf_counter() - t0))
        mix = mix_vectors(x, labels, embed, s.density_weight)
        paired: dict[int, list[float]] = {}
        for title, labs, layout in (("texts alone", None, None),
                                    ("default (labels)", labels, mix)):
            for k_used in (k, k_auto):
                t0 = time.perf_counter()
                per, chosen = select_over_seeds(
                    lambda seed: C.make_clusterer("select", 10, seed), x, k_used, seeds,
                    sr.gold, sr.uid_of, labels=labs, layout=layout)
                extra: dict[str, Any] = {"chosen": chosen}
                if labs is None:
                    paired[k_used] = [p["acc"] for p in per]
                else:
                    gain = np.array([p["acc"] for p in per]) - np.array(paired[k_used])
                    extra.update(labels_add_acc=round(float(gain.mean()), 2),
                                 labels_add_acc_sd=round(float(gain.std()), 2))
                add_row(out, f"select clusterer, {title}", k_used, per, **extra,
                    seconds=round(time.perf_counter() - t0))
    write_report(report, a.report, markdown)
    return 0


def markdown(r: dict[str, Any]) -> str:
    lines = ["# The defaults on data they were never chosen on", "",
             f"`{r['command']}`", "",
             f"Seeds {', '.join(map(str, r['seeds']))}; ACC / NMI / ARI x 100, mean ± sd "
             "over seeds; labels add: the default's ACC minus the texts alone's, paired "
             "per seed.", ""]
    for s in r["sets"]:
        lines += [f"## {s['set']} ({s['run']}): {s['n_rows']} rows, {s['n_distinct']} "
                  f"distinct, true K {s['k_true']}, estimated K {s['k_auto']} "
                  f"(density weight {s['density_weight']})", "",
                  "| pipeline | K | ACC | NMI | ARI | labels add (ACC) | kept | seconds |",
                  "|---|---|---|---|---|---|---|---|"]
        for x in s["rows"]:
            add = (f"{x['labels_add_acc']:+.1f} ± {x['labels_add_acc_sd']:.1f}"
                   if "labels_add_acc" in x else "")
            kept = ", ".join(sorted(set(x.get("chosen", []))))
            lines.append(f"| {x['row']} | {x['k']} | {x['acc']:.1f} ± {x['acc_sd']:.1f} | "
                         f"{x['nmi']:.1f} | {x['ari']:.1f} | {add} | {kept} | "
                         f"{x['seconds']} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
