"""The default clusterer's selection on small inputs: which candidate it keeps, and
what each would have scored (no LLM call).

A user's first run is often a few hundred texts (the bundled sample is 300). On a
300-text transcript the selection kept consensus (95 ACC) on some seeds and
umap-hdbscan (76-78) on others (reports/transcripts.md, "First turns"). This measures
that on all four sets. From each finished full-set run it draws ``--samples`` subsets
of ``--intents`` gold intents x ``--per-intent`` distinct texts, with the run's own
labels and its density mix. On each subset (or, with ``--full``, on the whole set) it
fits the select clusterer for each seed at the true K and at the K a run would
estimate. It records, for every candidate, its silhouette, its modularity and its ACC
/ NMI, and which candidate was kept. ``rules`` then replays selection rules over those
records, without clustering again.

    python scripts/small_inputs.py fit SET=STORE:RUN [...] [--samples 4] [--intents 12]
        [--per-intent 25] [--seeds 0,1,2] [--full] > records.jsonl
    python scripts/small_inputs.py write SET=STORE:RUN [...] OUT_DIR [--samples 1 ...]
    python scripts/small_inputs.py rules records.jsonl [...] [--guards 0.01,0.015,0.02]

``write`` saves the same subsets as labelled JSONL files, for real runs of their own
(`intentlocal run OUT_DIR/SET_0.jsonl`); ``fit SUBSET.jsonl=STORE:RUN --full`` then
scores such a run's selection with its own labels.

The labels of a subset are the ones the full run wrote, with neighbours from the whole
set; a run on the subset alone would write its own. So this is a screen. What it
suggests is checked on real runs of small inputs. Gold labels are used for scoring only.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def subsets(gold_u: np.ndarray, samples: int, intents: int, per_intent: int,
            seed: int = 0) -> list[np.ndarray]:
    """Row indices of ``samples`` subsets: ``intents`` gold intents drawn among those
    with at least ``per_intent`` texts, and that many of each intent's texts."""
    rng = random.Random(seed)
    by: dict[Any, list[int]] = {}
    for i, g in enumerate(gold_u.tolist()):
        by.setdefault(g, []).append(i)
    big = sorted((g for g, rows in by.items() if len(rows) >= per_intent), key=str)
    out = []
    for _ in range(samples):
        chosen = rng.sample(big, min(intents, len(big)))
        rows = [i for g in chosen for i in rng.sample(by[g], per_intent)]
        out.append(np.array(sorted(rows)))
    return out


def fit_record(x: np.ndarray, gold: np.ndarray, k: int, seed: int, labels: Any,
               layout: Any) -> dict[str, Any]:
    """One select fit: every candidate's criteria and scores, and the kept one."""
    from intentlocal.pipeline import cluster as C
    from intentlocal.pipeline.metrics import scores

    sel = C.SelectClusterer(random_state=seed)
    sel.set_seed(seed)
    t = time.perf_counter()
    sel.fit_predict(x, k, labels=labels, layout=layout)
    cands = {
        name: {"silhouette": sel.silhouettes_[name], "modularity": sel.modularities_[name],
               **{m: round(v, 2) for m, v in scores(gold, part).items()}}
        for name, part in sel.partitions_.items()
    }
    return {"k": k, "seed": seed, "chosen": sel.chosen_, "candidates": cands,
            "seconds": round(time.perf_counter() - t, 1)}


def fit(args: argparse.Namespace) -> int:
    from intentlocal.pipeline.augment import mix_vectors
    from intentlocal.pipeline.autok import MapEquationK
    from scripts.label_distance import open_shared_run
    from scripts.stored_runs import set_and_run

    seeds = [int(s) for s in args.seeds.split(",")]
    for spec in args.runs:
        name, run = set_and_run(spec)
        gold_path = name if name.endswith(".jsonl") else None  # a run of one's own subset
        sr, store, run_id, s, embed = open_shared_run(run, name, gold_path)
        name = Path(name).stem if gold_path else name
        n = len(sr.uniques)
        x_all = embed(sr.uniques)
        gold_u = sr.gold_u
        ref = store.label_sets(run_id, n, 1)
        mix_all = mix_vectors(x_all, ref, embed, s.density_weight)
        picks = [np.arange(n)] if args.full else subsets(
            gold_u, args.samples, args.intents, args.per_intent)
        for j, rows in enumerate(picks):
            x, gold = x_all[rows], gold_u[rows]
            labels = None if args.texts else [ref[i] for i in rows]
            layout = None if args.texts else mix_all[rows]
            k_true = len(set(gold.tolist()))
            k_auto = MapEquationK(n_neighbors=s.auto_k_neighbours,
                                  random_state=s.seed).estimate(x)
            for k, mode in ((k_true, "true"), (k_auto, "auto")):
                for seed in seeds:
                    rec = fit_record(x, gold, k, seed, labels, layout)
                    print(json.dumps({"set": name, "sample": "full" if args.full else j,
                                      "n": len(rows), "k_mode": mode, **rec}), flush=True)
    return 0


