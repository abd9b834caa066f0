"""How many neighbours the initial-label prompt needs: label quality against time.

The initial labels are all a default run spends its LLM time on (refinement adds the
most shared labels without a call), and every neighbour shown costs its tokens in every
prompt. This writes the initial label of the same random targets of each set's
distinct texts (as a run sees them, with their 10 nearest neighbours among all of the
set's texts under the default embedder) with the first k neighbours shown, for each k
in --ks, through the runner's own request builder and generator settings, and scores
the labels against the gold intents (scoring only; the model never sees them):

* homogeneity: does a label stay inside one intent (a label naming two intents is a
  wrong name for one of them);
* completeness: does an intent keep one label (what showing the neighbours is for:
  texts of one intent that see each other's texts should write the same label);
* V-measure (NMI), distinct labels, and how many labels equal those written with the
  most neighbours in --ks;
* seconds per call (the stage's wall time over its calls, batches of `parallel` as a
  run sends them) and new prompt tokens per call.

    python scripts/prompt_neighbours.py [--sets banking77,clinc150,massive_intent,mtop_intent] \\
        [--intents 25] [--per-intent 8] [--ks 5,1,0] [--report reports/prompt_neighbours.md]
    python scripts/prompt_neighbours.py --ks 2 \\
        --prompts initial_label,prompts/variants/initial_label_short.toml
    python scripts/prompt_neighbours.py --sets banking77 --runs STORE:RUN [STORE:RUN ...]

``--prompts`` compares wordings of the initial-label prompt (each at each k): the
shipped one and the variants under prompts/variants/, which no run uses by default.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SETS = ("banking77", "clinc150", "massive_intent", "mtop_intent")


def load_set(path: Path) -> tuple[list[str], list[str]]:
    """Distinct texts as a run dedupes its input (Corpus.unique: case and spacing
    folded, first occurrence kept) and the gold label of each one's first row."""
    from intentlocal.bench import load_labelled
    from intentlocal.ingest import Corpus

    texts, gold = load_labelled(path, None, 0)
    uniques, uids = Corpus(texts, [], path.parent.name).unique()
    first: dict[int, str] = {}
    for row, uid in enumerate(uids):
        first.setdefault(uid, gold[row])
    return uniques, [first[u] for u in range(len(uniques))]


def pick_targets(gold: list[str], intents: int, per_intent: int, seed: int) -> list[int]:
    """per_intent random texts of each of `intents` random intents: completeness needs
    several texts of one intent among the targets, which a uniform sample of a few
    hundred texts over 150 intents would not give. Gold labels choose the sample only."""
    rng = np.random.default_rng(seed)
    by: dict[str, list[int]] = {}
    for i, g in enumerate(gold):
        by.setdefault(g, []).append(i)
    pool = sorted(g for g, ids in by.items() if len(ids) >= per_intent)
    chosen = rng.choice(len(pool), min(intents, len(pool)), replace=False)
    return sorted(int(i) for c in chosen
                  for i in rng.choice(by[pool[c]], per_intent, replace=False))


def score(labels: list[str], gold: list[str]) -> dict[str, float]:
    from sklearn.metrics import homogeneity_completeness_v_measure

    h, c, v = homogeneity_completeness_v_measure(gold, labels)
    return {"homogeneity": 100 * h, "completeness": 100 * c, "v_measure": 100 * v,
            "distinct": len(set(labels))}


