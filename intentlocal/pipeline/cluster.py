"""Stage e and f: cluster the final vectors into K groups (K given or estimated); names.

The default clusterer is ``SelectClusterer``: several clusterers at the same K, the
partition with the best silhouette kept, near-ties going to the highest modularity on
the texts' nearest-neighbour graph.
Why: no single clusterer wins on the four benchmarks (embeddings alone, true K,
reports/clusterers.md): K-means in the spectral embedding of the kNN graph lifts
banking77 / clinc150 from 77-79 to 86-88 ACC but drops mtop_intent from 43 to 35-37
and leaves massive_intent near 62, where UMAP + HDBSCAN (BERTopic's path, brought to
K) reaches 72 and 68 on mtop_intent. The two criteria together told the good
partition from the bad on each of the four sets. Average linkage, a candidate until
28 Nov, is no longer one: it was kept only on mtop_intent (70.6 ACC but NMI 80.8),
by leaving 79 of the 102 clusters with fewer than 5 texts; UMAP + HDBSCAN gives
68.4 / 85.4 there with real clusters. ``--clusterer average-linkage`` still runs it.

Auto-K lives in autok.py (MapEquationK, the default). SilhouetteK below is kept
as the measured baseline it replaced (scripts/bench_auto_k.py): on EmbeddingGemma
it estimated 84 / 204 / 27 / 12 for true K 77 / 150 / 59 / 102.
"""

from __future__ import annotations

import functools
import hashlib
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intentlocal.errors import RunError
from intentlocal.pipeline.vectors import unit_rows

SPLIT_RULES = ("auto", "widest", "share", "labels")
OUTLIER_RULES = ("centroid", "vote")


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


UMAP_EXACT_MAX = 4096
"""Below this many rows UMAP computes every pairwise distance instead of NNDescent."""

_UMAP_JIT_MODULES = ("umap.umap_", "umap.layouts", "umap.utils", "umap.spectral",
                     "umap.distances", "umap.sparse", "pynndescent.pynndescent_",
                     "pynndescent.distances", "pynndescent.utils", "pynndescent.rp_trees",
                     "pynndescent.sparse")


@functools.cache  # once per process: the dispatchers stay cached once switched on
def cache_umap_jit() -> int:
    """Let numba keep UMAP's compiled functions on disk; returns how many it may keep.

    Why: umap-learn compiles its numba functions (several with parallel loops) afresh in
    every process and does not ask numba to cache them, so each run paid about 10 s of
    compiling on 2 cores, a third of banking77's clustering stage and a tenth of all it
    spends outside llama.cpp. Numba's own cache (what ``cache=True`` turns on) stores
    the machine code beside the package's sources, or in the user's cache folder where
    those are read-only, keyed by the source file and the CPU; the layouts it gives are
    the ones compiled afresh (scripts/umap_jit_cache.py). Anything unexpected in numba's
    internals leaves UMAP as it was: compiling, never wrong."""
    import importlib

    try:
        from numba.core.registry import CPUDispatcher
    except ImportError:
        return 0
    n = 0
    for name in _UMAP_JIT_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        for obj in vars(module).values():
            if not isinstance(obj, CPUDispatcher):
                continue
            try:
                if type(obj._cache).__name__ == "NullCache":  # not cached yet
                    obj.enable_caching()
                n += 1
            except Exception:  # a numba internal moved: compile as before
                continue
    return n


