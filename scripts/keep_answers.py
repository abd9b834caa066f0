"""Give the initial-label answers of runs made before 5 Dec to later runs.

Since 5 Dec a run keeps each LLM answer by its question and a later run asking the
same question (same model, grammar, prompt, text and neighbours shown, temperature 0)
reuses it (intentlocal.pipeline.reuse). Runs made before then kept their labels but
not the questions; this rebuilds each initial question from what such a run stored
and keeps its answer, so that a new run of the same texts (another K, clusterer or
refinement rule; the benchmark of new defaults) costs no LLM minutes.

    python scripts/keep_answers.py STORE.sqlite3 [RUN_ID ...]   # default: every run
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from intentlocal.errors import IntentLocalError
    from intentlocal.pipeline.reuse import keep_answers
    from intentlocal.store import Store

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store")
    ap.add_argument("runs", nargs="*", type=int)
    args = ap.parse_args(argv)
    if not Path(args.store).is_file():
        print(f"error: no run store at {args.store}", file=sys.stderr)
        return 2
    store = Store(args.store)
    for run_id in args.runs or [r.id for r in store.runs()]:
        try:
            kept, skipped = keep_answers(store, run_id)
        except IntentLocalError as exc:
            print(f"run {run_id}: skipped: {exc}", file=sys.stderr)
            continue
        print(f"run {run_id}: {kept} answers kept, {skipped} steps skipped (another grammar "
              "or a prompt the store lacks)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
