"""scripts/iterations.py: label-sharing statistics and the iterated shared rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from intentlocal.config import Settings
from scripts.iterations import iterate, label_stats


def test_label_stats_counts_pairs_and_their_purity() -> None:
    # texts 0-2 share "a" (two intents among them), 3 and 4 share "card_fee" (two
    # spellings, one key), 5 has a label nobody else has.
    sets = [["a"], ["a"], ["a", "c"], ["card_fees"], ["card_fee"], ["z"]]
    gold = np.array([0, 0, 1, 2, 2, 3])
    st = label_stats(sets, gold)
    assert st["distinct"] == 4  # a, c, card_fee, z
    assert st["pairs"] == 3 + 1
    assert st["pair_purity"] == pytest.approx(2 / 4)
    assert st["texts_sharing"] == pytest.approx(5 / 6)
    assert st["labels_per_text"] == pytest.approx(7 / 6)


def _fake_embed(batch: list[str]) -> np.ndarray:
    """A fixed random unit vector per label (seeded by its bytes, not hash())."""
    rows = []
    for lab in batch:
        rng = np.random.default_rng(int.from_bytes(lab.encode()[:8].ljust(8, b"_"), "big"))
        rows.append(rng.normal(size=8))
    v = np.array(rows, dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_iterations_only_grow_and_stop_when_nothing_is_added() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))
    x = np.vstack([c + 0.05 * rng.normal(size=(6, 8)) for c in centres]).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    initial = [[f"lab{i}"] for i in range(len(x))]  # every text its own label
    s = Settings(neighbours=3, max_select=1)
    history = iterate(x, initial, _fake_embed, s, limit=50)
    assert history[0] == initial
    assert 2 < len(history) < 50  # converged before the cap
    for before, after in itertools.pairwise(history):
        for b, a in zip(before, after, strict=True):
            assert a[: len(b)] == b and len(a) - len(b) <= 1
    # one more round adds nothing: the stop rule held
    again = iterate(x, history[-1], _fake_embed, s, limit=1)
    assert len(again) == 1
    capped = iterate(x, initial, _fake_embed, s, limit=1)
    assert len(capped) == 2 and capped[1] == history[1]
