"""The method end to end on fakes: stages, history, resume, determinism."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from intentlocal.api import IntentClusterer, execute_run, start_run
from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator, keyword_responder
from intentlocal.config import Settings
from intentlocal.errors import ConfigError, ModelError
from intentlocal.ingest import Corpus
from intentlocal.pipeline.augment import join_labels
from intentlocal.pipeline.cluster import SelectClusterer
from intentlocal.pipeline.runner import Cancelled
from intentlocal.store import Store
from tests.conftest import SUPPORT_TEXTS


def _fit(**kw):
    return IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), **kw).fit(
        SUPPORT_TEXTS)


def test_fit_names_clusters_and_keeps_history() -> None:
    m = _fit(k="4", neighbours=3, max_iterations=3)
    assert len(m.labels_) == len(SUPPORT_TEXTS)
    assert len(set(m.labels_)) == 4
    assert len(set(m.cluster_names_.values())) == 4  # unique names
    hist = m.label_history_[0]
    assert hist[0]["iteration"] == 0 and len(hist[0]["neighbours"]) == 3
    assert hist[0]["added"][0]["label"] == "card_arrived"
    assert hist[0]["added"][0]["model_id"] == "fake-llm"
    assert len(hist[0]["added"][0]["prompt_hash"]) == 16
    # label sets only grow: every label of iteration t is still there at the end
    for labels, h in zip(m.label_sets_, m.label_history_, strict=True):
        written = [a["label"] for step in h for a in step["added"]]
        assert labels == written


def test_refinement_shares_labels_between_neighbours() -> None:
    # min_share 1, the paper's rule: the fake's 3 neighbours rarely all carry one label
    m = _fit(k="4", neighbours=3, max_iterations=3, min_share=1)
    added = [a for h in m.label_history_ for step in h if step["iteration"] > 0
             for a in step["added"]]
    assert added, "refinement should adopt some neighbour labels"
    assert all(a["source_uid"] is not None for a in added)


def test_deterministic() -> None:
    a = _fit(k="4", neighbours=3)
    b = _fit(k="4", neighbours=3)
    assert a.labels_ == b.labels_ and a.label_sets_ == b.label_sets_


def test_repeated_texts_labelled_once() -> None:
    gen = FakeGenerator()
    texts = [*SUPPORT_TEXTS, "My card has not arrived yet  ", "I forgot my pin"]
    IntentClusterer(embedder=FakeEmbedder(), generator=gen, k="4", neighbours=3,
                    max_iterations=0).fit(texts)
    assert len(gen.calls) == len(SUPPORT_TEXTS)


def test_no_call_when_nothing_new_is_offered() -> None:
    gen = FakeGenerator(lambda msgs, g: "same_label" if g.name == "label" else "none")
    m = IntentClusterer(embedder=FakeEmbedder(), generator=gen, k="2", neighbours=3).fit(
        SUPPORT_TEXTS)
    # everyone wrote the same label: refinement has no candidate, so no select call
    assert all(g.name == "label" for _, g in gen.calls)
    assert m.result_.converged and m.result_.iterations == 1


def test_auto_k_runs_and_is_bounded() -> None:
    m = _fit(k="auto", neighbours=3, auto_k_neighbours=3)
    assert 2 <= m.k_ <= len(SUPPORT_TEXTS) - 1
    assert m.store_.stages(m.run_id_)["cluster"]["detail"]["auto_k_neighbours"] == 3
    # by default the estimate's graph is scaled with the input, not tied to m
    m = _fit(k="auto", neighbours=3)
    assert m.store_.stages(m.run_id_)["cluster"]["detail"]["auto_k_neighbours"] == 10
    m = _fit(k="4", neighbours=3)
    assert m.store_.stages(m.run_id_)["cluster"]["detail"]["auto_k_neighbours"] == 0


def test_tiny_inputs() -> None:
    one = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="5").fit(
        ["just one text"])
    assert one.labels_ == [0]
    two = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="5").fit(
        ["card lost", "pin reset"])
    assert len(two.labels_) == 2 and max(two.labels_) <= 1
    same = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="3").fit(
        ["same text"] * 6)
    assert set(same.labels_) == {0}


def test_join_labels() -> None:
    assert join_labels("hi", []) == "hi"
    assert join_labels("my card", ["card_arrival", "late"]) == "my card (card arrival, late)"


class _Interrupting(FakeGenerator):
    """Cancels the run after ``after`` calls, like Ctrl-C in the TUI."""

    def __init__(self, cancel: threading.Event, after: int) -> None:
        super().__init__(keyword_responder)
        self.cancel, self.after = cancel, after

    def generate(self, *a, **kw):
        out = super().generate(*a, **kw)
        if len(self.calls) == self.after:
            self.cancel.set()
        return out


@pytest.mark.parametrize("after", [1, 7, 16, 20, 27])
def test_resume_redoes_no_call_and_ends_the_same(after: int) -> None:
    # min_share 1: on 3 fake neighbours the default 4 (then: all 3) offers too few calls;
    # no reuse: the reference run's answers would answer the resumed run's calls
    settings = Settings(k="4", neighbours=3, max_iterations=3, selector="llm", min_share=1,
                        reuse_answers=False)
    corpus = Corpus(list(SUPPORT_TEXTS), list(range(1, 17)), "mem")
    ref_store = Store()
    ref_gen = FakeGenerator()
    ref_id = start_run(ref_store, corpus, settings)
    ref = execute_run(ref_store, ref_id, embedder=FakeEmbedder(), generator=ref_gen)

    store = Store()
    run_id = start_run(store, corpus, settings)
    cancel = threading.Event()
    first = _Interrupting(cancel, after)
    with pytest.raises(Cancelled):
        execute_run(store, run_id, embedder=FakeEmbedder(), generator=first, cancel=cancel)
    assert store.run(run_id).status == "interrupted"
    # the interrupted stage keeps the time it spent, so slices add up to the real cost
    stages = store.stages(run_id)
    cut = [d for d in stages.values() if d["status"] == "running"]
    assert len(cut) == 1 and cut[0]["seconds"] > 0
    second = FakeGenerator()
    res = execute_run(store, run_id, embedder=FakeEmbedder(), generator=second)
    assert len(first.calls) + len(second.calls) == len(ref_gen.calls)
    done_first = {str(m) for m, _ in first.calls}
    assert not done_first & {str(m) for m, _ in second.calls}
    assert res.assignment == ref.assignment and res.label_sets == ref.label_sets
    assert store.integrity_ok()


def test_a_cancel_during_clustering_stops_after_one_candidate_and_resumes() -> None:
    """The clustering stage reports each candidate and stops at the next one when the
    run is cancelled (it used to run all of them first); the resumed run clusters the
    same way an uninterrupted one does."""
    settings = Settings(k="4", neighbours=3, max_iterations=1)
    corpus = Corpus(list(SUPPORT_TEXTS), list(range(1, len(SUPPORT_TEXTS) + 1)), "mem")
    ref_store = Store()
    ref = execute_run(ref_store, start_run(ref_store, corpus, settings),
                      embedder=FakeEmbedder(), generator=FakeGenerator())

    store = Store()
    run_id = start_run(store, corpus, settings)
    cancel = threading.Event()
    seen: list[str] = []

    def progress(ev) -> None:
        if ev.stage == "cluster":
            seen.append(ev.message)
            if ev.message.startswith("clustering: "):
                cancel.set()  # the user presses cancel as the first candidate ends

    with pytest.raises(Cancelled):
        execute_run(store, run_id, embedder=FakeEmbedder(), generator=FakeGenerator(),
                    progress=progress, cancel=cancel)
    assert seen == ["clustering", "clustering: kmeans"]
    assert store.run(run_id).status == "interrupted"
    assert store.stages(run_id)["cluster"]["status"] == "running"
    res = execute_run(store, run_id, embedder=FakeEmbedder(), generator=FakeGenerator())
    assert res.assignment == ref.assignment


def test_broken_backend_output_is_a_clear_error() -> None:
    gen = FakeGenerator(lambda msgs, g: "Not A Label!")
    with pytest.raises(ModelError, match="broke the label grammar"):
        IntentClusterer(embedder=FakeEmbedder(), generator=gen, k="2").fit(SUPPORT_TEXTS)


@pytest.mark.parametrize("final", ["concat", "mix"])
def test_other_final_representations(final: str) -> None:
    from intentlocal.pipeline.augment import label_features

    m = _fit(k="4", neighbours=3, max_iterations=2, final=final, label_weight=0.5)
    assert len(set(m.labels_)) == 4
    dim = FakeEmbedder().dim
    text_only = _fit(k="4", neighbours=3, max_iterations=2, final="texts")
    if final == "concat":  # the text's vector beside its labels' columns
        assert m.result_.vectors.shape[1] == dim + label_features(m.label_sets_).shape[1]
        assert np.abs(m.result_.vectors[:, dim:]).sum() > 0
    else:  # the labels' vectors moved each text's vector
        assert m.result_.vectors.shape[1] == dim
        assert not np.allclose(m.result_.vectors, text_only.result_.vectors)


def test_by_default_the_texts_own_vectors_are_clustered() -> None:
    """final = "texts" (the default): the labels name the clusters, the vectors are the
    texts' own, and no label is embedded for the final clustering."""
    m = _fit(k="4", neighbours=3, max_iterations=2)
    assert m.store_.run(m.run_id_).settings["final"] == "texts"
    np.testing.assert_allclose(m.result_.vectors, FakeEmbedder().embed(SUPPORT_TEXTS),
                               rtol=1e-6)
    assert "embed-final" not in m.store_.stages(m.run_id_)
    assert all(name for name in m.cluster_names_.values())
    assert any(m.label_sets_)  # the LLM still labelled: names and history


