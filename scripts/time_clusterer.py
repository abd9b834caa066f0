"""Wall time and peak RSS of the default clusterer (SelectClusterer, every candidate
plus the selection) on the benchmark test sets' vectors, each at its true K.

    python scripts/time_clusterer.py [--sets banking77,clinc150] [--cache PATH]

Vectors go through a run store (--cache), so a second call does not re-embed. The first
set's time includes compiling UMAP's numba code, as a user's first run in a process does.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(CHECKOUT))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--sets", default="banking77,clinc150")
    ap.add_argument("--cache", default=str(CHECKOUT / ".cache" / "clusterers.sqlite3"))
    args = ap.parse_args()

    from intentlocal.api import build_backends
    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.pipeline.cluster import SelectClusterer
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store

    Path(args.cache).parent.mkdir(parents=True, exist_ok=True)
    store = Store(args.cache)
    embedder, _ = build_backends(load_settings())
    for name in args.sets.split(","):
        texts, gold = load_labelled(Path(args.data) / name / "test.jsonl", None, 0)
        x = embed_cached(store, embedder, texts)
        sel = SelectClusterer()
        t = time.monotonic()
        sel.fit_predict(x, len(set(gold)))
        took = time.monotonic() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"{name}: {len(x)} vectors, K={len(set(gold))}: {took:.1f} s, kept {sel.chosen_}, "
              f"peak RSS so far {peak:.0f} MB", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
