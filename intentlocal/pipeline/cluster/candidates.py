"""The candidate clusterers the default selection and the consensus choose from or
combine, and how they are all fitted at one K."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from intentlocal.errors import RunError
from intentlocal.pipeline.cluster.base import KMeansClusterer, fit_clusters
from intentlocal.pipeline.cluster.density import DensityClusterer
from intentlocal.pipeline.cluster.graph import SpectralKMeans


def default_candidates(n_init: int, seed: int) -> dict[str, Any]:
    """The partitions the default clusterers choose from or combine, in a fixed order."""
    return {
        "kmeans": KMeansClusterer(n_init, seed),
        "spectral-15": SpectralKMeans(15, n_init, seed),
        "spectral-25": SpectralKMeans(25, n_init, seed),
        "umap-hdbscan": DensityClusterer(random_state=seed),
    }


def fit_candidates(candidates: dict[str, Any], x: np.ndarray, k: int,
                   labels: Sequence[Sequence[str]] | None = None,
                   layout: np.ndarray | None = None,
                   on_done: Callable[[str], None] | None = None,
                   ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each candidate's partition at ``k`` and its seconds. Candidates that cannot run
    on an input (spectral and umap-hdbscan above their size limits) are skipped; the
    seconds are kept because the clustering stage is most of what a run spends outside
    llama.cpp, and a run's profile should say on what. ``on_done(name)`` follows each
    candidate, run or skipped; what it raises stops the fit (a cancelled run)."""
    partitions: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, clusterer in candidates.items():
        t = time.perf_counter()
        try:
            partitions[name] = np.asarray(fit_clusters(clusterer, x, k, labels, layout),
                                          dtype=np.int64)
        except RunError:
            pass
        finally:
            seconds[name] = round(time.perf_counter() - t, 2)
        if on_done is not None:
            on_done(name)
    if not partitions:
        raise RunError("no clusterer could run on these vectors")
    return partitions, seconds


def seed_candidates(candidates: dict[str, Any], seed: int) -> None:
    """Every candidate that has a seed takes ``seed``: the selection and the consensus
    re-seed the same candidate objects between runs of several seeds."""
    for clusterer in candidates.values():
        if hasattr(clusterer, "random_state"):
            clusterer.random_state = seed
