"""Where does the consensus enter the selection's silhouette tie, and what does its
modularity say there? Re-applies the default rule, with and without the modularity
guard (SelectClusterer.consensus_modularity_tie), to the per-seed criteria stored by
earlier measurements: no clustering is re-run, so it costs a second.

    python scripts/consensus_guard.py [reports/select_consensus.json ...] \\
        [--report reports/consensus_guard.md]

For every stored (set, input, seed) it gives the consensus's silhouette gap to the best
candidate, its modularity gap to the best silhouette-tied candidate (when it is tied),
and the choice of each rule. Only criteria are read here; the ACC of a changed choice
is in the report the criteria come from (per candidate, mean over seeds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))
DEFAULT_INPUTS = ["reports/select_consensus.json", "reports/select_consensus_auto_k.json",
                  "reports/embedder_variant.json"]


def choices(crit: dict) -> dict:
    """The default rule's choice with the guard and without it, and the consensus's gaps."""
    from intentlocal.pipeline.cluster import SelectClusterer

    sel = SelectClusterer()
    sel.silhouettes_, sel.modularities_ = crit["silhouette"], crit["modularity"]
    tied = sel.silhouette_ties()
    sil, mod = sel.silhouettes_, sel.modularities_
    out = {
        "sil_gap": round(max(sil.values()) - sil["consensus"], 4),
        "mod_gap": (round(max(mod[n] for n in tied) - mod["consensus"], 4)
                    if "consensus" in tied else None),
        "guarded": sel.choose("tie-break"),
    }
    sel.consensus_modularity_tie = float("inf")
    out["unguarded"] = sel.choose("tie-break")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("inputs", nargs="*", default=DEFAULT_INPUTS)
    ap.add_argument("--report", help="write the table to this Markdown file")
    args = ap.parse_args()
    lines = []
    for path in args.inputs:
        data = json.loads(Path(CHECKOUT / path).read_text())
        for row in data["results"]:
            if row.get("clusterer") != "select by tie-break" or "criteria_per_seed" not in row:
                continue
            what = row.get("input") or row.get("variant", "")
            for seed, crit in row["criteria_per_seed"].items():
                if "consensus" not in crit["silhouette"]:
                    continue
                c = choices(crit)
                gap = "" if c["mod_gap"] is None else f"{c['mod_gap']:.4f}"
                mark = " **changed**" if c["guarded"] != c["unguarded"] else ""
                lines.append(f"| {Path(path).stem} | {row['set']} (K {row['k']}) | {what} | "
                             f"{seed} | {c['sil_gap']:.4f} | {gap} | {c['unguarded']} | "
                             f"{c['guarded']}{mark} |")
    head = ("| measurement | set | input | seed | consensus's silhouette below the best | "
            "its modularity below the best tied | rule without the guard | with the guard |\n"
            "|---|---|---|---|---|---|---|---|")
    table = head + "\n" + "\n".join(lines) + "\n"
    print(table)
    if args.report:
        Path(args.report).write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