def test_candidates_merge_spelling_variants() -> None:
    from intentlocal.pipeline.labels import gather_candidates

    sets = [["exchange_rate"], ["exchange_rates"], ["exchangerate", "card_fee"],
            ["exchange_rates"], ["card_fees"], ["top_up"]]
    # the text already has a variant: none of the variants is offered
    assert gather_candidates(["exchange_rate"], [1, 2, 3, 4], sets, 12) == [("card_fee", 2)]
    # otherwise one, in its most used spelling, from the nearest neighbour spelling it so
    got = gather_candidates(["top_up"], [0, 1, 2, 3, 4], sets, 12)
    assert got == [("exchange_rates", 1), ("card_fee", 2)]
    # a stricter share (scripts/iterations.py --min-share): card_fee is on two
    # neighbours, the exchange rate on four
    assert gather_candidates(["top_up"], [0, 1, 2, 3, 4], sets, 12, min_count=3) == [
        ("exchange_rates", 1)]
    assert gather_candidates(["top_up"], [0, 1, 2, 3, 4], sets, 12, min_count=2) == got
    # a threshold above the neighbours' count asks all of them, not the impossible
    assert gather_candidates(["top_up"], [0, 1], sets, 12, min_count=4) == [
        ("exchange_rate", 0)]


@pytest.mark.parametrize("shown", [0, 2, 5])
def test_initial_prompt_shows_prompt_neighbours_nearest_first(shown: int) -> None:
    gen = FakeGenerator()
    m = IntentClusterer(embedder=FakeEmbedder(), generator=gen, k="4", neighbours=5,
                        prompt_neighbours=shown, max_iterations=0).fit(SUPPORT_TEXTS)
    user = [msgs[-1].content for msgs, g in gen.calls if g.name == "label"]
    listed = [line for line in user[0].splitlines() if line.startswith("- ")]
    nearest = [SUPPORT_TEXTS[j] for j in m.label_history_[0][0]["neighbours"][:shown]]
    assert listed == ([f"- {t}" for t in nearest] if shown else ["- (none)"])
    # the history still keeps all m neighbours: refinement offers their labels
    assert len(m.label_history_[0][0]["neighbours"]) == 5


