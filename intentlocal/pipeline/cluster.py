"""Stage e and f: K-means on the final vectors, K given or estimated; cluster names.

Auto-K lives in autok.py (MapEquationK, the default). SilhouetteK below is kept
as the measured baseline it replaced (scripts/bench_auto_k.py): on EmbeddingGemma
it estimated 84 / 204 / 27 / 12 for true K 77 / 150 / 59 / 102.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from intentlocal.errors import RunError


@dataclass
class KMeansClusterer:
    """The paper's clusterer; any object with ``fit_predict(X, k)`` can replace it."""

    n_init: int = 10
    random_state: int = 0

    def fit_predict(self, x: np.ndarray, k: int) -> np.ndarray:
        from sklearn.cluster import KMeans

        if k < 1:
            raise RunError(f"cannot make {k} clusters")
        n_distinct = len(np.unique(np.round(x, 6), axis=0))
        k = min(k, n_distinct)
        if k <= 1:
            return np.zeros(len(x), dtype=np.int64)
        km = KMeans(n_clusters=k, n_init=self.n_init, random_state=self.random_state)
        return km.fit_predict(x).astype(np.int64)


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
    assignment: Sequence[int], label_sets: Sequence[Sequence[str]], top: int = 3
) -> list[dict]:
    """A unique name per cluster: its most shared label not already taken.

    Larger clusters choose first, so the common intents get the plain names.
    """
    members: dict[int, list[int]] = {}
    for i, c in enumerate(assignment):
        members.setdefault(int(c), []).append(i)
    taken: set[str] = set()
    out = []
    for cid in sorted(members, key=lambda c: (-len(members[c]), c)):
        counts = Counter(lab for i in members[cid] for lab in set(label_sets[i]))
        ranked = sorted(counts, key=lambda lab: (-counts[lab], lab))
        name = next((lab for lab in ranked if lab not in taken), None)
        if name is None:
            base = ranked[0] if ranked else "cluster"
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
