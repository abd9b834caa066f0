"""How far the int8 embedder's vectors are from fp32's, with and without onnxruntime's
x64 precision option.

    python scripts/int8_precision.py [--sets banking77,clinc150,massive_intent,mtop_intent]
        [--sample 400] [--report reports/int8_precision.md]

Why: on x86-64 CPUs without VNNI (AVX2 only) onnxruntime multiplies u8 activations by
s8 weights with VPMADDUBSW, whose 16-bit intermediate sums saturate; the session option
``session.x64quantprecision`` makes those matmuls u8 x u8 instead. On CPUs with VNNI
(and on ARM) the option changes nothing. This embeds the first --sample texts of each
set with the fp32 graph, the int8 graph as the product runs it (the option on, since
4 Dec) and the int8 graph without it, in the product's batches of 32, and reports each
int8 variant's cosine to fp32 and the seconds it took. No labels are read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stored_runs import CHECKOUT, command, write_report


def cpu_flags() -> str:
    """The CPU features that decide onnxruntime's int8 kernels (Linux only)."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    return ", ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
                     if f in flags) or "none of avx2 / avx512 / vnni"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(CHECKOUT.parent / "shared" / "data"))
    ap.add_argument("--sets", default="banking77,clinc150,massive_intent,mtop_intent")
    ap.add_argument("--sample", type=int, default=400)
    ap.add_argument("--report", default="reports/int8_precision.md")
    args = ap.parse_args()

    from intentlocal.backends.onnx_embedder import OnnxEmbedder
    from intentlocal.paths import models_dir

    folder = models_dir() / "embeddinggemma-300m"
    variants = {"fp32": ("fp32", True), "int8 (product, option on)": ("int8", True),
                "int8 without the option (until 4 Dec)": ("int8", False)}
    results = []
    for name in args.sets.split(","):
        path = Path(args.data) / name / "test.jsonl"
        texts = [json.loads(line)["text"] for line in path.open()][: args.sample]
        ref = None
        for label, (variant, precise) in variants.items():
            emb = OnnxEmbedder(folder, variant=variant, batch_size=32, x64_precision=precise)
            t = time.perf_counter()
            x = emb.embed(texts)
            seconds = time.perf_counter() - t
            x = x / np.linalg.norm(x, axis=1, keepdims=True)
            ref = x if ref is None else ref
            cos = (x * ref).sum(axis=1)
            results.append({"set": name, "texts": len(texts), "variant": label,
                            "seconds": round(seconds, 1), "cos_mean": round(float(cos.mean()), 5),
                            "cos_min": round(float(cos.min()), 5)})
            print(results[-1], file=sys.stderr, flush=True)

    def markdown(rep: dict) -> str:
        lines = ["# The int8 embedder against fp32, with and without the x64 precision option",
                 "", f"Command: `{rep['command']}`  ", f"CPU features: {rep['cpu']}. "
                 "EmbeddingGemma-300M, batches of 32; seconds include loading the graph.", "",
                 "| set | texts | variant | cosine to fp32, mean | min | seconds |",
                 "|---|---|---|---|---|---|"]
        for r in rep["results"]:
            lines.append(f"| {r['set']} | {r['texts']} | {r['variant']} | {r['cos_mean']:.5f} "
                         f"| {r['cos_min']:.5f} | {r['seconds']} |")
        return "\n".join(lines) + "\n"

    rep = {"command": command(), "cpu": cpu_flags(), "results": results}
    write_report(rep, args.report, markdown)
    print(markdown(rep))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