def umap_layout(
    umap: Any, x: np.ndarray, n_neighbors: int, n_components: int, min_dist: float, seed: int
) -> np.ndarray:
    """UMAP's layout of ``x`` under the cosine distance.

    Why the distance matrix is handed over below UMAP_EXACT_MAX rows: there UMAP
    computes all pairwise distances itself, through scikit-learn calling its numba
    cosine once per pair from Python (9.5 million calls for banking77's 3,079 texts,
    10 of UMAP's 23 s). One matrix product gives the same distances (float rounding
    aside). Above it UMAP's approximate neighbour search runs as before.
    """
    if len(x) < UMAP_EXACT_MAX:
        xx = x.astype(np.float64)
        norms = np.maximum(np.linalg.norm(xx, axis=1, keepdims=True), 1e-12)
        xx = xx / norms
        # Computed in float64, handed over in float32: UMAP casts its input to float32
        # anyway, so this is the matrix it used, and no float64 copy (n^2 x 8 bytes,
        # 76 MB at 3,079 texts) stays alive through the layout.
        prod = xx @ xx.T
        np.subtract(1.0, prod, out=prod)
        np.clip(prod, 0.0, 2.0, out=prod)
        np.fill_diagonal(prod, 0.0)
        dist = prod.astype(np.float32)
        del prod
        data, metric = dist, "precomputed"
    else:
        data, metric = x, "cosine"
    return umap.UMAP(
        n_neighbors=n_neighbors, n_components=n_components, min_dist=min_dist,
        metric=metric, random_state=seed, n_jobs=1,
    ).fit_transform(data)