def test_the_run_records_which_clusterer_it_kept() -> None:
    m = _fit(k="4", neighbours=3)
    detail = m.store_.stages(m.run_id_)["cluster"]["detail"]
    assert detail["clusterer"] in SelectClusterer().candidates
    assert set(detail["scores"]) >= {"kmeans", "spectral-15"}
    km = _fit(k="4", neighbours=3, clusterer="kmeans")
    assert km.store_.stages(km.run_id_)["cluster"]["detail"]["clusterer"] == "kmeans"


def test_every_stage_records_its_time() -> None:
    """The profile (scripts/profile_run.py) adds up stage times: a stage that ran
    without recording one, like the refinement's neighbour search did, hides its cost."""
    m = _fit(k="4", neighbours=3, max_iterations=2)
    stages = m.store_.stages(m.run_id_)
    ran = [s for s in stages if s.startswith("refine-")]
    assert ran, stages
    for it in (s.split("-")[1] for s in ran):
        assert f"embed-{it}" in stages and f"neighbours-{it}" in stages
    assert {"embed", "neighbours", "initial", "cluster"} <= set(stages)
    assert all(d["status"] == "done" and d["seconds"] >= 0 for d in stages.values())


def test_the_clustering_stage_records_its_parts_time() -> None:
    """Clustering is most of a run's time outside llama.cpp; its detail says which part
    took it: the K estimate, each candidate of the selection, the selection itself."""
    m = _fit(k="auto", neighbours=3)
    detail = m.store_.stages(m.run_id_)["cluster"]["detail"]
    parts = detail["seconds"]
    expected = {"auto_k", *SelectClusterer().candidates, "selection"}
    if SelectClusterer().consensus:  # the default: the candidates' consensus is timed too
        expected.add("consensus")
    if SelectClusterer().texts_consensus and Settings().density_weight > 0:
        expected.add("consensus inputs")  # umap-hdbscan fitted again on the texts alone
    assert set(parts) == expected
    assert all(v >= 0 for v in parts.values())
    stage = m.store_.stages(m.run_id_)["cluster"]["seconds"]
    assert sum(parts.values()) <= stage + 0.05
    given = _fit(k="4", neighbours=3, clusterer="kmeans")
    assert given.store_.stages(given.run_id_)["cluster"]["detail"]["seconds"] == {}


