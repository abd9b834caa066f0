"""Embedding through the run store's cache: a text is embedded once per embedder.

Why one helper: the runner, the bench and the large-input script all embed
long lists that a kill can interrupt; going through the cache in batches means
a resumed job starts where the last one stopped, and the three cannot drift.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from intentlocal.backends.base import Embedder, vectors_id
from intentlocal.store import Store


def embed_cached(
    store: Store,
    embedder: Embedder,
    texts: Sequence[str],
    *,
    batch: int = 256,
    on_batch: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Vectors for ``texts`` in order; ``on_batch(done, total)`` runs before each
    batch and after the last (a place to report progress or raise to cancel)."""
    model_id = vectors_id(embedder)
    cached = store.cached_embeddings(model_id, texts)
    first: dict[str, int] = {}
    for i, t in enumerate(texts):
        if i not in cached:
            first.setdefault(t, i)
    missing = list(first.values())  # each distinct missing text once
    report = on_batch or (lambda done, total: None)
    for start in range(0, len(missing), batch):
        report(len(texts) - len(missing) + start, len(texts))
        idx = missing[start : start + batch]
        vecs = embedder.embed([texts[i] for i in idx])
        store.cache_embeddings(model_id, [texts[i] for i in idx], vecs)
        for i, v in zip(idx, vecs, strict=True):
            cached[i] = v
    report(len(texts), len(texts))
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    for i, t in enumerate(texts):
        if i not in cached:
            cached[i] = cached[first[t]]
    return np.vstack([cached[i] for i in range(len(texts))]).astype(np.float32)