def write(args: argparse.Namespace) -> int:
    """The subsets ``fit`` draws, as JSONL files of text and gold label."""
    from scripts.label_distance import load_run
    from scripts.stored_runs import set_and_run

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for spec in args.runs:
        name, run = set_and_run(spec)
        sr = load_run(run, name)
        gold_u = sr.gold_u
        for j, rows in enumerate(subsets(gold_u, args.samples, args.intents, args.per_intent)):
            path = out / f"{name}_{j}.jsonl"
            path.write_text("".join(
                json.dumps({"text": sr.uniques[i], "label": str(gold_u[i])}) + "\n"
                for i in rows.tolist()))
            print(f"{path}: {len(rows)} texts", file=sys.stderr)
    return 0


def rules(args: argparse.Namespace) -> int:
    """Each rule's mean ACC per set over the records, beside the best candidate's (the
    oracle), and how often each rule kept another candidate than the recorded fit did
    (with the default of its day). "no guard" is the default until 6 Dec (silhouette tie
    0.02); the guards are measured at that tie; the last rule is today's default."""
    from intentlocal.pipeline.cluster import SelectClusterer

    recs = [json.loads(line) for f in args.records for line in Path(f).read_text().splitlines()
            if line.strip()]
    variants: dict[str, SelectClusterer] = {
        "no guard": SelectClusterer(modularity_guard=None, tie=0.02),
        "silhouette alone": SelectClusterer(criterion="silhouette"),
        "modularity alone": SelectClusterer(criterion="modularity"),
    }
    for g in (float(v) for v in args.guards.split(",")):
        variants[f"guard {g}"] = SelectClusterer(modularity_guard=g, tie=0.02)
    variants["default (guard, tie 0.04)"] = SelectClusterer()
    groups: dict[tuple, list[dict]] = {}
    for r in recs:
        groups.setdefault((r["set"], "full" if r["sample"] == "full" else "subsets",
                           r["k_mode"]), []).append(r)
    head = ["set", "input", "K", "fits", *variants, "best candidate"]
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for key, rs in sorted(groups.items()):
        cells = [*key, str(len(rs))]
        for sel in variants.values():
            accs, changed = [], 0
            for r in rs:
                sel.silhouettes_ = {n: c["silhouette"] for n, c in r["candidates"].items()}
                sel.modularities_ = {n: c["modularity"] for n, c in r["candidates"].items()}
                kept = sel.choose(sel.criterion)
                accs.append(r["candidates"][kept]["acc"])
                changed += kept != r["chosen"]
            cells.append(f"{np.mean(accs):.1f}" + (f" ({changed} changed)" if changed else ""))
        best = [max(c["acc"] for c in r["candidates"].values()) for r in rs]
        cells.append(f"{np.mean(best):.1f}")
        print("| " + " | ".join(cells) + " |")
    return 0


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.simplefilter("ignore")
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit")
    f.add_argument("runs", nargs="+", help="SET=STORE:RUN of finished full-set runs")
    f.add_argument("--samples", type=int, default=4)
    f.add_argument("--intents", type=int, default=12)
    f.add_argument("--per-intent", type=int, default=25)
    f.add_argument("--seeds", default="0,1,2")
    f.add_argument("--full", action="store_true", help="the whole set, not subsets")
    f.add_argument("--texts", action="store_true",
                   help="the texts alone: no labels, no density mix (the bench's rows "
                   "'select clusterer on embeddings')")
    w = sub.add_parser("write")
    w.add_argument("runs", nargs="+", help="SET=STORE:RUN of finished full-set runs")
    w.add_argument("out")
    w.add_argument("--samples", type=int, default=1)
    w.add_argument("--intents", type=int, default=12)
    w.add_argument("--per-intent", type=int, default=25)
    r = sub.add_parser("rules")
    r.add_argument("records", nargs="+")
    r.add_argument("--guards", default="0.01,0.015,0.02")
    args = ap.parse_args(argv)
    return {"fit": fit, "write": write, "rules": rules}[args.cmd](args)


if __name__ == "__main__":
    raise SystemExit(main())