def test_an_interrupted_clustering_keeps_its_time(monkeypatch) -> None:
    """The cluster stage is timed like the others: a Ctrl-C during a long clustering
    leaves its seconds in the profile, and a resume finishes the run."""
    import time

    from intentlocal.pipeline import cluster

    settings = Settings(k="4", neighbours=3, max_iterations=1, clusterer="kmeans")
    corpus = Corpus(list(SUPPORT_TEXTS), list(range(1, 17)), "mem")
    store = Store()
    run_id = start_run(store, corpus, settings)
    real = cluster.KMeansClusterer.fit_predict

    def interrupted(self, x, k):
        time.sleep(0.05)
        raise KeyboardInterrupt

    monkeypatch.setattr(cluster.KMeansClusterer, "fit_predict", interrupted)
    with pytest.raises(KeyboardInterrupt):
        execute_run(store, run_id, embedder=FakeEmbedder(), generator=FakeGenerator())
    cut = store.stages(run_id)["cluster"]
    assert cut["status"] == "running" and cut["seconds"] >= 0.05
    monkeypatch.setattr(cluster.KMeansClusterer, "fit_predict", real)
    res = execute_run(store, run_id, embedder=FakeEmbedder(), generator=FakeGenerator())
    done = store.stages(run_id)["cluster"]
    assert done["status"] == "done" and done["seconds"] >= 0.05
    assert done["detail"]["k"] == 4 and done["detail"]["clusterer"] == "kmeans"
    assert len(set(res.assignment)) == 4


