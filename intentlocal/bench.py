"""`intentlocal bench`: the method against plain K-means on the same embeddings.

Gold labels are read for scoring only: the runner sees the texts alone. Every
figure is K-means with n_init=10 over 5 seeds (mean ± sd), as in
../shared/benchmarks.md, with the true K and with the estimated K; the "select
clusterer" rows use cluster.SelectClusterer instead, seeded the same way, and each has a
"consensus clusterer" twin (cluster.ConsensusClusterer) combining the same candidates'
partitions.
"""

from __future__ import annotations

import json
import random
import resource
import sys
import time
from argparse import Namespace
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from intentlocal.errors import InputError

SEEDS = (0, 1, 2, 3, 4)


def load_labelled(path: str | Path, sample: int | None, seed: int) -> tuple[list[str], list[str]]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"{p}: no such file")
    rows = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                obj = json.loads(line)
                rows.append((obj["text"].strip(), str(obj["label"])))
            except (json.JSONDecodeError, KeyError, AttributeError) as exc:
                raise InputError(f"{p}, line {i}: need a JSON object with text and label") from exc
    if sample and sample < len(rows):
        # Class-stratified: the same share of every intent, at least one each.
        rng = random.Random(seed)
        by: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for r in rows:
            by[r[1]].append(r)
        frac = sample / len(rows)
        picked = []
        for lab in sorted(by):
            group = by[lab]
            rng.shuffle(group)
            picked += group[: max(1, round(frac * len(group)))]
        rng.shuffle(picked)
        rows = picked
    return [t for t, _ in rows], [g for _, g in rows]


def kmeans_scores(x: np.ndarray, gold: list[str], k: int, select: bool = False,
                  labels: list[list[str]] | None = None,
                  layout: np.ndarray | None = None,
                  expand: Sequence[int] | None = None) -> dict[str, Any]:
    """K-means over the seeds; with ``select`` the select clusterer (SelectClusterer,
    seeded the same way) and which candidate it kept, and under "consensus" the
    consensus clusterer's scores from the same candidates' partitions (one fit serves
    both); ``labels`` and ``layout`` (with ``select``) go to the candidates that take
    them, as in a run. ``expand``: the row of ``x`` each gold row is (x holds distinct
    texts, as a run clusters them; every gold row is scored)."""
    from sklearn.cluster import KMeans

    from intentlocal.pipeline.cluster import SelectClusterer, consensus_partition
    from intentlocal.pipeline.metrics import scores as _scores
    from intentlocal.pipeline.metrics import summarise

    def scores(gold: list[str], pred: Any) -> dict[str, float]:
        return _scores(gold, pred if expand is None else np.asarray(pred)[list(expand)])

    out: dict[str, Any] = {"k": k}
    if select:
        sel, per, chosen, agreed = SelectClusterer(), [], [], []
        for s in SEEDS:
            sel.set_seed(s)
            per.append(scores(gold, sel.fit_predict(x, k, labels=labels, layout=layout)))
            chosen.append(sel.chosen_)
            if "consensus" in sel.partitions_:  # the selection's own candidate
                agreed.append(scores(gold, sel.partitions_["consensus"]))
            elif len(sel.partitions_) > 1:
                agreed.append(scores(gold, consensus_partition(
                    list(sel.partitions_.values()), k, s)))
        out["chosen"] = sorted(set(chosen), key=chosen.index)
        if agreed:
            out["consensus"] = {"k": k, **summarise(agreed), "per_seed": _seeded(agreed)}
    else:
        per = [scores(gold, KMeans(n_clusters=k, n_init=10, random_state=s).fit_predict(x))
               for s in SEEDS]
    out.update(summarise(per))
    out["per_seed"] = _seeded(per, chosen if select else None)
    return out


def _seeded(per: Sequence[dict[str, float]], chosen: Sequence[str] | None = None
            ) -> list[dict[str, Any]]:
    """Each seed's scores (and kept candidate), beside the mean and sd: a later
    comparison pairs two rows seed by seed, where a small gain shows in the differences
    and not in two overlapping spreads (scripts/min_share.py's ``paired``)."""
    return [{"seed": s, **{m: round(float(p[m]), 4) for m in ("acc", "nmi", "ari")},
             **({"chosen": chosen[i]} if chosen else {})}
            for i, (s, p) in enumerate(zip(SEEDS, per, strict=True))]


