"""Score a finished run's own clusters against a gold-labelled JSONL, and print its
wall time by stage: what a user of `intentlocal run` got, in one seed, with the K
the run used (given or estimated).

    python scripts/score_run.py RUN_ID ../shared/data/banking77/test.jsonl [--store PATH]
        [--names 10]

``--names N`` lists the N largest clusters' names beside the gold intent most of
their texts carry (and that share): do the names read as the intents?

Why beside `intentlocal bench`: the bench scores label-augmented vectors over 5
seeds in a dozen ways, which costs about 25 minutes on banking77 after the LLM
stages; this reads the one partition the run stored, in a second. The gold file is
read here only: the run was made from the texts alone.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from intentlocal.bench import load_labelled, name_examples
from intentlocal.errors import InputError, IntentLocalError
from intentlocal.pipeline.metrics import scores
from intentlocal.store import Store


def score_run(store: Store, run_id: int, gold_path: str) -> dict[str, object]:
    texts, gold = load_labelled(gold_path, None, 0)
    rows = store.texts(run_id)
    if [t for _, _, t in rows] != texts:
        raise InputError(f"run {run_id} was not made from {gold_path} (its texts differ)")
    info = store.run(run_id)
    if info.status != "finished":
        raise InputError(f"run {run_id} is {info.status}, not finished: resume it first")
    pred = store.assignments(run_id)
    stages = {st: round(d["seconds"], 1) for st, d in store.stages(run_id).items()}
    detail = store.clustering(run_id)
    return {
        "run_id": run_id,
        "k": detail.get("k"),
        "k_true": len(set(gold)),
        "k_estimated": detail.get("estimated"),
        "clusterer": detail.get("clusterer"),
        **{m: round(v, 2) for m, v in scores(gold, pred).items()},
        "stages": stages,
        "total_seconds": round(sum(stages.values()), 1),
        "names": name_examples(store, run_id, gold, None),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_id", type=int)
    ap.add_argument("gold", help="JSONL with text and label, the file the run was made from")
    ap.add_argument("--store", type=Path, help="runs.sqlite3 (default: the usual store)")
    ap.add_argument("--names", type=int, default=0, metavar="N",
                    help="list the N largest clusters' names beside their majority gold intent")
    args = ap.parse_args(argv)
    try:
        r = score_run(Store(args.store), args.run_id, args.gold)
    except IntentLocalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    how = "estimated" if r["k_estimated"] else "given"
    print(f"run {r['run_id']}: K {r['k']} ({how}; true {r['k_true']}), kept {r['clusterer']}: "
          f"ACC {r['acc']:.1f}  NMI {r['nmi']:.1f}  ARI {r['ari']:.1f}")
    print("| stage | seconds |\n|---|---|")
    for st, s in r["stages"].items():  # type: ignore[union-attr]
        print(f"| {st} | {s} |")
    print(f"| **all stages** | **{r['total_seconds']}** ({r['total_seconds'] / 60:.1f} min) |")
    if args.names:
        print("\n| cluster name | texts | majority gold intent | share |\n|---|---|---|---|")
        for n in r["names"][: args.names]:  # type: ignore[index]
            print(f"| {n['name']} | {n['size']} | {n['gold']} | {n['purity']} % |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
