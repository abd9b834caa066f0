"""scripts/k_forcing.py: HDBSCAN's own groups are scored as found, and the same layout's
groups brought to the asked K are scored beside them."""

from __future__ import annotations

import numpy as np

from scripts.k_forcing import own_and_forced


def test_own_groups_kept_and_forced_groups_merged() -> None:
    # Six well-separated blobs of 30 texts; the "true" K given is 3, so forcing must
    # merge pairs of blobs while HDBSCAN's own six groups stay pure.
    rng = np.random.default_rng(0)
    centres = np.eye(6, 16)
    x = np.concatenate([c + 0.03 * rng.standard_normal((30, 16)) for c in centres])
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    gold = [f"blob{i // 30}" for i in range(len(x))]
    rows_of = np.arange(len(x))
    found, kept, forced = own_and_forced(x, rows_of, gold, 3, seed=0)
    assert found == 6
    assert kept["acc"] == 100.0 and abs(kept["nmi"] - 100.0) < 1e-6
    assert abs(forced["acc"] - 50.0) < 1e-9  # three clusters of two blobs: half the texts matched