def test_cluster_ids_do_not_depend_on_the_clusterers_numbering() -> None:
    """The same partition numbered differently (K-means' numbering follows its initial
    centroids, which CPUs can reorder) must give the same clusters, ids and order."""
    from intentlocal.pipeline.cluster import KMeansClusterer
    from intentlocal.pipeline.runner import Runner

    class Renumbered(KMeansClusterer):
        def __init__(self, shift: int) -> None:
            super().__init__(10, 0)
            self.shift = shift

        def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
            return (super().fit_predict(x, k) + self.shift) % k

    settings = Settings(k="4", neighbours=3, max_iterations=1, clusterer="kmeans")
    seen = []
    for shift in (0, 1, 3):
        store = Store()
        corpus = Corpus(texts=list(SUPPORT_TEXTS), lines=list(range(1, len(SUPPORT_TEXTS) + 1)),
                        source="support.csv")
        run_id = start_run(store, corpus, settings)
        Runner(store, settings, FakeEmbedder(), FakeGenerator(),
               clusterer=Renumbered(shift)).execute(run_id)
        seen.append(([(c["id"], c["name"], c["size"]) for c in store.clusters(run_id)],
                     store.assignments(run_id)))
    assert seen[0] == seen[1] == seen[2]
    ids = [i for i, _, _ in seen[0][0]]
    assert sorted(ids) == [0, 1, 2, 3]


class _Recording:
    """K-means that keeps what the runner handed it: vectors, labels and layout."""

    def __init__(self) -> None:
        from intentlocal.pipeline.cluster import KMeansClusterer

        self.inner = KMeansClusterer(10, 0)
        self.x: object = "not called"
        self.labels: object = "not called"
        self.layout: object = "not called"

    def fit_predict(self, x: np.ndarray, k: int, labels=None, layout=None) -> np.ndarray:
        self.x, self.labels, self.layout = x, labels, layout
        return self.inner.fit_predict(x, k)


def _run_recorded(settings: Settings, embedder: FakeEmbedder | None = None
                  ) -> tuple[_Recording, Store, int]:
    """A run of the support texts on ``settings`` whose clusterer records its inputs."""
    from intentlocal.pipeline.runner import Runner

    store = Store()
    corpus = Corpus(list(SUPPORT_TEXTS), list(range(1, len(SUPPORT_TEXTS) + 1)), "mem")
    run_id = start_run(store, corpus, settings)
    rec = _Recording()
    Runner(store, settings, embedder or FakeEmbedder(), FakeGenerator(),
           clusterer=rec).execute(run_id)
    return rec, store, run_id


@pytest.mark.parametrize("label_splits", [True, False])
def test_the_clusterer_gets_the_runs_final_labels(label_splits: bool) -> None:
    """By default the clusterer is handed each distinct text's final label set (the
    umap-hdbscan candidate splits groups where they differ); --no-label-splits hands it
    none, the geometry-only ablation."""
    settings = Settings(k="4", neighbours=3, max_iterations=1, label_splits=label_splits)
    rec, store, run_id = _run_recorded(settings)
    n = len(store.uniques(run_id))
    if label_splits:
        assert rec.labels == store.label_sets(run_id, n, 1) and any(rec.labels)
    else:
        assert rec.labels is None


