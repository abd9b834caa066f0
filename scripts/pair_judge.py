"""Can the LLM tell which neighbouring clusters are one intent? A merge simulation.

    python scripts/pair_judge.py SET=STORE:RUN [SET=STORE:RUN ...] [--llm NAME]
        [--seeds 0] [--examples 5] [--report reports/pair_judge.md]

Each STORE:RUN is a finished ``intentlocal run`` of ../shared/data/SET/test.jsonl (read
back as scripts/label_merge.py does). At the K a run estimates, the default clusterer
partitions the texts; each cluster and its 5 nearest clusters (centroid cosine) form the
candidate pairs. The LLM sees, for each pair, both clusters' names (their most shared
pseudo-label) and their most typical texts (nearest the centroid), and answers "same" or
"different" (grammar-constrained), in both orders. Gold intents are used for scoring
only: how often a "same" pair holds one majority intent (precision, recall), and the
partitions after merging the pairs judged "same" in both orders (K, ACC, NMI), alone or
gated by the label profiles' cosine.

Why: the estimator over-splits banking77 (89-91 for 77); label profiles rank the
over-split pairs with AUC 0.76-0.81 only (reports/label_merge.md), too weakly for a base
rate of 14 in 313 pairs. A cluster-level judgement reads the texts themselves.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_merge import centroid_neighbours, cosine, load_run, majority, profiles
from stored_runs import command, parser, run_specs, seed_list, write_report

GATES = (0.0, 0.2, 0.3)
NAME_TAUS = (0.5, 0.75, 1.0)


def name_words(cluster: dict, top: int) -> set[str]:
    """The words of a cluster's ``top`` most shared labels ("delete_account" and
    "account_delete" are the same two words)."""
    return {w for lab, _ in cluster["top_labels"][:top] for w in lab.split("_")}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def typical(x: np.ndarray, part: np.ndarray, texts: list[str], n: int) -> list[list[str]]:
    """Each cluster's n texts nearest its centroid: what the cluster is about."""
    out = []
    for c in range(int(part.max()) + 1):
        idx = np.where(part == c)[0]
        cen = x[idx].mean(axis=0)
        order = idx[np.argsort(-(x[idx] @ cen))]
        out.append([texts[i] for i in order[:n]])
    return out


