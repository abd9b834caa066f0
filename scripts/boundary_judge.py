"""Can the LLM move the texts the clusterer is least sure of to the right cluster?

    python scripts/boundary_judge.py SET=STORE:RUN [SET=STORE:RUN ...] [--llm NAME]
        [--seeds 0] [--share 0.1] [--choices 3] [--examples 4] [--names both]
        [--report reports/boundary_judge.md]

Each STORE:RUN is a finished ``intentlocal run`` of ../shared/data/SET/test.jsonl (read
back as scripts/label_merge.py does). The default clusterer partitions the texts at the
true K; a text's margin is its cosine to its own cluster's centroid minus its cosine to
the nearest other centroid, and the ``share`` of texts with the lowest margins are the
boundary texts. For each, the LLM sees the text and ``choices`` candidate clusters (its
own and the nearest others, as letters in a seeded order), each shown by its name (its
most shared pseudo-label) and its most typical texts (nearest the centroid), and answers
one letter (grammar). Every question is asked twice, the second time with the groups in
reverse order; a text moves only when both answers name the same other cluster.
Gold intents are used for scoring only: how often the boundary texts' cluster holds their
gold intent as its majority, before and after, and ACC / NMI of the whole partition.

Why: the pair judge (reports/pair_judge.md) asked the LLM whether two clusters are one
intent, a judgement about two groups that the 0.5B and 1.5B make no better than chance.
Sorting one message into one of a few groups shown by examples is few-shot
classification, a task small instruction models are trained on; and the texts whose
cluster the geometry is least sure of are where the embedder makes its mistakes.
``--names none`` shows the examples only: with the names, the pseudo-labels are part of
the judgement, which is what issue 7 asks of them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_merge import load_run, majority
from pair_judge import typical
from stored_runs import command, parser, run_specs, seed_list, write_report

LETTERS = "ABCDEFGH"


def margins(x: np.ndarray, part: np.ndarray, choices: int
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each text's margin (own centroid cosine minus the best other's), and its
    ``choices`` candidate clusters: its own first, then the nearest other centroids.
    Also the unit centroids, for the nearest-centroid control."""
    k = int(part.max()) + 1
    cen = np.stack([x[part == c].mean(axis=0) for c in range(k)])
    cen /= np.linalg.norm(cen, axis=1, keepdims=True)
    sim = x @ cen.T
    own = sim[np.arange(len(x)), part]
    other = sim.copy()
    other[np.arange(len(x)), part] = -np.inf
    order = np.argsort(-other, axis=1)[:, : choices - 1]
    cands = np.concatenate([part[:, None], order], axis=1)
    return own - other.max(axis=1), cands, cen


def share_right(p: np.ndarray, idx: np.ndarray, maj: list[str], gold: list[str]) -> float:
    """Share of the texts ``idx`` that partition ``p`` puts in a cluster whose
    majority intent (in the clusterer's partition) is theirs."""
    return float(np.mean([maj[p[i]] == gold[i] for i in idx]))


def ask(generator, prompt, items: list[tuple[int, list[int]]], texts: list[str],
        names: dict[int, str] | None, examples: list[list[str]], per_group: int,
        chars: int, rng: np.random.Generator) -> dict[int, tuple[int, int]]:
    """For each (text, candidate clusters), the cluster the LLM picks with the groups
    in a seeded order and in the reverse order. Each group shows ``per_group`` of its
    typical texts, never the text being asked about."""
    from intentlocal.backends.base import Grammar, Request, generate_all
    from intentlocal.pipeline.labels import clip

    reqs, orders = [], []
    for i, cands in items:
        first = list(rng.permutation(cands))
        for order in (first, first[::-1]):
            groups = []
            for letter, c in zip(LETTERS, order, strict=False):
                head = f"Group {letter}" + (f", named {names[c]}" if names else "") + ":"
                ex = [t for t in examples[c] if t != texts[i]][:per_group]
                groups.append(head + "\n" + "\n".join(f"- {clip(t, chars)}" for t in ex))
            static, msgs = prompt.messages(target=clip(texts[i], 2 * chars),
                                           groups="\n".join(groups))
            alts = " | ".join(f'"{LETTERS[n]}"' for n in range(len(order)))
            reqs.append(Request(static, msgs, Grammar(f"letters-{len(order)}",
                                                      f"root ::= {alts}\n"), max_tokens=2))
            orders.append(order)
    gens = generate_all(generator, reqs)
    picks = [int(o[LETTERS.index(g.text.strip())]) for g, o in zip(gens, orders, strict=True)]
    return {i: (picks[2 * n], picks[2 * n + 1]) for n, (i, _) in enumerate(items)}


