"""Can the pseudo-labels correct the estimated K? Diagnostics and a merge simulation.

    python scripts/label_merge.py SET=STORE:RUN [SET=STORE:RUN ...] [--seeds 0,1,2,3,4]
        [--report reports/label_merge.md]

Each STORE:RUN is a finished ``intentlocal run`` of ../shared/data/SET/test.jsonl: its
distinct texts, their vectors (from the run's own store) and their labels are read back,
the K a run would estimate (MapEquationK on the texts' vectors) is computed, and the
default clusterer partitions the texts at that K, seed by seed. Then, with gold labels
used for scoring only:

* edges: on the 10-nearest-neighbour graph, how often two neighbours that share a label
  are one intent, against two that share none (could labels re-weight the estimator's
  graph?);
* profiles: for each cluster and each of its 5 nearest clusters (centroid cosine), the
  cosine of their label-count profiles, and whether the two have the same majority gold
  intent (an over-split intent) or not; the AUC of that similarity for "same intent";
* re-weighted estimate: MapEquationK on the same graph with the edges whose ends share
  no label weighted ``beta`` (1 = the estimator as it is);
* merging: pairs of neighbouring clusters whose label profiles' cosine is at least tau
  are merged, most similar first, and the merged partition is scored (K, ACC, NMI).

Why: the estimator over-splits banking77 (89 for 77) and under-splits mtop_intent (78
for 102); a correction that is read off the labels would make the labels the reason
for a better K.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stored_runs import command, parser, run_specs, seed_list, write_report

TAUS = {"cosine": (0.5, 0.6, 0.7, 0.8, 0.9), "overlap": (0.3, 0.4, 0.5, 0.6)}
BETAS = (1.0, 0.5, 0.25)


def load_run(name: str, store_path: str, run_id: int, data: Path):
    """Distinct texts as the run clustered them, their first row's gold intent, the
    run's vectors and its initial (iteration 0) and final label sets."""
    from intentlocal.api import build_backends
    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.errors import InputError
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store

    texts, gold = load_labelled(data / name / "test.jsonl", None, 0)
    uniques, uids = Corpus(texts, [], name).unique()
    first: dict[int, str] = {}
    for row, u in enumerate(uids):
        first.setdefault(int(u), gold[row])
    store = Store(store_path)
    if store.uniques(run_id) != uniques:
        raise InputError(f"{store_path} run {run_id} was not made from {name}'s texts")
    embedder, _ = build_backends(load_settings())
    x = embed_cached(store, embedder, uniques)
    init = store.label_sets(run_id, len(uniques), 0)
    final = store.label_sets(run_id, len(uniques), 1_000)
    return x, [first[u] for u in range(len(uniques))], init, final


def profiles(part: np.ndarray, labels: list[list[str]]) -> list[Counter]:
    out = [Counter() for _ in range(int(part.max()) + 1)]
    for c, ls in zip(part, labels, strict=True):
        out[c].update(ls)
    return out


def cosine(a: Counter, b: Counter) -> float:
    dot = sum(v * b.get(k, 0) for k, v in a.items())
    na = sum(v * v for v in a.values()) ** 0.5
    nb = sum(v * v for v in b.values()) ** 0.5
    return dot / (na * nb) if na and nb else 0.0


def centroid_neighbours(x: np.ndarray, part: np.ndarray, m: int = 5) -> list[tuple[int, int]]:
    k = int(part.max()) + 1
    c = np.stack([x[part == i].mean(axis=0) for i in range(k)])
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    sim = c @ c.T
    np.fill_diagonal(sim, -np.inf)
    pairs = set()
    for i in range(k):
        for j in np.argsort(-sim[i])[: min(m, k - 1)]:  # never itself (last, at -inf)
            pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def majority(part: np.ndarray, gold: list[str]) -> list[str]:
    by: dict[int, Counter] = {}
    for c, g in zip(part, gold, strict=True):
        by.setdefault(int(c), Counter())[g] += 1
    return [by[i].most_common(1)[0][0] for i in range(int(part.max()) + 1)]


def auc(pos: list[float], neg: list[float]) -> float:
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def merge(x: np.ndarray, part: np.ndarray, labels: list[list[str]], tau: float,
          how: str = "cosine") -> np.ndarray:
    """Merge neighbouring clusters whose label profiles agree (``how``: cosine of the
    label counts, or ``overlap``, the product's histogram intersection) at least tau,
    most similar pair first, recomputing the merged cluster's profile and neighbours."""
    from intentlocal.pipeline.cluster import label_overlap

    part = part.copy()
    while True:
        prof = profiles(part, labels)
        best, pair = tau, None
        for i, j in centroid_neighbours(x, part):
            if how == "overlap":
                s = label_overlap([labels[t] for t in np.where(part == i)[0]],
                                  [labels[t] for t in np.where(part == j)[0]])
            else:
                s = cosine(prof[i], prof[j])
            if s >= best:
                best, pair = s, (i, j)
        if pair is None:
            return part
        i, j = pair
        part[part == j] = i
        part = np.unique(part, return_inverse=True)[1]


