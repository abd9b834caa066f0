"""Would merging near-identical labels make neighbours share them? A measurement.

    python scripts/label_canon.py SET=STORE:RUN [SET=STORE:RUN ...]
        [--report reports/label_canon.md]

With two neighbours in the initial prompt the 0.5B writer gives most texts a label of
their own (massive_intent: 2,094 distinct labels for 2,970 texts; "alarm_set",
"set_alarm", "alarms_set", "alarm_at_six_am" ...), so two neighbours rarely share
an initial label, though when they do they are one intent 90 % of the time
(reports/label_merge.md). Here each finished run's distinct initial labels are
embedded (as the mix join embeds them: underscores to spaces, cached in the run's
store) and grouped by average-linkage on cosine distance at several thresholds, every
label standing for its group. For each threshold: how many labels remain, how often
two 10-NN neighbours share one and how often those are one gold intent, and the
homogeneity / completeness / V-measure of the labels against gold (scoring only).
``label_key`` (the product's spelling-insensitive identity) is the first row.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stored_runs import command, parser, run_specs

SIMILARITIES = (0.95, 0.9, 0.85, 0.8, 0.75, 0.7)


def canon_groups(vectors: np.ndarray, sim: float) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=int)
    return AgglomerativeClustering(n_clusters=None, metric="cosine", linkage="average",
                                   distance_threshold=1.0 - sim).fit_predict(vectors)


def measure(x: np.ndarray, gold: list[str], labels: list[str]) -> dict:
    from sklearn.metrics import homogeneity_completeness_v_measure

    from intentlocal.pipeline.autok import knn_graph

    a = knn_graph(x, 10).tocoo()
    keep = a.row < a.col
    lab = np.array(labels, dtype=object)
    g = np.array(gold, dtype=object)
    share = lab[a.row[keep]] == lab[a.col[keep]]
    same = g[a.row[keep]] == g[a.col[keep]]
    h, c, v = homogeneity_completeness_v_measure(gold, labels)
    return {"distinct": len(set(labels)), "share": float(share.mean()),
            "p_same_share": float(same[share].mean()) if share.any() else float("nan"),
            "homogeneity": 100 * h, "completeness": 100 * c, "v_measure": 100 * v}


def main() -> int:
    ap = parser(__doc__, "label_canon.md", seeds=None)
    ap.add_argument("--cluster", default="", metavar="SIM,SIM",
                    help="also cluster with the default clusterer at the true K (seeds 0-4), "
                    "the final label sets guiding umap-hdbscan's splits, as written and "
                    "merged at these similarities")
    args = ap.parse_args()

    from label_merge import load_run

    from intentlocal.api import build_backends
    from intentlocal.config import load_settings
    from intentlocal.pipeline.augment import label_key
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store

    embedder, _ = build_backends(load_settings())
    out = []
    for name, path, run in run_specs(args.runs):
        x, gold, init, final = load_run(name, path, run, Path(args.data))
        first = [s[0] if s else "" for s in init]
        distinct = sorted(set(first))
        lv = embed_cached(Store(path), embedder, [d.replace("_", " ") for d in distinct])
        rows = [{"rule": "as written", **measure(x, gold, first)},
                {"rule": "label_key (spelling)", **measure(x, gold, [label_key(f) for f in first])}]
        for sim in SIMILARITIES:
            grp = canon_groups(lv, sim)
            of = dict(zip(distinct, grp.tolist(), strict=True))
            rows.append({"rule": f"embedding cosine >= {sim}",
                         **measure(x, gold, [str(of[f]) for f in first])})
        for r in rows:
            print(name, json.dumps(r), file=sys.stderr)
        clustered = []
        if args.cluster:
            from intentlocal.pipeline.cluster import SelectClusterer
            from intentlocal.pipeline.metrics import scores, summarise

            allv = sorted({lab for ls in final for lab in ls})
            fv = embed_cached(Store(path), embedder, [d.replace("_", " ") for d in allv])
            variants = [("as written", final)]
            for sim in (float(v) for v in args.cluster.split(",")):
                of = dict(zip(allv, canon_groups(fv, sim).tolist(), strict=True))
                variants.append((f"embedding cosine >= {sim}",
                                 [sorted({str(of[lab]) for lab in ls}) for ls in final]))
            for what, ls in variants:
                per, sel = [], SelectClusterer()
                for seed in range(5):
                    sel.set_seed(seed)
                    per.append(scores(gold, sel.fit_predict(x, len(set(gold)), labels=ls)))
                clustered.append({"labels": what, **summarise(per)})
                print(name, json.dumps(clustered[-1]), file=sys.stderr)
        out.append({"set": name, "texts": len(first), "intents": len(set(gold)), "rows": rows,
                    "clustered": clustered})
    report = {"command": command(), "sets": out}
    Path(args.report).with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = ["# Merging near-identical initial labels", "", f"Command: `{report['command']}`",
             "", "| set | labels | distinct | 10-NN pairs sharing one | of those, one intent | "
             "homogeneity | completeness | V |", "|---|---|---|---|---|---|---|---|"]
    for s in out:
        for r in s["rows"]:
            lines.append(f"| {s['set']} ({s['texts']} texts, {s['intents']} intents) | "
                         f"{r['rule']} | {r['distinct']} | {100 * r['share']:.1f} % | "
                         f"{100 * r['p_same_share']:.1f} % | {r['homogeneity']:.1f} | "
                         f"{r['completeness']:.1f} | {r['v_measure']:.1f} |")
    if any(s["clustered"] for s in out):
        lines += ["", "Default clusterer at the true K (seeds 0-4, distinct texts), final label "
                  "sets guiding umap-hdbscan's splits:", "",
                  "| set | labels | ACC | NMI |", "|---|---|---|---|"]
        for s in out:
            for c in s["clustered"]:
                lines.append(f"| {s['set']} | {c['labels']} | {c['acc']:.1f} ± {c['acc_sd']:.1f} "
                             f"| {c['nmi']:.1f} ± {c['nmi_sd']:.1f} |")
    Path(args.report).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
