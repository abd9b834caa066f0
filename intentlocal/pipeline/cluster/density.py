"""UMAP + HDBSCAN brought to K (BERTopic's path), the candidate the default selection
keeps on the skewed sets, with the rules that bring its groups to K: outliers joined,
groups merged or split (by spread, by share of spread, by the pseudo-labels)."""

from __future__ import annotations

import functools
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from intentlocal.errors import RunError
from intentlocal.pipeline.cluster.base import (
    KMeansClusterer,
    _centroids,
    _key,
    _n_distinct,
    _silhouette,
)
from intentlocal.pipeline.vectors import unit_rows

SPLIT_RULES = ("auto", "widest", "share", "labels")
OUTLIER_RULES = ("centroid", "vote")


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
