"""scripts/min_share.py: the per-seed (paired) difference to the texts alone."""

from __future__ import annotations

import pytest

from scripts.min_share import paired


def test_paired_differences_are_per_seed_not_of_the_means() -> None:
    # seed-to-seed spread is large (sd 2 of each row), the gain steady (+1 or +2)
    base = [{"acc": 70.0, "nmi": 80.0}, {"acc": 74.0, "nmi": 82.0}]
    rows = [{"acc": 71.0, "nmi": 80.0}, {"acc": 76.0, "nmi": 81.0}]
    d = paired(rows, base)
    assert d["d_acc"] == pytest.approx(1.5) and d["d_acc_sd"] == pytest.approx(0.5)
    assert d["d_nmi"] == pytest.approx(-0.5) and d["d_nmi_sd"] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        paired(rows, base[:1])  # not the same seeds


def test_on_vectors_gives_its_candidate_other_vectors_and_follows_the_seed() -> None:
    import numpy as np

    from intentlocal.pipeline.cluster import SelectClusterer
    from scripts.min_share import OnVectors

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8))
    x = np.vstack([c + 0.05 * rng.normal(size=(40, 8)) for c in centres]).astype(np.float32)
    other = x[::-1].copy()  # the same texts in reverse: another set of vectors

    class Spy:
        def __init__(self) -> None:
            self.random_state = 0
            self.seen: list = []

        def fit_predict(self, v, k, labels=None):
            self.seen.append((v, self.random_state, labels))
            return np.arange(len(v)) % k

    spy = Spy()
    sel = SelectClusterer(candidates={"kmeans": SelectClusterer().candidates["kmeans"],
                                      "spy": OnVectors(spy, other)}, consensus=False)
    sel.set_seed(7)
    sel.fit_predict(x, 3, labels=[["a"]] * len(x))
    v, seed, labels = spy.seen[-1]
    assert v is other and seed == 7 and labels == [["a"]] * len(x)
    assert set(sel.silhouettes_) == {"kmeans", "spy"}  # both scored on x
