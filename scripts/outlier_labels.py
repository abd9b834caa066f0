"""Can the pseudo-labels place UMAP + HDBSCAN's outliers better than their vectors do?

    python scripts/outlier_labels.py SET=STORE:RUN [...] [--seeds 0,1,2,3,4]
        [--report reports/outlier_labels.md]

Why: on massive_intent and mtop_intent, where the default keeps umap-hdbscan, HDBSCAN
leaves 7-10 % of the texts as outliers (reports/hdbscan_impl.md), and the candidate
joins each to the cluster with the nearest centroid, as BERTopic does. Those are the
texts the geometry is least sure of: if the LLM's labels carry anything the vectors do
not, it should show here. Each STORE:RUN is a finished run of ../shared/data/SET/test.jsonl
(its vectors and label sets are read back; no LLM call). Per seed, one UMAP layout and
HDBSCAN's groups; the outliers are joined by:

* centroid: the nearest centroid (cosine), the product's rule;
* 10-NN vote: the cluster most of the outlier's 10 nearest grouped texts are in (LLM-free);
* labels (initial / final): the cluster in which the largest share of texts carries one
  of the outlier's labels, ties and no match going to the nearest centroid;
* centroid + labels: cosine to the centroid plus 0.1 x that share.

"outliers right": the share of outliers whose cluster's majority gold intent (over its
grouped texts) is their own. ACC / NMI over the distinct texts, HDBSCAN's own groups (not
brought to K). Gold labels score only.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_merge import load_run
from stored_runs import command, parser, run_specs, seed_list, write_report


def label_share(labels: list[list[str]], lab: np.ndarray, n_clusters: int) -> dict:
    """Per label, the share of each cluster's grouped texts that carry it."""
    sizes = np.bincount(lab[lab >= 0], minlength=n_clusters)
    carry: dict[str, Counter] = {}
    for i in np.flatnonzero(lab >= 0):
        for lb in set(labels[i]):
            carry.setdefault(lb, Counter())[int(lab[i])] += 1
    return {lb: {c: n / sizes[c] for c, n in cnt.items()} for lb, cnt in carry.items()}


def join(x: np.ndarray, lab: np.ndarray, rule: str, labels: list[list[str]] | None) -> np.ndarray:
    from intentlocal.pipeline.cluster import join_outliers
    from intentlocal.pipeline.cluster.base import _centroids

    lab = np.unique(lab, return_inverse=True)[1] - (1 if (lab < 0).any() else 0)
    out = lab.copy()
    grouped = np.flatnonzero(lab >= 0)
    outl = np.flatnonzero(lab < 0)
    if not len(outl):
        return out
    if rule in ("centroid", "10-NN vote"):  # the product's rules (DensityClusterer)
        return join_outliers(x, lab, "vote" if rule == "10-NN vote" else "centroid")
    ids, cents = _centroids(x[grouped], lab[grouped])
    cos = x[outl] @ cents.T  # columns are cluster ids 0..n-1 (ids == arange)
    assert labels is not None
    share = label_share(labels, lab, len(ids))
    for r, i in enumerate(outl):
        s = np.zeros(len(ids))
        for lb in set(labels[i]):
            for c, v in share.get(lb, {}).items():
                s[c] = max(s[c], v)
        if rule == "labels":
            out[i] = int(np.argmax(cos[r])) if s.max() == 0 else int(
                max(np.flatnonzero(s == s.max()), key=lambda c: cos[r, c]))
        else:  # centroid + labels
            out[i] = int(np.argmax(cos[r] + 0.1 * s))
    return out


def outliers_right(lab_before: np.ndarray, joined: np.ndarray, gold: list[str]) -> float:
    majority = {}
    for c in set(joined[lab_before >= 0].tolist()):
        majority[c] = Counter(gold[i] for i in np.flatnonzero((joined == c) & (lab_before >= 0))
                              ).most_common(1)[0][0]
    outl = np.flatnonzero(lab_before < 0)
    return float(np.mean([majority.get(int(joined[i])) == gold[i] for i in outl]))


def main() -> int:
    args = parser(__doc__, "outlier_labels.md").parse_args()
    warnings.simplefilter("ignore")
    from intentlocal.pipeline.cluster import DensityClusterer
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.pipeline.vectors import unit_rows

    rules = ["centroid", "10-NN vote", "labels (initial)", "labels (final)",
             "centroid + labels (final)"]
    results = []
    for name, path, run in run_specs(args.runs):
        x, gold, init, final = load_run(name, path, run, Path(args.data))
        x = unit_rows(x)
        per: dict[str, list[dict]] = {r: [] for r in rules}
        right: dict[str, list[float]] = {r: [] for r in rules}
        share_out = []
        for seed in seed_list(args.seeds):
            lab = DensityClusterer(random_state=seed).groups(x)
            share_out.append(float((lab < 0).mean()))
            for r in rules:
                labels = init if "initial" in r else final
                j = join(x, lab, r.split(" (")[0], labels)
                per[r].append(scores(gold, j))
                right[r].append(outliers_right(lab, j, gold))
            print(name, seed, {r: (round(per[r][-1]["acc"], 1), round(right[r][-1], 3))
                               for r in rules}, file=sys.stderr, flush=True)
        for r in rules:
            results.append({"set": name, "run": f"{path}:{run}", "rule": r,
                            "outliers": round(float(np.mean(share_out)), 3),
                            "outliers_right": round(float(np.mean(right[r])), 3),
                            **summarise(per[r])})

    def markdown(rep: dict) -> str:
        lines = [
            "# Joining HDBSCAN's outliers: by vectors or by pseudo-labels", "",
            f"Command: `{rep['command']}`  ", "Distinct texts, HDBSCAN's own groups "
            "(not brought to K), mean ± sd over seeds " + args.seeds + ". ACC / NMI x 100.",
            "", "| set | outliers | rule | outliers right | ACC | NMI |",
            "|---|---|---|---|---|---|"]
        for r in rep["results"]:
            lines.append(f"| {r['set']} | {r['outliers']:.1%} | {r['rule']} | "
                         f"{r['outliers_right']:.1%} | {r['acc']:.1f} ± {r['acc_sd']:.1f} | "
                         f"{r['nmi']:.1f} |")
        return "\n".join(lines) + "\n"

    write_report({"command": command(), "results": results}, args.report, markdown)
    print(markdown({"command": command(), "results": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
