"""Measure the final clusterers on the four intent benchmarks, with and without labels.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/bench_clusterers.py \\
        [--sets banking77,clinc150,massive_intent,mtop_intent] [--seeds 0,1,2,3,4] \\
        [--labels banking77=/path/runs.sqlite3:RUN ...] [--report reports/clusterers.md]

For each set (test.jsonl under --data) the texts are embedded with the default embedder
(through a run store's cache, --cache, so a second call embeds nothing), and each
candidate of ``SelectClusterer`` and the selection itself cluster them with the true K,
over the seeds (mean ± sd). With ``--labels SET=STORE:RUN`` (a finished run of
that set) the same clusterers also run with the run's refined labels: on the texts'
own vectors with the labels choosing where umap-hdbscan splits a group (what a run
does by default since 30 Nov), and on the text vector mixed with 0.1 x its labels'
mean vector (the default before), so the report shows whether the pseudo-labels add
anything under each clusterer. Gold labels
are used for scoring only.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stored_runs import CHECKOUT, command, run_specs

SETS = ["banking77", "clinc150", "massive_intent", "mtop_intent"]


def run_labels(store_path: str, run_id: int, texts: list[str],
               distinct: bool = False) -> list[list[str]]:
    """Final labels per text (per distinct text with ``distinct``) of a finished run,
    checked to be a run of these texts."""
    from intentlocal.errors import InputError
    from intentlocal.store import Store

    store = Store(store_path)
    rows = store.texts(run_id)
    if [t for _, _, t in rows] != texts:
        raise InputError(f"{store_path} run {run_id} was not made from these texts")
    final = store.label_sets(run_id, len(store.uniques(run_id)), 1_000)
    return final if distinct else [final[uid] for _, uid, _ in rows]


def choose_on_graph(sel, x: np.ndarray, g: int) -> str:
    """The candidate the default rule keeps among ``sel``'s last partitions when
    modularity is measured on the g-nearest-neighbour graph instead of its own."""
    from intentlocal.pipeline.autok import knn_graph
    from intentlocal.pipeline.cluster import modularity

    own = dict(sel.modularities_)
    graph = knn_graph(x, g)
    try:
        sel.modularities_ = {n: round(modularity(graph, sel.partitions_[n]), 4) for n in own}
        return sel.choose("tie-break")
    finally:
        sel.modularities_ = own


def choose_with_outlier_vote(sel, x: np.ndarray, k: int, labels) -> tuple[str, np.ndarray,
                                                                            np.ndarray]:
    """The default rule's pick had umap-hdbscan joined its outliers by a 10-NN vote
    (DensityClusterer(outliers="vote")), from the same UMAP layout and HDBSCAN groups
    (the candidate's memo); the consensus, when a candidate, is recomputed from the
    changed partitions. Returns the pick, its partition and umap-hdbscan's own."""
    from intentlocal.pipeline.autok import knn_graph
    from intentlocal.pipeline.cluster import consensus_partition, fit_clusters, modularity
    from intentlocal.pipeline.cluster.base import _silhouette

    dens = sel.candidates["umap-hdbscan"]
    saved = (dict(sel.partitions_), dict(sel.silhouettes_), dict(sel.modularities_),
             dens.found_, dens.split_, dens.outliers)
    dens.outliers = "vote"
    try:
        voted = np.asarray(fit_clusters(dens, x, k, labels), dtype=np.int64)
        sel.partitions_["umap-hdbscan"] = voted
        changed = ["umap-hdbscan"]
        if "consensus" in sel.partitions_:
            sel.partitions_["consensus"] = consensus_partition(
                [p for n, p in sel.partitions_.items() if n != "consensus"], k,
                sel.random_state, sel.n_init)
            changed.append("consensus")
        graph = knn_graph(x, sel.graph_neighbors)
        for n in changed:
            sel.silhouettes_[n] = round(_silhouette(x, sel.partitions_[n], sel.sample), 4)
            sel.modularities_[n] = round(modularity(graph, sel.partitions_[n]), 4)
        best = sel.choose("tie-break")
        return best, sel.partitions_[best], voted
    finally:
        (sel.partitions_, sel.silhouettes_, sel.modularities_, dens.found_,
         dens.split_, dens.outliers) = saved


def evenness(part: np.ndarray) -> float:
    """Entropy of the cluster sizes over its maximum, log K: 1 when every cluster has
    the same size, lower the more a few clusters hold most texts."""
    sizes = np.bincount(np.asarray(part))
    sizes = sizes[sizes > 0]
    if len(sizes) < 2:
        return 0.0
    p = sizes / sizes.sum()
    return float(-(p * np.log(p)).sum() / np.log(len(sizes)))


def choose_even(sel) -> str:
    """The default rule with its modularity tie-break replaced: among the candidates
    whose silhouette ties with the best, the one with the most even cluster sizes."""
    return max(sel.silhouette_ties(), key=lambda n: evenness(sel.partitions_[n]))


def evaluate(x: np.ndarray, gold: list[str], k: int, seeds: list[int],
             labels: list[list[str]] | None = None,
             rows_of: list[int] | None = None, graphs: list[int] | None = None,
             balance: bool = False, consensus: bool = False,
             select_consensus: bool = False, outlier_vote: bool = False) -> list[dict]:
    """Each candidate, and the selection by each criterion, from the same partitions;
    with ``labels`` the candidates that take pseudo-labels get them (umap-hdbscan's
    splits), as a run passes them by default. ``rows_of``: which row of ``x`` each
    input row's text is (--distinct: distinct texts clustered, every input row scored,
    as a run does). ``graphs``: sizes of the nearest-neighbour graph to measure the
    selection's modularity on besides its own (10), from the same partitions. ``balance``:
    also select with ties going to the most even cluster sizes. ``consensus``: also the
    ConsensusClusterer's partition, from the same candidates' partitions.
    ``select_consensus``: the consensus is one more candidate of the selection
    (SelectClusterer(consensus=True)), so "select by ..." rows may keep it.
    ``outlier_vote``: also umap-hdbscan, and the default rule's pick, with HDBSCAN's
    outliers joined by a 10-NN vote instead of the nearest centroid."""
    from intentlocal.errors import RunError
    from intentlocal.pipeline.cluster import AverageLinkage, SelectClusterer, consensus_partition
    from intentlocal.pipeline.metrics import scores as score_rows
    from intentlocal.pipeline.metrics import summarise

    def scores(gold: list[str], pred: np.ndarray) -> dict:
        return score_rows(gold, pred if rows_of is None else np.asarray(pred)[rows_of])

    sel = SelectClusterer(consensus=select_consensus)
    per: dict[str, list[dict]] = {}
    splits: list[str] = []  # the rule umap-hdbscan reached K by, per seed
    chosen: dict[str, list[str]] = {"tie-break": [], "modularity": [], "silhouette": []}
    crit: dict[str, dict] = {}
    for seed in seeds:
        sel.set_seed(seed)
        sel.fit_predict(x, k, labels=labels)
        for name, pred in sel.partitions_.items():
            per.setdefault(name, []).append(scores(gold, pred))
        if "umap-hdbscan" in sel.partitions_:
            splits.append(sel.candidates["umap-hdbscan"].split_ or "none needed")
        for c in ("tie-break", "modularity", "silhouette"):  # the rule's own criteria only
            best = sel.choose(c)
            chosen[c].append(best)
            per.setdefault(f"select by {c}", []).append(scores(gold, sel.partitions_[best]))
        if select_consensus:  # the rule until 4 Dec: the consensus's modularity unchecked
            guard, sel.consensus_modularity_tie = sel.consensus_modularity_tie, float("inf")
            best = sel.choose("tie-break")
            sel.consensus_modularity_tie = guard
            key = "tie-break, consensus without the modularity guard"
            chosen.setdefault(key, []).append(best)
            per.setdefault(f"select by {key}", []).append(scores(gold, sel.partitions_[best]))
        if outlier_vote and "umap-hdbscan" in sel.partitions_:
            best, part, voted = choose_with_outlier_vote(sel, x, k, labels)
            per.setdefault("umap-hdbscan, outliers by 10-NN vote", []).append(
                scores(gold, voted))
            key = "tie-break, umap-hdbscan's outliers by 10-NN vote"
            chosen.setdefault(key, []).append(best)
            per.setdefault(f"select by {key}", []).append(scores(gold, part))
        crit[seed] = {"silhouette": dict(sel.silhouettes_), "modularity": dict(sel.modularities_),
                      "evenness": {n: round(evenness(p), 4) for n, p in sel.partitions_.items()}}
        if balance:
            best = choose_even(sel)
            chosen.setdefault("tie-break, ties to the most even sizes", []).append(best)
            per.setdefault("select by tie-break, ties to the most even sizes", []).append(
                scores(gold, sel.partitions_[best]))
        if consensus and len(sel.partitions_) > 1 and not select_consensus:
            part = consensus_partition(list(sel.partitions_.values()), k, seed)
            per.setdefault("consensus of the candidates", []).append(scores(gold, part))
        for g in graphs or []:
            best = choose_on_graph(sel, x, g)
            key = f"tie-break, modularity on the {g}-NN graph"
            chosen.setdefault(key, []).append(best)
            per.setdefault(f"select by {key}", []).append(scores(gold, sel.partitions_[best]))
    # a candidate until 28 Nov, kept for comparison (deterministic: one fit serves all seeds)
    reference = "average-linkage (not a candidate)"
    try:
        avg = scores(gold, AverageLinkage().fit_predict(x, k))
        per[reference] = [avg] * len(seeds)
    except RunError as exc:  # its n² memory limit
        print(f"  average linkage skipped: {exc}", file=sys.stderr)
    rows = []
    for name, vals in per.items():
        row: dict = {"clusterer": name, "k": k, **summarise(vals),
                     "acc_per_seed": [round(v["acc"], 2) for v in vals]}
        if name.startswith("select by "):
            c = name.removeprefix("select by ")
            row["chosen"] = sorted(set(chosen[c]), key=chosen[c].index)
            row["criteria_per_seed"] = crit
        if name == "umap-hdbscan":
            row["chosen"] = [f"split: {r} x{splits.count(r)}"
                             for r in sorted(set(splits), key=splits.index)]
        rows.append(row)
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--labels", nargs="*", default=[], metavar="SET=STORE:RUN")
    ap.add_argument("--cache", default=str(CHECKOUT / ".cache" / "clusterers.sqlite3"))
    ap.add_argument("--report", default=str(CHECKOUT / "reports" / "clusterers.md"))
    ap.add_argument("--no-mix", action="store_true",
                    help="skip the mixed-vector input (it embeds every distinct label)")
    ap.add_argument("--distinct", action="store_true",
                    help="cluster the distinct texts, as a run does (same text once, "
                    "whitespace and case aside), and score every input row by its text's "
                    "cluster; by default every row is clustered")
    ap.add_argument("--graphs", default="",
                    help="comma-separated graph sizes: also select with modularity "
                    "measured on these nearest-neighbour graphs (same partitions)")
    ap.add_argument("--balance", action="store_true",
                    help="also select with silhouette ties going to the most even sizes")
    ap.add_argument("--consensus", action="store_true",
                    help="also the consensus of the candidates' partitions (the consensus "
                    "clusterer), from the same partitions")
    ap.add_argument("--select-consensus", action="store_true",
                    help="the consensus partition is one more candidate of the selection")
    ap.add_argument("--outlier-vote", action="store_true",
                    help="also umap-hdbscan and the selection with outliers joined by a "
                    "10-NN vote (same layouts)")
    ap.add_argument("--auto-k", action="store_true",
                    help="K estimated by the product's MapEquationK instead of the true K")
    args = ap.parse_args()

    from intentlocal.api import build_backends
    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.pipeline.augment import mix_vectors
    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store

    seeds = [int(s) for s in args.seeds.split(",")]
    labels_of = {}
    for name, path, run in run_specs(args.labels):
        labels_of[name] = (path, run)
    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    cache = Store(args.cache)
    settings = load_settings()
    embedder, _ = build_backends(settings)
    results = []
    for name in args.sets.split(","):
        texts, gold = load_labelled(Path(args.data) / name / "test.jsonl", None, 0)
        k_true = len(set(gold))
        # a run's own store already holds its texts' vectors (same embedder): no re-embedding
        store = Store(labels_of[name][0]) if name in labels_of else cache
        rows_of = None
        if args.distinct:
            from intentlocal.ingest import Corpus

            uniques, rows_of = Corpus(texts, [], name).unique()
            x = embed_cached(store, embedder, uniques)
        else:
            x = embed_cached(store, embedder, texts)
        inputs: list[tuple[str, np.ndarray, list[list[str]] | None]] = [
            ("embeddings alone", x, None)]
        if name in labels_of:
            final = run_labels(*labels_of[name], texts, args.distinct)
            inputs.append(("embeddings, refined labels guide the splits", x, final))
            if not args.no_mix:
                mixed = mix_vectors(x, final, lambda b, st=store: embed_cached(st, embedder, b),
                                    0.1)
                inputs.append(("refined labels, mix w=0.1", mixed, None))
        for what, v, guide in inputs:
            k = k_true
            if args.auto_k:
                k = MapEquationK(n_neighbors=settings.auto_k_neighbours).estimate(v)
            print(f"{name} (K={k}, true {k_true}), {what}", file=sys.stderr)
            graphs = [int(g) for g in args.graphs.split(",") if g]
            for row in evaluate(v, gold, k, seeds, guide, rows_of, graphs, args.balance,
                                args.consensus, args.select_consensus, args.outlier_vote):
                row.update(set=name, input=what, k_true=k_true)
                results.append(row)
                print(f"  {row['clusterer']:<26} ACC {row['acc']:5.1f} ± {row['acc_sd']:.1f}  "
                      f"NMI {row['nmi']:5.1f}  ARI {row['ari']:5.1f}  {row.get('chosen', '')}",
                      file=sys.stderr)
    report = {"command": command(),
              "embedder": embedder.model_id, "seeds": seeds, "auto_k": args.auto_k,
              "machine": platform.machine(),
              "results": results}
    out = Path(args.report)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    lines = [
        "# Final clusterers on the four benchmarks", "",
        f"Command: `{report['command']}`  ",
        f"Embedder {embedder.model_id}; "
        + ("K estimated by MapEquationK" if args.auto_k else "true K")
        + f"; K-means n_init=10; mean ± sd over seeds {seeds}."
        + (" Distinct texts clustered, every input row scored." if args.distinct else "")
        + " ACC / NMI / ARI x 100. No gold labels in any selection: `select by silhouette` keeps,"
        " per seed, the candidate with the best cosine silhouette, `select by modularity` the"
        " highest modularity on the 10-NN graph, `select by tie-break` (the product's"
        " default; since 2 Dec with the consensus as a candidate, --select-consensus)"
        " the best silhouette with ties (within 0.02) going to modularity, and modularity ties"
        " (within 0.005) to the earlier candidate in the table's order; `chosen` lists what"
        " each kept.", "",
        "| set | input | clusterer | ACC | NMI | ARI | chosen |", "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['set']} (K={r['k']}, true {r['k_true']}) | {r['input']} | "
                     f"{r['clusterer']} | "
                     f"{r['acc']:.1f} ± {r['acc_sd']:.1f} | {r['nmi']:.1f} ± {r['nmi_sd']:.1f} | "
                     f"{r['ari']:.1f} ± {r['ari_sd']:.1f} | {', '.join(r.get('chosen', []))} |")
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