def _evaluate(name: str, x: np.ndarray, gold: list[str], k_true: int, k_est: int,
              rows: list[dict[str, Any]], select: bool = False,
              labels: list[list[str]] | None = None,
              layout: np.ndarray | None = None,
              expand: Sequence[int] | None = None) -> None:
    for kind, k in (("true K", k_true), ("auto K", k_est)):
        r = kmeans_scores(x, gold, k, select, labels, layout, expand)
        both = [(name, r)]
        if "consensus" in r:  # the consensus clusterer, from the same candidates' partitions
            both.append((name.replace("select clusterer", "consensus clusterer"),
                         r.pop("consensus")))
        for row_name, res in both:
            rows.append({"pipeline": row_name, "k_mode": kind, **res})
            print(f"  {row_name:<32} {kind:<7} K={k:<4} ACC {res['acc']:5.1f} ± "
                  f"{res['acc_sd']:.1f}  NMI {res['nmi']:5.1f}  ARI {res['ari']:5.1f}",
                  file=sys.stderr)


def umap_5d(x: np.ndarray) -> np.ndarray:
    """The reduction of ../shared/benchmarks.md: 5-d, cosine, 15 neighbours, seed 42."""
    try:
        import umap
    except ImportError as exc:
        raise InputError("--umap needs umap-learn (a dependency of intentlocal): "
                         "reinstall with pip install -e .") from exc
    return umap.UMAP(n_components=5, metric="cosine", n_neighbors=15,
                     random_state=42).fit_transform(x)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The settings the bench's command line can set (besides K and the seed, which the
# dataset fixes, and --no-initial-neighbours).
_KNOBS = ("llm", "embedder", "neighbours", "prompt_neighbours", "max_iterations", "parallel",
          "reuse_answers")


def _resumed_settings(store: Any, run_id: int, asked: Any) -> Any:
    """A resumed bench run keeps the settings it was started with, backends included:
    its finished calls were made with them, and a run's batches (``parallel``) must be
    the same on resume for the run to end as an uninterrupted one would. A different
    value on today's command line is ignored, and said so."""
    from intentlocal.config import settings_from_dict

    stored = settings_from_dict(store.run(run_id).settings)
    ignored = [f"{name}={getattr(asked, name)!r} (the run has {getattr(stored, name)!r})"
               for name in (*_KNOBS, "initial_neighbours")
               if getattr(asked, name) != getattr(stored, name)]
    if ignored:
        print(f"resuming run {run_id} with its own settings; ignored: " + ", ".join(ignored),
              file=sys.stderr)
    return stored


