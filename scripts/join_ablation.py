"""How refinement finds its neighbours: re-embed "text (labels)", or mix vectors.

The refinement step retrieves each text's neighbours among the texts joined with
their initial labels. The paper embeds the string "text (label, ...)" again, which
costs a second pass of the embedder over every text (64 of banking77's 153 s outside
llama.cpp). The alternative is the text's own vector plus ``w`` times the mean
vector of its labels, each distinct label embedded once. This script takes a
finished run of a benchmark's test set, keeps its initial labels (no model writes
anything), and for each way of joining:

* builds the vectors and times it (the re-embedding is read from the run's cache,
  so its time is the run's own ``embed-1`` stage time);
* retrieves the m nearest neighbours and measures how many of the paper's
  neighbours (the re-embedded string's) it finds: no gold labels involved;
* adds the two most shared neighbour labels (the default rule) and clusters with
  the UMAP + HDBSCAN candidate at the true K, the labels choosing the splits,
  5 seeds (layout and groups shared per seed, so only the labels differ).

"none" takes the neighbours of the text vectors alone (no labels joined).

    python scripts/join_ablation.py SET STORE:RUN [--weights 0.25,0.5,1] [--report F]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def initial_labels(store_path: str, run: int) -> tuple[list[str], list[list[str]], float]:
    """The run's distinct texts (uid order), their iteration-0 labels, embed-1 seconds."""
    con = sqlite3.connect(store_path)
    texts = [t for (t,) in con.execute(
        "SELECT text FROM uniques WHERE run_id=? ORDER BY uid", (run,))]
    sets: list[list[str]] = [[] for _ in texts]
    for uid, label in con.execute(
        "SELECT uid, label FROM labels WHERE run_id=? AND iteration=0 ORDER BY id", (run,)
    ):
        sets[uid].append(label)
    row = con.execute(
        "SELECT seconds FROM stages WHERE run_id=? AND stage='embed-1'", (run,)).fetchone()
    return texts, sets, float(row[0]) if row and row[0] is not None else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set")
    ap.add_argument("run", metavar="STORE:RUN")
    ap.add_argument("--weights", default="0.25,0.5,1")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--report", help="append the table's rows to this Markdown file")
    a = ap.parse_args()

    from intentlocal.api import build_backends
    from intentlocal.config import load_settings
    from intentlocal.pipeline.augment import join_labels, mix_vectors
    from intentlocal.pipeline.cluster import DensityClusterer
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.labels import shared_refinement
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.pipeline.neighbours import nearest_neighbours
    from intentlocal.store import Store
    from scripts.label_distance import load_run
    from scripts.selector_ablation import show_table

    settings = load_settings()
    path, _, run = a.run.rpartition(":")
    uniques, initial, embed1_s = initial_labels(path, int(run))
    store = Store(path)
    embedder, _ = build_backends(settings)
    x = embed_cached(store, embedder, uniques)  # the run's own vectors: a cache hit
    m = settings.neighbours

    vectors: dict[str, np.ndarray] = {}
    took: dict[str, float] = {}
    joined = [join_labels(t, lab) for t, lab in zip(uniques, initial, strict=True)]
    vectors["text (paper)"] = embed_cached(store, embedder, joined)
    took["text (paper)"] = embed1_s
    for w in (float(v) for v in a.weights.split(",")):
        t = time.perf_counter()
        # A fresh embedder call, not the cache: the time a run would spend.
        vectors[f"mix w={w:g}"] = mix_vectors(x, initial, embedder.embed, w)
        took[f"mix w={w:g}"] = time.perf_counter() - t
    vectors["none"] = x
    took["none"] = 0.0

    paper_nb = nearest_neighbours(vectors["text (paper)"], m)
    rows: dict[str, dict] = {}
    for name, v in vectors.items():
        nb = paper_nb if name == "text (paper)" else nearest_neighbours(v, m)
        overlap = float(np.mean(
            [len(set(a_) & set(b_)) / m for a_, b_ in zip(nb, paper_nb, strict=True)]))
        final = shared_refinement(initial, nb, settings.max_candidates, settings.max_select,
                                  settings.min_share)
        rows[name] = {"overlap": overlap, "labels": final, "got": []}

    # Score every input row by its distinct text's cluster, as a run does.
    sr = load_run(a.run, a.set)
    uid_of, gold = sr.uid_of, sr.gold
    k = len(set(gold))
    geometry: list[dict] = []
    start = time.perf_counter()
    for seed in (int(s) for s in a.seeds.split(",")):
        dc = DensityClusterer(random_state=seed)
        geometry.append(scores(gold, dc.fit_predict(x, k)[uid_of]))
        for r in rows.values():
            r["got"].append(scores(gold, dc.fit_predict(x, k, labels=r["labels"])[uid_of]))
        print(f"seed {seed}: {time.perf_counter() - start:.0f} s", file=sys.stderr)

    g = summarise(geometry)
    lines = [f"| {a.set} | geometry (no labels) | | | {g['acc']:.1f} ± {g['acc_sd']:.1f} | "
             f"{g['nmi']:.1f} ± {g['nmi_sd']:.1f} |"]
    for name, r in rows.items():
        s = summarise(r["got"])
        lines.append(f"| {a.set} | {name} | {took[name]:.1f} | {r['overlap']:.3f} | "
                     f"{s['acc']:.1f} ± {s['acc_sd']:.1f} | {s['nmi']:.1f} ± {s['nmi_sd']:.1f} |")
    head = ("| set | refinement neighbours from | seconds | share of the paper's neighbours "
            "| ACC | NMI |\n|---|---|---|---|---|---|")
    show_table(head, lines, a.report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
