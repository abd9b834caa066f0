"""Can the pseudo-labels correct auto-K? (issue 7; measured negative, 6 Dec)

MapEquationK finds 90 modules for banking77's 77 intents and 75 for mtop_intent's
102. The LLM's labels are the method's own evidence of which texts are one intent, so
two label-driven corrections were measured on a finished run's stored labels (no LLM
call), with gold intents used for scoring only:

* merge: modules whose most carried refined label is the same are one intent; K is the
  number of distinct dominant labels, at the default graph (10 neighbours) and at finer
  ones (fewer neighbours: the graph over-segments, the labels merge back);
* for each merge the default graph proposes, whether the merged modules' majority gold
  intents agree (a right merge) or not (a coincidence of generic labels).

    python scripts/auto_k_labels.py SET=STORE:RUN [SET=STORE:RUN ...] [--ks 4,5,6,7,8,10]
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def dominant(mod: np.ndarray, n_mod: int, sets: list[list[str]]) -> list[str]:
    """Each module's most carried label (spelling variants as one)."""
    out = []
    for m in range(n_mod):
        c = collections.Counter(lab for i in np.flatnonzero(mod == m) for lab in sets[i])
        out.append(c.most_common(1)[0][0] if c else f"<none {m}>")
    return out


def main(argv: list[str] | None = None) -> int:
    from intentlocal.pipeline.augment import label_key
    from intentlocal.pipeline.autok import MapEquationK
    from scripts.label_distance import open_shared_run
    from scripts.stored_runs import set_and_run

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="SET=STORE:RUN of finished runs")
    ap.add_argument("--ks", default="4,5,6,7,8,10", help="graph neighbour counts")
    a = ap.parse_args(argv)
    ks = [int(v) for v in a.ks.split(",")]
    print("| set (K) | graph k | modules | K from distinct dominant labels (refined / initial) |")
    print("|---|---|---|---|")
    merges = []
    for spec in a.runs:
        name, run = set_and_run(spec)
        sr, store, run_id, _s, embed = open_shared_run(run, name)
        n = len(sr.uniques)
        x = embed(sr.uniques)
        gold_u = np.asarray(sr.gold_u)
        k_true = len(set(sr.gold))
        ref = [[label_key(lab) for lab in ls] for ls in store.label_sets(run_id, n, 1)]
        init = [[label_key(lab) for lab in ls] for ls in store.label_sets(run_id, n, 0)]
        for k in ks:
            me = MapEquationK(n_neighbors=k)
            n_mod = me.estimate(x)
            dr, di = dominant(me.labels_, n_mod, ref), dominant(me.labels_, n_mod, init)
            k_r, k_i = len(set(dr)), len(set(di))
            err = 100 * (k_r - k_true) / k_true
            print(f"| {name} ({k_true}) | {k} | {n_mod} | {k_r} ({err:+.1f} %) / {k_i} |",
                  flush=True)
            if k == 10:
                groups = collections.defaultdict(list)
                for m, lab in enumerate(dr):
                    groups[lab].append(m)
                right = wrong = 0
                for ms in groups.values():
                    if len(ms) > 1:
                        maj = {collections.Counter(gold_u[me.labels_ == m]).most_common(1)[0][0]
                               for m in ms}
                        right += len(maj) == 1
                        wrong += len(maj) > 1
                merges.append(f"| {name} | {n_mod} | {right} | {wrong} |")
    print("\nMerges the default graph (k = 10) proposes, scored against the gold intents:\n")
    print("| set | modules | merges of one gold intent | merges of several |\n|---|---|---|---|")
    print("\n".join(merges))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