@pytest.mark.parametrize("weight", [0.0, 0.5])
def test_density_weight_hands_the_clusterer_the_texts_with_their_labels(weight: float) -> None:
    """density_weight > 0: the clusterer gets the texts' own vectors to score and, as
    ``layout``, the same texts with their final labels mixed in at that weight."""
    from intentlocal.pipeline.augment import mix_vectors

    emb = FakeEmbedder()
    settings = Settings(k="4", neighbours=3, max_iterations=1, density_weight=weight)
    rec, store, run_id = _run_recorded(settings, emb)
    uniques = store.uniques(run_id)
    texts = emb.embed(uniques)
    assert np.allclose(rec.x, texts)
    if weight:
        final = store.label_sets(run_id, len(uniques), 1)
        assert np.allclose(rec.layout, mix_vectors(texts, final, emb.embed, weight))
        assert not np.allclose(rec.layout, texts)
        assert "embed-layout" in store.stages(run_id)
    else:
        assert rec.layout is None


def test_density_weight_is_unused_when_the_final_vectors_carry_the_labels() -> None:
    settings = Settings(k="4", neighbours=3, max_iterations=1, final="mix",
                        density_weight=0.1).validate()
    rec, store, run_id = _run_recorded(settings)
    assert rec.layout is None and "embed-layout" not in store.stages(run_id)


def test_runs_stored_before_label_splits_keep_splitting_by_geometry() -> None:
    from intentlocal.config import settings_from_dict

    old = Settings().to_dict()
    del old["label_splits"]
    assert settings_from_dict(old).label_splits is False
    assert Settings().label_splits is True


def test_shared_selector_adds_the_most_shared_labels_without_a_call() -> None:
    """selector = "shared" adds what the LLM's position-bound answers amounted to,
    the first max_select candidates, and the history names the rule as their author."""
    from intentlocal.pipeline.runner import SHARED_RULE

    gen = FakeGenerator()
    m = IntentClusterer(embedder=FakeEmbedder(), generator=gen, k="4", neighbours=3,
                        max_iterations=1, max_select=1, selector="shared",
                        min_share=1).fit(SUPPORT_TEXTS)
    assert all(g.name == "label" for _, g in gen.calls)  # no selection call at all
    refined = [step for h in m.label_history_ for step in h if step["iteration"] == 1]
    offered = [step for step in refined if step["candidates"]]
    assert offered, "the fake texts' neighbours should offer labels"
    for step in refined:
        assert not step["called"]
        want = [c for c, _ in step["candidates"][:1]]
        assert [a["label"] for a in step["added"]] == want
        assert all(a["model_id"] == SHARED_RULE for a in step["added"])
        assert [a["source_uid"] for a in step["added"]] == [s for _, s in step["candidates"][:1]]
    # the LLM path, same texts: the selection calls are made
    llm_gen = FakeGenerator()
    IntentClusterer(embedder=FakeEmbedder(), generator=llm_gen, k="4", neighbours=3,
                    max_iterations=1, max_select=1, selector="llm",
                    min_share=1).fit(SUPPORT_TEXTS)
    assert any(g.name != "label" for _, g in llm_gen.calls)


def test_runs_stored_before_the_selector_setting_keep_the_llm_picking() -> None:
    from intentlocal.config import settings_from_dict

    old = Settings(selector="shared").to_dict()
    del old["selector"]
    assert settings_from_dict(old).selector == "llm"
    with pytest.raises(ConfigError, match="selector must be one of llm, shared"):
        Settings(selector="vote").validate()