def run_labels(store: str, run_id: int, dataset: Path) -> tuple[list[str], list[str], int]:
    """A finished run's initial label of each distinct text, the text's gold intent (its
    first row's) and the prompt_neighbours the run used: the same scores over a whole set,
    from runs already made, with no LLM call."""
    import sqlite3

    db = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    rows = [json.loads(x)["label"] for x in dataset.read_text().splitlines() if x.strip()]
    gold: dict[int, str] = {}
    for idx, uid in db.execute("SELECT idx, uid FROM texts WHERE run_id=? ORDER BY idx",
                               (run_id,)):
        gold.setdefault(uid, rows[idx])
    first = dict(db.execute("SELECT uid, label FROM labels WHERE run_id=? AND iteration=0",
                            (run_id,)))
    settings = json.loads(db.execute("SELECT settings_json FROM runs WHERE id=?",
                                     (run_id,)).fetchone()[0])
    uids = sorted(first)
    return [first[u] for u in uids], [gold[u] for u in uids], int(settings["prompt_neighbours"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared/data"))
    ap.add_argument("--sets", default=",".join(SETS))
    ap.add_argument("--intents", type=int, default=25)
    ap.add_argument("--per-intent", type=int, default=8)
    ap.add_argument("--ks", default="5,1,0", help="neighbours shown, most first")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompts", default="initial_label",
                    help="initial-label prompts to compare: names under prompts/ or .toml "
                         "paths (prompts/variants/ holds the wording variants measured)")
    ap.add_argument("--cache", default=str(REPO / ".cache/clusterers.sqlite3"))
    ap.add_argument("--report")
    ap.add_argument("--runs", nargs="*", default=[], metavar="STORE:RUN",
                    help="instead: score finished runs' initial labels of a whole set "
                         "(--sets names the one set)")
    a = ap.parse_args()
    if a.runs:
        path = Path(a.data) / a.sets.split(",")[0] / "test.jsonl"
        print("| run | neighbours shown | homogeneity | completeness | V-measure | "
              "distinct labels | texts |\n|---|---|---|---|---|---|---|")
        for ref in a.runs:
            store, run = ref.rsplit(":", 1)
            labels, gold, k = run_labels(store, int(run), path)
            r = score(labels, gold)
            print(f"| {ref} | {k} | {r['homogeneity']:.1f} | {r['completeness']:.1f} | "
                  f"{r['v_measure']:.1f} | {r['distinct']} | {len(labels)} |")
        return 0

    from intentlocal.api import build_backends
    from intentlocal.backends.base import generate_all
    from intentlocal.config import Settings
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.labels import initial_request, load_prompt, read_initial_label
    from intentlocal.pipeline.neighbours import nearest_neighbours
    from intentlocal.store import Store

    settings = Settings()
    ks = [int(k) for k in a.ks.split(",")]
    embedder, generator = build_backends(settings)
    prompts = [load_prompt(Path(p).stem, Path(p).resolve().parent) if p.endswith(".toml")
               else load_prompt(p) for p in a.prompts.split(",")]
    store = Store(Path(a.cache))
    rows = []
    for name in a.sets.split(","):
        texts, gold = load_set(Path(a.data) / name / "test.jsonl")
        vectors = embed_cached(store, embedder, texts)
        nb = nearest_neighbours(vectors, settings.neighbours)
        targets = pick_targets(gold, a.intents, a.per_intent, a.seed)
        tgold = [gold[i] for i in targets]
        first: list[str] | None = None
        for prompt, k in ((p, k) for p in prompts for k in ks):
            reqs = [initial_request(prompt, texts[i], [texts[j] for j in nb[i][:k]],
                                    settings.neighbour_chars) for i in targets]
            t = time.perf_counter()
            gens = generate_all(generator, reqs)  # as the runner sends them
            secs = (time.perf_counter() - t) / len(reqs)
            labels = [read_initial_label(generator.model_id, g) for g in gens]
            first = first or labels
            row = {"set": name, "prompt": prompt.name, "prompt_hash": prompt.hash,
                   "k": k, "targets": len(targets),
                   "intents": len(set(tgold)), "s_per_call": secs,
                   "new_tokens": statistics.mean(g.prompt_tokens - g.cached_tokens for g in gens),
                   "same_as_first": sum(x == y for x, y in zip(labels, first, strict=True)),
                   **score(labels, tgold)}
            rows.append(row)
            print(json.dumps({k_: (round(v, 3) if isinstance(v, float) else v)
                              for k_, v in row.items()}), flush=True)

    lines = [
        f"# Neighbours in the initial-label prompt: {a.per_intent} random texts of each of "
        f"{a.intents} random intents per set",
        "",
        f"`python scripts/prompt_neighbours.py --intents {a.intents} --per-intent {a.per_intent} "
        f"--ks {a.ks} --prompts {a.prompts}` "
        f"({settings.embedder} neighbours among each set's distinct test texts, "
        f"{settings.llm}, parallel {settings.parallel}; gold intents score only)",
        "",
        "| set | prompt | neighbours shown | s / call | new prompt tok / call | homogeneity | "
        "completeness | V-measure | distinct labels | labels as the first row's |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *[f"| {r['set']} ({r['intents']} intents among the targets) | {r['prompt']} "
          f"({r['prompt_hash'][:8]}) | {r['k']} | "
          f"{r['s_per_call']:.3f} | {r['new_tokens']:.0f} | {r['homogeneity']:.1f} | "
          f"{r['completeness']:.1f} | {r['v_measure']:.1f} | {r['distinct']} | "
          f"{r['same_as_first']}/{r['targets']} |" for r in rows],
    ]
    print("\n".join(lines))
    if a.report:
        Path(a.report).write_text("\n".join(lines) + "\n")
        Path(a.report).with_suffix(".json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
