"""The method, stage by stage, checkpointed in the run store.

    a. embed the texts                      (embedder, with its intent prompt)
    b. m nearest neighbours of each text    (usearch)
    c. iteration 0: one initial label per text from the LLM, shown its neighbours
    d. iterations 1..T: embed labels ⊕ text, new neighbours, offer the neighbours'
       labels the text lacks, the LLM selects; label sets only grow; stop when
       no set changes or at the cap
    e. K-means on the final label-augmented vectors (K given or estimated)
    f. name each cluster by its most shared label

Every LLM step is committed before the next starts, and iteration t only reads
label sets of iteration t-1, so a resumed run redoes no finished call and ends
exactly where an uninterrupted one would.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intentlocal.backends.base import Embedder, Generator, generate_all, vectors_id
from intentlocal.backends.cpu import CpuWatch, busy_cpu_note
from intentlocal.config import Settings
from intentlocal.errors import RunError
from intentlocal.grammars import label_grammar
from intentlocal.pipeline.augment import (
    concat_labels,
    join_labels,
    label_vectors,
    mix_vectors,
)
from intentlocal.pipeline.autok import MapEquationK
from intentlocal.pipeline.cluster import canonical_ids, fit_clusters, make_clusterer
from intentlocal.pipeline.embedding import embed_cached
from intentlocal.pipeline.labels import (
    gather_candidates,
    initial_prompt,
    initial_request,
    load_prompt,
    most_shared,
    read_initial_label,
    read_selection,
    selection_request,
)
from intentlocal.pipeline.naming import name_clusters, write_names
from intentlocal.pipeline.neighbours import nearest_neighbours
from intentlocal.pipeline.reuse import answers_writer
from intentlocal.store import Store


class Cancelled(RunError):
    title = "Run cancelled"


@dataclass(frozen=True)
class ProgressEvent:
    stage: str
    done: int
    total: int
    message: str = ""
    eta_seconds: float | None = None
    tokens_per_second: float | None = None
    latest: tuple[str, str] | None = None  # (text, label) just written
    # A line for the user about the machine, not the stage (backends.cpu): the CPU was
    # busy at the start, or other work started or eased since. ``cpu_busy``: the watch's
    # state after it, so an edge can tell a warning from the all-clear.
    note: str | None = None
    cpu_busy: bool | None = None


ProgressFn = Callable[[ProgressEvent], None]

SHARED_RULE = "rule:most-shared"
"""The author stored for labels that selector = "shared" adds (no model wrote them)."""


@dataclass
class RunResult:
    run_id: int
    texts: list[str]
    assignment: list[int]  # cluster id per input text
    cluster_names: dict[int, str]
    label_sets: list[list[str]]  # final labels per input text
    k: int
    k_estimated: bool
    iterations: int
    converged: bool
    stage_seconds: dict[str, float] = field(default_factory=dict)
    vectors: np.ndarray | None = None  # final vectors per unique text


class _Meter:
    """ETA and tokens/s over the steps taken in this process (resumes start fresh)."""

    def __init__(self, total: int, done: int) -> None:
        self.total, self.done, self.started = total, done, time.monotonic()
        self.session_steps = 0
        self.tokens = 0

    def tick(self, tokens: int, called: bool) -> tuple[float | None, float | None]:
        self.done += 1
        self.session_steps += 1
        self.tokens += tokens if called else 0
        elapsed = time.monotonic() - self.started
        if elapsed <= 0:
            return None, None
        eta = (self.total - self.done) * elapsed / self.session_steps
        return eta, (self.tokens / elapsed if self.tokens else None)


class Runner:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        embedder: Embedder,
        generator: Generator,
        *,
        clusterer: Any | None = None,
        k_estimator: Any | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        namer: Generator | None = None,
        cpu_watch: CpuWatch | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.embedder = embedder
        self.generator = generator
        # What the stages decode through: the store's earlier answers first.
        self.writer = answers_writer(generator, store, settings)
        # Who writes the cluster names with llm_names: its own model, or the run's.
        self.namer = namer
        self.name_writer = self.writer if namer is None else \
            answers_writer(namer, store, settings)
        self.clusterer = clusterer or make_clusterer(
            settings.clusterer, settings.kmeans_init, settings.seed
        )
        self.k_estimator = k_estimator or MapEquationK(
            n_neighbors=settings.auto_k_neighbours, random_state=settings.seed
        )
        self._sink = progress or (lambda e: None)
        self.cpu_watch = cpu_watch or CpuWatch()
        self._note: str | None = None  # the start's busy-CPU note, for the first event
        self.cancel = cancel or threading.Event()
        self.initial_prompt = initial_prompt(settings.initial_prompt)
        self.select_prompt = load_prompt("select_labels")

    # -- helpers ------------------------------------------------------------------
    def progress(self, ev: ProgressEvent) -> None:
        """Every stage's progress goes out here, with the CPU watch's note when it has
        one: the watch is polled on each event, so it needs no thread of its own."""
        polled = self.cpu_watch.poll()
        note, self._note = self._note or polled, None
        if note:
            ev = dataclasses.replace(ev, note=note, cpu_busy=self.cpu_watch.busy)
        self._sink(ev)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled(
                "the run was cancelled; finished work is kept",
                hint="resume it with `intentlocal run --resume`",
            )

    def _embed(self, texts: Sequence[str], stage: str) -> np.ndarray:
        """Embeds through the store's cache: a resumed run does not embed twice."""

        def on_batch(done: int, total: int) -> None:
            self.progress(ProgressEvent(stage, done, total, "embedding"))
            if done < total:
                self._check_cancel()

        return embed_cached(self.store, self.embedder, texts, on_batch=on_batch)

    def _timed(
        self,
        run_id: int,
        stage: str,
        fn: Callable[[], Any],
        detail_of: Callable[[Any], dict[str, Any]] | None = None,
        **detail: Any,
    ) -> Any:
        """``detail_of`` derives the stage's recorded detail from its result, for a
        stage whose detail is only known at its end (the cluster stage's K, clusterer)."""
        started = time.monotonic()
        self.store.set_stage(run_id, stage, "running")
        try:
            out = fn()
        except BaseException:
            # An interrupted stage keeps the time it spent, so that a run resumed in
            # slices reports its real cost; the bookkeeping must not mask the cause.
            with contextlib.suppress(Exception):
                self.store.set_stage(run_id, stage, "running", time.monotonic() - started)
            raise
        if detail_of is not None:
            detail = {**detail, **detail_of(out)}
        self.store.set_stage(run_id, stage, "done", time.monotonic() - started, detail)
        return out

    # -- the method ------------------------------------------------------------------
    def execute(self, run_id: int) -> RunResult:
        s = self.settings
        uniques = self.store.uniques(run_id)
        n = len(uniques)
        if n == 0:
            raise RunError("the run has no texts")
        for name, template in (
            ("initial_label", self.initial_prompt),
            ("select_labels", self.select_prompt),
        ):
            self.store.save_prompt(template.hash, name, template.body)
        self.store.update_run(
            run_id,
            status="running",
            # the vectors' identity (model, ONNX variant, arithmetic), not just the model's
            # name: which graph made a run's clusters was invisible when it changed (6 Dec)
            embedder_id=vectors_id(self.embedder),
            llm_id=self.generator.model_id,
            error=None,
        )
        # Before the run's own work loads the CPU, so what it sees is the others'. The
        # watch starts from that answer: a load already announced is not announced again.
        self._note = busy_cpu_note()
        self.cpu_watch.busy = self._note is not None
        m = s.neighbours
        vectors = self._timed(run_id, "embed", lambda: self._embed(uniques, "embed"))
        text_vectors = vectors  # the texts alone: what final = concat / mix builds on
        neighbours = self._timed(run_id, "neighbours", lambda: nearest_neighbours(vectors, m))
        self._timed(run_id, "initial", lambda: self._initial(run_id, uniques, neighbours))
        iterations, converged = 0, False
        label_sets = self.store.label_sets(run_id, n, 0)
        for it in range(1, s.max_iterations + 1):
            stage = f"refine-{it}"
            vectors = self._timed(
                run_id,
                f"embed-{it}",
                lambda st=stage, ls=label_sets: self._joined(uniques, text_vectors, ls, st),
            )
            neighbours = self._timed(
                run_id, f"neighbours-{it}", lambda v=vectors: nearest_neighbours(v, m)
            )
            added = self._timed(
                run_id,
                stage,
                lambda i=it, ls=label_sets, nb=neighbours: self._refine(run_id, i, uniques, ls, nb),
            )
            iterations = it
            label_sets = self.store.label_sets(run_id, n, it)
            if added == 0:
                converged = True
                break
        if s.final == "texts":
            vectors = text_vectors
        elif s.final == "concat":
            vectors = concat_labels(text_vectors, label_sets, s.label_weight)
        elif s.final == "mix":
            vectors = self._timed(
                run_id,
                "embed-final",
                lambda: self._mixed(text_vectors, label_sets, s.label_weight, "embed-final"),
            )
        elif s.max_iterations == 0 or not converged or s.join != "text":
            vectors = self._timed(
                run_id,
                "embed-final",
                lambda: self._embed(
                    [join_labels(t, lab) for t, lab in zip(uniques, label_sets, strict=True)],
                    "embed-final",
                ),
            )
        # With convergence the last "text (labels)" vectors already carry the final labels.
        layout = None
        if s.density_weight > 0 and s.final == "texts":  # the others carry the labels
            layout = self._timed(
                run_id,
                "embed-layout",
                lambda: self._mixed(text_vectors, label_sets, s.density_weight, "embed-layout"),
            )
        names = self._label_vectors(label_sets)
        self._release_models()
        return self._cluster(run_id, uniques, label_sets, vectors, iterations, converged,
                             layout, names)

    def _label_vectors(self, label_sets: list[list[str]]) -> dict[str, np.ndarray]:
        """Each distinct final label's vector, for naming the clusters
        (naming.name_clusters). Refinement's join and the density layout embedded
        these already, so they come from the cache; the embedder is still loaded here,
        for runs that embedded none (no refinement, join text)."""
        return label_vectors(label_sets, lambda b: self._embed(b, "embed-names"))

    def _release_models(self) -> None:
        """Frees both models before clustering, which needs neither: their memory and
        the clusterers' working memory were the 10,003-text run's peak together
        (reports/large_inputs_10003.md). Backends without ``release`` keep theirs."""
        for backend in (self.generator, self.embedder, self.namer):
            release = getattr(backend, "release", None)
            if release is not None:
                release()

    def _joined(
        self,
        uniques: list[str],
        text_vectors: np.ndarray,
        label_sets: list[list[str]],
        stage: str,
    ) -> np.ndarray:
        """The texts with their labels, as the vectors refinement retrieves neighbours in."""
        s = self.settings
        if s.join == "mix":
            return self._mixed(text_vectors, label_sets, s.join_weight, stage)
        joined = [join_labels(t, lab) for t, lab in zip(uniques, label_sets, strict=True)]
        return self._embed(joined, stage)

    def _mixed(
        self,
        text_vectors: np.ndarray,
        label_sets: list[list[str]],
        weight: float,
        stage: str,
    ) -> np.ndarray:
        """The texts' vectors with their labels' mean vector at ``weight``, the labels
        embedded through the cache under ``stage``: refinement's join, final = "mix" and
        the density candidate's layout are one computation at three weights."""
        return mix_vectors(text_vectors, label_sets, lambda b: self._embed(b, stage), weight)

    def _chunks(self, uids: Sequence[int], done: Any) -> list[list[int]]:
        """The calls to make, in batches of ``settings.parallel`` that do not depend on
        what was done before a resume: the batches are cut from every uid needing a
        call, and a batch already recorded (all or none, ``Store.record_steps``) is
        skipped. A batch with some members recorded (a store written one call at a
        time) keeps the others together."""
        size = max(1, self.settings.parallel)
        out = []
        for i in range(0, len(uids), size):
            todo = [u for u in uids[i : i + size] if u not in done]
            if todo:
                out.append(todo)
        return out

    def _initial(self, run_id: int, uniques: list[str], neighbours: np.ndarray) -> None:
        s = self.settings
        done = self.store.steps(run_id, 0)
        meter = _Meter(len(uniques), len(done))
        grammar_id = label_grammar().grammar_id
        model_id = self.generator.model_id
        for chunk in self._chunks(range(len(uniques)), done):
            self._check_cancel()
            nbs = {uid: [int(j) for j in neighbours[uid]] for uid in chunk}
            requests = [
                initial_request(
                    self.initial_prompt,
                    uniques[uid],
                    [uniques[j] for j in nbs[uid][: s.prompt_neighbours]]
                    if s.initial_neighbours
                    else [],
                    s.neighbour_chars,
                )
                for uid in chunk
            ]
            gens = generate_all(self.writer, requests)
            labels = [read_initial_label(model_id, gen) for gen in gens]
            self.store.record_steps(
                run_id,
                0,
                [
                    dict(
                        uid=uid,
                        neighbours=nbs[uid],
                        candidates=[],
                        called=True,
                        output=gen.text,
                        labels=[(label, None)],
                        model_id=model_id,
                        prompt_hash=self.initial_prompt.hash,
                        grammar_id=grammar_id,
                        prompt_tokens=gen.prompt_tokens,
                        completion_tokens=gen.completion_tokens,
                        cached_tokens=gen.cached_tokens,
                        seconds=gen.seconds,
                        reused_seconds=gen.reused_seconds,
                    )
                    for uid, gen, label in zip(chunk, gens, labels, strict=True)
                ],
            )
            for uid, gen, label in zip(chunk, gens, labels, strict=True):
                eta, tps = meter.tick(gen.prompt_tokens - gen.cached_tokens,
                                      gen.reused_seconds is None)
                self.progress(
                    ProgressEvent(
                        "initial",
                        meter.done,
                        len(uniques),
                        "initial labels",
                        eta,
                        tps,
                        (uniques[uid], label),
                    )
                )

    def _refine(
        self,
        run_id: int,
        it: int,
        uniques: list[str],
        label_sets: list[list[str]],
        neighbours: np.ndarray,
    ) -> int:
        s = self.settings
        done = self.store.steps(run_id, it)
        previous = self.store.steps(run_id, it - 1) if it > 1 else {}
        meter = _Meter(len(uniques), len(done))
        added = sum(1 for r in done.values() if r["output"] not in (None, "none"))
        model_id = self.generator.model_id
        plans: dict[int, tuple[list[int], list[tuple[str, int]]]] = {}
        for uid in range(len(uniques)):
            nb = [int(j) for j in neighbours[uid]]
            cands = gather_candidates(label_sets[uid], nb, label_sets, s.max_candidates,
                                      s.min_share)
            names = [c for c, _ in cands]
            prev = previous.get(uid)
            unchanged = (
                prev is not None
                and prev["called"]
                and prev["output"] == "none"
                and [c for c, _ in json.loads(prev["candidates_json"])] == names
            )
            if cands and not unchanged:
                plans[uid] = (nb, cands)
            elif uid not in done:
                # Nothing new to decide: the same question got "none" last time.
                self.store.record_step(
                    run_id,
                    uid,
                    it,
                    neighbours=nb,
                    candidates=cands,
                    called=False,
                    output=None if not cands else "none",
                    labels=[],
                    model_id=model_id,
                    prompt_hash=self.select_prompt.hash,
                    grammar_id="",
                )
                meter.tick(0, False)
        if s.selector == "shared":
            return added + self._refine_by_sharing(run_id, it, plans, done, meter)
        for chunk in self._chunks(list(plans), done):
            self._check_cancel()
            requests = [
                selection_request(
                    self.select_prompt,
                    uniques[uid],
                    label_sets[uid],
                    [c for c, _ in plans[uid][1]],
                    s.neighbour_chars,
                    s.max_select,
                )
                for uid in chunk
            ]
            gens = generate_all(self.writer, requests)
            steps = []
            for uid, req, gen in zip(chunk, requests, gens, strict=True):
                nb, cands = plans[uid]
                picked = read_selection(model_id, gen, len(cands), s.max_select)
                chosen = [cands[i] for i in picked]
                steps.append(
                    dict(
                        uid=uid,
                        neighbours=nb,
                        candidates=cands,
                        called=True,
                        output=gen.text.strip(),
                        labels=chosen,
                        model_id=model_id,
                        prompt_hash=self.select_prompt.hash,
                        grammar_id=req.grammar.grammar_id,
                        prompt_tokens=gen.prompt_tokens,
                        completion_tokens=gen.completion_tokens,
                        cached_tokens=gen.cached_tokens,
                        seconds=gen.seconds,
                        reused_seconds=gen.reused_seconds,
                    )
                )
            self.store.record_steps(run_id, it, steps)
            for step, gen in zip(steps, gens, strict=True):
                if step["labels"]:
                    added += 1
                eta, tps = meter.tick(gen.prompt_tokens - gen.cached_tokens,
                                      gen.reused_seconds is None)
                self.progress(
                    ProgressEvent(
                        f"refine-{it}",
                        meter.done,
                        len(uniques),
                        f"iteration {it}",
                        eta,
                        tps,
                        (
                            uniques[step["uid"]],
                            ", ".join(c for c, _ in step["labels"]) or "none",
                        ),
                    )
                )
        return added

    def _refine_by_sharing(
        self,
        run_id: int,
        it: int,
        plans: dict[int, tuple[list[int], list[tuple[str, int]]]],
        done: dict[int, Any],
        meter: _Meter,
    ) -> int:
        """selector = "shared": add the most shared candidates without asking the LLM.

        The candidates come most shared first, which is also the order the 0.5B model
        picks in (config.Settings.selector), so this is what its answers amount to, at
        no cost. The step is stored as not called, with the rule as its author, so the
        history says who added each label."""
        steps = []
        for uid, (nb, cands) in plans.items():
            if uid in done:
                continue
            added = most_shared(cands, self.settings.max_select)
            steps.append(
                dict(
                    uid=uid,
                    neighbours=nb,
                    candidates=cands,
                    called=False,
                    output=",".join(str(i) for i in range(1, len(added) + 1)),
                    labels=added,
                    model_id=SHARED_RULE,
                    prompt_hash="",
                    grammar_id="",
                )
            )
        self.store.record_steps(run_id, it, steps)
        for _ in steps:
            meter.tick(0, False)
        self.progress(
            ProgressEvent(f"refine-{it}", meter.done, meter.total, f"iteration {it}", None, None)
        )
        return len(steps)

    def _cluster(
        self,
        run_id: int,
        uniques: list[str],
        label_sets: list[list[str]],
        vectors: np.ndarray,
        iterations: int,
        converged: bool,
        layout: np.ndarray | None = None,
        label_vectors: dict[str, np.ndarray] | None = None,
    ) -> RunResult:
        self._check_cancel()
        self.progress(ProgressEvent("cluster", 0, 1, "clustering"))
        rows = self.store.texts(run_id)
        text_labels = [label_sets[uid] for _, uid, _ in rows]

        seconds: dict[str, float] = {}  # where the stage's time went, for the profile

        def cluster() -> tuple[int, bool, list[int], list[dict[str, Any]]]:
            k = self.settings.resolved_k()
            estimated = k is None
            if k is None:
                self.progress(ProgressEvent("cluster", 0, 1, "estimating K"))
                t = time.perf_counter()
                k = int(self.k_estimator.estimate(vectors))
                seconds["auto_k"] = round(time.perf_counter() - t, 2)
            k = max(1, min(k, len(uniques)))
            guide = label_sets if self.settings.label_splits else None

            def on_step(name: str, done: int, total: int) -> None:
                # one more than the steps: the stage is done only when it is stored
                self.progress(ProgressEvent("cluster", done, total + 1, f"clustering: {name}"))
                self._check_cancel()  # a cancel waits for one candidate, not all of them

            if hasattr(self.clusterer, "on_step"):
                self.clusterer.on_step = on_step
            try:
                unique_assign = canonical_ids(fit_clusters(self.clusterer, vectors, k, guide,
                                                           layout))
            finally:
                if hasattr(self.clusterer, "on_step"):
                    self.clusterer.on_step = None  # the clusterer may outlive this run
            assignment = [int(unique_assign[uid]) for _, uid, _ in rows]
            clusters = name_clusters(assignment, text_labels, label_vectors=label_vectors)
            self.store.save_clusters(run_id, clusters, assignment)
            self.store.save_coords(run_id, map_2d(vectors, self.settings.seed))
            return k, estimated, assignment, clusters

        def detail_of(out: tuple[int, bool, list[int], list[dict[str, Any]]]) -> dict[str, Any]:
            return {
                "k": out[0],
                "estimated": out[1],
                # the auto-K graph's neighbour count (0: K was given, no estimate ran)
                "auto_k_neighbours": getattr(self.k_estimator, "n_neighbors_", 0)
                if out[1] else 0,
                # what SelectClusterer tried and kept: the user can see why these clusters
                "clusterer": getattr(self.clusterer, "chosen_", "") or self.settings.clusterer,
                "scores": getattr(self.clusterer, "scores_", {}),
                "seconds": {**seconds, **getattr(self.clusterer, "seconds_", {})},
            }

        # Timed like every stage: an interrupted clustering (a long auto-K search at
        # 10k texts) keeps the time it spent in the run's profile.
        k, estimated, assignment, clusters = self._timed(run_id, "cluster", cluster, detail_of)
        self.progress(ProgressEvent("cluster", 1, 1, f"{k} clusters"))
        if self.settings.llm_names:
            clusters = self._timed(
                run_id, "name",
                lambda: self._write_names(run_id, rows, uniques, label_sets, vectors,
                                          assignment, clusters))
        self.store.update_run(run_id, status="finished", k=k, iterations=iterations)
        return RunResult(
            run_id=run_id,
            texts=[t for _, _, t in rows],
            assignment=assignment,
            cluster_names={c["id"]: c["name"] for c in clusters},
            label_sets=text_labels,
            k=k,
            k_estimated=estimated,
            iterations=iterations,
            converged=converged,
            stage_seconds={st: d["seconds"] for st, d in self.store.stages(run_id).items()},
            vectors=vectors,
        )

    def _write_names(
        self,
        run_id: int,
        rows: list[tuple[int, int, str]],
        uniques: list[str],
        label_sets: list[list[str]],
        vectors: np.ndarray,
        assignment: list[int],
        clusters: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The LLM's cluster names (pipeline.naming), over the distinct texts. The
        clusters are saved already under the rule's names, so a failure here loses
        nothing: the run keeps those. The naming model loads here (the run's own was
        released before clustering and loads again, about a second)."""
        prompt = load_prompt("name_cluster")
        self.store.save_prompt(prompt.hash, "name_cluster", prompt.body)
        u_assign = [0] * len(uniques)
        for (_, uid, _), c in zip(rows, assignment, strict=True):
            u_assign[uid] = c

        def on_chunk(done: int, total: int) -> None:
            self.progress(ProgressEvent("name", done, total, "naming clusters"))
            if done < total:
                self._check_cancel()

        self.progress(ProgressEvent("name", 0, len(clusters), "naming clusters"))
        named = write_names(self.name_writer, prompt, clusters, u_assign, label_sets,
                            uniques, vectors, progress=on_chunk)
        self.store.save_cluster_names(run_id, named)
        self._release_models()
        return named


def map_2d(vectors: np.ndarray, seed: int = 0) -> np.ndarray:
    """2-D coordinates for the cluster map: PCA, cheap and stable across runs."""
    if len(vectors) < 3:
        return np.zeros((len(vectors), 2))
    from sklearn.decomposition import PCA

    return PCA(n_components=2, random_state=seed).fit_transform(vectors)
