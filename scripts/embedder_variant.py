"""Does the embedder's ONNX variant move the default clusters?

    python scripts/embedder_variant.py [--sets massive_intent] [--variants int8,int8-b1,fp32]
        [--seeds 0,1,2,3,4] [--report reports/embedder_variant.md]

Why: the default int8 graph quantises activations per tensor at run time, so a text's
vector depends on the batch it was embedded in (batches are made of texts of similar
length, i.e. of whatever else is in the input). On massive_intent that alone moved the
default clusterer by about 2 ACC (reports/select_consensus.md). This embeds each set's
distinct texts three ways: int8 in the product's batches of 32 (``int8``), int8 one text
at a time (``int8-b1``: batch-independent), and the fp32 graph in batches of 32 (``fp32``),
and, since 4 Dec, the int8 graph without onnxruntime's x64 precision option
(``int8-u8s8``, the default until then: on CPUs without VNNI its matmuls saturate),
then runs the default SelectClusterer at the true K over the seeds and scores every input
row (as a run does). The vectors are cached under --cache as .npy. Gold labels score only.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_clusterers import evaluate
from stored_runs import CHECKOUT, command, write_report

# name: (ONNX variant, batch size, onnxruntime's x64 u8u8 precision option)
VARIANTS = {"int8": ("int8", 32, True), "int8-b1": ("int8", 1, True), "fp32": ("fp32", 32, True),
            "int8-u8s8": ("int8", 32, False)}


def embed_variant(name: str, texts: list[str], cache: Path,
                  set_name: str) -> tuple[np.ndarray, float]:
    """The texts' vectors with one variant, from the cache when present; seconds spent."""
    from intentlocal.backends.onnx_embedder import OnnxEmbedder
    from intentlocal.paths import models_dir

    path = cache / f"{set_name}_{name}.npy"
    if path.is_file():
        x = np.load(path)
        if len(x) == len(texts):
            return x, 0.0
    variant, batch, precise = VARIANTS[name]
    emb = OnnxEmbedder(models_dir() / "embeddinggemma-300m", variant=variant, batch_size=batch,
                       x64_precision=precise)
    t = time.perf_counter()
    x = emb.embed(texts)
    seconds = time.perf_counter() - t
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, x)
    return x, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--sets", default="massive_intent")
    ap.add_argument("--variants", default="int8,int8-b1,fp32")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--cache", default=str(CHECKOUT / ".cache" / "embedder_variant"))
    ap.add_argument("--report", default="reports/embedder_variant.md")
    ap.add_argument("--auto-k", action="store_true",
                    help="K estimated per variant by the product's MapEquationK, not the true K")
    args = ap.parse_args()

    from intentlocal.bench import load_labelled
    from intentlocal.config import load_settings
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.autok import MapEquationK

    seeds = [int(s) for s in args.seeds.split(",")]
    results: list[dict] = []
    for set_name in args.sets.split(","):
        texts, gold = load_labelled(Path(args.data) / set_name / "test.jsonl", None, 0)
        uniques, rows_of = Corpus(texts, [], set_name).unique()
        k_true = len(set(gold))
        base = None
        for name in args.variants.split(","):
            if name not in VARIANTS:
                raise SystemExit(f"unknown variant {name!r}; choose from {', '.join(VARIANTS)}")
            x, seconds = embed_variant(name, uniques, Path(args.cache), set_name)
            base = x if base is None else base
            cos = np.sum(x * base, axis=1)
            print(f"{set_name} {name}: embedded in {seconds:.0f} s; cosine to the first "
                  f"variant mean {cos.mean():.5f} min {cos.min():.5f}", file=sys.stderr)
            k = k_true
            if args.auto_k:
                k = MapEquationK(n_neighbors=load_settings().auto_k_neighbours).estimate(x)
                print(f"  K estimated {k} (true {k_true})", file=sys.stderr)
            for row in evaluate(x, gold, k, seeds, None, rows_of, select_consensus=True):
                row.update(set=set_name, variant=name, k_true=k_true,
                           embed_seconds=round(seconds, 1),
                           cos_mean=float(cos.mean()), cos_min=float(cos.min()))
                results.append(row)
                print(f"  {row['clusterer']:<26} ACC {row['acc']:5.1f} ± {row['acc_sd']:.1f}  "
                      f"NMI {row['nmi']:5.1f}  {row.get('chosen', '')}", file=sys.stderr)
    lines = [
        "# The embedder's ONNX variant under the default clusterer", "",
        f"Command: `{command()}`  ",
        "EmbeddingGemma-300M, distinct texts clustered, every row scored, "
        + ("K estimated by MapEquationK (the K column)" if args.auto_k else "true K")
        + f", seeds {seeds}, "
        f"{platform.machine()}. ACC / NMI / ARI x 100, mean ± sd over seeds. `int8`: the "
        "product's default graph and batches (32 texts of similar length); `int8-b1`: the "
        "same graph, one text per batch; `fp32`: the unquantised graph, batches of 32.", "",
        "| set | variant | K (true) | clusterer | ACC | NMI | ARI | chosen "
        "| cosine to the first variant (mean / min) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if r["clusterer"].startswith("select by") and r["clusterer"] != "select by tie-break":
            continue
        lines.append(
            f"| {r['set']} | {r['variant']} | {r['k']} ({r['k_true']}) | {r['clusterer']} "
            f"| {r['acc']:.1f} ± {r['acc_sd']:.1f} "
            f"| {r['nmi']:.1f} ± {r['nmi_sd']:.1f} | {r['ari']:.1f} ± {r['ari_sd']:.1f} "
            f"| {', '.join(r.get('chosen', []))} | {r['cos_mean']:.5f} / {r['cos_min']:.5f} |")
    report = {"command": command(), "seeds": seeds, "machine": platform.machine(),
              "results": results}
    write_report(report, args.report, lambda _: "\n".join(lines) + "\n")
    print(json.dumps({"wrote": args.report}), file=sys.stderr)


if __name__ == "__main__":
    main()