def merge_same_top(x: np.ndarray, part: np.ndarray, labels: list[list[str]]) -> np.ndarray:
    """Merge neighbouring clusters whose most shared label is the same (the clusters
    that ``name_clusters`` has to tell apart with a suffix), until none are left."""
    part = part.copy()
    while True:
        prof = profiles(part, [sorted(set(s)) for s in labels])
        top = [max(p, key=lambda lab: (p[lab], lab)) if p else "" for p in prof]
        pair = next(((i, j) for i, j in centroid_neighbours(x, part)
                     if top[i] and top[i] == top[j]), None)
        if pair is None:
            return part
        i, j = pair
        part[part == j] = i
        part = np.unique(part, return_inverse=True)[1]


def edge_stats(x: np.ndarray, gold: list[str], labels: list[list[str]]) -> dict:
    from intentlocal.pipeline.autok import knn_graph

    a = knn_graph(x, 10).tocoo()
    keep = a.row < a.col
    share = same_share = none = same_none = 0
    sets = [set(s) for s in labels]
    for i, j in zip(a.row[keep], a.col[keep], strict=True):
        same = gold[i] == gold[j]
        if sets[i] & sets[j]:
            share += 1
            same_share += same
        else:
            none += 1
            same_none += same
    return {"edges": share + none, "share_frac": share / (share + none),
            "p_same_share": same_share / max(share, 1), "p_same_none": same_none / max(none, 1)}


def reweighted_k(x: np.ndarray, labels: list[list[str]], beta: float, k: int) -> int:
    from intentlocal.pipeline.autok import graph_communities, knn_graph

    a = knn_graph(x, k).tocoo()
    sets = [set(s) for s in labels]
    w = np.array([1.0 if sets[i] & sets[j] else beta for i, j in zip(a.row, a.col, strict=True)])
    from scipy import sparse

    g = sparse.csr_matrix((w, (a.row, a.col)), shape=a.shape)
    return int(graph_communities(g, "mapequation", seed=0, trials=2).max() + 1)


def main() -> int:
    args = parser(__doc__, "label_merge.md").parse_args()

    from intentlocal.pipeline.autok import MapEquationK, neighbours_for
    from intentlocal.pipeline.cluster import SelectClusterer
    from intentlocal.pipeline.metrics import scores, summarise

    seeds = seed_list(args.seeds)
    out = []
    for name, path, run in run_specs(args.runs):
        x, gold, init, final = load_run(name, path, run, Path(args.data))
        k_true = len(set(gold))
        k_est = MapEquationK().estimate(x)
        row: dict = {"set": name, "k_true": k_true, "k_est": k_est, "n": len(gold)}
        row["edges"] = {w: edge_stats(x, gold, ls) for w, ls in (("initial", init),
                                                                   ("final", final))}
        row["reweighted_k"] = {f"{w} beta={b}": reweighted_k(x, ls, b, neighbours_for(len(x)))
                               for w, ls in (("initial", init), ("final", final))
                               for b in BETAS}
        print(name, k_true, k_est, json.dumps(row["edges"]), json.dumps(row["reweighted_k"]),
              file=sys.stderr)
        base, merged, aucs = [], {}, {"initial": [], "final": []}
        sel = SelectClusterer()
        for s in seeds:
            sel.set_seed(s)
            part = sel.fit_predict(x, k_est, labels=final)
            base.append(scores(gold, part) | {"k": k_est})
            maj = majority(part, gold)
            pairs = centroid_neighbours(x, part)
            for w, ls in (("initial", init), ("final", final)):
                prof = profiles(part, ls)
                pos = [cosine(prof[i], prof[j]) for i, j in pairs if maj[i] == maj[j]]
                neg = [cosine(prof[i], prof[j]) for i, j in pairs if maj[i] != maj[j]]
                aucs[w].append({"auc": auc(pos, neg), "same": len(pos), "diff": len(neg),
                                "same_mean": float(np.mean(pos)) if pos else float("nan"),
                                "diff_mean": float(np.mean(neg)) if neg else float("nan")})
                m = merge_same_top(x, part, ls)
                merged.setdefault(f"{w} same top label", []).append(
                    scores(gold, m) | {"k": int(m.max()) + 1})
                for how in ("cosine", "overlap"):
                    for tau in TAUS[how]:
                        m = merge(x, part, ls, tau, how)
                        merged.setdefault(f"{w} {how} >= {tau}", []).append(
                            scores(gold, m) | {"k": int(m.max()) + 1})
            print(f"  seed {s}: {base[-1]}", file=sys.stderr)
        # True K: merge by the labels, then split back to K with the product's
        # label-aware split rule, so K stays the user's and only where it is spent moves.
        from intentlocal.pipeline.cluster.density import _split_labels
        from intentlocal.pipeline.vectors import unit_rows

        xu = unit_rows(x)
        true_base, repaired = [], {}
        for s in seeds:
            sel.set_seed(s)
            part = sel.fit_predict(x, k_true, labels=final)
            true_base.append(scores(gold, part) | {"k": k_true, "chosen": sel.chosen_})
            for w, ls in (("initial", init), ("final", final)):
                for key, m in ((f"{w} same top label", merge_same_top(x, part, ls)),
                               (f"{w} overlap >= 0.5", merge(x, part, ls, 0.5, "overlap"))):
                    k_m = int(m.max()) + 1
                    back = _split_labels(xu, m, k_true, s, final)
                    repaired.setdefault(key, []).append(
                        scores(gold, back) | {"k": k_m})
        row["true_base"] = summarise(true_base)
        row["repaired"] = {key: summarise(v) | {"k_mean": float(np.mean([r["k"] for r in v]))}
                           for key, v in repaired.items()}
        for key, v in row["repaired"].items():
            print(f"  true K, {key}: merged to {v['k_mean']:.1f}, split back: ACC {v['acc']:.1f} "
                  f"NMI {v['nmi']:.1f} (base {row['true_base']['acc']:.1f})", file=sys.stderr)
        row["base"] = summarise(base) | {"k": k_est}
        row["merged"] = {key: summarise(v) | {"k_mean": float(np.mean([r["k"] for r in v]))}
                         for key, v in merged.items()}
        row["profile_auc"] = aucs
        out.append(row)
        for key, v in row["merged"].items():
            print(f"  {key}: K {v['k_mean']:.1f} ACC {v['acc']:.1f} NMI {v['nmi']:.1f}",
                  file=sys.stderr)
    write_report({"command": command(), "seeds": seeds, "sets": out}, args.report, markdown)
    return 0


