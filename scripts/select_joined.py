"""The default clusterer on the paper's representation, for a finished bench run.

`intentlocal bench` has, since 2 Dec, a row "select clusterer, refined labels ⊕ text":
each text embedded again with its refined labels ("text (l1, l2)", `--final text`),
clustered by the product's default clusterer. Under K-means that representation gains
most from the labels (reports/bench_*); this script adds the same row, and its pair on
the texts' vectors alone, for bench runs made before the row existed, without calling
any model but the embedder (whose vectors the run's store has cached).

    python scripts/select_joined.py ../shared/data/SET/test.jsonl STORE:RUN [--sample N]

Gold labels score the partitions only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str] | None = None) -> int:
    from intentlocal.backends.registry import load_embedder
    from intentlocal.bench import kmeans_scores, load_labelled
    from intentlocal.config import settings_from_dict
    from intentlocal.pipeline.augment import join_labels
    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store
    from scripts.bench_clusterers import run_labels

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dataset")
    ap.add_argument("run", metavar="STORE:RUN")
    ap.add_argument("--sample", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="write the rows here too")
    args = ap.parse_args(argv)

    store_path, run = args.run.rsplit(":", 1)
    texts, gold = load_labelled(args.dataset, args.sample, args.seed)
    final = run_labels(store_path, int(run), texts)  # refuses a run of other texts
    store = Store(store_path)
    settings = settings_from_dict(store.run(int(run)).settings)
    embedder = load_embedder(settings.embedder)
    base = embed_cached(store, embedder, texts)
    joined = embed_cached(store, embedder,
                          [join_labels(t, lab) for t, lab in zip(texts, final, strict=True)])
    est = MapEquationK(n_neighbors=settings.auto_k_neighbours, random_state=args.seed)
    k_true = len(set(gold))
    out = []
    for name, x, labels in (("select clusterer, refined labels guide the splits", base, final),
                            ("select clusterer, refined labels ⊕ text", joined, final)):
        for kind, k in (("true K", k_true), ("auto K", est.estimate(x))):
            r = kmeans_scores(x, gold, k, select=True, labels=labels)
            out.append({"pipeline": name, "k_mode": kind, **r})
            print(f"| {name} | {kind} = {k} | {r['acc']:.1f} ± {r['acc_sd']:.1f} | "
                  f"{r['nmi']:.1f} ± {r['nmi_sd']:.1f} | {r['ari']:.1f} ± {r['ari_sd']:.1f} | "
                  f"kept: {', '.join(r['chosen'])} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"command": " ".join(sys.argv), "rows": out},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
