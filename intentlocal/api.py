"""The Python API the CLI and the TUI share: a scikit-learn-style estimator.

from intentlocal import IntentClusterer
model = IntentClusterer(k="auto").fit(texts)
model.labels_, model.cluster_names_, model.label_history_[0]
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from intentlocal.backends.base import Embedder, Generator
from intentlocal.config import Settings, load_settings, settings_from_dict
from intentlocal.errors import InputError, RunError
from intentlocal.ingest import Corpus
from intentlocal.pipeline.runner import ProgressFn, Runner, RunResult
from intentlocal.store import Store


def _load_llm(settings: Settings, ref: str) -> Generator:
    """The LLM ``ref`` with the run's threads, offload, seed, temperature, context and
    parallel streams: the label writer and the naming model load alike."""
    from intentlocal.backends.registry import load_llm

    return load_llm(
        ref,
        n_threads=settings.n_threads or None,
        n_gpu_layers=settings.n_gpu_layers,
        seed=settings.seed,
        temperature=settings.temperature,
        n_ctx=settings.n_ctx,
        parallel=settings.parallel,
    )


def build_backends(settings: Settings) -> tuple[Embedder, Generator]:
    from intentlocal.backends.registry import load_embedder

    embedder = load_embedder(settings.embedder, threads=settings.n_threads or None)
    return embedder, _load_llm(settings, settings.llm)


def build_namer(settings: Settings) -> Generator:
    """The LLM of settings.name_llm; its file is looked up now (a clear error before
    the run spends its LLM minutes), its weights load at the first name."""
    return _load_llm(settings, settings.name_llm)


def start_run(store: Store, corpus: Corpus, settings: Settings, name: str | None = None) -> int:
    """Stores a new run. A user's own initial prompt is checked first (nothing is stored
    if it cannot be used) and kept by its absolute path, so a resume from another
    folder reads the same file. A run of one side of a transcript is named so
    ("chats.csv, speaker customer"): the store keeps its texts, not how they were chosen."""
    from intentlocal.pipeline.labels import initial_prompt, prompt_path

    initial_prompt(settings.initial_prompt)
    own = prompt_path(settings.initial_prompt)
    if own is not None:
        settings = dataclasses.replace(settings, initial_prompt=str(own))
    uniques, uids = corpus.unique()
    default_name = Path(corpus.source).name + (f", {corpus.selection}" if corpus.selection else "")
    return store.create_run(
        name or default_name,
        corpus.source,
        settings.to_dict(),
        corpus.texts,
        uids,
        uniques,
        corpus.lines,
        corpus.speakers,
    )


def resume_target(store: Store, run_id: int | None) -> int:
    """The run to resume: the given one, else the newest unfinished one."""
    import os

    runs = store.runs()
    if run_id is None:
        todo = [r for r in runs if r.status != "finished"]
        if not todo:
            raise RunError("there is no unfinished run to resume")
        run_id = todo[0].id
    info = store.run(run_id)
    if info.status == "finished":
        raise RunError(f"run {run_id} is already finished")
    if info.status == "running" and info.pid and info.pid != os.getpid() and pid_alive(info.pid):
        raise RunError(f"run {run_id} is still running in process {info.pid}")
    return run_id


def pid_alive(pid: int) -> bool:
    """Whether a process still runs: a run marked running by a dead process was killed."""
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def execute_run(
    store: Store,
    run_id: int,
    *,
    embedder: Embedder | None = None,
    generator: Generator | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    namer: Generator | None = None,
) -> RunResult:
    """Runs (or resumes) a stored run with the settings it was created with. ``namer``
    writes the cluster names with llm_names (default: settings.name_llm, loaded lazily;
    the run's own generator when that is "")."""
    import os

    settings = settings_from_dict(store.run(run_id).settings)
    if embedder is None or generator is None:
        e, g = build_backends(settings)
        embedder, generator = embedder or e, generator or g
    if namer is None and settings.llm_names and settings.name_llm:
        namer = build_namer(settings)  # before any LLM minute: a missing model stops here
    store.update_run(run_id, pid=os.getpid(), status="running")
    runner = Runner(store, settings, embedder, generator, progress=progress, cancel=cancel,
                    namer=namer)
    try:
        return runner.execute(run_id)
    except BaseException as exc:
        status = "failed" if isinstance(exc, RunError) and not _cancelled(exc) else "interrupted"
        store.update_run(run_id, status=status, error=str(exc)[:500])
        raise


def _cancelled(exc: BaseException) -> bool:
    from intentlocal.pipeline.runner import Cancelled

    return isinstance(exc, Cancelled)


class IntentClusterer:
    """Finds and names the intents in ``texts``; every label keeps its history.

    Parameters are Settings fields (llm, embedder, k, neighbours, ...); backends
    can be injected (fakes in tests, another embedder or GGUF in practice).
    """

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        generator: Generator | None = None,
        store: Store | None = None,
        progress: ProgressFn | None = None,
        **settings: Any,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.generator = generator
        self.store = store
        self.progress = progress

    def fit(self, texts: Sequence[str], name: str = "api") -> IntentClusterer:
        clean = [t.strip() for t in texts if t and t.strip()]
        if not clean:
            raise InputError("no texts to cluster (all empty)")
        settings = load_settings(overrides=self.settings)
        store = self.store or Store()
        corpus = Corpus(clean, list(range(1, len(clean) + 1)), name)
        run_id = start_run(store, corpus, settings, name)
        result = execute_run(
            store, run_id, embedder=self.embedder, generator=self.generator, progress=self.progress
        )
        self.store_ = store
        self.run_id_ = run_id
        self.result_ = result
        self.labels_ = list(result.assignment)
        self.cluster_names_ = dict(result.cluster_names)
        self.label_sets_ = result.label_sets
        self.k_ = result.k
        return self

    @property
    def label_history_(self) -> list[list[dict[str, Any]]]:
        """Per input text: per iteration, its neighbours, candidates and labels added."""
        per_uid: dict[int, list[dict[str, Any]]] = {}
        out = []
        for _, uid, _ in self.store_.texts(self.run_id_):
            if uid not in per_uid:
                per_uid[uid] = self.store_.history(self.run_id_, uid)
            out.append(per_uid[uid])
        return out
