"""What the refinement's picks add to the clusters: the LLM's, a rule's, or none.

For a finished run of a benchmark's test set, the label sets a run ends with are
rebuilt four ways from its stored steps (no model is called):

* as stored: the labels the run ended with (who added them, the LLM or the rule,
  is named);
* top1 / top2: the initial label plus the 1 / 2 candidates most shared among the
  neighbours, in the order the run offered them (what selector = "shared" adds);
* initial: the initial label alone (no refinement);

and each is handed to the UMAP + HDBSCAN candidate, which lets the labels choose
where a dense group is split to reach the true K ("geometry": no labels). Per
seed the UMAP layout and HDBSCAN groups are made once and shared by all five, so
only the labels differ. Gold labels score, nothing else.

    python scripts/selector_ablation.py SET STORE:RUN [--seeds 0,1,2,3,4] [--report F]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sqlite3
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
DATA = REPO.parent / "shared" / "data"


def variants(store_path: str, run: int) -> tuple[list[str], dict[str, list[list[str]]]]:
    """Texts in input order and, per variant, each text's final labels."""
    con = sqlite3.connect(store_path)
    rows = con.execute("SELECT uid, text FROM texts WHERE run_id=? ORDER BY idx", (run,))
    order = [(uid, text) for uid, text in rows]
    initial: dict[int, list[str]] = {}
    stored: dict[int, list[str]] = {}
    for uid, label, it in con.execute(
        "SELECT uid, label, iteration FROM labels WHERE run_id=? ORDER BY id", (run,)
    ):
        stored.setdefault(uid, []).append(label)
        if it == 0:
            initial.setdefault(uid, []).append(label)
    offered = {
        uid: [c for c, _ in json.loads(cj)]
        for uid, cj in con.execute(
            "SELECT uid, candidates_json FROM steps WHERE run_id=? AND iteration=1"
            " AND candidates_json != '[]'",
            (run,),
        )
    }
    if not offered:
        raise SystemExit(f"{store_path} run {run} offered no candidates to compare")
    who = con.execute(
        "SELECT DISTINCT model_id FROM labels WHERE run_id=? AND iteration=1", (run,)
    ).fetchall()

    def rule(top: int) -> dict[int, list[str]]:
        return {u: initial.get(u, []) + offered.get(u, [])[:top] for u in initial}

    authors = ", ".join(m for m, in who)
    per = {f"as stored ({authors})": stored, "top1": rule(1), "top2": rule(2), "initial": initial}
    return [t for _, t in order], {v: [d.get(u, []) for u, _ in order] for v, d in per.items()}


def show_table(head: str, lines: list[str], report: str | None) -> None:
    """Prints a Markdown table and appends it to ``report`` under the command that made it."""
    print(head, *lines, sep="\n")
    if report:
        with open(report, "a", encoding="utf-8") as f:
            f.write(f"\n`python {shlex.join(sys.argv)}`\n\n")
            f.write("\n".join([head, *lines]) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("run", metavar="STORE:RUN")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--report", help="append the table's rows to this Markdown file")
    a = ap.parse_args()

    from intentlocal.api import build_backends
    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.pipeline.cluster import DensityClusterer
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.store import Store

    path, _, run = a.run.rpartition(":")
    texts, labels = variants(path, int(run))
    want, gold = load_labelled(DATA / a.set / "test.jsonl", None, 0)
    if texts != want:
        raise SystemExit(f"{a.run} was not made from {a.set}'s test set")
    embedder, _ = build_backends(load_settings())
    x = embed_cached(Store(path), embedder, texts)  # the run's own vectors: a cache hit
    k = len(set(gold))
    inputs: dict[str, list[list[str]] | None] = {"geometry": None, **labels}
    got: dict[str, list[dict]] = {v: [] for v in inputs}
    rules: dict[str, list[str]] = {v: [] for v in inputs}
    start = time.perf_counter()
    for seed in (int(s) for s in a.seeds.split(",")):
        dc = DensityClusterer(random_state=seed)
        for v, lab in inputs.items():
            got[v].append(scores(gold, dc.fit_predict(x, k, labels=lab)))
            rules[v].append(dc.split_ or "none needed")
        print(f"seed {seed}: HDBSCAN found {dc.found_} groups for K {k}, "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    lines = []
    for v in inputs:
        s = summarise(got[v])
        n = sum(map(len, inputs[v])) if inputs[v] is not None else 0
        lines.append(f"| {a.set} | {v} | {n} | {s['acc']:.1f} ± {s['acc_sd']:.1f} | "
                     f"{s['nmi']:.1f} ± {s['nmi_sd']:.1f} | {', '.join(rules[v])} |")
    head = ("| set | labels | labels in all | ACC | NMI | split rule kept per seed |\n"
            "|---|---|---|---|---|---|")
    show_table(head, lines, a.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
