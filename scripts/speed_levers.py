"""Speed levers of the LLM stages, each measured against the straightforward path.

The workload is real: banking77 test texts, their 10 nearest neighbours under
the default embedder, the initial-label prompt for a fixed sample of targets,
and a refinement prompt for each target whose candidates are the labels the
straightforward path wrote for the 3 sample texts nearest to it. Every
configuration runs the same calls --reps times in this process (a fresh
llama.cpp context each), and the table gives the median seconds per call: wall
clock around all of a stage's calls, sent as the runner sends them (one at a
time, or in batches of `parallel`), prefix evaluation included (the model load
not), divided by the
number of calls, with the ratio to
the straightforward path (no KV-prefix reuse, the sampler chain's grammar over
the whole vocabulary, 10 neighbours).

    python scripts/speed_levers.py [--sample 16] [--reps 3] \
        [--report reports/speed_levers.md]

The projected minutes multiply the per-call medians by banking77's call counts
(3,080 initial, 2,620 refinement calls in reports/bench_banking77_3080_s0.md):
a projection, labelled as such; the measured full run is in the bench report.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

INITIAL_CALLS, REFINE_CALLS = 3080, 2620  # banking77 test, one refinement iteration


@dataclass
class Config:
    name: str
    llm: dict[str, Any] = field(default_factory=dict)
    prompt_neighbours: int = 10
    neighbour_chars: int = 160
    static_head: bool = False  # the user turn's "Message:" in the cached prefix (30 Nov)
    llm_ref: str | None = None  # another model reference (a requantised variant) than --llm


STRAIGHT = {"reuse_prefix": False, "fast_grammar": False}
KEPT = {"reuse_prefix": True, "fast_grammar": True}

CONFIGS = [
    Config("straightforward (no prefix reuse, grammar over the vocabulary)", dict(STRAIGHT)),
    Config("+ static prefix kept in the KV cache", {"reuse_prefix": True, "fast_grammar": False}),
    Config("+ lazy grammar check in greedy decoding", dict(KEPT)),
    Config("+ flash attention", {**KEPT, "flash_attn": True}),
    Config("+ n_ubatch 128", {**KEPT, "n_ubatch": 128}),
    Config("+ n_batch = n_ubatch = 64", {**KEPT, "n_batch": 64, "n_ubatch": 64}),
    Config("+ 1 thread instead of 2", {**KEPT, "n_threads": 1}),
    Config("+ 5 neighbours in the initial prompt", dict(KEPT), prompt_neighbours=5),
    Config("+ no neighbours in the initial prompt", dict(KEPT), prompt_neighbours=0),
    Config("+ neighbours cut to 80 characters", dict(KEPT), neighbour_chars=80),
    Config("+ 4 calls decoded together, 5 neighbours in the initial prompt",
           {**KEPT, "parallel": 4}, prompt_neighbours=5),
    Config("+ 8 calls decoded together", {**KEPT, "parallel": 8}),
    Config("+ 8 calls decoded together, 5 neighbours in the initial prompt",
           {**KEPT, "parallel": 8}, prompt_neighbours=5),
    Config("+ 8 calls decoded together, no neighbours in the initial prompt",
           {**KEPT, "parallel": 8}, prompt_neighbours=0),
    Config("+ 4 calls decoded together, 5 neighbours, the user turn's head in the prefix",
           {**KEPT, "parallel": 4}, prompt_neighbours=5, static_head=True),
    Config("+ 4 calls decoded together, no neighbours in the initial prompt",
           {**KEPT, "parallel": 4}, prompt_neighbours=0),
    Config("+ 4 calls decoded together, no neighbours, the user turn's head in the prefix",
           {**KEPT, "parallel": 4}, prompt_neighbours=0, static_head=True),
    Config("+ 4 together, 5 neighbours, head in the prefix, weights requantised to Q4_0",
           {**KEPT, "parallel": 4}, prompt_neighbours=5, static_head=True,
           llm_ref="qwen2.5-coder-0.5b:q4_0"),
    Config("+ 4 together, no neighbours, head in the prefix, weights requantised to Q4_0",
           {**KEPT, "parallel": 4}, prompt_neighbours=0, static_head=True,
           llm_ref="qwen2.5-coder-0.5b:q4_0"),
    Config("+ 4 together, 3 neighbours, head in the prefix, weights requantised to Q4_0",
           {**KEPT, "parallel": 4}, prompt_neighbours=3, static_head=True,
           llm_ref="qwen2.5-coder-0.5b:q4_0"),
    Config("+ 4 together, 2 neighbours, head in the prefix, weights requantised to Q4_0",
           {**KEPT, "parallel": 4}, prompt_neighbours=2, static_head=True,
           llm_ref="qwen2.5-coder-0.5b:q4_0"),
    Config("+ 8 together, 5 neighbours, head in the prefix, weights requantised to Q4_0",
           {**KEPT, "parallel": 8}, prompt_neighbours=5, static_head=True,
           llm_ref="qwen2.5-coder-0.5b:q4_0"),
]


def load_vectors(texts: list[str], embedder_ref: str, workdir: Path) -> np.ndarray:
    """Through a run store in the work folder, as the runner embeds: a second
    measurement does not embed again."""
    from intentlocal.backends.registry import load_embedder
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store

    return embed_cached(Store(workdir / "store.sqlite3"), load_embedder(embedder_ref), texts)


def run_config(
    cfg: Config,
    gguf: Path,
    texts: list[str],
    targets: list[int],
    nb: np.ndarray,
    candidates: dict[int, list[str]] | None,
) -> tuple[list[float], list[float], list[Any], list[int]]:
    from intentlocal.backends.base import generate_all
    from intentlocal.backends.llm import LlamaCppGenerator
    from intentlocal.pipeline.labels import (
        initial_request,
        load_prompt,
        read_initial_label,
        read_selection,
        selection_request,
    )

    if cfg.llm_ref:
        from intentlocal.backends.registry import resolve_llm_path

        gguf = resolve_llm_path(cfg.llm_ref)[0]
    gen = LlamaCppGenerator(gguf, n_ctx=2048, **cfg.llm)
    gen._load()  # loading the weights is not a per-call cost
    from dataclasses import replace

    p_init, p_sel = (replace(load_prompt(n), static_head=cfg.static_head)
                     for n in ("initial_label", "select_labels"))
    # All calls of a stage go through generate_all, as the runner sends them: one at
    # a time, or in batches of `parallel`; seconds per call = stage wall / calls.
    reqs = [
        initial_request(p_init, texts[uid], [texts[j] for j in nb[uid][: cfg.prompt_neighbours]],
                        cfg.neighbour_chars)
        for uid in targets
    ]
    t = time.perf_counter()
    gens = generate_all(gen, reqs)
    init_s = [(time.perf_counter() - t) / len(reqs)]
    outputs: list[Any] = [read_initial_label(gen.model_id, g) for g in gens]
    new_tokens = [g.prompt_tokens - g.cached_tokens for g in gens]
    asked = [
        (uid, own, (candidates or {}).get(uid) or [])
        for uid, own in zip(targets, list(outputs), strict=True)
    ]
    asked = [(uid, own, cands) for uid, own, cands in asked if cands]
    ref_s: list[float] = []
    if asked:
        sel = [selection_request(p_sel, texts[uid], [own], cands, cfg.neighbour_chars, 2)
               for uid, own, cands in asked]
        t = time.perf_counter()
        gens = generate_all(gen, sel)
        ref_s = [(time.perf_counter() - t) / len(sel)]
        outputs += [tuple(read_selection(gen.model_id, g, len(c), 2))
                    for g, (_, _, c) in zip(gens, asked, strict=True)]
    return init_s, ref_s, outputs, new_tokens


def decode_batches(gguf: Path, sizes: tuple[int, ...] = (1, 2, 4, 8), reps: int = 10) -> dict:
    """Seconds for one llama.cpp decode of k tokens after a prompt: what k
    sequences' next tokens would cost in one batch (the batching lever's ceiling)."""
    from intentlocal.backends.llm import load_llama

    llm = load_llama(gguf, n_ctx=1024, verbose=False)  # as the generator loads
    prompt = llm.tokenize(b"You name the intent behind short customer messages. " * 6)
    out = {}
    for k in sizes:
        times = []
        for _ in range(reps):
            llm.reset()
            llm.eval(prompt)
            t = time.perf_counter()
            llm.eval(prompt[:k])
            times.append(time.perf_counter() - t)
        out[k] = statistics.median(times)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared/data/banking77/test.jsonl"))
    ap.add_argument("--embedder", default="embeddinggemma-300m")
    ap.add_argument("--llm", default="qwen2.5-coder-0.5b")
    ap.add_argument("--sample", type=int, default=16)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", help="comma-separated config numbers (1-based) to run")
    ap.add_argument("--workdir", default="/tmp/intentlocal-levers")
    ap.add_argument("--report")
    a = ap.parse_args()

    from intentlocal.backends.registry import resolve_llm_path
    from intentlocal.pipeline.neighbours import nearest_neighbours

    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    texts = list(dict.fromkeys(
        json.loads(x)["text"].strip() for x in Path(a.data).read_text().splitlines() if x.strip()
    ))
    vectors = load_vectors(texts, a.embedder, work)
    nb = nearest_neighbours(vectors, 10)
    rng = np.random.default_rng(0)
    targets = sorted(int(i) for i in rng.choice(len(texts), a.sample, replace=False))
    gguf, _ = resolve_llm_path(a.llm)
    sub = vectors[targets] / np.linalg.norm(vectors[targets], axis=1, keepdims=True)
    near = np.argsort(-(sub @ sub.T), axis=1)[:, 1:4]

    chosen = [int(x) - 1 for x in a.only.split(",")] if a.only else range(len(CONFIGS))
    rows, baseline, candidates = [], None, None
    for ci in [0, *[c for c in chosen if c != 0]]:
        cfg = CONFIGS[ci]
        reps = []
        for r in range(a.reps):
            init_s, ref_s, outs, new_tok = run_config(cfg, gguf, texts, targets, nb, candidates)
            if candidates is None:  # the straightforward path's labels feed every refinement
                labels = outs[: len(targets)]
                candidates = {
                    uid: list(dict.fromkeys(labels[j] for j in near[i] if labels[j] != labels[i]))
                    for i, uid in enumerate(targets)
                }
                init_s, ref_s, outs, new_tok = run_config(
                    cfg, gguf, texts, targets, nb, candidates
                )
            reps.append((statistics.mean(init_s), statistics.mean(ref_s), outs, new_tok))
            print(f"{cfg.name} rep {r + 1}: initial {reps[-1][0]:.3f} s, "
                  f"refine {reps[-1][1]:.3f} s", flush=True)
        init = statistics.median(x[0] for x in reps)
        ref = statistics.median(x[1] for x in reps)
        outs = reps[0][2]
        if baseline is None:
            baseline = (init, ref, outs)
        minutes = (INITIAL_CALLS * init + REFINE_CALLS * ref) / 60
        base_min = (INITIAL_CALLS * baseline[0] + REFINE_CALLS * baseline[1]) / 60
        same = sum(a_ == b_ for a_, b_ in zip(outs, baseline[2], strict=True))
        rows.append({
            "config": cfg.name, "initial_s": round(init, 3), "refine_s": round(ref, 3),
            "initial_ratio": round(baseline[0] / init, 2),
            "refine_ratio": round(baseline[1] / ref, 2),
            "new_prompt_tokens": round(statistics.mean(reps[0][3]), 1),
            "projected_min": round(minutes, 1), "projected_ratio": round(base_min / minutes, 2),
            "same_outputs": f"{same}/{len(outs)}",
            "runs": [[round(x[0], 3), round(x[1], 3)] for x in reps],
        })
    dec = decode_batches(gguf)

    n_ref = sum(1 for c in (candidates or {}).values() if c)
    lines = [
        f"# Speed levers: {len(targets)} initial + {n_ref} "
        f"refinement calls, median of {a.reps} runs",
        "",
        f"`python scripts/speed_levers.py --sample {a.sample} --reps {a.reps}` "
        f"(banking77 test, {a.embedder} neighbours, {a.llm}, 2 cores)",
        "",
        "| lever (rows 2-3 add up; each later row is row 3 plus its lever) | initial s/call "
        "| refine s/call | initial new prompt tok | speed-up initial | speed-up refine "
        "| projected banking77 LLM min | speed-up | outputs as straightforward |",
        "|---|---|---|---|---|---|---|---|---|",
        *[f"| {r['config']} | {r['initial_s']} | {r['refine_s']} | {r['new_prompt_tokens']} "
          f"| {r['initial_ratio']}x | {r['refine_ratio']}x | {r['projected_min']} "
          f"| {r['projected_ratio']}x | {r['same_outputs']} |" for r in rows],
        "",
        "One llama.cpp decode of k tokens after a 60-token prompt (median of 10), the "
        "ceiling of decoding k sequences together: "
        + ", ".join(f"k={k}: {s * 1000:.0f} ms ({s * 1000 / k:.0f} ms/token)"
                    for k, s in dec.items()),
    ]
    print("\n".join(lines))
    if a.report:
        Path(a.report).write_text("\n".join(lines) + "\n")
        Path(a.report).with_suffix(".json").write_text(
            json.dumps({"rows": rows, "decode_k": dec}, indent=1) + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