@dataclass
class DensityClusterer:
    """UMAP to 10 dimensions, HDBSCAN, outliers to the nearest cluster, then exactly K.

    Why: BERTopic's path (UMAP + HDBSCAN) is the best LLM-free pipeline on
    massive_intent, where intents are neither balanced nor round and every K-means
    variant, spectral included, stays near 62 ACC. HDBSCAN finds its own number of
    dense groups; a run asks for K. While there are too many, the two with the most
    similar centroids merge. While there are too few, groups are split in two by
    2-means, and which group is split matters most: the widest first
    (``_split_widest``) is right for balanced sets, where HDBSCAN merged two intents
    (clinc150 86.4 ACC against 81.1), the one two means fit best relative to one
    (``_split_share``) for skewed sets, where the widest group is one large intent
    (mtop_intent 68.4 against 41.2, massive_intent 72.0 against 69.1; true K, 5
    seeds). ``split="auto"`` (the default) makes both and keeps the partition with
    the better silhouette, which picked the better rule on all four sets
    (reports/clusterers.md). Given the texts' pseudo-labels, "auto" also makes a third
    partition (``_split_labels``): the share rule weighted by how different the two
    halves' labels are, so that a group is split where the LLM named two intents; the
    best silhouette of the three is kept. Outliers (HDBSCAN's -1) join the cluster whose centroid
    is nearest, as BERTopic's ``reduce_outliers(strategy="embeddings")`` does
    (``outliers="centroid"``); ``outliers="vote"`` joins each to the cluster most of its
    10 nearest grouped texts are in instead (``join_outliers``). The vote is not the
    default: it gained 0.4-1.0 ACC where umap-hdbscan is kept (massive_intent,
    mtop_intent; inside their seed spread) and cost the candidate 0.6-0.9 on the
    balanced sets (reports/outlier_vote.md).
    Why 10 dimensions from 20 neighbours, not BERTopic's 5 from 15: measured on all
    four sets under the product's inputs (reports/umap_params.md), the layout keeps
    more of what the pseudo-labels mixed into it add, so the labelled candidate gains
    where it is kept (the default clusterer +0.8 ACC on massive_intent, +7.9 on
    mtop_intent, 5 seeds), more than the texts alone gain (-1.2 and +3.0); the balanced
    sets, where the consensus is kept, move inside their seed spread (banking77 -0.5,
    clinc150 0.0). Fewer HDBSCAN min_samples and a smaller min_cluster_size were worse
    on three sets or four; 30 or 50 neighbours helped banking77's candidate (which the
    selection does not keep) and were worse than 20 on massive_intent and mtop_intent.
    Centroids and spreads are taken on the original vectors (cosine), not on UMAP's
    layout. ``min_dist`` 0.0 is BERTopic's; ``min_cluster_size`` 15 the better of
    10 / 15 in ../shared/benchmarks.md. Inputs over ``max_n`` vectors are refused
    (UMAP's layout costs minutes there), so SelectClusterer skips it. ``found_`` is
    HDBSCAN's own number of groups, ``split_`` the rule that reached K ("" if none
    was needed).
    """

    n_neighbors: int = 20
    n_components: int = 10
    min_dist: float = 0.0
    min_cluster_size: int = 15
    min_samples: int | None = None  # HDBSCAN's own default: min_cluster_size
    random_state: int = 0
    max_n: int = 20_000
    split: str = "auto"
    outliers: str = "centroid"
    found_: int = 0
    split_: str = ""
    _memo: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.split not in SPLIT_RULES:
            raise RunError(f"unknown split rule {self.split!r}; known: {', '.join(SPLIT_RULES)}")
        if self.outliers not in OUTLIER_RULES:
            raise RunError(f"unknown outlier rule {self.outliers!r}; known: "
                           f"{', '.join(OUTLIER_RULES)}")

    def groups(self, x: np.ndarray) -> np.ndarray:
        """HDBSCAN's groups (-1 = outlier) in the UMAP layout of ``x`` for this seed."""
        from sklearn.cluster import HDBSCAN

        key = (self.random_state, *_key(x, 0))
        if key not in self._memo:
            try:
                import umap
            except ImportError as exc:  # a core dependency; only a broken install lacks it
                raise RunError("the umap-hdbscan clusterer needs umap-learn") from exc
            cache_umap_jit()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # numba / sklearn deprecation chatter
                layout = umap_layout(
                    umap, x, self.n_neighbors, self.n_components, self.min_dist,
                    self.random_state)
            self._memo.clear()
            self._memo[key] = HDBSCAN(
                min_cluster_size=self.min_cluster_size, min_samples=self.min_samples,
                copy=True).fit_predict(layout)
        return self._memo[key].copy()

    def fit_predict(
        self,
        x: np.ndarray,
        k: int,
        labels: Sequence[Sequence[str]] | None = None,
        layout: np.ndarray | None = None,
    ) -> np.ndarray:
        """``labels``: each row's pseudo-labels, or None; only splits use them.
        ``layout``: other vectors of the same rows to cluster instead of ``x`` (the texts
        with their labels mixed in: the select clusterer scores every candidate on the
        texts' own vectors, but this one may lay out the mix; Settings.density_weight)."""
        if layout is not None:
            if layout.shape[0] != x.shape[0]:
                raise RunError(f"layout has {layout.shape[0]} rows for {x.shape[0]} vectors")
            x = layout
        self.found_, self.split_ = 0, ""  # 0 / "": HDBSCAN did not run, no split needed
        if len(x) > self.max_n:
            raise RunError(f"umap-hdbscan is limited to {self.max_n} vectors, got {len(x)}")
        k = min(k, _n_distinct(x))
        if k <= 1 or len(x) < max(2 * self.min_cluster_size, self.n_neighbors + 2) + k:
            return KMeansClusterer(10, self.random_state).fit_predict(x, k)
        x = unit_rows(x)
        lab = self.groups(x)
        self.found_ = len(set(lab.tolist()) - {-1})
        if self.found_ == 0:
            lab[:] = 0
        else:
            lab = join_outliers(x, lab, self.outliers)
        lab = np.unique(lab, return_inverse=True)[1]
        while lab.max() + 1 > k:
            ids, cents = _centroids(x, lab)
            sim = cents @ cents.T
            np.fill_diagonal(sim, -np.inf)
            i, j = np.unravel_index(int(np.argmax(sim)), sim.shape)
            lab[lab == ids[j]] = ids[i]
            lab = np.unique(lab, return_inverse=True)[1]
        return self.split_to_k(x, lab, k, labels).astype(np.int64)

    def split_to_k(
        self,
        x: np.ndarray,
        lab: np.ndarray,
        k: int,
        labels: Sequence[Sequence[str]] | None = None,
    ) -> np.ndarray:
        """``lab`` (fewer than ``k`` groups of the unit rows ``x``) split up to ``k`` by
        the ``split`` rule; "auto" runs every rule it can (the labels rule only with
        ``labels``) and keeps the best silhouette."""
        self.split_ = ""
        if lab.max() + 1 >= k:
            return lab
        if self.split == "labels" and labels is None:
            raise RunError("the labels split rule needs the texts' pseudo-labels")
        if labels is not None and len(labels) != len(x):
            raise RunError(f"{len(labels)} label sets for {len(x)} vectors")
        seed = self.random_state
        rule_of = {
            "widest": lambda: _split_widest(x, lab, k, seed),
            "share": lambda: _split_share(x, lab, k, seed),
            "labels": lambda: _split_labels(x, lab, k, seed, labels or []),
        }
        if self.split == "auto":
            rules = tuple(r for r in rule_of if r != "labels" or labels is not None)
        else:
            rules = (self.split,)
        parts = {r: rule_of[r]() for r in rules}
        if len(parts) == 1:
            self.split_ = rules[0]
        else:
            sil = {r: _silhouette(x, p) for r, p in parts.items()}
            self.split_ = max(rules, key=lambda r: sil[r])  # a tie keeps the earlier rule
        return parts[self.split_]