def test_the_profile_tells_rule_added_steps_from_skipped_ones() -> None:
    """scripts/profile_run.py: a refinement step the rule answered is not a "same
    question" skip; both cost no call, but only one added labels."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "profile_run.py"
    spec = importlib.util.spec_from_file_location("profile_run", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    m = _fit(k="4", neighbours=3, max_iterations=1, min_share=1)
    rows = {line.split("|")[1].strip(): line for line in mod.profile(m.store_.db, m.run_id_)
            if line.startswith("| 1 |")}
    n = len(m.store_.uniques(m.run_id_))
    offered = sum(1 for uid in range(n) for h in m.store_.history(m.run_id_, uid)
                  if h["iteration"] == 1 and h["candidates"])
    cells = [c.strip() for c in rows["1"].split("|")[1:-1]]
    # iteration, texts, calls, no candidate, same question, rule-added
    assert cells[:6] == ["1", str(n), "0", str(n - offered), "0", str(offered)]
    assert offered


class _RecordingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.texts.extend(texts)
        return super().embed(texts)


def test_mix_join_embeds_each_label_once_instead_of_every_text_again() -> None:
    """join = "mix": refinement's neighbours come from the text vectors plus their
    labels' mean vector, so the embedder sees the distinct labels, not "text (labels)"."""
    from intentlocal.pipeline.augment import mix_vectors
    from intentlocal.pipeline.neighbours import nearest_neighbours

    emb = _RecordingEmbedder()
    m = IntentClusterer(embedder=emb, generator=FakeGenerator(), k="4", neighbours=3,
                        max_iterations=1, join="mix", join_weight=0.25).fit(SUPPORT_TEXTS)
    initial = [[a["label"] for step in h if step["iteration"] == 0 for a in step["added"]]
               for h in m.label_history_]
    joined = {join_labels(t, lab) for t, lab in zip(SUPPORT_TEXTS, initial, strict=True)}
    assert not joined & set(emb.texts) - set(SUPPORT_TEXTS)
    labels = {lab.replace("_", " ") for labs in initial for lab in labs}
    assert labels <= set(emb.texts)
    # and the neighbours refinement recorded are those of the mixed vectors
    uniques = list(dict.fromkeys(SUPPORT_TEXTS))
    first = {t: i for i, t in enumerate(SUPPORT_TEXTS)}
    sets = [initial[first[t]] for t in uniques]
    fresh = FakeEmbedder()
    want = nearest_neighbours(mix_vectors(fresh.embed(uniques), sets, fresh.embed, 0.25), 3)
    for uid, t in enumerate(uniques):
        step = next(s for s in m.label_history_[first[t]] if s["iteration"] == 1)
        assert step["neighbours"] == [int(j) for j in want[uid]]


def test_text_join_embeds_text_with_labels_and_old_runs_keep_it() -> None:
    from intentlocal.config import settings_from_dict

    emb = _RecordingEmbedder()
    m = IntentClusterer(embedder=emb, generator=FakeGenerator(), k="4", neighbours=3,
                        max_iterations=1, join="text").fit(SUPPORT_TEXTS)
    initial = [[a["label"] for step in h if step["iteration"] == 0 for a in step["added"]]
               for h in m.label_history_]
    assert join_labels(SUPPORT_TEXTS[0], initial[0]) in emb.texts
    old = Settings(join="mix").to_dict()
    del old["join"]
    assert settings_from_dict(old).join == "text"
    with pytest.raises(ConfigError, match="join must be one of text, mix"):
        Settings(join="concat").validate()
    with pytest.raises(ConfigError, match="join_weight must be 0 or more"):
        Settings(join_weight=-1.0).validate()


def test_both_models_are_released_before_clustering() -> None:
    """Clustering needs neither model; a run frees them first (the 10,003-text run's
    peak RSS was the loaded models beside the clusterers' working memory)."""
    from intentlocal.pipeline.cluster import KMeansClusterer
    from intentlocal.pipeline.runner import Runner

    events: list[str] = []

    class Embedder(FakeEmbedder):
        def embed(self, texts):
            events.append("embed")
            return super().embed(texts)

        def release(self) -> None:
            events.append("embedder released")

    class Generator(FakeGenerator):
        def release(self) -> None:
            events.append("llm released")

    class Recording(KMeansClusterer):
        def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
            events.append("cluster")
            return super().fit_predict(x, k)

    settings = Settings(k="4", neighbours=3, max_iterations=1, final="mix")
    store = Store()
    corpus = Corpus(list(SUPPORT_TEXTS), list(range(1, len(SUPPORT_TEXTS) + 1)), "mem")
    run_id = start_run(store, corpus, settings)
    Runner(store, settings, Embedder(), Generator(), clusterer=Recording(10, 0)).execute(run_id)
    last_embed = len(events) - 1 - events[::-1].index("embed")  # embed-final's labels
    assert events.index("llm released") > last_embed
    assert events.index("embedder released") > last_embed
    assert events.index("cluster") > max(events.index("llm released"),
                                         events.index("embedder released"))


