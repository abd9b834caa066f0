"""Does the refinement LLM choose labels by what they say, or by where they stand?

Reads a finished run's refinement steps from a store (the LLM's own picks, as the
run made them) and reports, without any model:

* how often each answer was written ("1,2", "1", "none", ...);
* per candidate rank, how many candidates were picked and left, and how often
  each was "right": the gold intent most common among the texts whose initial
  label it is equals the text's gold intent (gold labels score, nothing else);

then, with --llm, asks the same model again for a sample of those calls with
the candidates in reverse order. A model that reads the candidates picks the
same labels again; one that answers by position picks the ones now on top.

    python scripts/selection_audit.py STORE RUN DATA.jsonl [--llm REF --sample 200]
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def load(
    store: str, run: int, data: str, called_only: bool = True
) -> tuple[list[dict], dict[int, str], dict, dict]:
    """Iteration-1 steps that offered candidates (with ``called_only``, those the LLM
    answered), each distinct text's gold intent, its text and its initial label."""
    from intentlocal.bench import load_labelled

    con = sqlite3.connect(store)
    gold_by_idx = load_labelled(data, None, 0)[1]
    gold: dict[int, str] = {}
    for idx, uid in con.execute("SELECT idx, uid FROM texts WHERE run_id=?", (run,)):
        gold.setdefault(uid, gold_by_idx[idx])
    texts = dict(con.execute("SELECT uid, text FROM uniques WHERE run_id=?", (run,)))
    initial = dict(
        con.execute("SELECT uid, label FROM labels WHERE run_id=? AND iteration=0", (run,))
    )
    steps = [
        dict(uid=uid, cands=[c for c, _ in json.loads(cj)], output=out)
        for uid, cj, out in con.execute(
            "SELECT uid, candidates_json, output FROM steps"
            " WHERE run_id=? AND iteration=1 AND candidates_json != '[]'"
            + (" AND called=1" if called_only else "")
            + " ORDER BY uid",
            (run,),
        )
    ]
    return steps, gold, texts, initial


def majority_right(initial: dict[int, str], gold: dict[int, str]) -> Callable[[str, int], bool]:
    """The proxy for a right candidate: the gold intent most common among the texts
    whose initial label it is equals the text's gold intent."""
    holders: dict[str, Counter[str]] = defaultdict(Counter)
    for uid, lab in initial.items():
        holders[lab][gold[uid]] += 1

    def right(lab: str, uid: int) -> bool:
        c = holders.get(lab)
        return bool(c) and c.most_common(1)[0][0] == gold[uid]

    return right


def sample_steps(steps: list[dict], n: int) -> list[dict]:
    """The probes' sample: ``n`` steps with at least 3 candidates, seed 0."""
    pool = [s for s in steps if len(s["cands"]) >= 3]
    return random.Random(0).sample(pool, min(n, len(pool)))


def picks(output: str | None) -> list[int]:
    return [] if output in (None, "none") else [int(t) for t in output.split(",")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("run", type=int)
    ap.add_argument("data")
    ap.add_argument("--llm", help="ask this model again, candidates reversed")
    ap.add_argument("--sample", type=int, default=200)
    ap.add_argument("--max-select", type=int, default=2)
    a = ap.parse_args()

    steps, gold, texts, initial = load(a.store, a.run, a.data)
    right = majority_right(initial, gold)

    answers = Counter(s["output"] for s in steps)
    print(f"{a.store} run {a.run}: {len(steps)} refinement calls")
    print("answers:", ", ".join(f"{k} {v}" for k, v in answers.most_common(6)))
    stat: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for s in steps:
        chosen = set(picks(s["output"]))
        for r, lab in enumerate(s["cands"], 1):
            row = stat[str(r) if r < 5 else "5+"]
            ok = right(lab, s["uid"])
            if r in chosen:
                row[0] += 1
                row[1] += ok
            else:
                row[2] += 1
                row[3] += ok
    print("| rank | picked | right | left | right |\n|---|---|---|---|---|")
    for r in sorted(stat):
        p, pr, u, ur = stat[r]
        print(f"| {r} | {p} | {pr / max(p, 1):.3f} | {u} | {ur / max(u, 1):.3f} |")

    if not a.llm:
        return 0
    from intentlocal.backends.base import generate_all
    from intentlocal.backends.llm import LlamaCppGenerator
    from intentlocal.backends.registry import resolve_llm_path
    from intentlocal.pipeline.labels import load_prompt, read_selection, selection_request

    sample = sample_steps(steps, a.sample)
    gen = LlamaCppGenerator(resolve_llm_path(a.llm)[0], n_ctx=2048, parallel=4)
    prompt = load_prompt("select_labels")
    own = {s["uid"]: [initial[s["uid"]]] for s in sample}
    result = {}
    for order in ("as offered", "reversed"):
        reqs, lists = [], []
        for s in sample:
            cands = s["cands"] if order == "as offered" else s["cands"][::-1]
            lists.append(cands)
            reqs.append(selection_request(prompt, texts[s["uid"]], own[s["uid"]], cands, 160,
                                          a.max_select))
        gens = generate_all(gen, reqs)
        result[order] = [
            {cands[i] for i in read_selection(gen.model_id, g, len(cands), a.max_select)}
            for g, cands in zip(gens, lists, strict=True)
        ]
    n = len(sample)
    same = sum(x == y for x, y in zip(result["as offered"], result["reversed"], strict=True))
    top_first = sum(s["cands"][0] in x for s, x in zip(sample, result["as offered"], strict=True))
    top_rev = sum(s["cands"][0] in x for s, x in zip(sample, result["reversed"], strict=True))
    last_rev = sum(s["cands"][-1] in x for s, x in zip(sample, result["reversed"], strict=True))
    r_off = sum(right(lab, s["uid"]) for s, x in zip(sample, result["as offered"], strict=True)
                for lab in x)
    r_rev = sum(right(lab, s["uid"]) for s, x in zip(sample, result["reversed"], strict=True)
                for lab in x)
    k_off = sum(len(x) for x in result["as offered"])
    k_rev = sum(len(x) for x in result["reversed"])
    print(f"\n{a.llm}, {n} calls with >= 3 candidates, asked twice:")
    print(f"- same labels picked in both orders: {same}/{n}")
    print(f"- most shared label picked: offered first {top_first}/{n}; offered last {top_rev}/{n}")
    print(f"- least shared label (now first) picked when reversed: {last_rev}/{n}")
    print(f"- picks right: as offered {r_off}/{k_off}, reversed {r_rev}/{k_rev}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