def join_outliers(x: np.ndarray, lab: np.ndarray, rule: str = "centroid",
                  votes: int = 10) -> np.ndarray:
    """``lab`` with every outlier (-1) joined to a group of the unit rows ``x``.

    "centroid": the group with the nearest (cosine) centroid. "vote": the group most of
    the outlier's ``votes`` nearest grouped texts belong to, a tie going to the nearer
    centroid. Why a vote: an outlier often sits at the edge of a long or curved intent,
    whose centroid lies farther than a compact neighbour's; its nearest texts still
    belong to its own. Memory is bounded by scoring outliers in blocks.
    """
    lab = np.asarray(lab).copy()
    outl = np.flatnonzero(lab < 0)
    grouped = np.flatnonzero(lab >= 0)
    if not len(outl) or not len(grouped):
        return lab
    ids, cents = _centroids(x[grouped], lab[grouped])
    if rule == "centroid":
        lab[outl] = ids[np.argmax(x[outl] @ cents.T, axis=1)]
        return lab
    if rule != "vote":
        raise RunError(f"unknown outlier rule {rule!r}; known: {', '.join(OUTLIER_RULES)}")
    g_col = np.searchsorted(ids, lab[grouped])  # ids are sorted: each text's column
    m = min(votes, len(grouped))
    for start in range(0, len(outl), 1024):
        block = outl[start:start + 1024]
        sims = x[block] @ x[grouped].T
        top = np.argpartition(-sims, m - 1, axis=1)[:, :m]
        counts = np.zeros((len(block), len(ids)))
        np.add.at(counts, (np.repeat(np.arange(len(block)), m), g_col[top].ravel()), 1.0)
        cos = x[block] @ cents.T
        # most votes first; among equal votes the nearer centroid (cosine < 1 < one vote)
        lab[block] = ids[np.argmax(counts + 0.5 * (cos + 1.0) / 2.0, axis=1)]
    return lab


def _silhouette(x: np.ndarray, labels: np.ndarray, sample: int = 5000) -> float:
    """Mean cosine silhouette on at most ``sample`` rows (fixed sample: deterministic);
    -1 when it is undefined (one cluster, or every text its own)."""
    from sklearn.metrics import silhouette_score

    n_labels = len(set(labels.tolist()))
    if n_labels < 2 or n_labels >= len(x):
        return -1.0
    return float(silhouette_score(x, labels, metric="cosine",
                                  sample_size=min(sample, len(x)), random_state=0))


