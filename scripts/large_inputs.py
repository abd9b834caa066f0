"""Large inputs: time and peak memory of each stage on a big file, and whether
memory grows with the number of LLM calls.

A synthetic corpus of N distinct texts (default 100,000) is built from
banking77's training texts (each recombined with a random opener and closer
drawn from the same pool, so texts stay in-domain and distinct), written to a
CSV, then taken through the library's own stages: ingest, embedding, the
neighbour index (usearch HNSW above 20k texts), the initial LLM label on a
sample of texts (RSS sampled as calls accumulate), and K-means on all vectors.

    python scripts/large_inputs.py --n 100000 [--embedder minilm-l6-int8] \
        [--llm-sample 200] [--report reports/large_inputs.md]

Peak RSS is the process's ru_maxrss after each stage (it only grows). Vectors
go through a run store in the work folder, so a killed run resumes its
embedding; the embed row then times only what was left, and says so.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

OPENERS = ["", "hi,", "hello,", "hey there,", "good morning,", "excuse me,", "quick question:",
           "sorry to bother you,", "urgent:", "please help,"]
CLOSERS = ["", "thanks", "thank you!", "asap please", "any idea?", "cheers", "please advise",
           "I need this sorted today", "it is really frustrating", "regards"]


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return rss_mb()


def synthetic(n: int, seed: int = 0) -> list[str]:
    pool = [json.loads(x)["text"].strip() for x in
            (REPO.parent / "shared" / "data" / "banking77" / "train.jsonl").read_text().splitlines()
            if x.strip()]
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        t = " ".join(x for x in (rng.choice(OPENERS), rng.choice(pool), rng.choice(CLOSERS)) if x)
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--embedder", default="embeddinggemma-300m")
    ap.add_argument("--llm", default="qwen2.5-coder-0.5b")
    ap.add_argument("--llm-sample", type=int, default=200)
    ap.add_argument("--k", type=int, default=77)
    ap.add_argument("--workdir", default="/tmp/intentlocal-large")
    ap.add_argument("--report")
    a = ap.parse_args()

    from intentlocal.backends.registry import load_embedder, load_llm
    from intentlocal.config import Settings
    from intentlocal.ingest import read_corpus
    from intentlocal.pipeline.cluster import KMeansClusterer, SelectClusterer
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.pipeline.labels import load_prompt, write_initial_label
    from intentlocal.pipeline.neighbours import nearest_neighbours
    from intentlocal.store import Store

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, float, float]] = []

    def stage(name: str, started: float) -> None:
        rows.append((name, round(time.monotonic() - started, 1), round(rss_mb())))
        print(f"{name:<28} {rows[-1][1]:>8.1f} s   peak RSS {rows[-1][2]:>6.0f} MB", flush=True)

    t = time.monotonic()
    path = work / f"synthetic_{a.n}.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text"])
        w.writerows([x] for x in synthetic(a.n))
    stage("write synthetic CSV", t)

    t = time.monotonic()
    corpus = read_corpus(path)
    texts = corpus.unique()[0]
    stage(f"ingest ({len(texts)} texts)", t)

    t = time.monotonic()
    embedder = load_embedder(a.embedder)
    store = Store(work / "store.sqlite3")  # a killed run resumes its embedding here

    already: list[int] = []  # texts the store had from an earlier, killed invocation

    def on_batch(done: int, total: int) -> None:
        if not already:
            already.append(done)
        if done % 5120 < 256 or done == total:
            print(f"  embedded {done}/{total} ({time.monotonic() - t:.0f} s)", flush=True)

    vectors = embed_cached(store, embedder, texts, batch=256, on_batch=on_batch)
    stage(f"embed ({embedder.model_id}; {len(texts) - already[0]} texts embedded now, "
          f"{already[0]} from the store's cache)", t)

    t = time.monotonic()
    nb = nearest_neighbours(vectors, 10)
    stage("neighbour index + search", t)

    t = time.monotonic()
    gen = load_llm(a.llm)
    prompt = load_prompt("initial_label")
    rng = random.Random(0)
    sample = rng.sample(range(len(texts)), min(a.llm_sample, len(texts)))
    rss_by_calls: list[tuple[int, float]] = []
    for i, uid in enumerate(sample, 1):
        shown = nb[uid][: Settings().prompt_neighbours]  # as the run's initial prompt
        write_initial_label(gen, prompt, texts[uid], [texts[j] for j in shown], 160)
        if i == 1 or i % 25 == 0:
            rss_by_calls.append((i, round(current_rss_mb())))
    stage(f"initial labels ({len(sample)} calls)", t)

    t = time.monotonic()
    sel = SelectClusterer()
    sel.fit_predict(vectors, a.k)
    if list(sel.partitions_) == ["kmeans"]:
        # Above the other candidates' size limits the default is K-means alone: timing
        # K-means again would only repeat the same row.
        stage(f"K-means (K={a.k}, n_init=10) = the run's default clusterer here, its "
              "only candidate at this size", t)
    else:
        stage(f"select clusterer, the run's default (kept {sel.chosen_}; tried "
              f"{', '.join(sel.scores_)})", t)
        t = time.monotonic()
        KMeansClusterer().fit_predict(vectors, a.k)
        stage(f"K-means alone (K={a.k}, n_init=10)", t)

    lines = [
        f"# Large input: {len(texts)} synthetic texts",
        "",
        f"`python scripts/large_inputs.py --n {a.n} --embedder {a.embedder} "
        f"--llm-sample {a.llm_sample}`",
        "",
        "| stage | seconds | peak RSS MB |",
        "|---|---|---|",
        *[f"| {n} | {s} | {r} |" for n, s, r in rows],
        "",
        "RSS (current, MB) as LLM calls accumulate: "
        + ", ".join(f"{c} calls: {r}" for c, r in rss_by_calls),
    ]
    print("\n".join(lines))
    if a.report:
        Path(a.report).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
