"""Do two views agree better than one? Consensus of partitions of the texts' vectors
and of the vectors of "text (labels)", against the same consensus on texts alone.

    python scripts/consensus.py SET=STORE:RUN [SET=STORE:RUN ...] [--seeds 0,1,2,3,4]
        [--report reports/consensus.md]

Each STORE:RUN is a finished ``intentlocal run`` of ../shared/data/SET/test.jsonl (read
back as scripts/label_merge.py does; its final label sets are used, no LLM call). For
each seed, the default clusterer's four candidates (K-means, spectral-15, spectral-25,
umap-hdbscan) partition, at the true K, (a) the texts' vectors and (b) the vectors of
"text (label, label)" (the paper's join, embedded once). The co-association of a set
of partitions (the share of partitions that put two texts together; Fred & Jain's
evidence accumulation) is clustered at K by spectral embedding + K-means.

Rows: the default clusterer on texts (the product) and on text ⊕ labels; consensus
of the texts' 4 partitions; consensus of the texts' 8 partitions from two seeds (the
control: as many partitions, no labels); consensus of texts' 4 + text ⊕ labels' 4. When
the last beats the control, the labels are the reason, not the number of partitions.

Why: the labels move single partitions of the strong embedder by -2 to +1 ACC
(reports/bench_summary_2dec.md), and where they hurt, they hurt different texts than
the ones the texts' own geometry gets wrong; partitions that err differently are what
consensus clustering is for.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_merge import load_run
from stored_runs import command, parser, run_specs, seed_list, write_report

from intentlocal.pipeline.cluster import consensus_partition as consensus


def main() -> int:
    args = parser(__doc__, "consensus.md").parse_args()

    from intentlocal.api import build_backends
    from intentlocal.config import load_settings
    from intentlocal.pipeline.augment import join_labels
    from intentlocal.pipeline.cluster import SelectClusterer
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.store import Store

    seeds = seed_list(args.seeds)
    out = []
    for name, path, run in run_specs(args.runs):
        x, gold, _init, final = load_run(name, path, run, Path(args.data))
        texts = Store(path).uniques(run)
        embedder, _ = build_backends(load_settings())
        xj = embed_cached(Store(path), embedder,
                          [join_labels(t, s) for t, s in zip(texts, final, strict=True)])
        k = len(set(gold))
        rows: dict[str, list[dict]] = {}
        t0 = time.monotonic()
        sel_t, sel_j = SelectClusterer(), SelectClusterer()
        for s in seeds:
            sel_t.set_seed(s)
            texts_part = sel_t.fit_predict(x, k, labels=final)
            a = list(sel_t.partitions_.values())
            sel_t.set_seed(s + 100)
            sel_t.fit_predict(x, k, labels=final)
            a2 = list(sel_t.partitions_.values())
            sel_j.set_seed(s)
            joined_part = sel_j.fit_predict(xj, k, labels=final)
            b = list(sel_j.partitions_.values())
            for key, part in (
                ("default clusterer, texts (the product)", texts_part),
                ("default clusterer, text ⊕ labels", joined_part),
                ("consensus of texts' 4 partitions", consensus(a, k, s)),
                ("consensus of texts' 8 partitions, 2 seeds (control)", consensus(a + a2, k, s)),
                ("consensus of texts' 4 + text ⊕ labels' 4", consensus(a + b, k, s)),
            ):
                rows.setdefault(key, []).append(scores(gold, part))
            print(name, s, {key: round(v[-1]["acc"], 1) for key, v in rows.items()},
                  file=sys.stderr)
        out.append({"set": name, "k": k, "n": len(texts), "seconds": round(time.monotonic() - t0),
                    "rows": {key: summarise(v) for key, v in rows.items()}})
    write_report({"command": command(), "seeds": seeds, "sets": out}, args.report, markdown)
    return 0


def markdown(r: dict) -> str:
    lines = [f"Command: `{r['command']}`  ", f"Seeds {r['seeds']}; true K; ACC / NMI x 100.", "",
             "| set | partition | ACC | NMI |", "|---|---|---|---|"]
    for s in r["sets"]:
        head = f"{s['set']} (K {s['k']}, {s['n']} texts, {s['seconds']} s)"
        for key, v in s["rows"].items():
            lines.append(f"| {head} | {key} | {v['acc']:.1f} ± {v['acc_sd']:.1f} | "
                         f"{v['nmi']:.1f} ± {v['nmi_sd']:.1f} |")
            head = ""
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