def run_bench(args: Namespace) -> int:
    from intentlocal.api import build_backends, execute_run, start_run
    from intentlocal.backends.base import vectors_id
    from intentlocal.config import load_settings
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.augment import join_labels, mix_vectors
    from intentlocal.pipeline.autok import MapEquationK
    from intentlocal.pipeline.embedding import embed_cached
    from intentlocal.store import Store

    started = time.monotonic()
    texts, gold = load_labelled(args.dataset, args.sample, args.seed)
    k_true = len(set(gold))
    overrides = {k: getattr(args, k) for k in _KNOBS if getattr(args, k, None) is not None}
    overrides.update(k=str(k_true), seed=args.seed)
    if args.no_initial_neighbours:
        overrides["initial_neighbours"] = False
    settings = load_settings(overrides=overrides)
    store = Store()
    if getattr(args, "resume", None):
        settings = _resumed_settings(store, int(args.resume), settings)
    embedder, generator = build_backends(settings)
    name = Path(args.dataset).parent.name or Path(args.dataset).stem
    print(f"{name}: {len(texts)} texts, K={k_true}, embedder {embedder.model_id}, "
          f"LLM {generator.model_id}", file=sys.stderr)
    report: dict[str, Any] = {
        "dataset": str(args.dataset), "name": name, "n_texts": len(texts), "k_true": k_true,
        "sample": args.sample, "seed": args.seed, "settings": settings.to_dict(),
        # which graph made the vectors (model, ONNX variant, arithmetic): the setting
        # names only the model, and two sessions' reports said int8 over fp32 vectors
        "vectors": vectors_id(embedder),
        "command": "intentlocal " + " ".join(sys.argv[1:]) if sys.argv else "",
        "rows": [],
    }
    rows: list[dict[str, Any]] = report["rows"]

    def embed(batch: list[str]) -> np.ndarray:
        """Through the run store's cache: the run re-uses these vectors and a
        resumed bench re-embeds nothing."""
        return embed_cached(store, embedder, batch)

    # Distinct texts are clustered and every row scored, as a run does: UMAP is not
    # indifferent to exact duplicates (4 in massive_intent's 2,974 rows moved the
    # default's ACC from 73.6 to 70.8 over 5 seeds, reports/bench_summary_5dec.md), and
    # the bench measures the product.
    uniques, uid_of = Corpus(texts, [], "").unique()
    report["n_distinct"] = len(uniques)

    def evaluate(row: str, x: np.ndarray, k_est: int, **kw: Any) -> None:
        _evaluate(row, x, gold, k_true, k_est, rows, expand=uid_of, **kw)

    from intentlocal.backends.cpu import busy_cpu_note

    # before the bench's own work loads the CPU; its seconds are figures, so a report
    # made beside other work says so
    note = busy_cpu_note()
    if note:
        print(f"  {note}", file=sys.stderr)
        report["busy_cpu_note"] = note
    t0 = time.monotonic()
    base = embed(uniques)
    report["embed_seconds"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    est = MapEquationK(n_neighbors=settings.auto_k_neighbours, random_state=args.seed)
    k_base = est.estimate(base)
    report["auto_k_seconds"] = round(time.monotonic() - t0, 1)
    report["k_est_embeddings"] = k_base
    evaluate("K-means on embeddings", base, k_base)
    evaluate("select clusterer on embeddings", base, k_base, select=True)
    if getattr(args, "umap", False):
        # The LLM-free bar of ../shared/benchmarks.md.
        evaluate("UMAP 5-d then K-means, embeddings", umap_5d(base), k_base)
    if args.no_llm:
        return _finish(report, args, started)

    if getattr(args, "resume", None):
        run_id = int(args.resume)  # an interrupted bench run: its finished calls are kept
        if store.uniques(run_id) != uniques:
            raise InputError(f"run {run_id} was not made from this dataset and sample")
    else:
        corpus = Corpus(texts, list(range(1, len(texts) + 1)), str(args.dataset))
        run_id = start_run(store, corpus, settings, f"bench {name}")
    t0 = time.monotonic()
    result = execute_run(store, run_id, embedder=embedder, generator=generator,
                         progress=_progress(report))
    report["method_seconds"] = round(time.monotonic() - t0, 1)
    report["run_id"] = run_id
    initial = store.label_sets(run_id, len(uniques), 0)
    x_init = embed([join_labels(t, lab) for t, lab in zip(uniques, initial, strict=True)])
    k_init = est.estimate(x_init)
    evaluate("initial labels ⊕ text", x_init, k_init)
    final = store.label_sets(run_id, len(uniques), result.iterations)
    x_final = embed([join_labels(t, lab) for t, lab in zip(uniques, final, strict=True)])
    k_final = est.estimate(x_final)
    evaluate("refined labels ⊕ text", x_final, k_final)
    mix01 = mix_vectors(base, final, embed, 0.1)  # the density candidate's layout
    # The product's default since 5 Dec (`--density-weight 0.1`): the texts' vectors
    # scored, umap-hdbscan on the texts mixed with their labels, the labels choosing its
    # splits; against "select clusterer on embeddings", the same without labels. With
    # the initial labels alone it is the default with no refinement (max_iterations 0).
    evaluate("select clusterer, initial mix w=0.1 for umap-hdbscan only", base, k_base,
             select=True, labels=initial, layout=mix_vectors(base, initial, embed, 0.1))
    evaluate("select clusterer, refined mix w=0.1 for umap-hdbscan only", base, k_base,
             select=True, labels=final, layout=mix01)
    if getattr(args, "ablations", False):
        _ablations(args, uniques, base, initial, final, x_final, k_final, mix01, embed,
                   est, evaluate, k_base)
    report["k_est_initial"] = k_init
    report["k_est_refined"] = k_final
    report["k_est_error_pct"] = round(100 * abs(k_final - k_true) / k_true, 1)
    # What a run on the defaults estimates: K on the texts' own vectors (final = texts).
    report["k_est_embeddings_error_pct"] = round(100 * abs(k_base - k_true) / k_true, 1)
    report["iterations"] = result.iterations
    report["converged"] = result.converged
    report["stages"] = store.stages(run_id)
    report["llm"] = store.call_stats(run_id)
    steps = store.db.execute(
        "SELECT iteration, COUNT(*) n, SUM(called) calls, SUM(prompt_tokens) pt,"
        " SUM(completion_tokens) ct, SUM(seconds) s FROM steps WHERE run_id=?"
        " GROUP BY iteration", (run_id,)).fetchall()
    report["per_iteration"] = [dict(r) for r in steps]
    report["distinct_labels"] = {
        "initial": len({lab for s in initial for lab in s}),
        "final": len({lab for s in final for lab in s}),
        "mean_labels_per_text": round(float(np.mean([len(s) for s in final])), 2),
    }
    report["calls_per_text"] = round(report["llm"]["calls"] / len(texts), 2)
    report["examples"] = name_examples(store, run_id, gold)
    return _finish(report, args, started)


def name_examples(store: Any, run_id: int, gold: list[str], n: int | None = 10) -> list[dict]:
    """The ``n`` largest clusters' names (all with None) beside the gold intent most of
    their texts carry, and its share of the cluster (purity, %)."""
    from collections import Counter

    assign = store.assignments(run_id)
    out = []
    for c in store.clusters(run_id)[:n]:
        members = [gold[i] for i, a in enumerate(assign) if a == c["id"]]
        top, cnt = Counter(members).most_common(1)[0]
        out.append({"name": c["name"], "size": c["size"], "gold": top,
                    "purity": round(100 * cnt / len(members), 1)})
    return out


def _progress(report: dict[str, Any]) -> Any:
    """The CLI's progress line, keeping the run's CPU notes in the report: its seconds
    are figures, and a figure taken while other work ran must say so."""
    from intentlocal.cli import _Line

    line = _Line()

    def on_event(ev: Any) -> None:
        if ev.note:
            report.setdefault("cpu_notes", []).append(ev.note)
        line(ev)

    return on_event


def _finish(report: dict[str, Any], args: Namespace, started: float) -> int:
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    report["peak_rss_mb"] = round(peak_rss_mb(), 0)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"{report['name']}_{report['n_texts']}_s{report['seed']}"
    if args.no_llm:
        tag += "_nollm"
    if args.no_initial_neighbours:
        tag += "_noinitnb"
    (out / f"bench_{tag}.json").write_text(json.dumps(report, indent=1))
    (out / f"bench_{tag}.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def markdown(r: dict[str, Any]) -> str:
    lines = [
        f"## {r['name']}: {r['n_texts']} texts, K = {r['k_true']}"
        + (f" (class-stratified sample, seed {r['seed']})" if r.get("sample") else ""),
        "",
        f"Command: `{r.get('command', '')}`  ",
        f"Embedder {r.get('vectors') or r['settings']['embedder']}, LLM {r['settings']['llm']}; "
        f"wall {r['wall_seconds']:.0f} s; peak RSS {r['peak_rss_mb']:.0f} MB",
        *[f"  \nNot alone on the CPU, so its seconds are upper bounds: {note}"
          for note in [r.get("busy_cpu_note"), *r.get("cpu_notes", [])] if note],
        "",
        "| pipeline | K | ACC | NMI | ARI |",
        "|---|---|---|---|---|",
    ]
    for row in r["rows"]:
        lines.append(
            f"| {row['pipeline']} | {row['k_mode']} = {row['k']} | {row['acc']:.1f} ± "
            f"{row['acc_sd']:.1f} | {row['nmi']:.1f} ± {row['nmi_sd']:.1f} | "
            f"{row['ari']:.1f} ± {row['ari_sd']:.1f} |"
            + (f" kept: {', '.join(row['chosen'])} |" if row.get("chosen") else ""))
    if "llm" in r:
        llm = r["llm"]
        lines += [
            "",
            f"Method: {r['iterations']} refinement iteration(s)"
            f"{' (converged)' if r['converged'] else ' (cap)'}; {llm['calls']} LLM calls "
            f"({r['calls_per_text']} per text)"
            + (f", {llm['reused_calls']} of them answered from the store's earlier answers "
               f"(pipeline.reuse; their first calls took {llm['reused_seconds']:.0f} s)"
               if llm.get("reused_calls") else "")
            + f"; {llm['prompt_tokens']} prompt tokens "
            f"({llm['cached_tokens']} from the KV cache) + {llm['completion_tokens']} "
            f"completion; distinct labels {r['distinct_labels']['initial']} initial → "
            f"{r['distinct_labels']['final']} final, "
            f"{r['distinct_labels']['mean_labels_per_text']} per text; "
            + (f"K estimated on the texts' vectors, as a run on the defaults does: "
               f"{r['k_est_embeddings']} (error {r['k_est_embeddings_error_pct']} %); "
               if "k_est_embeddings_error_pct" in r else "")
            + f"K estimated on refined labels ⊕ text: {r['k_est_refined']} "
            f"(error {r['k_est_error_pct']} %)",
            "",
            "| stage | seconds |",
            "|---|---|",
        ]
        for st, d in r["stages"].items():
            lines.append(f"| {st} | {d['seconds']:.1f} |")
        lines += ["", "| iteration | texts | LLM calls | prompt tok | compl. tok | LLM s |",
                  "|---|---|---|---|---|---|"]
        for it in r["per_iteration"]:
            lines.append(f"| {it['iteration']} | {it['n']} | {it['calls']} | {it['pt']} | "
                         f"{it['ct']} | {it['s']:.0f} |")
        lines += ["", "| cluster name | size | majority gold intent | purity % |",
                  "|---|---|---|---|"]
        for e in r["examples"]:
            lines.append(f"| {e['name']} | {e['size']} | {e['gold']} | {e['purity']} |")
    return "\n".join(lines) + "\n"


def _ablations(args: Namespace, texts: list[str], base: np.ndarray,
               initial: list[list[str]], final: list[list[str]], x_final: np.ndarray,
               k_final: int, mix01: np.ndarray, embed: Any, est: Any, evaluate: Any,
               k_base: int) -> None:
    """The rows measured before 5 Dec beside the default (`--ablations`): other joins
    of the same labels and other inputs to the default clusterer. No extra LLM call;
    about as long again as the main rows."""
    from intentlocal.pipeline.augment import concat_labels, mix_vectors

    # Other ways to join the same labels, no extra LLM call (issue: how labels join text).
    variants: list[tuple[str, Any]] = [
        ("initial labels, mix w=0.1", lambda: mix_vectors(base, initial, embed, 0.1)),
        ("refined labels, mix w=0.1", lambda: mix01),
        *[(f"refined labels, mix w={w}", lambda w=w: mix_vectors(base, final, embed, w))
          for w in (0.25, 0.5)],
        ("refined labels, tf-idf concat w=0.25", lambda: concat_labels(base, final, 0.25)),
        ("refined labels alone", lambda: embed([" ".join(lab.replace("_", " ") for lab in s) or t
                                                for t, s in zip(texts, final, strict=True)])),
    ]
    if getattr(args, "umap", False):
        variants.append(("UMAP 5-d then K-means, refined mix w=0.1",
                         lambda: umap_5d(mix01)))
    k_mix01 = est.estimate(mix01)  # once: its K-means row and the select row share it
    for vname, make in variants:
        x = make()
        evaluate(vname, x, k_mix01 if x is mix01 else est.estimate(x))
    # The default clusterer on the refined mix, against its row on the texts' vectors alone
    # ("select clusterer on embeddings": final=texts with the labels unused).
    # What `--final mix` does: the mix clustered, the labels also choosing where
    # umap-hdbscan splits (label_splits). Until 5 Dec this row passed no labels, which is
    # not what a run does (mtop_intent: 64.0 without them, 69.0 with; reports/min_share.md).
    evaluate("select clusterer, refined mix w=0.1, labels guide the splits", mix01, k_mix01,
             select=True, labels=final)
    # The product's default since 30 Nov: the texts' own vectors, the refined labels
    # choosing where umap-hdbscan splits a group (settings.label_splits).
    evaluate("select clusterer, refined labels guide the splits", base, k_base, select=True,
             labels=final)
    # The paper's representation (each text re-embedded with its labels, `--final text`)
    # under the product's clusterer: where K-means gains most from the labels, does the
    # default clusterer too?
    evaluate("select clusterer, refined labels ⊕ text", x_final, k_final, select=True,
             labels=final)
