"""Prompt-evaluation and generation rate of a GGUF on this machine, as intentlocal loads it.

Why: a label call's cost is almost all prompt evaluation (about 90 new tokens after a
cached ~116-token static prefix), so this rate is what decides a run's wall time,
and it depends on the llama.cpp build (AMX kernels, repacked weight layouts) as much
as on the quantisation type. Each measurement evaluates the prefix, then times the
variable part, then three single-token decodes; medians of --reps.

    python scripts/prompt_rate.py [--llm qwen2.5-coder-0.5b | path.gguf ...] \
        [--extra-buffers auto|on|off] [--threads 2] [--reps 8]

``--extra-buffers on`` on a build with AMX kernels may crash the process: that is
what ``auto`` avoids (see intentlocal/backends/llm.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

PREFIX = b"You name the intent behind short customer messages. " * 10
VARIABLE = b"I want to know why my card payment was declined at the shop yesterday evening. " * 6


def measure(path: Path, extra: bool | None, threads: int, reps: int) -> tuple[float, float]:
    from intentlocal.backends.llm import load_llama

    llm = load_llama(path, extra, n_ctx=1024, n_threads=threads, verbose=False)
    pre, var = llm.tokenize(PREFIX)[:116], llm.tokenize(VARIABLE)[:86]
    prompt_s, gen_s = [], []
    for _ in range(reps):
        llm.reset()
        llm.eval(pre)
        t = time.perf_counter()
        llm.eval(var)
        prompt_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        for i in range(3):
            llm.eval(var[i : i + 1])
        gen_s.append((time.perf_counter() - t) / 3)
    return len(var) / statistics.median(prompt_s), statistics.median(gen_s)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llm", nargs="+", default=["qwen2.5-coder-0.5b"])
    ap.add_argument("--extra-buffers", choices=("auto", "on", "off"), default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=8)
    args = ap.parse_args()

    from intentlocal.backends.llm import build_has_amx
    from intentlocal.backends.registry import resolve_llm_path

    amx = build_has_amx()
    extra = {"on": True, "off": False, "auto": not amx}[args.extra_buffers]
    print(f"llama.cpp build AMX kernels: {amx}; extra buffers: {extra}; "
          f"{args.threads} threads")
    print("| model | prompt tok/s (86 new after 116 cached) | s per generated token |")
    print("|---|---|---|")
    for ref in args.llm:
        path, _ = resolve_llm_path(ref)
        rate, gen = measure(path, extra, args.threads, args.reps)
        print(f"| {path.name} | {rate:.0f} | {gen:.4f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
