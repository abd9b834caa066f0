"""The default clusterer: every candidate at the same K, one partition kept by
silhouette and modularity; and the clusterer a run's ``clusterer`` setting names."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intentlocal.errors import RunError
from intentlocal.pipeline.cluster.base import KMeansClusterer, _silhouette, modularity
from intentlocal.pipeline.cluster.candidates import (
    default_candidates,
    fit_candidates,
    seed_candidates,
)
from intentlocal.pipeline.cluster.consensus import (
    ConsensusClusterer,
    consensus_inputs,
    consensus_partition,
)
from intentlocal.pipeline.cluster.density import DensityClusterer
from intentlocal.pipeline.cluster.graph import AverageLinkage, SpectralKMeans


@dataclass
class SelectClusterer:
    """Runs each candidate at the same K and keeps one partition by two internal
    criteria (no gold labels).

    ``criterion="tie-break"`` (the default): the best cosine silhouette wins, except that
    candidates within ``tie`` of the best silhouette count as a tie, and the tie goes to
    the highest modularity on the 10-nearest-neighbour graph. Why both: the silhouette
    (how much closer a text is to its own cluster than to the next) recognises a large,
    diffuse intent kept whole, where modularity, which penalises large clusters, splits
    it (tests/unit/test_cluster.py); but between K-means and spectral partitions the
    silhouettes differ by less than their seed-to-seed spread, and there modularity
    (whether texts that list each other as neighbours share a cluster, the method's own
    notion of "same intent") separates them clearly (reports/clusterers.md).
    Modularities within ``modularity_tie`` of the best are a tie too, kept by the
    candidates' fixed order (K-means, spectral-15, spectral-25, umap-hdbscan): one
    candidate's modularity moves by 0.001-0.003 from seed to seed, and umap-hdbscan,
    whose K comes from merging and splitting, comes last (on banking77 its partitions
    tie with spectral-15's on both criteria and score 4-5 ACC lower;
    reports/clusterers.md).
    ``criterion="silhouette"`` and ``"modularity"`` use one criterion alone. Candidates
    that cannot run on an input (spectral and umap-hdbscan above their size limits) are
    skipped. With ``consensus``, the candidates' consensus partition (ConsensusClusterer's)
    is one more candidate, and the default rule keeps it whenever its silhouette ties
    with the best: where the candidates mostly agree it is sturdier than each (banking77,
    clinc150: +0.9 to +1.2 ACC over the rule's own pick), and where one of them is right
    alone (umap-hdbscan on massive_intent and mtop_intent) it follows the wrong majority
    and its silhouette falls 0.035-0.09 below that one's, outside the tie of 0.02 it was
    measured with (reports/consensus_clusterers.md, reports/select_consensus.md; since the
    tie is 0.04 the modularity test below and the guard keep it out). Not always outside:
    with other vectors of the same texts (int8's batch dependence) its silhouette on
    massive_intent came within the tie on some seeds, and the rule lost 0.9-1.3 ACC
    on average there (reports/consensus_guard.md). Its modularity separates the two
    cases: where it was kept rightly it is 0.000-0.0075 below the best of the tied
    (banking77, clinc150, true and estimated K), where wrongly 0.021 and more below
    (massive_intent; on mtop_intent and massive's other seeds it is 0.02-0.10 below and
    outside the silhouette tie anyway). So the consensus must also be within
    ``consensus_modularity_tie`` (0.0125, between the two) of that best modularity.
    ``modularity_guard`` (0.015): before any of that, a candidate whose modularity is more
    than this below the best (the best among candidates within ``guard_band`` of the top
    silhouette, so that a degenerate partition cannot veto the rest) leaves the running;
    when that empties the silhouette tie, the tie is taken again among the rest. Why: on
    inputs of a few hundred texts a partition that merges two close intents and splits
    another can lead on silhouette alone. On a 300-text call transcript umap-hdbscan did
    so with a modularity 0.020-0.028 below the best and scored 77 ACC against the
    consensus's 96, seed after seed (reports/small_inputs.md). On the four full sets no
    kept candidate is that far below (40 fits, nothing changed); on 300-text subsets of
    them the guard moved 9 of 144 fits, +0.4 ACC on average, and at 600 texts 2 of 96
    (-0.1 on one set). 0.01 cost banking77's subsets 1.3 ACC; 0.02 mends fewer.
    ``tie`` (0.04; 0.02 until 6 Dec, from the full sets' seed spread): with the guard, a
    silhouette lead of 0.02-0.04 on a small input was the same story, a partition that
    merged intents, and the wider tie lets modularity decide there. Replayed over the
    records of reports/small_inputs.md it changed 30 small-input fits, 29 for the better
    (+4 to +12 ACC, one -1.7), and none of the 80 full-set fits.
    With ``texts_consensus`` (the default) and a ``layout``, the consensus combines the
    candidates' partitions of the texts' own vectors (``consensus_inputs``): the labels
    reach the selection through the umap-hdbscan candidate alone.
    ``scores_``, ``chosen_`` and ``partitions_`` say what was tried and kept; ``scores_``
    also holds how many dense groups HDBSCAN found by itself (``groups_found``) and,
    when it had to split groups to reach K, which rule did (``split``).
    """

    n_init: int = 10
    random_state: int = 0
    criterion: str = "tie-break"
    tie: float = 0.04
    modularity_tie: float = 0.005
    consensus_modularity_tie: float = 0.0125
    modularity_guard: float | None = 0.015
    guard_band: float = 0.1
    graph_neighbors: int = 10
    sample: int = 5000
    candidates: dict = field(default_factory=dict)
    consensus: bool = True
    texts_consensus: bool = True
    scores_: dict[str, dict[str, float | int | str]] = field(default_factory=dict)
    silhouettes_: dict[str, float] = field(default_factory=dict)
    modularities_: dict[str, float] = field(default_factory=dict)
    partitions_: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    chosen_: str = ""
    seconds_: dict[str, float] = field(default_factory=dict)
    # Called as (step, done, total) after each candidate, the consensus and the scoring:
    # the clustering stage was one silent step (22 s on massive_intent's 2,970 texts,
    # 151 s on 10,003 texts), and the runner turns these into progress and a place to
    # stop a cancelled run.
    on_step: Callable[[str, int, int], None] | None = field(
        default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.criterion not in ("tie-break", "modularity", "silhouette"):
            raise RunError(f"unknown selection criterion {self.criterion!r}")
        if not self.candidates:
            self.candidates = default_candidates(self.n_init, self.random_state)

    def set_seed(self, seed: int) -> None:
        self.random_state = seed
        seed_candidates(self.candidates, seed)

    def fit_predict(
        self,
        x: np.ndarray,
        k: int,
        labels: Sequence[Sequence[str]] | None = None,
        layout: np.ndarray | None = None,
    ) -> np.ndarray:
        """``labels``: each row's pseudo-labels, passed to the candidates that use them
        (umap-hdbscan's splits); ``layout``: the rows with their labels mixed in, for the
        candidates that cluster those instead (umap-hdbscan). The selection itself scores
        every partition on ``x``, so that all are judged on the same vectors."""
        from intentlocal.pipeline.autok import knn_graph

        self.silhouettes_, self.modularities_ = {}, {}
        total = len(self.candidates) + int(self.consensus) + 1
        done = 0

        def step(name: str) -> None:
            nonlocal done
            done += 1
            if self.on_step is not None:
                self.on_step(name, done, total)

        self.partitions_, self.seconds_ = fit_candidates(self.candidates, x, k, labels,
                                                         layout, on_done=step)
        if self.consensus and len(self.partitions_) > 1:
            parts = list(self.partitions_.values())
            if self.texts_consensus:  # see consensus_inputs
                parts = consensus_inputs(self.candidates, self.partitions_, x, k, labels,
                                         layout, self.seconds_)
            t = time.perf_counter()
            self.partitions_["consensus"] = consensus_partition(
                parts, k, self.random_state, self.n_init)
            self.seconds_["consensus"] = round(time.perf_counter() - t, 2)
        if self.consensus:
            step("consensus")
        if len(self.partitions_) == 1:  # nothing to choose (large inputs): no graph to build
            self.chosen_ = next(iter(self.partitions_))
            self.scores_ = {self.chosen_: {}}
            return self.partitions_[self.chosen_]
        t = time.perf_counter()
        graph = knn_graph(x, self.graph_neighbors)
        for name, labels in self.partitions_.items():
            sil = _silhouette(x, labels, self.sample)
            mod = -1.0 if sil == -1.0 else modularity(graph, labels)
            self.silhouettes_[name] = round(sil, 4)
            self.modularities_[name] = round(mod, 4)
        self.seconds_["selection"] = round(time.perf_counter() - t, 2)
        step("selection")
        self.chosen_ = self.choose(self.criterion)
        self.scores_ = {n: {"silhouette": self.silhouettes_[n], "modularity": m}
                        for n, m in self.modularities_.items()}
        for name in self.scores_:  # HDBSCAN's own count: a second opinion on K for the user
            made_by = self.candidates.get(name)  # None for the consensus
            if getattr(made_by, "found_", 0):
                self.scores_[name]["groups_found"] = made_by.found_
            if getattr(made_by, "split_", ""):  # which rule reached K
                self.scores_[name]["split"] = made_by.split_
        return self.partitions_[self.chosen_]

    def silhouette_ties(self) -> list[str]:
        """The last fit's candidates whose silhouette is within ``tie`` of the best, in
        the candidates' order: the first step of the default rule."""
        best = max(self.silhouettes_.values())
        return [n for n in self.silhouettes_ if self.silhouettes_[n] >= best - self.tie]

    def choose(self, criterion: str) -> str:
        """The candidate ``criterion`` keeps among the last fit's partitions (ties
        keep the first in the candidates' fixed order)."""
        sil, mod = self.silhouettes_, self.modularities_
        if criterion == "silhouette":
            return max(sil, key=lambda n: sil[n])
        if criterion == "modularity":
            return max(mod, key=lambda n: mod[n])
        tied = self.silhouette_ties()
        if self.modularity_guard is not None:
            # A partition far below the best modularity broke up what the texts'
            # neighbours hold together, however compact its clusters look. The best is
            # taken among partitions of a sensible silhouette, so that a degenerate one
            # cannot veto the rest.
            best_sil = max(sil.values())
            band = [n for n in sil if sil[n] >= best_sil - self.guard_band]
            best_mod = max(mod[n] for n in band)
            trusted = [n for n in band if mod[n] >= best_mod - self.modularity_guard]
            tied = [n for n in tied if n in trusted]
            if not tied:
                top = max(sil[n] for n in trusted)
                tied = [n for n in trusted if sil[n] >= top - self.tie]
        if "consensus" in tied:
            # The criteria cannot tell it from the best: it combines them, unless the
            # graph says it broke up what the texts' neighbours hold together.
            if mod["consensus"] >= max(mod[n] for n in tied) - self.consensus_modularity_tie:
                return "consensus"
            tied = [n for n in tied if n != "consensus"]
        top = max(mod[n] for n in tied)
        return next(n for n in tied if mod[n] >= top - self.modularity_tie)


def make_clusterer(name: str, n_init: int, seed: int) -> Any:
    """The clusterer a run's ``clusterer`` setting names (config.CLUSTERER_CHOICES)."""
    if name == "select":
        return SelectClusterer(n_init, seed)
    if name == "consensus":
        return ConsensusClusterer(n_init, seed)
    if name == "kmeans":
        return KMeansClusterer(n_init, seed)
    if name == "spectral":
        return SpectralKMeans(15, n_init, seed)
    if name == "average-linkage":
        return AverageLinkage()
    if name == "umap-hdbscan":
        return DensityClusterer(random_state=seed)
    from intentlocal.config import CLUSTERER_CHOICES

    raise RunError(f"unknown clusterer {name!r}; known: {', '.join(CLUSTERER_CHOICES)}")
