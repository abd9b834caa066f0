"""What keeping UMAP's compiled numba code on disk saves, and that it changes nothing.

Each measurement is a fresh Python process, as each run is: it loads a set's vectors
(through the run-store cache, --cache), and times ``umap_layout`` as the umap-hdbscan
candidate calls it (banking77's 3,079 texts: the exact distance matrix path). Three
processes share one empty numba cache folder (NUMBA_CACHE_DIR, a temporary one):

* "compiled afresh": the cache left off, as before 1 Dec (umap-learn does not ask numba
  to cache);
* "first run, cache on": ``cache_umap_jit()`` first; compiles and writes the cache;
* "later runs, cache on": the same, reading it.

The layouts' SHA-256 says whether they are the same numbers.

    python scripts/umap_jit_cache.py [--set banking77] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import hashlib, json, sys, time
sys.path.insert(0, {repo!r})
from intentlocal.pipeline import cluster
from intentlocal.pipeline.vectors import unit_rows
if {cache}:
    cluster.cache_umap_jit()
import umap
from intentlocal.api import build_backends
from intentlocal.config import Settings
from intentlocal.pipeline.embedding import embed_cached
from intentlocal.store import Store
from intentlocal.bench import load_labelled
from intentlocal.ingest import Corpus
texts = Corpus(load_labelled({data!r}, None, 0)[0], [], "set").unique()[0]  # as a run
emb, _ = build_backends(Settings())
x = embed_cached(Store({store!r}), emb, texts)
t = time.perf_counter()
lay = cluster.umap_layout(umap, unit_rows(x), 15, 5, 0.0, 0)
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "sha": hashlib.sha256(lay.tobytes()).hexdigest()[:16], "n": len(x)}}))
"""


def child(cache: bool, data: Path, store: str, numba_dir: str) -> dict:
    code = CHILD.format(repo=str(REPO), cache=cache, data=str(data), store=store)
    env = {**os.environ, "NUMBA_CACHE_DIR": numba_dir}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared/data"))
    ap.add_argument("--set", default="banking77")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--cache", default=str(REPO / ".cache/clusterers.sqlite3"))
    ap.add_argument("--report")
    a = ap.parse_args()
    data = Path(a.data) / a.set / "test.jsonl"
    rows = []
    for rep in range(a.reps):
        with tempfile.TemporaryDirectory() as numba_dir:
            got = {"compiled afresh": child(False, data, a.cache, numba_dir),
                   "first run, cache on": child(True, data, a.cache, numba_dir),
                   "later runs, cache on": child(True, data, a.cache, numba_dir)}
            files = sum(1 for _ in Path(numba_dir).rglob("*.nbi"))
        print(f"rep {rep + 1}: " + json.dumps(got) + f", {files} cache index files", flush=True)
        rows.append(got)
    names = list(rows[0])
    shas = {n: sorted({r[n]["sha"] for r in rows}) for n in names}
    lines = [
        f"# UMAP's numba code kept on disk: {a.set}, {rows[0][names[0]]['n']} texts, "
        f"median of {a.reps} fresh processes each",
        "",
        f"`python scripts/umap_jit_cache.py --set {a.set} --reps {a.reps}`",
        "",
        "| process | UMAP layout seconds | layout SHA-256 (first 16) |",
        "|---|---|---|",
        *[f"| {n} | {statistics.median(r[n]['seconds'] for r in rows):.1f} | "
          f"{', '.join(shas[n])} |" for n in names],
        "",
        "Same layout in every process: "
        + ("yes" if len({s for v in shas.values() for s in v}) == 1 else "NO"),
    ]
    print("\n".join(lines))
    if a.report:
        Path(a.report).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
