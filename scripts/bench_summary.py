"""One table from several `intentlocal bench` reports: the rows issue 7 asks about, side by
side for every set, with the bars of ../shared/benchmarks.md beside them.

    python scripts/bench_summary.py reports/bench_*_2dec.json [--out reports/F.md]

Every figure is read from the bench JSON files named; nothing is recomputed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # scripts.min_share

# The best LLM-free pipeline on EmbeddingGemma-300M per set (ACC / NMI), as
# ../shared/benchmarks.md gives it (README, "Status").
BARS = {"banking77": (85.1, 90.9), "clinc150": (84.2, 93.4),
        "massive_intent": (75.2, 81.7), "mtop_intent": (62.9, 83.4)}

ROWS = [
    ("K-means on embeddings", "K-means, texts alone"),
    ("initial labels ⊕ text", "K-means, initial labels ⊕ text (no refinement)"),
    ("refined labels ⊕ text", "K-means, refined labels ⊕ text (the paper's)"),
    ("select clusterer on embeddings", "default clusterer, texts alone"),
    ("select clusterer, initial mix w=0.1 for umap-hdbscan only",
     "default clusterer, initial labels for umap-hdbscan (the default without refinement)"),
    ("select clusterer, refined labels guide the splits",
     "default clusterer, labels choose the splits (the product's default until 5 Dec)"),
    ("select clusterer, refined mix w=0.1",
     "default clusterer, refined mix w=0.1, labels unused (reports before 5 Dec)"),
    ("select clusterer, refined mix w=0.1, labels guide the splits",
     "default clusterer, refined mix w=0.1, labels choose the splits (--final mix)"),
    ("select clusterer, refined mix w=0.1 for umap-hdbscan only",
     "default clusterer, refined labels for umap-hdbscan (--density-weight 0.1, the "
     "product's default since 5 Dec)"),
    ("select clusterer, refined labels ⊕ text", "default clusterer, refined labels ⊕ text"),
]


def cell(row: dict | None) -> str:
    if row is None:
        return "-"
    return f"{row['acc']:.1f} ± {row['acc_sd']:.1f} / {row['nmi']:.1f}"


DEFAULT = "select clusterer, refined mix w=0.1 for umap-hdbscan only"
TEXTS = "select clusterer on embeddings"


def labels_add(r: dict, mode: str = "true K") -> str:
    """The default's ACC minus the texts alone's: the mean ± sd of the per-seed
    differences where the report keeps each seed's scores (benches since the fourteenth
    session), else the difference of the two means, said as such."""
    rows = {x["pipeline"]: x for x in r["rows"] if x["k_mode"] == mode}
    if DEFAULT not in rows or TEXTS not in rows:
        return "-"
    a, b = rows[DEFAULT], rows[TEXTS]
    if "per_seed" in a and "per_seed" in b:
        from scripts.min_share import paired

        by_seed = {p["seed"]: p for p in b["per_seed"]}
        per = [p for p in a["per_seed"] if p["seed"] in by_seed]
        d = paired(per, [by_seed[p["seed"]] for p in per])
        return f"{d['d_acc']:+.1f} ± {d['d_acc_sd']:.1f} (paired, {len(per)} seeds)"
    return f"{a['acc'] - b['acc']:+.1f} (of the means)"


def llm_cell(r: dict) -> str:
    """The LLM's seconds; for answers reused from an earlier run of the same questions
    (pipeline.reuse), what their first calls took, said as such."""
    llm = r["llm"]
    if llm.get("reused_calls"):
        fresh = llm["calls"] - llm["reused_calls"]
        return (f"{llm['reused_seconds'] + llm['llm_seconds']:.0f} ({llm['calls']}; "
                f"{llm['reused_calls']} answers reused, timed when first decoded"
                + (f", {fresh} decoded now" if fresh else "") + ")")
    return f"{llm['llm_seconds']:.0f} ({llm['calls']})"


def table(reports: list[dict]) -> str:
    names = [r["name"] for r in reports]
    head = "| pipeline | K | " + " | ".join(
        f"{n} ({r['n_texts']} texts, K {r['k_true']}; {r['settings']['llm']})"
        for n, r in zip(names, reports, strict=True)) + " |"
    out = [head, "|---|---|" + "---|" * len(reports)]
    out.append("| best LLM-free pipeline (../shared/benchmarks.md) | true | " + " | ".join(
        "{:.1f} / {:.1f}".format(*BARS[n]) if n in BARS else "-" for n in names) + " |")
    for key, label in ROWS:
        if not any(x["pipeline"] == key for r in reports for x in r["rows"]):
            continue  # a row the bench of these reports did not have
        for mode in ("true K", "auto K"):
            cells = []
            for r in reports:
                hit = next((x for x in r["rows"]
                            if x["pipeline"] == key and x["k_mode"] == mode), None)
                c = cell(hit)
                if hit is not None and mode == "auto K":
                    c += f" (K {hit['k']})"
                cells.append(c)
            out.append(f"| {label} | {mode.split()[0]} | " + " | ".join(cells) + " |")
    out.append("| labels add, ACC (default minus texts alone) | true | "
               + " | ".join(labels_add(r) for r in reports) + " |")
    out.append("| LLM seconds (calls) | | " + " | ".join(llm_cell(r) for r in reports) + " |")
    if all("stages" in r for r in reports):
        other = [sum(d["seconds"] for st, d in r["stages"].items() if st != "initial")
                 for r in reports]
        out.append("| a run's other stages, seconds (neighbours, refinement, clustering; "
                   "embedding, unless the store had the vectors) | | "
                   + " | ".join(f"{v:.0f}" for v in other) + " |")
    out.append("| bench wall seconds / peak RSS MB | | " + " | ".join(
        f"{r['wall_seconds']:.0f} / {r['peak_rss_mb']:.0f}" for r in reports) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("reports", nargs="+")
    ap.add_argument("--out")
    args = ap.parse_args(argv)
    reports = [json.loads(Path(p).read_text()) for p in args.reports]
    text = table(reports) + "\n"
    if args.out:
        Path(args.out).write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
