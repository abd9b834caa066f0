"""What every clusterer shares: the call a run makes (``fit_clusters``), K-means (the
paper's clusterer and every other one's fallback on tiny inputs), stable cluster ids,
and the internal scores the selection and the split rules judge partitions by.

Why a module of its own: the candidates, their consensus and the selection all use
these, and none of them owns the others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from intentlocal.errors import RunError
from intentlocal.pipeline.vectors import unit_rows


def fit_clusters(
    clusterer: Any,
    x: np.ndarray,
    k: int,
    labels: Sequence[Sequence[str]] | None = None,
    layout: np.ndarray | None = None,
) -> np.ndarray:
    """``clusterer.fit_predict(x, k)``, with the rows' pseudo-labels and the density
    candidate's vectors (``layout``: the same rows with their labels mixed in,
    Settings.density_weight) when the clusterer takes them (a ``labels`` / ``layout``
    parameter): any object with ``fit_predict(x, k)`` can still be swapped in."""
    extra: dict[str, Any] = {}
    if labels is not None and _takes(clusterer, "labels"):
        extra["labels"] = labels
    if layout is not None and _takes(clusterer, "layout"):
        extra["layout"] = layout
    return np.asarray(clusterer.fit_predict(x, k, **extra))


def _takes(clusterer: Any, parameter: str) -> bool:
    import inspect

    try:
        return parameter in inspect.signature(clusterer.fit_predict).parameters
    except (TypeError, ValueError, AttributeError):
        return False


@dataclass
class KMeansClusterer:
    """The paper's clusterer; any object with ``fit_predict(X, k)`` can replace it."""

    n_init: int = 10
    random_state: int = 0

    def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
        from sklearn.cluster import KMeans

        if k < 1:
            raise RunError(f"cannot make {k} clusters")
        k = min(k, _n_distinct(x))
        if k <= 1:
            return np.zeros(len(x), dtype=np.int64)
        km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
        return km.fit_predict(x).astype(np.int64)


def canonical_ids(labels: np.ndarray) -> np.ndarray:
    """Cluster ids renumbered 0, 1, 2, ... in the order of each cluster's first text.

    A clusterer's own numbering is arbitrary: K-means numbers by its initial centroids,
    which floating-point differences between CPUs can reorder even when the partition
    is the same. Clusters are listed by size and then id, so without this two machines
    could show equal-sized clusters in different orders for the same partition.
    """
    _, first, inverse = np.unique(np.asarray(labels, dtype=np.int64), return_index=True,
                                  return_inverse=True)
    new = np.empty(len(first), dtype=np.int64)
    new[np.argsort(first, kind="stable")] = np.arange(len(first))
    return new[inverse.ravel()]


def _n_distinct(x: np.ndarray) -> int:
    return len(np.unique(np.round(x, 6), axis=0))


def _key(x: np.ndarray, k: int) -> tuple[int, str]:
    return k, hashlib.sha1(np.ascontiguousarray(x, dtype=np.float32).tobytes()).hexdigest()


def _silhouette(x: np.ndarray, labels: np.ndarray, sample: int = 5000) -> float:
    """Mean cosine silhouette on at most ``sample`` rows (fixed sample: deterministic);
    -1 when it is undefined (one cluster, or every text its own)."""
    from sklearn.metrics import silhouette_score

    n_labels = len(set(labels.tolist()))
    if n_labels < 2 or n_labels >= len(x):
        return -1.0
    return float(silhouette_score(x, labels, metric="cosine",
                                  sample_size=min(sample, len(x)), random_state=0))


def _centroids(x: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids (sorted) and their unit-length mean vectors."""
    ids, inv = np.unique(lab, return_inverse=True)
    sums = np.zeros((len(ids), x.shape[1]))
    np.add.at(sums, inv, x)
    return ids, unit_rows(sums)


def modularity(a: Any, labels: np.ndarray) -> float:
    """Newman's modularity of a partition of the undirected graph ``a`` (sparse):
    the share of edge weight inside clusters minus what random wiring with the same
    degrees would put there."""
    from scipy import sparse

    a = sparse.coo_matrix(a)
    labels = np.unique(labels, return_inverse=True)[1]
    deg = np.bincount(a.row, weights=a.data, minlength=a.shape[0])
    two_m = float(deg.sum())
    if two_m == 0:
        return 0.0
    inside = float(a.data[labels[a.row] == labels[a.col]].sum()) / two_m
    return inside - float(((np.bincount(labels, weights=deg) / two_m) ** 2).sum())
