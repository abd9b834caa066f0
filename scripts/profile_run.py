"""Where a finished run's time went, from its run store: per stage, the LLM's
share, calls made and skipped, tokens and throughput per iteration.

    python scripts/profile_run.py RUN_ID [--store PATH] [--report FILE]

Everything is read from what the run recorded (stage wall times, and per call:
prompt tokens, tokens served from the KV cache, completion tokens, seconds),
so it profiles any run, killed and resumed or not, without re-running it.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from intentlocal.pipeline.runner import SHARED_RULE


def profile(db: sqlite3.Connection, run_id: int) -> list[str]:
    per_it = db.execute(
        "SELECT iteration, COUNT(*), SUM(called), SUM(CASE WHEN called=0 AND candidates_json='[]'"
        " THEN 1 ELSE 0 END), SUM(prompt_tokens), SUM(cached_tokens), SUM(completion_tokens),"
        " SUM(seconds), SUM(CASE WHEN called=0 AND model_id=? THEN 1 ELSE 0 END)"
        " FROM steps WHERE run_id=? GROUP BY iteration", (SHARED_RULE, run_id)).fetchall()
    llm_by_stage = {("initial" if r[0] == 0 else f"refine-{r[0]}"): r[7] or 0.0 for r in per_it}
    recorded = db.execute("SELECT stage, seconds FROM stages WHERE run_id=? ORDER BY rowid",
                          (run_id,)).fetchall()
    # Runs made before an interrupted stage kept its seconds (commit b659a84) lost the
    # time of every slice of a stage but the last; the stage's own LLM calls, timed one
    # by one, are then a lower bound, used instead and marked.
    short = [st for st, s in recorded if s < llm_by_stage.get(st, 0.0)]
    stages = [(st, max(s, llm_by_stage.get(st, 0.0))) for st, s in recorded]
    total = sum(s for _, s in stages)
    n = db.execute("SELECT COUNT(*) FROM uniques WHERE run_id=?", (run_id,)).fetchone()[0]
    llm_s = sum(r[7] or 0 for r in per_it)
    calls = sum(r[2] or 0 for r in per_it)
    out = [
        f"run {run_id}: {n} distinct texts; stage wall time {total:.0f} s; "
        f"inside llama.cpp calls {llm_s:.0f} s ({100 * llm_s / max(total, 1e-9):.1f} %); "
        f"everything else {total - llm_s:.0f} s ({100 * (total - llm_s) / max(total, 1e-9):.1f} %)",
        f"LLM calls {calls} ({calls / max(n, 1):.2f} per text)",
        "",
        "| stage | seconds | share |",
        "|---|---|---|",
        *[f"| {st} | {s:.1f}{' *' if st in short else ''} | {100 * s / max(total, 1e-9):.1f} % |"
          for st, s in stages],
        *([f"\n\\* recorded stage time shorter than its LLM calls' ({', '.join(short)}): "
           "slices cut short before commit b659a84 lost their time; the calls' own "
           "seconds are shown, a lower bound"] if short else []),
        "",
        "| iteration | texts | calls | skipped: no candidate | skipped: same question | "
        "added by the most-shared rule, no call | "
        "new prompt tok / call | cached tok / call | completion tok / call | s / call | "
        "new prompt tok/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for it, texts, called, no_cand, pt, ct, comp, secs, ruled in per_it:
        called, ruled = called or 0, ruled or 0
        same = texts - called - no_cand - ruled
        c = max(called, 1)
        new = (pt or 0) - (ct or 0)
        out.append(f"| {it} | {texts} | {called} | {no_cand} | {same} | {ruled} | {new / c:.0f} | "
                   f"{(ct or 0) / c:.0f} | {(comp or 0) / c:.1f} | {(secs or 0) / c:.2f} | "
                   f"{new / max(secs or 0, 1e-9):.0f} |")
    row = db.execute("SELECT detail_json FROM stages WHERE run_id=? AND stage='cluster'",
                     (run_id,)).fetchone()
    parts = json.loads(row[0]).get("seconds", {}) if row and row[0] else {}
    if parts:  # recorded since 1 Dec: the clustering stage by part
        out += ["", "clustering by part (seconds): "
                + ", ".join(f"{name} {sec:.1f}" for name, sec in parts.items())]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_id", type=int)
    ap.add_argument("--store", help="the run store (default: the configured one)")
    ap.add_argument("--report")
    a = ap.parse_args()
    if a.store:
        path = Path(a.store)
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from intentlocal import paths

        path = paths.store_path()
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    lines = profile(db, a.run_id)
    print("\n".join(lines))
    if a.report:
        Path(a.report).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