@pytest.mark.parametrize(("max_select", "min_share"), [(1, 1), (2, 1), (0, 1), (0, 2)])
def test_shared_refinement_replays_the_runners_rule(max_select: int, min_share: int) -> None:
    """Scripts replay a run's refinement with labels.shared_refinement; given the run's
    initial labels and refinement neighbours it must give the run's stored label sets
    (0 = every candidate; min_share 2: only labels two of the neighbours carry)."""
    from intentlocal.pipeline.labels import shared_refinement

    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="4",
                        neighbours=3, max_iterations=1, max_select=max_select,
                        min_share=min_share, selector="shared").fit(SUPPORT_TEXTS)
    n = len(m.store_.uniques(m.run_id_))
    initial = m.store_.label_sets(m.run_id_, n, 0)
    nb = [[] for _ in range(n)]
    for uid, step in m.store_.steps(m.run_id_, 1).items():
        nb[uid] = json.loads(step["neighbours_json"])
    replayed = shared_refinement(initial, nb, Settings().max_candidates, max_select, min_share)
    stored = m.store_.label_sets(m.run_id_, n, 1)
    assert [sorted(r) for r in replayed] == [sorted(s) for s in stored]
    assert any(len(s) > len(i) for s, i in zip(stored, initial, strict=True))
    if max_select:
        assert all(len(s) - len(i) <= max_select for s, i in zip(stored, initial, strict=True))
    if min_share > 1:  # the setting reached the runner: any neighbour's labels differ
        anyone = shared_refinement(initial, nb, Settings().max_candidates, max_select, 1)
        assert [sorted(r) for r in anyone] != [sorted(s) for s in stored]


def test_clusters_are_named_with_the_final_labels_vectors(monkeypatch) -> None:
    """The runner hands name_clusters every final label's vector (from the embedding
    cache refinement filled), taken before the embedder is released."""
    from intentlocal.pipeline import runner as runner_module

    seen: dict = {}
    real = runner_module.name_clusters

    def spy(assignment, label_sets, top=3, label_vectors=None):
        seen["vectors"] = label_vectors
        return real(assignment, label_sets, top, label_vectors=label_vectors)

    monkeypatch.setattr(runner_module, "name_clusters", spy)
    emb = FakeEmbedder()
    m = IntentClusterer(embedder=emb, generator=FakeGenerator(), k="4", neighbours=3,
                        max_iterations=1).fit(SUPPORT_TEXTS)
    final = {lab for labels in m.label_sets_ for lab in labels}
    assert set(seen["vectors"]) == final
    lab = sorted(final)[0]
    assert np.allclose(seen["vectors"][lab], emb.embed([lab.replace("_", " ")])[0])


def test_the_run_records_the_vectors_identity_not_only_the_models_name() -> None:
    """A run says which graph made its vectors (model, ONNX variant, arithmetic): when
    a machine ran EmbeddingGemma's fp32 graph instead of int8, nothing in the store
    showed it (reports/embedder_variant_default.md)."""

    class VariantEmbedder(FakeEmbedder):
        vectors_id = "fake-embedder:int8+x64q"

    m = IntentClusterer(embedder=VariantEmbedder(), generator=FakeGenerator(), k="3",
                        neighbours=3).fit(SUPPORT_TEXTS)
    (run,) = [r for r in m.store_.runs() if r.id == m.run_id_]
    assert run.embedder_id == "fake-embedder:int8+x64q"
