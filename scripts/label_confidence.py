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
while keeping enough pairs to matter. ``--cluster`` then lets only the most confident
share of the initial labels act: the run's refinement (mix join, the two most shared
neighbour labels) and the default clusterer again, at the true K over 5 seeds, against
the texts alone and all labels (``keep = 1``, which must give the run's own label sets).

    python scripts/label_confidence.py SET STORE:RUN --cache FILE.json [--report FILE.md]
        [--cluster [--measure grammar_logp] [--keeps 1,0.75,0.5] [--seeds 0,1,2,3,4]]

The calls (about 0.26-0.33 s each on the 2-core EPYC) are cached in ``--cache`` so
that the analysis can be re-run without the LLM.
"""

from __future__ import annotations

import argparse
import json
import math
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
    from intentlocal.api import build_backends
    from intentlocal.backends.llm import LlamaCppGenerator, _Picker

    _, gen = build_backends(settings)
    if not isinstance(gen, LlamaCppGenerator):
        raise SystemExit(f"{settings.llm} is not a llama.cpp model")

    class Tracing(type(gen)):  # type: ignore[misc]
        trace: dict[int, list[tuple[float, float]]]
        picker: _Picker | None = None

        def _observe(self, seq: int, logits: Any, token: int, sampler: Any) -> None:
            x = np.asarray(logits, dtype=np.float64)
            top = x.max()
            raw = float(x[token] - top - math.log(np.exp(x - top).sum()))
            if self.picker is None:
                self.picker = _Picker(len(x))
            best = np.argpartition(-x, 32)[:32]
            allowed = [float(x[t]) for t in best
                       if self.picker.allows(sampler, int(t), float(x[t]))]
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
    from intentlocal.store import Store

    path, _, run_s = spec.rpartition(":")
    run = int(run_s)
    out: dict[int, dict[str, Any]] = {}
    if cache.exists():
        out = {int(k): v for k, v in json.loads(cache.read_text()).items()}
    store = Store(path)
    s = settings_from_dict(store.run(run).settings)
    prompt = load_prompt("initial_label")
    rows = store.steps(run, 0)
    stored_hash = {r["prompt_hash"] for r in rows.values()}
    if stored_hash != {prompt.hash}:
        raise SystemExit(f"the run's initial prompt {stored_hash} is not today's {prompt.hash}")
    uniques = store.uniques(run)
    steps = {uid: (json.loads(r["neighbours_json"]), r["output"]) for uid, r in rows.items()}
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


def quartile_of(values: np.ndarray) -> np.ndarray:
    """0-3 by rank, four equal shares (ties split by position, so no share is empty
    when a confidence repeats)."""
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return ranks * 4 // len(values)


def by_confidence(keys: list[str], gold: np.ndarray, c: np.ndarray) -> dict[str, Any]:
    """How one confidence measure ``c`` (per text) orders the texts' labels ``keys``.

    Pairs of texts with the same label, binned by quartile of the pair's lower
    confidence: the share of pairs that are one gold intent (large labels weigh by
    their pairs). Texts that share their label, binned by quartile of their own
    confidence: their precision (the share of the label's other texts of their intent).
    Spearman's rho between a text's confidence and its precision.
    """
    from scipy.stats import spearmanr

    groups: dict[str, list[int]] = {}
    for u, k in enumerate(keys):
        groups.setdefault(k, []).append(u)
    shared = [u for u in range(len(keys)) if len(groups[keys[u]]) > 1]
    single = [u for u in range(len(keys)) if len(groups[keys[u]]) == 1]
    pi, pj = [], []
    for members in groups.values():
        if len(members) > 1:
            m = np.array(members)
            a, b = np.triu_indices(len(m), 1)
            pi.append(m[a])
            pj.append(m[b])
    pi_a, pj_a = np.concatenate(pi), np.concatenate(pj)
    same = gold[pi_a] == gold[pj_a]
    pair_c = np.minimum(c[pi_a], c[pj_a])
    bins = quartile_of(pair_c)
    prec = np.array([
        np.mean([gold[v] == gold[u] for v in groups[keys[u]] if v != u]) for u in shared
    ])
    tc = c[shared]
    tb = quartile_of(tc)
    rows = [
        dict(
            pairs=int((bins == q).sum()),
            pair_purity=float(same[bins == q].mean()) if (bins == q).any() else float("nan"),
            texts=int((tb == q).sum()),
            precision=float(prec[tb == q].mean()) if (tb == q).any() else float("nan"),
        )
        for q in range(4)
    ]
    return dict(
        quartiles=rows,
        spearman=float(spearmanr(tc, prec).statistic),
        mean_shared=float(tc.mean()),
        mean_single=float(c[single].mean()) if single else float("nan"),
        pairs=len(same),
        pair_purity=float(same.mean()),
        shared=len(shared),
        labels=len(groups),
    )


MEASURES = ("mean_raw", "min_raw", "grammar_logp")


def kept_labels(recs: dict[int, dict[str, Any]], n: int, measure: str, keep: float,
                source: str = "the cache") -> list[list[str]]:
    """Each of the ``n`` texts' initial label when its confidence (``measure``) is among
    the top ``keep`` share of the run's, else none; ``source`` names the traced calls
    in the error when they are not the run's."""
    if set(recs) != set(range(n)):
        raise SystemExit(f"{source} holds {len(recs)} of the run's {n} texts")
    c = np.array([confidences(recs[u])[measure] for u in range(n)])
    cut = np.quantile(c, 1 - keep) if keep < 1 else -np.inf
    return [[recs[u]["label"]] if c[u] >= cut else [] for u in range(n)]


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
    conf = [confidences(recs[u]) for u in range(n)]
    result: dict[str, Any] = dict(set=set_name, run=spec, n=n, agree=agree, measures={})
    lines = [f"# Label confidence: {set_name} ({spec})", ""]
    for measure in MEASURES:
        r = by_confidence(keys, gold, np.array([cf[measure] for cf in conf]))
        result["measures"][measure] = r
        lines += [
            f"## {measure}",
            "",
            f"Spearman (text's confidence, its precision): {r['spearman']:+.3f}; mean "
            f"confidence of texts sharing their label {r['mean_shared']:.3f}, of texts alone "
            f"with theirs {r['mean_single']:.3f}.",
            "",
            "| quartile (low to high) | pairs | pairs one intent | texts | text precision |",
            "|---|---|---|---|---|",
        ]
        for q, row in enumerate(r["quartiles"], 1):
            lines.append(f"| {q} | {row['pairs']} | {100 * row['pair_purity']:.1f} % | "
                         f"{row['texts']} | {100 * row['precision']:.1f} % |")
        lines.append("")
    r = result["measures"][MEASURES[0]]
    lines.insert(2, f"{n} distinct texts; the calls made again give the stored output for "
                 f"{100 * agree:.1f} %. {r['labels']} distinct initial labels; {r['shared']} "
                 f"texts ({100 * r['shared'] / n:.1f} %) share theirs with another text; "
                 f"{r['pairs']} pairs share a label, {100 * r['pair_purity']:.1f} % of them one "
                 "intent.\n")
    common = Counter(keys).most_common(8)
    lines.append("Most used labels: " + ", ".join(f"{k} ({c})" for k, c in common) + ".")
    return "\n".join(lines) + "\n", result


def cluster_rows(
    set_name: str, spec: str, recs: dict[int, dict[str, Any]], measure: str,
    keeps: list[float], seeds: list[int],
) -> tuple[str, list[dict[str, Any]]]:
    """The run's refinement and the default clusterer again, with only the most confident
    initial labels kept (a text whose label is dropped starts with none): refinement's
    neighbours from the kept labels mixed into the text vectors (the run's join), the
    two most shared neighbour labels added (the run's rule), then DensityClusterer with
    the labels choosing the splits, on the text vectors and on the refined mix at 0.1.
    ``keep = 1`` is the run itself (checked against its stored label sets)."""
    from intentlocal.pipeline.augment import mix_vectors
    from intentlocal.pipeline.cluster import DensityClusterer
    from intentlocal.pipeline.labels import shared_refinement
    from intentlocal.pipeline.metrics import scores, summarise
    from intentlocal.pipeline.neighbours import nearest_neighbours
    from scripts.label_distance import open_shared_run

    sr, store, run_id, s, embed = open_shared_run(spec, set_name)
    n = len(sr.uniques)
    x = embed(sr.uniques)
    stored_final = store.label_sets(run_id, n, 10**6)
    k = len(set(sr.gold))
    gold = sr.gold
    started = time.perf_counter()
    geometry = []
    for seed in seeds:
        geometry.append(scores(gold, DensityClusterer(random_state=seed).fit_predict(x, k)[
            sr.uid_of]))
    g = summarise(geometry)
    out = [dict(keep=0.0, what="texts alone", **g)]
    lines = [f"| {set_name} | texts alone | | | {g['acc']:.1f} ± {g['acc_sd']:.1f} / "
             f"{g['nmi']:.1f} |"]
    for keep in keeps:
        initial = kept_labels(recs, n, measure, keep)
        nb = nearest_neighbours(mix_vectors(x, initial, embed, s.join_weight), s.neighbours)
        final = shared_refinement(initial, nb, s.max_candidates, s.max_select, s.min_share)
        same_as_run = float(np.mean([sorted(a) == sorted(b)
                                     for a, b in zip(final, stored_final, strict=True)]))
        mix01 = mix_vectors(x, final, embed, 0.1)
        for what, v in (("labels guide the splits", x), ("refined mix w=0.1", mix01)):
            got = [scores(gold, DensityClusterer(random_state=seed).fit_predict(
                v, k, labels=final)[sr.uid_of]) for seed in seeds]
            m = summarise(got)
            out.append(dict(keep=keep, what=what, same_as_run=same_as_run,
                            labelled=float(np.mean([bool(f) for f in final])), **m))
            lines.append(f"| {set_name} | {what} | {keep:g} | {100 * same_as_run:.1f} % | "
                         f"{m['acc']:.1f} ± {m['acc_sd']:.1f} / {m['nmi']:.1f} |")
        print(f"keep {keep:g}: {time.perf_counter() - started:.0f} s", file=sys.stderr)
    head = (f"Kept by `{measure}`, the true K, seeds {seeds}, DensityClusterer (the umap-hdbscan "
            "candidate), ACC ± sd / NMI:\n\n| set | clustered | initial labels kept "
            "| final sets as the run's | ACC / NMI |\n|---|---|---|---|---|")
    return head + "\n" + "\n".join(lines) + "\n", out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("set_name")
    ap.add_argument("run", help="STORE:RUN of a finished run of the set's test JSONL")
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--report", type=Path)
    ap.add_argument("--limit", type=int, default=0, help="only this many batches (a try-out)")
    ap.add_argument("--cluster", action="store_true",
                    help="also cluster with only the most confident labels kept")
    ap.add_argument("--measure", default="grammar_logp",
                    choices=MEASURES)
    ap.add_argument("--keeps", default="1,0.75,0.5", help="shares of initial labels kept")
    ap.add_argument("--seeds", default="0,1,2,3,4")
    a = ap.parse_args()
    if a.report and a.report.with_suffix(".json").resolve() == a.cache.resolve():
        ap.error(f"--report {a.report} would write its figures over the cache {a.cache}")
    recs = relabel(a.run, a.cache, a.limit)
    if a.limit:
        for u, r in sorted(recs.items()):
            print(u, r["label"], r["same"], confidences(r))
        return
    text, result = analyse(a.set_name, a.run, recs)
    if a.cluster:
        table, rows = cluster_rows(a.set_name, a.run, recs, a.measure,
                                   [float(v) for v in a.keeps.split(",")],
                                   [int(v) for v in a.seeds.split(",")])
        text += "\n" + table
        result["cluster"] = dict(measure=a.measure, rows=rows)
    print(text)
    if a.report:
        a.report.write_text(text)
        a.report.with_suffix(".json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
