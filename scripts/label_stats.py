"""Label statistics of a finished bench run against the gold intents (scoring only):
distinct labels, labels per text, label purity (share of a label's uses in its
majority gold intent) and labels per intent, after each iteration; and how many
refinement calls of iteration 1 the spelling-variant merge of candidates leaves
with nothing to offer (a counterfactual over the stored steps).

    python scripts/label_stats.py STORE RUN_ID DATASET.jsonl
"""

from __future__ import annotations

import collections
import json
import sqlite3
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from intentlocal.pipeline.augment import label_key
from intentlocal.pipeline.labels import gather_candidates


def main(store: str, run_id: int, dataset: str) -> None:
    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    gold = [json.loads(x)["label"] for x in Path(dataset).read_text().splitlines() if x.strip()]
    uid_of = dict(db.execute("SELECT idx, uid FROM texts WHERE run_id=?", (run_id,)))
    by_it: dict[int, dict[int, set[str]]] = collections.defaultdict(dict)
    for uid, label, it in db.execute(
            "SELECT uid, label, iteration FROM labels WHERE run_id=?", (run_id,)):
        by_it[it].setdefault(uid, set()).add(label)
    for upto in sorted(by_it):
        sets: dict[int, set[str]] = collections.defaultdict(set)
        for it, d in by_it.items():
            if it <= upto:
                for uid, s in d.items():
                    sets[uid] |= s
        per_label: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
        per_intent: dict[str, set[str]] = collections.defaultdict(set)
        for idx, g in enumerate(gold):
            for lab in sets[uid_of[idx]]:
                per_label[label_key(lab)][g] += 1
                per_intent[g].add(label_key(lab))
        uses = sum(sum(c.values()) for c in per_label.values())
        purity = sum(c.most_common(1)[0][1] for c in per_label.values()) / uses
        print(f"after iteration {upto}: distinct labels {len(per_label)}, labels per text "
              f"{uses / len(gold):.2f}, label purity {100 * purity:.1f} %, labels per intent "
              f"{sum(len(s) for s in per_intent.values()) / len(per_intent):.1f}")
    n = db.execute("SELECT COUNT(*) FROM uniques WHERE run_id=?", (run_id,)).fetchone()[0]
    init: list[list[str]] = [sorted(by_it[0].get(u, set())) for u in range(n)]
    called = empty = before = after = 0
    for uid, nb, cands, was_called in db.execute(
            "SELECT uid, neighbours_json, candidates_json, called FROM steps"
            " WHERE run_id=? AND iteration=1", (run_id,)):
        new = gather_candidates(init[uid], json.loads(nb), init, 12)
        before += len(json.loads(cands))
        after += len(new)
        if was_called:
            called += 1
            empty += not new
    print(f"iteration 1: {called} calls made; with spelling variants merged {empty} of them would "
          f"have had nothing to offer; candidates offered {before} -> {after}")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
