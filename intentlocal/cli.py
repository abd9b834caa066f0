"""Command line: a thin layer over the library API; errors become one clear message."""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from intentlocal.config import (
    CLUSTERER_CHOICES,
    FINAL_CHOICES,
    JOIN_CHOICES,
    SELECTOR_CHOICES,
)
from intentlocal.errors import IntentLocalError, ModelError

if TYPE_CHECKING:  # the store (sqlite, numpy) loads only when a command needs it
    from intentlocal.store import Store


class _Line:
    """One self-rewriting progress line on a terminal; sparse lines otherwise."""

    def __init__(self, stream: Any = None) -> None:
        self.stream = stream or sys.stderr  # looked up now: a redirected stderr is used
        self.tty = self.stream.isatty()
        self.last_stage = ""
        self.last_print = 0.0

    def __call__(self, ev: Any) -> None:
        if ev.note:  # on a line of its own, above the bar, whenever it comes
            self.stream.write(("\n" if self.tty and self.last_stage else "") + f"  {ev.note}\n")
            self.last_print = 0.0  # and the bar is drawn again at once
        now = time.monotonic()
        new_stage = ev.stage != self.last_stage
        done = ev.done >= ev.total
        if not (new_stage or done or now - self.last_print > (0.2 if self.tty else 15)):
            return
        self.last_print = now
        pct = 100 * ev.done / ev.total if ev.total else 100
        width = 24
        bar = "#" * int(width * pct / 100) + "-" * (width - int(width * pct / 100))
        eta = f" ETA {_dur(ev.eta_seconds)}" if ev.eta_seconds else ""
        tps = f" {ev.tokens_per_second:.0f} tok/s" if ev.tokens_per_second else ""
        latest = ""
        if ev.latest and self.tty:
            latest = f"  {ev.latest[1][:40]}"
        msg = f"{ev.stage:<12} [{bar}] {ev.done}/{ev.total}{eta}{tps}{latest}"
        if self.tty:
            end = "\n" if done else ""
            if new_stage and self.last_stage:
                self.stream.write("\n")
            self.stream.write("\r" + msg[:120].ljust(120) + end)
        else:
            self.stream.write(msg + "\n")
        self.stream.flush()
        self.last_stage = ev.stage if not done else ""