def markdown(r: dict) -> str:
    lines = ["# Label-based corrections of the estimated K", "",
             f"Command: `{r['command']}`  ", f"Seeds {r['seeds']}; ACC / NMI x 100, mean ± sd.",
             "", "## Edges of the 10-NN graph", "",
             "| set | labels | share a label | P(same intent \\| share) | P(same \\| none) |",
             "|---|---|---|---|---|"]
    for s in r["sets"]:
        for w, e in s["edges"].items():
            lines.append(f"| {s['set']} | {w} | {100 * e['share_frac']:.1f} % | "
                         f"{100 * e['p_same_share']:.1f} % | {100 * e['p_same_none']:.1f} % |")
    lines += ["", "## MapEquationK with non-sharing edges weighted beta", "",
              "| set | true K | " + " | ".join(r["sets"][0]["reweighted_k"]) + " |",
              "|---|---|" + "---|" * len(r["sets"][0]["reweighted_k"])]
    for s in r["sets"]:
        lines.append(f"| {s['set']} | {s['k_true']} | "
                     + " | ".join(str(v) for v in s["reweighted_k"].values()) + " |")
    lines += ["", "## Neighbouring clusters' label profiles (cosine), same vs different "
              "majority intent", "", "| set | labels | pairs same / diff | mean same | "
              "mean diff | AUC |", "|---|---|---|---|---|---|"]
    for s in r["sets"]:
        for w, per in s["profile_auc"].items():
            lines.append(
                f"| {s['set']} | {w} | {np.mean([p['same'] for p in per]):.0f} / "
                f"{np.mean([p['diff'] for p in per]):.0f} | "
                f"{np.nanmean([p['same_mean'] for p in per]):.3f} | "
                f"{np.nanmean([p['diff_mean'] for p in per]):.3f} | "
                f"{np.nanmean([p['auc'] for p in per]):.3f} |")
    lines += ["", "## Merging neighbouring clusters whose profiles agree", "",
              "| set | rule | K | ACC | NMI |", "|---|---|---|---|---|"]
    for s in r["sets"]:
        b = s["base"]
        lines.append(f"| {s['set']} (true K {s['k_true']}) | none (estimated K) | {s['k_est']} | "
                     f"{b['acc']:.1f} ± {b['acc_sd']:.1f} | {b['nmi']:.1f} ± {b['nmi_sd']:.1f} |")
        for key, v in s["merged"].items():
            lines.append(f"| {s['set']} | {key} | {v['k_mean']:.1f} | {v['acc']:.1f} ± "
                         f"{v['acc_sd']:.1f} | {v['nmi']:.1f} ± {v['nmi_sd']:.1f} |")
    lines += ["", "## True K: merged by the labels, then split back to K by the label-aware "
              "share rule", "", "| set | rule | merged to K | ACC | NMI |", "|---|---|---|---|---|"]
    for s in r["sets"]:
        b = s["true_base"]
        lines.append(f"| {s['set']} | none (true K) | {s['k_true']} | {b['acc']:.1f} ± "
                     f"{b['acc_sd']:.1f} | {b['nmi']:.1f} ± {b['nmi_sd']:.1f} |")
        for key, v in s["repaired"].items():
            lines.append(f"| {s['set']} | {key} | {v['k_mean']:.1f} | {v['acc']:.1f} ± "
                         f"{v['acc_sd']:.1f} | {v['nmi']:.1f} ± {v['nmi_sd']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
