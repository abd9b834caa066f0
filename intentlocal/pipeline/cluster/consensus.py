"""The consensus of the candidates' partitions (evidence accumulation): the
``--clusterer consensus`` clusterer, and one more candidate of the default selection."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intentlocal.pipeline.cluster.base import _takes, canonical_ids, fit_clusters
from intentlocal.pipeline.cluster.candidates import (
    default_candidates,
    fit_candidates,
    seed_candidates,
)
from intentlocal.pipeline.vectors import unit_rows


def consensus_inputs(candidates: dict[str, Any], partitions: dict[str, np.ndarray],
                     x: np.ndarray, k: int, labels: Sequence[Sequence[str]] | None,
                     layout: np.ndarray | None, seconds: dict[str, float],
                     ) -> list[np.ndarray]:
    """The partitions a consensus combines: the candidates' own, except that a
    candidate which clustered ``layout`` (the texts with their labels mixed in) is
    fitted again on the texts' vectors ``x`` for it (the default since 5 Dec,
    ``texts_consensus``).

    Why: the labels mixed in help where the selection keeps umap-hdbscan alone
    (massive_intent, mtop_intent) and cost where it keeps the consensus: there the
    consensus is right because the geometry's partitions agree, and one of them moved
    by the labels only makes them agree less. Built from the texts' partitions, the
    consensus gave banking77 85.6 / 90.9 and clinc150 87.9 / 93.4 (true K, 5 seeds),
    the texts alone's figures, against 85.6 / 90.8 and 87.4 / 93.3 with the layout's
    partition in it (reports/texts_consensus.md). Costs one more UMAP layout + HDBSCAN.
    The refit's ``found_`` / ``split_`` (reported in scores) are the layout fit's again
    afterwards, and its seconds go to ``seconds["consensus inputs"]``."""
    if layout is None:
        return list(partitions.values())
    t = time.perf_counter()
    out = []
    for name, part in partitions.items():
        c = candidates.get(name)
        if c is not None and _takes(c, "layout"):
            kept = {a: getattr(c, a) for a in ("found_", "split_") if hasattr(c, a)}
            part = np.asarray(fit_clusters(c, x, k, labels), dtype=np.int64)
            for a, v in kept.items():
                setattr(c, a, v)
        out.append(part)
    seconds["consensus inputs"] = round(time.perf_counter() - t, 2)
    return out


def coassociation(parts: Sequence[np.ndarray]) -> Any:
    """Sparse n x n share of the partitions in which two texts share a cluster (the
    diagonal is 1)."""
    from scipy import sparse

    n = len(parts[0])
    blocks = [sparse.csr_matrix((np.ones(n), (np.arange(n), p)), shape=(n, int(p.max()) + 1))
              for p in parts]
    h = sparse.hstack(blocks).tocsr()
    return (h @ h.T / len(parts)).tocsr()


@dataclass
class ConsensusClusterer:
    """K-means, spectral-15, spectral-25 and umap-hdbscan each partition the texts at
    K; the co-association of their partitions (the share of them that put two texts
    together; Fred & Jain's evidence accumulation) is partitioned at K by its spectral
    embedding and K-means.

    Why: the four partitions err on different texts, so that where most agree is
    sturdier than any one of them; SelectClusterer keeps one by silhouette and
    modularity, and which one it keeps moves ACC by 2-5 points from set to set
    (reports/selection_balance.md). On banking77 the consensus of the four scores 86.7 /
    91.0 against the selected partition's 85.5 / 90.6 at the true K (reports/consensus.md,
    5 seeds); the co-association graph is sparse (texts that no partition joins share no
    edge), so this costs one more eigen-solve, not an n x n matrix.
    ``partitions_`` holds the candidates' partitions, ``seconds_`` their times.
    """

    n_init: int = 10
    random_state: int = 0
    candidates: dict = field(default_factory=dict)
    partitions_: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    seconds_: dict[str, float] = field(default_factory=dict)
    chosen_: str = "consensus"
    scores_: dict[str, dict[str, float | int | str]] = field(default_factory=dict)
    texts_consensus: bool = True

    def __post_init__(self) -> None:
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
        """``labels`` and ``layout`` go to the candidates that use them (umap-hdbscan)."""
        self.partitions_, self.seconds_ = fit_candidates(self.candidates, x, k, labels,
                                                         layout)
        parts = list(self.partitions_.values())
        self.scores_ = {n: {} for n in self.partitions_}
        for name in self.scores_:  # HDBSCAN's own count: a second opinion on K for the user
            if getattr(self.candidates[name], "found_", 0):
                self.scores_[name]["groups_found"] = self.candidates[name].found_
        if len(parts) == 1:  # large inputs: one candidate ran, nothing to combine
            self.chosen_ = next(iter(self.partitions_))
            return parts[0]
        if self.texts_consensus:  # see consensus_inputs
            parts = consensus_inputs(self.candidates, self.partitions_, x, k, labels, layout,
                                     self.seconds_)
        t = time.perf_counter()
        self.chosen_ = "consensus"
        out = consensus_partition(parts, k, self.random_state, self.n_init)
        self.seconds_["consensus"] = round(time.perf_counter() - t, 2)
        return out


def consensus_partition(parts: Sequence[np.ndarray], k: int, seed: int,
                        n_init: int = 10) -> np.ndarray:
    """The co-association graph's partition at k: its first k eigenvectors
    (drop_first=False, as SpectralKMeans) then K-means."""
    from sklearn.cluster import KMeans
    from sklearn.manifold import spectral_embedding

    # Texts that every partition puts together stay together: when those groups number
    # K or fewer (tiny or degenerate inputs) they are the answer, and no eigen-solve runs.
    signature = np.unique(np.stack([np.asarray(p) for p in parts], axis=1), axis=0,
                          return_inverse=True)[1].ravel()
    if int(signature.max()) + 1 <= k:
        return canonical_ids(signature)
    c = coassociation(parts)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Graph is not fully connected")
        e = spectral_embedding(c, n_components=k, random_state=0, drop_first=False)
    km = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
    return km.fit_predict(unit_rows(e)).astype(np.int64)
