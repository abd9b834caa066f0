"""Does the label writer know when its label is right?

Every way of letting the 0.5B model's labels act on the clusters has stayed inside the
seed spread of the texts alone (issue 7): two texts sharing a label are one intent
only 82 % of the time on massive_intent after refinement (54 % when they share none,
reports/label_edges.md), so the labels cut almost as many right edges as wrong ones.
If the model's own confidence in a label separated the right labels from the wrong,
only confident labels would be allowed to act. This measures whether it does, before
any clusterer is changed.

For a finished run, every initial label call is made again, from the run's stored
neighbours, prompt and settings (the same batches of ``parallel`` calls, so the greedy
picks are the run's), while ``LlamaCppGenerator._observe`` records, for each token
the model emits (the end token included):

* ``raw``: its log-probability under the model's whole distribution;
* ``allowed``: its probability among the 32 best tokens the grammar allows (the
  grammar-renormalised choice, tail ignored).

A label's confidences: the mean raw log-probability of its tokens, the lowest raw
log-probability of any token, and the product of the ``allowed`` probabilities (the
label's probability under the grammar). Then, with the gold intents (scoring only):

* which share of the pairs of texts that received the same initial label (spelling
  variants as one, ``label_key``) are one gold intent, by quartile of the pair's
  lower confidence;
* each labelled text's *precision*: the share of the other texts with its label that
  are of its intent (texts whose label nobody else has are counted apart), by quartile.

Confidence is useful only if the top quartile's purity is clearly above the bottom's
while keeping enough pairs to matter.

    python scripts/label_confidence.py SET STORE:RUN [--cache FILE.json] [--report FILE.md]

The calls (about 0.26-0.33 s each on the 2-core EPYC) are cached in ``--cache`` so
that the analysis can be re-run without the LLM.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def confidence_generator(settings: Any) -> Any:
    """The run's LLM, loaded as the product loads it, recording each pick's confidence
    in ``trace[seq]`` (a list of (raw log-prob, allowed probability) per token)."""
    import ctypes

    import llama_cpp

    from intentlocal.api import build_backends
    from intentlocal.backends.llm import LlamaCppGenerator

    _, gen = build_backends(settings)
    if not isinstance(gen, LlamaCppGenerator):
        raise SystemExit(f"{settings.llm} is not a llama.cpp model")

    class Tracing(type(gen)):  # type: ignore[misc]
        trace: dict[int, list[tuple[float, float]]]

        def _observe(self, seq: int, logits: Any, token: int, sampler: Any) -> None:
            x = np.asarray(logits, dtype=np.float64)
            top = x.max()
            raw = float(x[token] - top - math.log(np.exp(x - top).sum()))
            best = np.argpartition(-x, 32)[:32]
            data = (llama_cpp.llama_token_data * 1)()
            arr = llama_cpp.llama_token_data_array(data=data, size=1, selected=-1, sorted=False)
            allowed = []
            for tid in best:
                data[0].id, data[0].logit, data[0].p = int(tid), float(x[tid]), 0.0
                arr.size, arr.selected = 1, -1
                llama_cpp.llama_sampler_apply(sampler, ctypes.byref(arr))
                if np.isfinite(data[0].logit):
                    allowed.append(float(x[tid]))
            if token not in set(best.tolist()):
                allowed.append(float(x[token]))
            a = np.array(allowed)
            p = float(np.exp(x[token] - a.max()) / np.exp(a - a.max()).sum())
            self.trace.setdefault(seq, []).append((raw, p))

    gen.__class__ = Tracing
    gen.trace = {}
    return gen


def relabel(spec: str, cache: Path, limit: int = 0) -> dict[int, dict[str, Any]]:
    """Each distinct text's initial label call made again, with its token confidences
    (the first ``limit`` batches only, when given: a try-out)."""
    from intentlocal.config import settings_from_dict
    from intentlocal.pipeline.labels import initial_request, load_prompt, read_initial_label

    path, _, run_s = spec.rpartition(":")
    run = int(run_s)
    out: dict[int, dict[str, Any]] = {}
    if cache.exists():
        out = {int(k): v for k, v in json.loads(cache.read_text()).items()}
    con = sqlite3.connect(path)
    (settings_json,) = con.execute("SELECT settings_json FROM runs WHERE id=?", (run,)).fetchone()
    s = settings_from_dict(json.loads(settings_json))
    prompt = load_prompt("initial_label")
    stored_hash = con.execute(
        "SELECT DISTINCT prompt_hash FROM steps WHERE run_id=? AND iteration=0", (run,)
    ).fetchall()
    if stored_hash != [(prompt.hash,)]:
        raise SystemExit(f"the run's initial prompt {stored_hash} is not today's {prompt.hash}")
    uniques = [t for (t,) in con.execute(
        "SELECT text FROM uniques WHERE run_id=? ORDER BY uid", (run,))]
    steps = {uid: (json.loads(nb), out_text) for uid, nb, out_text in con.execute(
        "SELECT uid, neighbours_json, output FROM steps WHERE run_id=? AND iteration=0", (run,))}
    size = max(1, s.parallel)
    chunks = [list(range(i, min(i + size, len(uniques)))) for i in range(0, len(uniques), size)]
    todo = [c for c in chunks if any(u not in out for u in c)]
    if limit:
        todo = todo[:limit]
    if not todo:
        return out
    gen = confidence_generator(s)
    started = time.perf_counter()
    for n, chunk in enumerate(todo, 1):
        reqs = [
            initial_request(
                prompt,
                uniques[u],
                [uniques[j] for j in steps[u][0][: s.prompt_neighbours]]
                if s.initial_neighbours else [],
                s.neighbour_chars,
            )
            for u in chunk
        ]
        gen.trace = {}
        gens = gen.generate_many(reqs)
        for seq, (u, g) in enumerate(zip(chunk, gens, strict=True)):
            out[u] = dict(
                label=read_initial_label(gen.model_id, g),
                stored=steps[u][1],
                same=g.text == steps[u][1],
                trace=gen.trace.get(seq, []),
            )
        if n % 50 == 0 or n == len(todo):
            cache.write_text(json.dumps(out))
            rate = (time.perf_counter() - started) / (n * size)
            print(f"  {n * size}/{len(todo) * size} calls, {rate:.2f} s a call", flush=True)
    return out


def confidences(rec: dict[str, Any]) -> dict[str, float]:
    raw = [r for r, _ in rec["trace"]]
    allowed = [p for _, p in rec["trace"]]
    return dict(
        mean_raw=float(np.mean(raw)),
        min_raw=float(np.min(raw)),
        grammar_logp=float(np.sum(np.log(np.maximum(allowed, 1e-12)))),
    )


def analyse(set_name: str, spec: str, recs: dict[int, dict[str, Any]]) -> tuple[str, dict]:
    from intentlocal.pipeline.augment import label_key
    from scripts.label_distance import load_run

    stored = load_run(spec, set_name)
    gold = stored.gold_u
    n = len(stored.uniques)
    if set(recs) != set(range(n)):
        raise SystemExit(f"{len(recs)} of {n} texts relabelled: run the calls first")
    keys = [label_key(recs[u]["label"]) for u in range(n)]
    agree = sum(recs[u]["same"] for u in range(n)) / n
    conf = {u: confidences(recs[u]) for u in range(n)}
    groups: dict[str, list[int]] = {}
    for u, k in enumerate(keys):
        groups.setdefault(k, []).append(u)
    shared = [u for u in range(n) if len(groups[keys[u]]) > 1]
    lines = [
        f"# Label confidence: {set_name} ({spec})",
        "",
        f"{n} distinct texts; the calls made again give the stored output for "
        f"{100 * agree:.1f} %. {len(groups)} distinct initial labels; {len(shared)} texts "
        f"({100 * len(shared) / n:.1f} %) share theirs with another text.",
        "",
    ]
    result: dict[str, Any] = dict(set=set_name, run=spec, n=n, agree=agree,
                                  labels=len(groups), shared=len(shared), measures={})
    # pairs sharing a label
    pi, pj = [], []
    for members in groups.values():
        m = np.array(members)
        if len(m) > 1:
            a, b = np.triu_indices(len(m), 1)
            pi.append(m[a])
            pj.append(m[b])
    pi_a, pj_a = np.concatenate(pi), np.concatenate(pj)
    same = gold[pi_a] == gold[pj_a]
    for measure in ("mean_raw", "min_raw", "grammar_logp"):
        c = np.array([conf[u][measure] for u in range(n)])
        pair_c = np.minimum(c[pi_a], c[pj_a])
        qs = np.quantile(pair_c, [0.25, 0.5, 0.75])
        bins = np.digitize(pair_c, qs)
        # per-text precision among texts with a shared label
        prec = np.array([
            np.mean([gold[v] == gold[u] for v in groups[keys[u]] if v != u]) for u in shared
        ])
        tc = c[shared]
        tq = np.quantile(tc, [0.25, 0.5, 0.75])
        tb = np.digitize(tc, tq)
        rows = []
        for q in range(4):
            rows.append(dict(
                pairs=int((bins == q).sum()),
                pair_purity=float(same[bins == q].mean()),
                texts=int((tb == q).sum()),
                precision=float(prec[tb == q].mean()),
            ))
        from scipy.stats import spearmanr

        rho = float(spearmanr(tc, prec).statistic)
        single = [u for u in range(n) if len(groups[keys[u]]) == 1]
        result["measures"][measure] = dict(
            quartiles=rows, spearman=rho,
            mean_shared=float(tc.mean()),
            mean_single=float(c[single].mean()) if single else float("nan"),
        )
        lines += [
            f"## {measure}",
            "",
            f"Spearman (text's confidence, its precision): {rho:+.3f}; mean confidence of texts "
            f"sharing their label {tc.mean():.3f}, of texts alone with theirs "
            f"{result['measures'][measure]['mean_single']:.3f}.",
            "",
            "| quartile (low to high) | pairs | pairs one intent | texts | text precision |",
            "|---|---|---|---|---|",
        ]
        for q, r in enumerate(rows, 1):
            lines.append(f"| {q} | {r['pairs']} | {100 * r['pair_purity']:.1f} % | {r['texts']} "
                         f"| {100 * r['precision']:.1f} % |")
        lines.append("")
    lines.append(f"All pairs sharing an initial label: {len(same)}, {100 * same.mean():.1f} % one "
                 "intent.")
    result["pairs"] = len(same)
    result["pair_purity"] = float(same.mean())
    common = Counter(keys).most_common(8)
    lines.append("Most used labels: " + ", ".join(f"{k} ({c})" for k, c in common) + ".")
    return "\n".join(lines) + "\n", result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set_name")
    ap.add_argument("run", help="STORE:RUN of a finished run of the set's test JSONL")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--report", type=Path)
    ap.add_argument("--limit", type=int, default=0, help="only this many batches (a try-out)")
    a = ap.parse_args()
    recs = relabel(a.run, a.cache, a.limit)
    if a.limit:
        for u, r in sorted(recs.items()):
            print(u, r["label"], r["same"], confidences(r))
        return
    text, result = analyse(a.set_name, a.run, recs)
    print(text)
    if a.report:
        a.report.write_text(text)
        a.report.with_suffix(".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