def _dur(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def _fetch_progress():
    state = {"last": 0.0}

    def show(message: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - state["last"] < 0.5 and not (total and done >= total):
            return
        state["last"] = now
        if total and total > 1:
            pct = 100 * done / total
            bar = "#" * int(pct / 4) + "-" * (25 - int(pct / 4))
            line = f"[{bar}] {pct:5.1f}% {done / 1e6:,.0f}/{total / 1e6:,.0f} MB  {message}"
        else:
            line = message
        if sys.stderr.isatty():
            sys.stderr.write("\r" + line[:110].ljust(110))
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return show


# -- commands -------------------------------------------------------------------------
def _print_embedder_variants(name: str, folder: Path) -> None:
    """An exported embedder's ONNX variants and the one runs use: which graph made a
    run's vectors was invisible until a machine ran fp32 for two sessions unnoticed
    (onnx_embedder.default_variant)."""
    from intentlocal.backends.onnx_embedder import default_variant, read_config

    try:
        config = read_config(folder)
    except (OSError, ModelError):
        return  # the listing goes on; a run on this model reports the broken file
    chosen = default_variant(config)
    measured = config.get("export", {}).get("measured", {})
    for variant, file in config.get("variants", {}).items():
        path = folder / file
        size = f"{path.stat().st_size / 1e6:,.0f} MB" if path.is_file() else "missing"
        cosine = measured.get(variant, {}).get("mean_cosine")
        fidelity = f", mean cosine {cosine:.4f} to the reference" if cosine else ""
        used = "used by default" if variant == chosen else f"use as --embedder {name}:{variant}"
        print(f"    {name}:{variant}  exported ({size}{fidelity}); {used}")


def cmd_models(args: argparse.Namespace) -> int:
    from intentlocal import paths
    from intentlocal.backends.fetch import fetch, is_installed, model_dir
    from intentlocal.backends.manifest import load_manifest

    manifest = load_manifest()
    if args.action == "list":
        print(f"models folder: {paths.models_dir()}")
        for name, spec in manifest.items():
            state = "fetched" if is_installed(name) else "not fetched"
            default = " (default)" if spec.default else ""
            size = f"{spec.download_size / 1e6:,.0f} MB" if spec.download_size else "?"
            print(f"  {name:<22} {spec.role:<9} {state:<12} {size:>9}  {spec.license}{default}")
            if args.verbose:
                print(f"      {spec.upstream}; {spec.notes}")
            if spec.role == "embedder" and is_installed(name):
                _print_embedder_variants(name, model_dir(name))
            for v in spec.variants.values():
                made = (model_dir(name) / v.path).is_file()
                print(f"    {name}:{v.name}  {spec.role:<9} "
                      f"{'made' if made else 'made on first use'}: {v.requantize} "
                      f"requantised from {name}")
        return 0
    names = args.names or [n for n, s in manifest.items() if s.default]
    for name in names:
        started = time.monotonic()
        path = fetch(name, progress=_fetch_progress(), force=args.force)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        if sys.stderr.isatty():
            sys.stderr.write("\n")
        print(f"{name}: {path} ({size / 1e6:,.0f} MB, {time.monotonic() - started:.0f} s)")
    if not args.names:
        # The default label writer is a variant made from a fetched file: make it now,
        # so that set-up, not the first run, is where a problem with it shows.
        from intentlocal.backends.registry import resolve_llm_path
        from intentlocal.config import Settings

        ref = Settings().llm
        if ":" in ref:
            started = time.monotonic()
            path, model_id = resolve_llm_path(ref)
            print(f"{model_id}: {path} ({time.monotonic() - started:.0f} s)")
    return 0


def _settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = (
        "llm",
        "embedder",
        "k",
        "neighbours",
        "auto_k_neighbours",
        "prompt_neighbours",
        "max_iterations",
        "max_select",
        "min_share",
        "initial_prompt",
        "final",
        "clusterer",
        "label_weight",
        "density_weight",
        "seed",
        "n_threads",
        "n_gpu_layers",
        "temperature",
        "parallel",
        "label_splits",
        "llm_names",
        "name_llm",
        "reuse_answers",
        "selector",
        "join",
        "join_weight",
    )
    return {k: getattr(args, k, None) for k in keys if getattr(args, k, None) is not None}


def cmd_run(args: argparse.Namespace) -> int:
    from intentlocal import paths
    from intentlocal.api import build_backends, execute_run, resume_target, start_run
    from intentlocal.config import load_settings
    from intentlocal.ingest import read_corpus
    from intentlocal.results import cluster_table, write_outputs
    from intentlocal.store import Store

    store = Store()
    embedder = generator = None
    finished = False
    if args.resume is not None:
        wanted = None if args.resume == "latest" else int(args.resume)
        if wanted is not None and store.run(wanted).status == "finished":
            # Killed while writing its results: the clusters are in the store.
            finished = True
            run_id = wanted
            print(f"run {run_id} is finished; writing its results", file=sys.stderr)
        else:
            run_id = resume_target(store, wanted)
            print(f"resuming run {run_id}", file=sys.stderr)
    else:
        if args.sample:
            args.file = str(paths.sample_path())
        if not args.file:
            raise IntentLocalError("give a file to cluster (or --sample, or --resume)")
        corpus = read_corpus(
            args.file,
            args.column,
            args.speaker,
            first_turn=args.first_turn is not None,
            conversation=args.first_turn or None,
        )
        settings = load_settings(
            Path(args.config) if args.config else None, overrides=_settings_overrides(args)
        )
        # Models are resolved before the run exists: a typo leaves no half-made run.
        embedder, generator = build_backends(settings)
        run_id = start_run(store, corpus, settings, args.name)
        n_unique = len(corpus.unique()[0])
        print(
            f"run {run_id}: {len(corpus.texts)} texts ({n_unique} distinct) from "
            f"{corpus.source}" + (f", column {corpus.column!r}" if corpus.column else ""),
            file=sys.stderr,
        )
        if corpus.note:
            print(f"  note: {corpus.note}", file=sys.stderr)
        if corpus.truncated:
            print(
                f"  note: {corpus.truncated} texts longer than 2000 characters were cut",
                file=sys.stderr,
            )
    if not finished:
        from intentlocal.backends.llm import amx_note

        note = amx_note()  # the busy-CPU notes come with the run's progress
        if note:
            print(f"  {note}", file=sys.stderr)
        try:
            execute_run(store, run_id, embedder=embedder, generator=generator, progress=_Line())
        except KeyboardInterrupt:
            print(
                f"\ninterrupted: run {run_id} keeps its finished work; "
                f"resume with `intentlocal run --resume {run_id}`",
                file=sys.stderr,
            )
            return 130
    out = Path(args.out) if args.out else Path.cwd()
    csv_path, json_path = write_outputs(store, run_id, out)
    _print_clusters(cluster_table(store, run_id))
    stats = store.call_stats(run_id)
    info = store.run(run_id)
    print("\n" + summary_line(store, run_id, info.iterations, stats))
    print(f"wrote {csv_path} and {json_path}")
    return 0


def summary_line(store: Store, run_id: int, iterations: int, stats: dict) -> str:
    """The run's last line: the clusters as results.describe_clusters tells them, and
    what the LLM cost."""
    from intentlocal.results import describe_clusters

    named = sum(1 for c in store.clusters(run_id) if c["name_model"])
    naming = store.stages(run_id).get("name", {}).get("seconds", 0.0)
    return (
        f"{describe_clusters(store, run_id)}, {iterations} refinement iteration(s); "
        f"{stats['calls']} LLM calls, {stats['prompt_tokens']} prompt + "
        f"{stats['completion_tokens']} completion tokens"
        + (f"; {named} cluster names written by the LLM in {naming:.0f} s" if named else "")
    )


def _print_clusters(table: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from intentlocal.results import speaker_share

    t = Table(title="Clusters", show_lines=False)
    t.add_column("#", justify="right")
    t.add_column("name")
    t.add_column("size", justify="right")
    t.add_column("top labels")
    who = any(c["speakers"] for c in table)  # only where the file said who spoke
    if who:
        t.add_column("speakers")
    t.add_column("examples")
    for c in table:
        t.add_row(
            str(c["id"]),
            c["name"],
            str(c["size"]),
            ", ".join(f"{lab} ({n})" for lab, n in c["top_labels"]),
            *([speaker_share(c["speakers"])] if who else []),
            "\n".join(e[:70] for e in c["examples"]),
        )
    Console().print(t)


def cmd_runs(args: argparse.Namespace) -> int:
    from intentlocal.store import Store

    store = Store()
    for r in store.runs():
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at))
        print(
            f"{r.id:>4}  {when}  {r.status:<11} {r.n_texts or 0:>6} texts  "
            f"k={r.k or '-':<4} {r.name}  [{r.llm_id or '?'} / {r.embedder_id or '?'}]"
        )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from intentlocal.results import write_outputs
    from intentlocal.store import Store

    paths_ = write_outputs(Store(), args.run_id, Path(args.out))
    print("wrote " + " and ".join(str(p) for p in paths_))
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    import json

    from intentlocal.store import Store

    store = Store()
    rows = store.texts(args.run_id)
    if not 0 <= args.index < len(rows):
        raise IntentLocalError(f"run {args.run_id} has texts 0..{len(rows) - 1}")
    _, uid, text = rows[args.index]
    line, speaker = store.origins(args.run_id)[args.index]
    doc = {
        "text": text,
        "source": store.run(args.run_id).input_path,
        "source_line": line,
        "speaker": speaker,
        "history": store.history(args.run_id, uid),
    }
    print(json.dumps(doc, indent=1))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from intentlocal.bench import run_bench

    return run_bench(args)


def cmd_tui(file: str | None) -> int:
    from intentlocal.tui.app import run_app

    return run_app(file)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="intentlocal",
        description="Find and name the intents in short texts, offline. "
        "With no command (or just a FILE) the terminal app opens.",
    )
    sub = p.add_subparsers(dest="command")

    r = sub.add_parser("run", help="cluster a .csv / .jsonl / .json / .txt file headless")
    r.add_argument("file", nargs="?")
    r.add_argument("--column", help="CSV column (JSONL field) holding the text")
    r.add_argument(
        "--speaker",
        help="keep one side of a transcript: a speaker (customer), several (customer,caller) "
        "or COLUMN=NAME; speakers come from a speaker / role column or field, chat "
        "records' roles, or .txt lines 'Name: text'",
    )
    r.add_argument(
        "--first-turn",
        nargs="?",
        const="",
        metavar="COLUMN",
        help="keep each conversation's first turn (after --speaker): why they called; "
        "conversations come from a call_id / conversation_id / session_id column or "
        "field (or the COLUMN given), or chat records",
    )
    r.add_argument("--k", help="number of clusters, or auto (default)")
    r.add_argument("--llm", help="manifest name or path to a .gguf")
    r.add_argument("--embedder", help="manifest name[:variant] or path to an ONNX folder")
    r.add_argument("--neighbours", type=int)
    r.add_argument("--auto-k-neighbours", type=int, dest="auto_k_neighbours",
                   help="neighbours per text in auto-K's graph: fewer, more clusters "
                        "(default 0: 10 up to 4,500 texts, then one per 450, at most 40)")
    r.add_argument("--prompt-neighbours", type=int, dest="prompt_neighbours",
                   help="neighbours shown in the initial-label prompt (nearest first)")
    r.add_argument("--max-iterations", type=int, dest="max_iterations")
    r.add_argument("--max-select", type=int, dest="max_select",
                   help="most labels one refinement call may add (0 = any)")
    r.add_argument("--initial-prompt", dest="initial_prompt",
                   help="initial-label prompt: a name in prompts/ or a path to your own "
                        "TOML file (system and user entries; {target}, {neighbours})")
    r.add_argument("--min-share", type=int, dest="min_share",
                   help="offer a neighbour's label in refinement only when this many of "
                        "the m neighbours carry it (default 4; 1: any, the paper's rule)")
    r.add_argument("--final", choices=FINAL_CHOICES,
                   help="what is clustered: the texts' own vectors (default; the labels "
                   "name the clusters), text with its labels embedded (the paper), text "
                   "vector beside its label identities, or text vector mixed with its label "
                   "vectors (best with --clusterer kmeans)")
    r.add_argument("--density-weight", type=float, dest="density_weight",
                   help="mix the labels at this weight into the vectors the umap-hdbscan "
                        "candidate clusters (final texts; 0 = off)")
    r.add_argument("--label-weight", type=float, dest="label_weight",
                   help="weight of the labels for --final concat / mix")
    r.add_argument("--clusterer", choices=CLUSTERER_CHOICES,
                   help="what makes the K clusters: select (default: K-means, spectral "
                   "and UMAP + HDBSCAN tried, the best kept by silhouette and modularity), "
                   "one of them, or average-linkage")
    r.add_argument("--selector", choices=SELECTOR_CHOICES,
                   help="who adds the neighbours' labels in refinement: the most shared "
                   "are added without a call (shared, default), or the LLM picks among "
                   "them (llm, the paper's step 4)")
    r.add_argument("--join", choices=JOIN_CHOICES,
                   help="how refinement joins labels to a text before finding its new "
                   "neighbours: embed 'text (labels)' again (text) or add the labels' "
                   "mean vector to the text's (mix, each label embedded once)")
    r.add_argument("--join-weight", type=float, dest="join_weight",
                   help="weight of the labels' mean vector for --join mix")
    r.add_argument("--no-label-splits", action="store_false", dest="label_splits",
                   default=None,
                   help="ablation: UMAP + HDBSCAN splits groups by geometry alone, not "
                   "where the pseudo-labels differ")
    r.add_argument("--llm-names", action=argparse.BooleanOptionalAction, dest="llm_names",
                   default=None,
                   help="let the LLM write each cluster's name from its labels and typical "
                        "texts (one call per cluster, --name-llm's model); --no-llm-names: "
                        "the most central of the cluster's frequent labels (default)")
    r.add_argument("--name-llm", dest="name_llm",
                   help="the LLM that writes the names with --llm-names (default "
                        "qwen2.5-coder-1.5b; '' = the run's own LLM)")
    r.add_argument("--no-reuse", action="store_false", dest="reuse_answers", default=None,
                   help="decode every LLM call, even one this store has answered before "
                   "(by default, at temperature 0, such answers are reused)")
    r.add_argument("--seed", type=int)
    r.add_argument("--temperature", type=float)
    r.add_argument("--n-threads", type=int, dest="n_threads")
    r.add_argument("--parallel", type=int,
                   help="LLM calls decoded together (1 = one at a time)")
    r.add_argument(
        "--n-gpu-layers",
        type=int,
        dest="n_gpu_layers",
        help="layers on Metal/GPU (-1 = all) when llama.cpp has it",
    )
    r.add_argument("--out", help="folder for the CSV and JSON results (default: .)")
    r.add_argument("--name", help="a name for the run")
    r.add_argument("--config", help="settings TOML (default: $INTENTLOCAL_HOME/settings.toml)")
    r.add_argument("--sample", action="store_true", help="use the bundled sample transcripts")
    r.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        metavar="RUN_ID",
        help="resume an interrupted run (the newest one by default)",
    )
    r.set_defaults(fn=cmd_run)

    m = sub.add_parser("models", help="list or fetch models")
    m.add_argument("action", nargs="?", default="list", choices=["list", "fetch"],
                   help="list (the default) or fetch")
    m.add_argument("names", nargs="*", help="manifest names (default: the default models)")
    m.add_argument("--force", action="store_true", help="fetch again even if present")
    m.add_argument("-v", "--verbose", action="store_true")
    m.set_defaults(fn=cmd_models)

    ru = sub.add_parser("runs", help="list the runs in the store")
    ru.set_defaults(fn=cmd_runs)

    e = sub.add_parser("export", help="write a run's CSV and JSON results")
    e.add_argument("run_id", type=int)
    e.add_argument("--out", default=".")
    e.set_defaults(fn=cmd_export)

    h = sub.add_parser("history", help="the label history of one text of a run, as JSON")
    h.add_argument("run_id", type=int)
    h.add_argument("index", type=int, help="0-based position of the text in the input")
    h.set_defaults(fn=cmd_history)

    b = sub.add_parser("bench", help="the method vs plain K-means and the default clusterer "
                       "on a labelled JSONL")
    b.add_argument("dataset")
    b.add_argument("--sample", type=int, help="class-stratified sample of N texts")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--llm")
    b.add_argument("--embedder")
    b.add_argument("--neighbours", type=int)
    b.add_argument("--prompt-neighbours", type=int, dest="prompt_neighbours")
    b.add_argument("--max-iterations", type=int, dest="max_iterations")
    b.add_argument("--parallel", type=int, help="LLM calls decoded together")
    b.add_argument("--no-llm", action="store_true", help="LLM-free baselines only")
    b.add_argument(
        "--no-initial-neighbours",
        action="store_true",
        help="ablation: the initial prompt shows no neighbours",
    )
    b.add_argument("--umap", action="store_true",
                   help="also UMAP (5-d) then K-means, the LLM-free bar (needs umap-learn)")
    b.add_argument("--no-reuse", action="store_false", dest="reuse_answers", default=None,
                   help="decode every LLM call, even one the store has answered before")
    b.add_argument("--ablations", action="store_true",
                   help="also the other joins and clusterer inputs measured before 5 Dec "
                   "(mix weights, tf-idf, labels alone, labels ⊕ text under the default "
                   "clusterer): about twice the bench's clustering time")
    b.add_argument("--out", default="reports")
    b.add_argument("--resume", metavar="RUN_ID", help="continue an interrupted bench run")
    b.set_defaults(fn=cmd_bench)
    return p


def _stop_on_terminate() -> None:
    """SIGTERM and SIGHUP (`kill`, a closed terminal, a laptop's session ending) end
    the command the way Ctrl-C does: the run is marked interrupted, with its finished
    work kept, instead of dying with its status left at "running"."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is signal.SIG_DFL:
            signal.signal(sig, stop)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if not argv or (
            len(argv) == 1
            and not argv[0].startswith("-")
            and argv[0] not in ("run", "models", "runs", "export", "history", "bench")
        ):
            return cmd_tui(argv[0] if argv else None)
        _stop_on_terminate()  # not for the TUI: Textual owns its signals
        args = build_parser().parse_args(argv)
        if not getattr(args, "fn", None):
            build_parser().print_help()
            return 2
        code = int(args.fn(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below
        return code
    except IntentLocalError as exc:
        print(f"error: {exc.title}: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`intentlocal models list | head`): nothing is wrong with
        # the command, so no traceback. Point stdout at /dev/null so that Python's own
        # flush at exit does not raise again, and exit as a process killed by SIGPIPE.
        with open(os.devnull, "w") as sink:
            os.dup2(sink.fileno(), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
