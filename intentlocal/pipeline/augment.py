"""labels ⊕ text: how a text's pseudo-labels join it before neighbours and clustering.

Two ways, both measured by `intentlocal bench`:
- "text": the string "text (label, label)" is embedded again (the paper's way);
- "mix":  the text's vector plus ``weight`` times the mean vector of its labels,
          renormalised; each distinct label is embedded once, so this costs
          far less than re-embedding every text at every iteration.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from intentlocal.pipeline.vectors import unit_rows


def join_labels(text: str, labels: Sequence[str]) -> str:
    """The string form: text first, so a strong embedder keeps its wording."""
    if not labels:
        return text
    return f"{text} ({', '.join(lab.replace('_', ' ') for lab in labels)})"


def mix_vectors(
    text_vectors: np.ndarray,
    label_sets: Sequence[Sequence[str]],
    embed: Callable[[list[str]], np.ndarray],
    weight: float = 1.0,
) -> np.ndarray:
    """Text vector + weight · mean label vector, L2-normalised per row."""
    vec = label_vectors(label_sets, embed)
    if not vec:
        return text_vectors
    out = text_vectors.astype(np.float32).copy()
    for r, labels in enumerate(label_sets):
        if labels:
            out[r] += weight * np.mean([vec[lab] for lab in labels], axis=0)
    return unit_rows(out)


def label_vectors(
    label_sets: Sequence[Sequence[str]], embed: Callable[[list[str]], np.ndarray]
) -> dict[str, np.ndarray]:
    """Each distinct label's vector, embedded once as words ("card_arrived" as "card
    arrived"), in sorted order so that the embedding cache sees the same batches: the
    mix and the cluster names (naming.name_clusters) read the same vectors."""
    distinct = sorted({lab for labels in label_sets for lab in labels})
    if not distinct:
        return {}
    return dict(zip(distinct, embed([lab.replace("_", " ") for lab in distinct]), strict=True))


def label_key(label: str) -> str:
    """Spelling-insensitive identity: "exchange_rates", "exchange_rate" and
    "exchangerate" are one label (a small model writes all three for one intent)."""
    words = [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
             for w in label.split("_")]
    return "".join(words)


def label_features(
    label_sets: Sequence[Sequence[str]], max_cells: int = 25_000_000, dims: int = 256
) -> np.ndarray:
    """Which labels each text carries, tf-idf weighted, L2-normalised per row.

    This uses a label's identity, not its wording: two texts are close here
    exactly when they share pseudo-labels, which is what refinement produces. A
    label most texts carry (a topic word like "card") weighs little; a label
    shared by a handful of texts weighs a lot. Rows without labels are zero.
    Built sparse; when texts x labels would exceed ``max_cells`` dense cells
    (100 MB) it is reduced to ``dims`` columns by truncated SVD (LSA), which
    keeps the dot products that K-means sees, approximately.
    """
    from scipy import sparse

    keys = sorted({label_key(lab) for labels in label_sets for lab in labels})
    if not keys:
        return np.zeros((len(label_sets), 0), dtype=np.float32)
    col = {k: i for i, k in enumerate(keys)}
    rows, cols = [], []
    for r, labels in enumerate(label_sets):
        for c in sorted({col[label_key(lab)] for lab in labels}):
            rows.append(r)
            cols.append(c)
    m = sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(len(label_sets), len(keys))
    )
    df = np.asarray(m.sum(axis=0)).ravel()
    m = m @ sparse.diags((np.log((1 + len(label_sets)) / (1 + df)) + 1.0).astype(np.float32))
    if m.shape[0] * m.shape[1] > max_cells and m.shape[1] > dims:
        from sklearn.decomposition import TruncatedSVD

        out = TruncatedSVD(dims, random_state=0).fit_transform(m).astype(np.float32)
    else:
        out = m.toarray().astype(np.float32)
    return unit_rows(out)


def concat_labels(
    text_vectors: np.ndarray, label_sets: Sequence[Sequence[str]], weight: float = 1.0
) -> np.ndarray:
    """[text vector, weight · label features]: Euclidean K-means then sees
    |t_i - t_j|² + weight² · |l_i - l_j|², the text's meaning plus shared labels."""
    return np.hstack([text_vectors.astype(np.float32), weight * label_features(label_sets)])