def main() -> int:
    ap = parser(__doc__, "boundary_judge.md", seeds="0")
    ap.add_argument("--llm", default=None, help="manifest name (default: the settings' LLM)")
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--choices", type=int, default=3)
    ap.add_argument("--examples", type=int, default=4)
    ap.add_argument("--chars", type=int, default=90)
    ap.add_argument("--names", choices=("both", "names", "none"), default="both")
    args = ap.parse_args()

    from intentlocal.backends.registry import load_llm
    from intentlocal.config import load_settings
    from intentlocal.pipeline.cluster import SelectClusterer
    from intentlocal.pipeline.labels import load_prompt
    from intentlocal.pipeline.metrics import scores
    from intentlocal.pipeline.naming import name_clusters
    from intentlocal.store import Store

    settings = load_settings()
    llm = args.llm or settings.llm
    generator = load_llm(llm, seed=settings.seed, temperature=0.0, n_ctx=settings.n_ctx,
                         parallel=settings.parallel)
    prompt = load_prompt("assign_group")
    variants = {"both": ("names", "none"), "names": ("names",), "none": ("none",)}[args.names]
    out = []
    for name, path, run in run_specs(args.runs):
        x, gold, _init, final = load_run(name, path, run, Path(args.data))
        texts = Store(path).uniques(run)
        k = len(set(gold))
        row: dict = {"set": name, "k": k, "n": len(texts), "llm": llm, "prompt": prompt.hash,
                     "seeds": []}
        for s in seed_list(args.seeds):
            sel = SelectClusterer()
            sel.set_seed(s)
            part = sel.fit_predict(x, k, labels=final)
            margin, cands, cen = margins(x, part, args.choices)
            picked = np.argsort(margin, kind="stable")[: round(args.share * len(texts))]
            maj = majority(part, gold)

            def right(p: np.ndarray) -> float:
                return share_right(p, picked, maj, gold)  # noqa: B023 (called at once)
            nearest = part.copy()
            nearest[picked] = np.argmax(x[picked] @ cen.T, axis=1)
            seed_row = {"seed": s, "chosen": sel.chosen_, "boundary": len(picked),
                        "base": scores(gold, part) | {"right": right(part)},
                        "nearest centroid": scores(gold, nearest)
                        | {"right": right(nearest),
                           "moved": int((nearest != part).sum())},
                        "gold among candidates": float(np.mean(
                            [gold[i] in {maj[c] for c in cands[i]} for i in picked]))}
            named = {c["id"]: c["name"] for c in name_clusters(part, final)}
            examples = typical(x, part, texts, args.examples + 1)
            for variant in variants:
                t0 = time.monotonic()
                said = ask(generator, prompt, [(int(i), [int(c) for c in cands[i]])
                                               for i in picked],
                           texts, named if variant == "names" else None, examples, args.examples,
                           args.chars,
                           np.random.default_rng(s))
                new = part.copy()
                for i, (a, b) in said.items():
                    if a == b:
                        new[i] = a
                first = part.copy()
                for i, (a, _b) in said.items():
                    first[i] = a
                seed_row[variant] = {
                    "seconds": round(time.monotonic() - t0, 1),
                    "agree": float(np.mean([a == b for a, b in said.values()])),
                    "stay": float(np.mean([a == b == part[i] for i, (a, b) in said.items()])),
                    "both orders": scores(gold, new) | {"right": right(new),
                                                        "moved": int((new != part).sum())},
                    "first order": scores(gold, first) | {"right": right(first),
                                                          "moved": int((first != part).sum())}}
            row["seeds"].append(seed_row)
            print(name, json.dumps(seed_row), file=sys.stderr)
        out.append(row)
    write_report({"command": command(), "sets": out}, args.report, markdown)
    return 0


def markdown(r: dict) -> str:
    lines = [f"Command: `{r['command']}`  ",
             "ACC / NMI x 100 over all texts; 'boundary right': share of the boundary texts "
             "whose cluster's majority intent is their gold intent.", "",
             "'same answer in both orders': the share of boundary texts for which the LLM "
             "picked the same cluster with the groups shown in reverse (a model that answers "
             "by position does not).", "",
             "| set | seed | clusterer | boundary texts | gold among candidates | rule | moved "
             "| boundary right | ACC | NMI | same answer in both orders | LLM seconds |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in r["sets"]:
        for d in s["seeds"]:
            head = (f"| {s['set']} (K {s['k']}, {s['llm']}) | {d['seed']} | {d['chosen']} | "
                    f"{d['boundary']} | {100 * d['gold among candidates']:.0f} % |")
            rows = [("as clustered", d["base"] | {"moved": 0}, "", ""),
                    ("nearest centroid (no LLM)", d["nearest centroid"], "", "")]
            for v in ("names", "none"):
                if v in d:
                    for rule in ("both orders", "first order"):
                        rows.append((f"LLM, {'names + ' if v == 'names' else ''}examples, "
                                     f"{rule}", d[v][rule], f"{100 * d[v]['agree']:.0f} %",
                                     d[v]["seconds"]))
            for rule, sc, agree, sec in rows:
                lines.append(f"{head} {rule} | {sc['moved']} | {100 * sc['right']:.1f} % | "
                             f"{sc['acc']:.1f} | {sc['nmi']:.1f} | {agree} | {sec} |")
                head = "| | | | | |"
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
