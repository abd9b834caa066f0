"""Can the pseudo-labels choose among the candidate partitions? A measurement.

    python scripts/label_selection.py SET=STORE:RUN [SET=STORE:RUN ...] [--seeds 0,1,2,3,4]
        [--report reports/label_selection.md]

The default clusterer (cluster.SelectClusterer) runs K-means, spectral-15, spectral-25
and UMAP + HDBSCAN at the same K and keeps one partition by the cosine silhouette and
the 10-NN graph's modularity: geometry judging geometry. The LLM's labels are a second,
independent opinion on which texts belong together. Here, for each finished run
(its distinct texts, vectors and labels read back from its store), each seed and both
the true and the estimated K, every candidate's partition is scored three ways:

* against the gold intents (ACC / NMI; scoring only);
* by the product's geometric criteria (which candidate the default keeps);
* by its agreement with the pseudo-labels: the NMI between the partition and the
  texts' initial labels (one per text, written before any neighbour's label was
  shared; a final label set's first label is that same label).

Then each selection rule's kept partition is scored against gold: the default, the
best label agreement, and the label agreement among the default's silhouette ties.
Why: if the labels pick the better partition, they improve the clusters without
touching the vectors (the labels-as-vectors routes were measured not to).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stored_runs import command, parser, run_specs, seed_list, write_report


def main() -> int:
    args = parser(__doc__, "label_selection.md").parse_args()

    from label_merge import load_run
    from sklearn.metrics import normalized_mutual_info_score as nmi

    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.cluster import SelectClusterer
    from intentlocal.pipeline.metrics import scores, summarise

    seeds = seed_list(args.seeds)
    out = []
    for name, path, run in run_specs(args.runs):
        x, gold, init, final = load_run(name, path, run, Path(args.data))
        first = [s[0] if s else "" for s in init]
        k_true = len(set(gold))
        k_est = MapEquationK().estimate(x)
        for what, k in (("true K", k_true), ("estimated K", k_est)):
            rows: dict[str, list] = {}
            per_candidate: dict[str, list] = {}
            sel = SelectClusterer()
            for s in seeds:
                sel.set_seed(s)
                sel.fit_predict(x, k, labels=final)
                agree = {c: float(nmi(first, p)) for c, p in sel.partitions_.items()}
                for c, p in sel.partitions_.items():
                    per_candidate.setdefault(c, []).append(
                        scores(gold, p) | {"label_nmi": 100 * agree[c],
                                           "silhouette": sel.silhouettes_.get(c, float("nan")),
                                           "modularity": sel.modularities_.get(c, float("nan"))})
                best_sil = max(sel.silhouettes_.values())
                tied = [c for c in sel.silhouettes_ if sel.silhouettes_[c] >= best_sil - sel.tie]
                picks = {
                    "default (silhouette, ties to modularity)": sel.chosen_,
                    "best agreement with initial labels": max(agree, key=agree.get),
                    "silhouette ties to initial-label agreement": max(tied, key=agree.get),
                }
                for rule, c in picks.items():
                    rows.setdefault(rule, []).append(scores(gold, sel.partitions_[c])
                                                     | {"chosen": c})
            res = {"set": name, "what": what, "k": k, "k_true": k_true,
                   "candidates": {c: summarise(v) | {
                       m: round(float(np.mean([r[m] for r in v])), 4)
                       for m in ("label_nmi", "silhouette", "modularity")}
                       for c, v in per_candidate.items()},
                   "rules": {r: summarise(v) | {"chosen": [x["chosen"] for x in v]}
                             for r, v in rows.items()}}
            out.append(res)
            print(json.dumps(res), file=sys.stderr)
    write_report({"command": command(), "seeds": seeds, "results": out}, args.report, markdown)
    return 0


def markdown(r: dict) -> str:
    lines = ["# Choosing among candidate partitions by the pseudo-labels", "",
             f"Command: `{r['command']}`  ",
             f"Seeds {r['seeds']}; ACC / NMI x 100 against gold (scoring only), mean ± sd; "
             "label NMI: NMI x 100 between the partition and the texts' initial labels "
             "", "",
             "## Candidates", "",
             "| set | K | candidate | ACC | NMI | label NMI | silhouette | modularity |",
             "|---|---|---|---|---|---|---|---|"]
    for res in r["results"]:
        for c, v in res["candidates"].items():
            lines.append(f"| {res['set']} | {res['what']} {res['k']} | {c} | {v['acc']:.1f} ± "
                         f"{v['acc_sd']:.1f} | {v['nmi']:.1f} | {v['label_nmi']:.2f} | "
                         f"{v['silhouette']:.4f} | "
                         f"{v['modularity']:.4f} |")
    lines += ["", "## Selection rules", "", "| set | K | rule | ACC | NMI | kept |",
              "|---|---|---|---|---|---|"]
    for res in r["results"]:
        for rule, v in res["rules"].items():
            kept = ", ".join(sorted(set(v["chosen"])))
            lines.append(f"| {res['set']} | {res['what']} {res['k']} | {rule} | {v['acc']:.1f} ± "
                         f"{v['acc_sd']:.1f} | {v['nmi']:.1f} ± {v['nmi_sd']:.1f} | {kept} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