def union(k: int, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Each of the k clusters' new cluster after joining ``pairs`` (transitively)."""
    parent = list(range(k))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in pairs:
        parent[find(i)] = find(j)
    return np.unique([find(i) for i in range(k)], return_inverse=True)[1]


def merge_scores(part: np.ndarray, gold: list[str], maj: list[str],
                 chosen: list[tuple[int, int]]) -> dict:
    """The partition after joining the ``chosen`` cluster pairs, scored, with how many
    merges there were and how many joined one majority intent."""
    from intentlocal.pipeline.metrics import scores

    m = union(int(part.max()) + 1, chosen)[part]
    return scores(gold, m) | {"k": int(m.max()) + 1, "merged": len(chosen),
                              "true": sum(maj[i] == maj[j] for i, j in chosen)}


def judge(generator, prompt, pairs, names, examples, chars: int
          ) -> dict[tuple[int, int], tuple[bool, bool]]:
    """Whether the LLM said "same" for each pair asked as (i, j) and as (j, i): a model
    that answers by position says it in one order only."""
    from intentlocal.backends.base import Grammar, Request, generate_all
    from intentlocal.pipeline.labels import clip

    grammar = Grammar("same-or-different", 'root ::= "same" | "different"\n')

    def block(c: int) -> str:
        return "\n".join(f"- {clip(t, chars)}" for t in examples[c])

    reqs = []
    for i, j in pairs:
        for a, b in ((i, j), (j, i)):
            static, msgs = prompt.messages(name_a=names[a], texts_a=block(a),
                                           name_b=names[b], texts_b=block(b))
            reqs.append(Request(static, msgs, grammar, max_tokens=3))
    gens = generate_all(generator, reqs)
    said = [g.text.strip() == "same" for g in gens]
    return {p: (said[2 * n], said[2 * n + 1]) for n, p in enumerate(pairs)}


def main() -> int:
    ap = parser(__doc__, "pair_judge.md", seeds="0")
    ap.add_argument("--llm", default=None, help="manifest name (default: the settings' LLM)")
    ap.add_argument("--examples", type=int, default=5)
    ap.add_argument("--chars", type=int, default=100)
    ap.add_argument("--no-llm", action="store_true",
                    help="only the LLM-free rule (cluster names' words)")
    args = ap.parse_args()

    from intentlocal.backends.registry import load_llm
    from intentlocal.config import load_settings
    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.cluster import SelectClusterer
    from intentlocal.pipeline.labels import load_prompt
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.pipeline.naming import name_clusters
    from intentlocal.store import Store

    settings = load_settings()
    llm = args.llm or settings.llm
    generator = None if args.no_llm else load_llm(
        llm, seed=settings.seed, temperature=0.0, n_ctx=settings.n_ctx,
        parallel=settings.parallel)
    prompt = load_prompt("merge_clusters")
    seeds = seed_list(args.seeds)
    out = []
    for name, path, run in run_specs(args.runs):
        x, gold, _init, final = load_run(name, path, run, Path(args.data))
        texts = Store(path).uniques(run)  # load_run checked they are the set's
        k_true, k_est = len(set(gold)), MapEquationK().estimate(x)
        row: dict = {"set": name, "k_true": k_true, "k_est": k_est,
                     "llm": "none" if args.no_llm else llm,
                     "prompt": prompt.hash, "seeds": []}
        base, merged = [], {}
        sel = SelectClusterer()
        for s in seeds:
            sel.set_seed(s)
            part = sel.fit_predict(x, k_est, labels=final)
            base.append(scores(gold, part) | {"k": k_est})
            named = {c["id"]: c for c in name_clusters(part, final)}
            names = {c: d["name"] for c, d in named.items()}
            maj = majority(part, gold)
            pairs = centroid_neighbours(x, part)
            prof = profiles(part, final)
            seed_row = {"seed": s, "pairs": len(pairs), "seconds": 0.0,
                        "same_intent": sum(maj[i] == maj[j] for i, j in pairs)}

            # LLM-free: merge the pairs whose names (top labels) use the same words.
            for top in (1, 3):
                for tau in NAME_TAUS:
                    merged.setdefault(
                        f"no LLM: words of the top {top} label(s), Jaccard >= {tau}", []
                    ).append(merge_scores(part, gold, maj, [
                        (i, j) for i, j in pairs
                        if jaccard(name_words(named[i], top), name_words(named[j], top)) >= tau]))
            if generator is None:
                row["seeds"].append(seed_row)
                continue
            t0 = time.monotonic()
            said = judge(generator, prompt, pairs, names, typical(x, part, texts, args.examples),
                         args.chars)
            seed_row["seconds"] = round(time.monotonic() - t0, 1)
            for mode, agree in (("both", all), ("either", any)):
                yes = [p for p in pairs if agree(said[p])]
                seed_row[mode] = {"said_same": len(yes),
                                  "true": sum(maj[i] == maj[j] for i, j in yes)}
                for gate in GATES:
                    merged.setdefault(f"{mode}, label cosine >= {gate}", []).append(
                        merge_scores(part, gold, maj, [
                            (i, j) for i, j in yes if cosine(prof[i], prof[j]) >= gate]))
            row["seeds"].append(seed_row)
            print(name, json.dumps(seed_row), file=sys.stderr)
        row["base"] = summarise(base) | {"k": k_est}
        row["merged"] = {key: summarise(v) | {
            "k_mean": float(np.mean([r["k"] for r in v])),
            "merged": float(np.mean([r["merged"] for r in v])),
            "true": float(np.mean([r["true"] for r in v]))} for key, v in merged.items()}
        for key, v in row["merged"].items():
            print(f"  {key}: K {v['k_mean']:.1f} ACC {v['acc']:.1f} NMI {v['nmi']:.1f} "
                  f"({v['true']:.0f} of {v['merged']:.0f} merges one intent)", file=sys.stderr)
        out.append(row)
    write_report({"command": command(), "seeds": seeds, "sets": out}, args.report, markdown)
    return 0


def markdown(r: dict) -> str:
    lines = [f"Command: `{r['command']}`  ", f"Seeds {r['seeds']}; ACC / NMI x 100."]
    if any("both" in d for s in r["sets"] for d in s["seeds"]):  # not with --no-llm
        lines += ["", "## The LLM's judgements on neighbouring cluster pairs", "",
                  "| set | LLM | seed | pairs | one intent | said same (both orders) | of which "
                  "one intent | said same (either order) | of which one intent | LLM seconds |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
    for s in r["sets"]:
        for d in s["seeds"]:
            if "both" not in d:
                continue
            lines.append(f"| {s['set']} | {s['llm']} | {d['seed']} | {d['pairs']} | "
                         f"{d['same_intent']} | {d['both']['said_same']} | {d['both']['true']} | "
                         f"{d['either']['said_same']} | {d['either']['true']} | {d['seconds']} |")
    lines += ["", "## Merging the pairs judged the same", "",
              "| set | rule | K | merges | of which one intent | ACC | NMI |",
              "|---|---|---|---|---|---|---|"]
    for s in r["sets"]:
        b = s["base"]
        lines.append(f"| {s['set']} (true K {s['k_true']}) | none (estimated K) | {b['k']} | 0 "
                     f"| 0 | {b['acc']:.1f} ± {b['acc_sd']:.1f} | "
                     f"{b['nmi']:.1f} ± {b['nmi_sd']:.1f} |")
        for key, v in s["merged"].items():
            lines.append(f"| {s['set']} | {key} | {v['k_mean']:.1f} | {v['merged']:.1f} | "
                         f"{v['true']:.1f} | {v['acc']:.1f} ± {v['acc_sd']:.1f} | "
                         f"{v['nmi']:.1f} ± {v['nmi_sd']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
