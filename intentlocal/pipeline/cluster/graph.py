"""Clusterers on the texts' neighbour graph: K-means in its spectral embedding (a
candidate of the default selection) and average linkage (``--clusterer
average-linkage`` only)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from intentlocal.errors import RunError
from intentlocal.pipeline.cluster.base import KMeansClusterer, _key, _n_distinct
from intentlocal.pipeline.vectors import unit_rows


@dataclass
class SpectralKMeans:
    """K-means in the spectral embedding (k dimensions) of the kNN graph.

    Why: intents are curved, uneven regions of the embedding space; the graph's
    eigenvectors unroll them so that K-means' round clusters fit. The embedding
    depends only on (x, k), so it is kept for the next call (several seeds or K).
    Inputs over ``max_n`` vectors are refused (SelectClusterer then skips it): the
    eigen-solver's shift-invert factorisation was only measured up to 4,500 texts.
    """

    n_neighbors: int = 15
    n_init: int = 10
    random_state: int = 0
    max_n: int = 20_000
    _memo: dict = field(default_factory=dict, repr=False)

    def embedding(self, x: np.ndarray, k: int) -> np.ndarray:
        from sklearn.manifold import spectral_embedding

        from intentlocal.pipeline.autok import knn_graph

        if len(x) > self.max_n:
            raise RunError(f"spectral clustering is limited to {self.max_n} vectors, got {len(x)}")
        key = _key(x, k)
        if key not in self._memo:
            g = knn_graph(x, min(self.n_neighbors, len(x) - 1), symmetrise="mean")
            with warnings.catch_warnings():
                # Separate components are what intents look like in a kNN graph (the
                # 10k banking77 run had them); each gets its own eigenvector, and
                # sklearn's warning only reached the user's terminal as noise.
                warnings.filterwarnings("ignore", "Graph is not fully connected")
                # drop_first=False (Ng, Jordan & Weiss; sklearn's own spectral_clustering):
                # on a graph of separate components the first k eigenvectors span their
                # indicators, and dropping one loses a component on some BLAS / ARPACK
                # builds (ARI 0.87 on ten separate blobs, 2 Dec, AMD EPYC). On banking77,
                # clinc150 and massive_intent it moves the default selection by -0.3 to 0
                # ACC (reports/spectral_first_vector.md).
                e = spectral_embedding(g, n_components=k, random_state=0, drop_first=False)
            self._memo.clear()  # one (x, k) at a time: a cache, not a store
            self._memo[key] = unit_rows(e)
        return self._memo[key]

    def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
        from sklearn.cluster import KMeans

        k = min(k, _n_distinct(x))
        if k <= 1 or len(x) <= k + 1:
            return KMeansClusterer(self.n_init, self.random_state).fit_predict(x, k)
        km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
        return km.fit_predict(self.embedding(x, k)).astype(np.int64)


@dataclass
class AverageLinkage:
    """Agglomerative clustering, average cosine linkage, cut at K clusters.

    Why: it does not balance cluster sizes, so a few large intents stay whole and
    outliers end in small clusters of their own: on mtop_intent 70.6 ACC, but with 79
    of 102 clusters under 5 texts; 33-36 on the other three sets. Not a candidate of
    SelectClusterer since 28 Nov (see the module docstring); ``--clusterer
    average-linkage`` runs it. Needs n² memory, so inputs over ``max_n`` vectors are
    refused.
    """

    max_n: int = 12_000
    _memo: dict = field(default_factory=dict, repr=False)

    def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
        from sklearn.cluster import AgglomerativeClustering

        if len(x) > self.max_n:
            raise RunError(f"average linkage needs n² memory; {len(x)} vectors > {self.max_n}")
        k = min(k, _n_distinct(x))
        if k <= 1:
            return np.zeros(len(x), dtype=np.int64)
        key = _key(x, k)
        if key not in self._memo:
            agg = AgglomerativeClustering(n_clusters=k, linkage="average", metric="cosine")
            self._memo.clear()
            self._memo[key] = agg.fit_predict(x).astype(np.int64)
        return self._memo[key].copy()