def _split_widest(x: np.ndarray, lab: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Splits the group with the largest spread in two (2-means) until there are ``k``.

    Right where HDBSCAN merged two intents of similar size (clinc150's balanced
    intents), wrong where the widest group is one large, varied intent (mtop_intent:
    it is halved while small intents stay merged)."""
    from sklearn.cluster import KMeans

    lab = lab.copy()
    while lab.max() + 1 < k:
        ids = np.unique(lab)
        members = np.where(lab == ids[int(np.argmax([_spread(x[lab == c]) for c in ids]))])[0]
        if len(members) < 2 or _n_distinct(x[members]) < 2:
            break
        half = KMeans(2, n_init=3, random_state=seed).fit_predict(x[members])
        lab[members[half == 1]] = lab.max() + 1
    return lab


def _spread(x: np.ndarray) -> float:
    """Sum of 1 - cosine to the (unit) centroid of the unit rows ``x``."""
    centre = x.sum(axis=0)
    return float((1 - x @ (centre / max(float(np.linalg.norm(centre)), 1e-12))).sum())


def _split_share(x: np.ndarray, lab: np.ndarray, k: int, seed: int,
                 min_part: int = 5,
                 labels: Sequence[Sequence[str]] | None = None) -> np.ndarray:
    """Splits groups in two until there are ``k``: each time the group whose 2-means
    split removes the largest share of its own spread, among the splits that leave
    ``min_part`` texts on each side (any split when none does).

    Why the share: a large intent is wide because it is large and varied, not because
    it holds two intents, and halving it costs a whole intent's worth of accuracy; a
    group that two means fit much better than one is two groups. Why ``min_part``:
    without it the largest shares come from peeling single odd texts off small groups,
    which reaches K without clustering anything. Measured on HDBSCAN's groups brought
    to the true K (5 seeds, scripts/bench_clusterers.py; the share rule alone as posted
    in the 28 Nov session note on issue 7, the widest-first rule alone in
    reports/clusterers.md as of commit 7bd899d): massive_intent
    72.0 against 69.1 ACC, mtop_intent 68.4 against 41.2, clinc150 81.1 against 86.4:
    neither rule serves every set, hence ``split="auto"``.
    With ``labels`` the share is multiplied by how much the halves' labels differ
    (``_split_labels``)."""
    from sklearn.cluster import KMeans

    lab = lab.copy()
    # group id -> ((both sides >= min_part, share of spread removed), texts that move)
    best: dict[int, tuple[tuple[bool, float], np.ndarray]] = {}
    while lab.max() + 1 < k:
        for c in np.unique(lab).tolist():
            if c in best:
                continue
            members = np.where(lab == c)[0]
            whole = _spread(x[members]) if len(members) > 1 else 0.0
            half = (KMeans(2, n_init=3, random_state=seed).fit_predict(x[members])
                    if whole > 1e-9 else np.zeros(len(members), dtype=int))
            if half.min() == half.max():  # one text, or identical texts: no split
                best[c] = ((False, -1.0), members[:0])
                continue
            parts = _spread(x[members[half == 0]]) + _spread(x[members[half == 1]])
            even = min(int((half == 0).sum()), int((half == 1).sum())) >= min_part
            gain = (whole - parts) / whole
            if labels is not None:
                gain *= 1.0 - label_overlap([labels[i] for i in members[half == 0]],
                                            [labels[i] for i in members[half == 1]])
            best[c] = ((even, gain), members[half == 1])
        c = max(best, key=lambda i: (best[i][0], -i))
        (_, share), moved = best[c]
        if share < 0:
            break  # nothing left that can be split
        lab[moved] = int(lab.max()) + 1
        del best[c]
    return lab


def _split_labels(x: np.ndarray, lab: np.ndarray, k: int, seed: int,
                  labels: Sequence[Sequence[str]], min_part: int = 5) -> np.ndarray:
    """The share rule, with each candidate split's share of spread removed multiplied
    by 1 - the overlap of its two halves' labels (``label_overlap``).

    Why: the geometry alone cannot tell a group that holds two intents from one wide
    intent; the pseudo-labels can. When the LLM gave the two halves of a 2-means split
    different labels ("set_alarm" / "check_alarm"), the split separates intents; when
    both halves carry the same labels, it halves one intent and costs accuracy.
    On mtop_intent (HDBSCAN's 59-60 groups brought to 102, 3 seeds) this rule gave
    73.0 ACC against 71.2 for the share rule alone on the same groups, with the
    higher silhouette on every seed (scratch probe of 30 Nov; the bench rows in
    reports/ are the measurement of record)."""
    return _split_share(x, lab, k, seed, min_part, labels)


def label_overlap(a: Sequence[Sequence[str]], b: Sequence[Sequence[str]]) -> float:
    """Histogram intersection (0 = disjoint, 1 = the same) of two groups' label
    distributions; each text's labels share one unit of weight, so a text with three
    labels counts as much as a text with one. Texts without labels add nothing."""

    def dist(sets: Sequence[Sequence[str]]) -> dict[str, float]:
        cnt: Counter[str] = Counter()
        for labs in sets:
            distinct = set(labs)
            for lab in distinct:
                cnt[lab] += 1.0 / len(distinct)
        total = sum(cnt.values())
        return {lab: v / total for lab, v in cnt.items()} if total else {}

    pa, pb = dist(a), dist(b)
    return float(sum(min(v, pb.get(lab, 0.0)) for lab, v in pa.items()))


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
                   ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Each candidate's partition at ``k`` and its seconds. Candidates that cannot run
    on an input (spectral and umap-hdbscan above their size limits) are skipped; the
    seconds are kept because the clustering stage is most of what a run spends outside
    llama.cpp, and a run's profile should say on what."""
    partitions: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, clusterer in candidates.items():
        t = time.perf_counter()
        try:
            partitions[name] = np.asarray(fit_clusters(clusterer, x, k, labels, layout),
                                          dtype=np.int64)
        except RunError:
            continue
        finally:
            seconds[name] = round(time.perf_counter() - t, 2)
    if not partitions:
        raise RunError("no clusterer could run on these vectors")
    return partitions, seconds


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
        for c in self.candidates.values():
            if hasattr(c, "random_state"):
                c.random_state = seed

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
    and its silhouette falls 0.035-0.09 below that one's, outside the tie
    (reports/consensus_clusterers.md, reports/select_consensus.md). Not always outside:
    with other vectors of the same texts (int8's batch dependence) its silhouette on
    massive_intent came within the tie on some seeds, and the rule lost 0.9-1.3 ACC
    on average there (reports/consensus_guard.md). Its modularity separates the two
    cases: where it was kept rightly it is 0.000-0.0075 below the best of the tied
    (banking77, clinc150, true and estimated K), where wrongly 0.021 and more below
    (massive_intent; on mtop_intent and massive's other seeds it is 0.02-0.10 below and
    outside the silhouette tie anyway). So the consensus must also be within
    ``consensus_modularity_tie`` (0.0125, between the two) of that best modularity.
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
    tie: float = 0.02
    modularity_tie: float = 0.005
    consensus_modularity_tie: float = 0.0125
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

    def __post_init__(self) -> None:
        if self.criterion not in ("tie-break", "modularity", "silhouette"):
            raise RunError(f"unknown selection criterion {self.criterion!r}")
        if not self.candidates:
            self.candidates = default_candidates(self.n_init, self.random_state)

    def set_seed(self, seed: int) -> None:
        self.random_state = seed
        for c in self.candidates.values():
            if hasattr(c, "random_state"):
                c.random_state = seed

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
        self.partitions_, self.seconds_ = fit_candidates(self.candidates, x, k, labels,
                                                         layout)
        if self.consensus and len(self.partitions_) > 1:
            parts = list(self.partitions_.values())
            if self.texts_consensus:  # see consensus_inputs
                parts = consensus_inputs(self.candidates, self.partitions_, x, k, labels,
                                         layout, self.seconds_)
            t = time.perf_counter()
            self.partitions_["consensus"] = consensus_partition(
                parts, k, self.random_state, self.n_init)
            self.seconds_["consensus"] = round(time.perf_counter() - t, 2)
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


@dataclass
class SilhouetteK:
    """Estimates K as the silhouette-best K-means partition over a grid."""

    k_min: int = 2
    k_max: int = 0
    grid: int = 16
    n_init: int = 3
    random_state: int = 0
    scores_: dict[int, float] = field(default_factory=dict)

    def bounds(self, n: int) -> tuple[int, int]:
        hi = self.k_max or max(self.k_min + 1, int(4 * np.sqrt(n)))
        return max(2, self.k_min), max(2, min(hi, n - 1))

    def estimate(self, x: np.ndarray) -> int:
        from sklearn.cluster import KMeans
        from sklearn.metrics import silhouette_score

        n = len(x)
        if n < 4:
            return max(1, min(n, 2 if n >= 2 else 1))
        lo, hi = self.bounds(n)
        if lo >= hi:
            return lo
        sample = min(n, 4000)

        def score(k: int) -> float:
            if k not in self.scores_:
                labels = KMeans(
                    n_clusters=k, n_init=self.n_init, random_state=self.random_state
                ).fit_predict(x)
                if len(set(labels)) < 2:
                    self.scores_[k] = -1.0
                else:
                    self.scores_[k] = float(
                        silhouette_score(
                            x,
                            labels,
                            metric="cosine",
                            sample_size=sample,
                            random_state=self.random_state,
                        )
                    )
            return self.scores_[k]

        grid = sorted({round(float(v)) for v in np.geomspace(lo, hi, self.grid)})
        best = max(grid, key=lambda k: (score(k), -k))
        i = grid.index(best)
        left = grid[i - 1] if i > 0 else best
        right = grid[i + 1] if i + 1 < len(grid) else best
        fine = sorted({round(float(v)) for v in np.linspace(left, right, 9)})
        return max(fine, key=lambda k: (score(k), -k))


def name_clusters(
    assignment: Sequence[int],
    label_sets: Sequence[Sequence[str]],
    top: int = 3,
    label_vectors: Mapping[str, np.ndarray] | None = None,
) -> list[dict]:
    """A unique name per cluster, larger clusters choosing first so that the common
    intents get the plain names.

    Without ``label_vectors``: the cluster's most shared label not already taken. With
    them (the runner passes the labels' embeddings, which refinement computed already):
    among the labels carried by at least half as many of the cluster's texts as its
    most shared one, the label nearest their count-weighted mean vector. Why: the most
    shared label is often one example of the intent ("call_dad" beside "call_mom" and
    "call_sister"), or a neighbouring intent's label that refinement spread; the
    central one among the frequent names what they have in common ("send_video" rather
    than "record_video" for send-message texts). Measured on the 5 Dec bench runs: the
    gold intent name nearest the cluster's name was the cluster's own for 68.8 / 68.7 /
    82.5 / 69.9 % of texts (banking77, clinc150, massive_intent, mtop_intent) against
    68.8 / 69.0 / 69.2 / 63.7 % for the most shared (reports/cluster_names.md).
    ``top_labels`` stay the most shared, with their counts.
    """
    members: dict[int, list[int]] = {}
    for i, c in enumerate(assignment):
        members.setdefault(int(c), []).append(i)
    taken: set[str] = set()
    out = []
    for cid in sorted(members, key=lambda c: (-len(members[c]), c)):
        counts = Counter(lab for i in members[cid] for lab in set(label_sets[i]))
        ranked = sorted(counts, key=lambda lab: (-counts[lab], lab))
        order = ranked
        if label_vectors is not None and ranked:
            order = _central_first(ranked, counts, label_vectors)
        name = next((lab for lab in order if lab not in taken), None)
        if name is None:
            base = order[0] if order else "cluster"
            n = 2
            while f"{base}_{n}" in taken:
                n += 1
            name = f"{base}_{n}"
        taken.add(name)
        out.append(
            {
                "id": cid,
                "name": name,
                "size": len(members[cid]),
                "top_labels": [[lab, counts[lab]] for lab in ranked[:top]],
            }
        )
    return out


def _central_first(ranked: list[str], counts: Counter,
                   label_vectors: Mapping[str, np.ndarray]) -> list[str]:
    """``ranked`` (most shared first) with the frequent labels (at least half the top
    count, and embedded) reordered nearest their count-weighted mean vector first; the
    rest keep their order behind them, for when the frequent names are all taken."""
    floor = counts[ranked[0]] / 2
    pool = [lab for lab in ranked if counts[lab] >= floor and lab in label_vectors]
    if len(pool) < 2:
        return ranked
    vecs = np.stack([np.asarray(label_vectors[lab], dtype=np.float64) for lab in pool])
    centre = (np.array([counts[lab] for lab in pool], dtype=np.float64)[:, None] * vecs).sum(0)
    sims = vecs @ centre / max(float(np.linalg.norm(centre)), 1e-12)
    central = [pool[i] for i in sorted(range(len(pool)), key=lambda i: (-sims[i], i))]
    frequent = set(pool)
    return central + [lab for lab in ranked if lab not in frequent]
