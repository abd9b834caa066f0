"""Vector arithmetic the stages share.

Why a module of its own: the label mix, the label features and the clusterers all
compare vectors by cosine, and each had its own copy of the same row normalisation.
"""

from __future__ import annotations

import numpy as np


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero): cosine becomes a dot product."""
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
