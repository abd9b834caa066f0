"""Is the consensus of several UMAP + HDBSCAN seeds better than one seed?

    python scripts/density_ensemble.py [--sets ...] [--members 5] [--ensembles 3]
        [--report reports/density_ensemble.md]

Why: umap-hdbscan is the candidate the default keeps on the skewed sets (massive_intent,
mtop_intent), and its ACC moves 1.3-4.5 points from one UMAP seed to the next
(reports/umap_seed_spread_mtop_intent.md, reports/embedder_variant.md). The consensus of
the four different candidates lost on those sets because the balanced ones outvote it
(reports/consensus_clusterers.md); the consensus of one candidate's seeds keeps its
shape and may only remove its seed noise. Each ensemble takes ``--members`` consecutive
seeds (ensemble e: seeds e*members ... e*members + members - 1), clusters every set's
distinct texts (int8 vectors, the product's batches, cached by embedder_variant.py) at
the true K with each, and partitions their co-association (consensus_partition). The
report gives the members' mean and the consensus, per ensemble and over all.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from embedder_variant import embed_variant
from stored_runs import CHECKOUT, command, write_report

SETS = ["banking77", "clinc150", "massive_intent", "mtop_intent"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--ensembles", type=int, default=3)
    ap.add_argument("--cache", default=str(CHECKOUT / ".cache" / "embedder_variant"))
    ap.add_argument("--report", default="reports/density_ensemble.md")
    args = ap.parse_args()

    from intentlocal.bench import load_labelled
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.cluster import DensityClusterer, consensus_partition
    from intentlocal.pipeline.metrics import scores, summarise

    rows: list[dict] = []
    for name in args.sets.split(","):
        texts, gold = load_labelled(Path(args.data) / name / "test.jsonl", None, 0)
        uniques, rows_of = Corpus(texts, [], name).unique()
        k = len(set(gold))
        x, _ = embed_variant("int8", uniques, Path(args.cache), name)
        members_all, cons_all = [], []
        t_members = t_cons = 0.0
        for e in range(args.ensembles):
            parts, member_scores = [], []
            for s in range(e * args.members, (e + 1) * args.members):
                t = time.perf_counter()
                p = DensityClusterer(random_state=s).fit_predict(x, k)
                t_members += time.perf_counter() - t
                parts.append(p)
                member_scores.append(scores(gold, p[rows_of]))
            t = time.perf_counter()
            c = consensus_partition(parts, k, e)
            t_cons += time.perf_counter() - t
            cs = scores(gold, c[rows_of])
            m = summarise(member_scores)
            members_all += member_scores
            cons_all.append(cs)
            print(f"{name} ensemble {e}: members ACC {m['acc']:.1f} ± {m['acc_sd']:.1f} "
                  f"NMI {m['nmi']:.1f}; consensus ACC {cs['acc']:.1f} NMI {cs['nmi']:.1f}",
                  file=sys.stderr)
            rows.append({"set": name, "ensemble": e, "k": k, "members": m, "consensus": cs})
        rows.append({"set": name, "ensemble": "all", "k": k, "members": summarise(members_all),
                     "consensus": summarise(cons_all),
                     "seconds_per_member": round(t_members / len(members_all), 1),
                     "seconds_per_consensus": round(t_cons / len(cons_all), 1)})

    def markdown(report: dict) -> str:
        out = ["# Consensus of UMAP + HDBSCAN seeds", "",
               f"Command: `{report['command']}`  ",
               f"True K, distinct texts clustered, every row scored; int8 EmbeddingGemma; "
               f"{args.members} seeds an ensemble; {platform.machine()}. ACC / NMI / ARI x 100.",
               "", "| set | ensemble | members (mean ± sd) ACC / NMI / ARI | consensus ACC / NMI "
               "/ ARI | s a member / s the consensus |", "|---|---|---|---|---|"]
        for r in report["rows"]:
            m, c = r["members"], r["consensus"]
            sd = f" ± {c['acc_sd']:.1f}" if "acc_sd" in c else ""
            cost = (f"{r['seconds_per_member']} / {r['seconds_per_consensus']}"
                    if "seconds_per_member" in r else "")
            out.append(f"| {r['set']} (K={r['k']}) | {r['ensemble']} | {m['acc']:.1f} ± "
                       f"{m['acc_sd']:.1f} / {m['nmi']:.1f} / {m['ari']:.1f} | {c['acc']:.1f}{sd}"
                       f" / {c['nmi']:.1f} / {c['ari']:.1f} | {cost} |")
        return "\n".join(out) + "\n"

    write_report({"command": command(), "rows": rows}, args.report, markdown)


if __name__ == "__main__":
    main()
