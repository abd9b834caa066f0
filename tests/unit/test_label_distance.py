"""scripts/label_distance.py: label overlap lowers distances only between texts that share
labels, and the spectral path clusters a distance matrix."""

from __future__ import annotations

import numpy as np
import pytest

from scripts.label_distance import cosine_distance, jaccard, spectral_on


def test_jaccard_is_the_overlap_of_label_sets() -> None:
    j = jaccard([["a", "b"], ["b", "c"], ["d"], []])
    assert j[0, 1] == j[1, 0] == 1 / 3
    assert j[0, 2] == 0 and j[2, 3] == 0 and j[3, 3] == 0
    assert np.all(np.diag(j) == 0)


def test_labels_join_what_the_vectors_split() -> None:
    # Four texts in two tight pairs; labels tie text 0 to text 2 across the pairs.
    x = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99]], dtype=np.float32)
    d = cosine_distance(x)
    assert d[0, 1] < 0.02 and d[0, 2] > 0.9
    j = jaccard([["x"], ["y"], ["x"], ["z"]])
    dl = np.maximum(d - 1.0 * j, 0.0)
    assert dl[0, 2] < d[0, 2] and dl[0, 1] == d[0, 1] and dl[1, 3] == d[1, 3]


def test_spectral_on_distances_finds_the_groups() -> None:
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8)
    x = np.concatenate([c + 0.05 * rng.standard_normal((20, 8)) for c in centres])
    parts = spectral_on(cosine_distance(x), 3, [0, 1], n_neighbors=25)  # one connected graph
    for p in parts:
        assert len(set(p[:20])) == len(set(p[20:40])) == len(set(p[40:])) == 1
        assert len(set(p)) == 3


def test_pair_purity_counts_what_labels_add_beyond_the_graph() -> None:
    from scripts.label_distance import pair_purity

    # Two tight pairs (0,1) and (2,3); with 1 neighbour the graph links only those.
    x = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99]], dtype=np.float32)
    gold = np.array(["a", "a", "b", "b"])
    j = jaccard([["x"], ["x"], ["x"], ["y"]])  # labels link 0-1 (in graph), 0-2, 1-2 (not)
    got = pair_purity(cosine_distance(x), j, gold, n_neighbors=1)
    assert got["15-NN graph"] == (2, 1.0)
    assert got["sharing a label"] == (3, 1 / 3)
    assert got["sharing a label, not in the graph"] == (2, 0.0)


def test_confident_sets_keep_the_surest_initial_labels(tmp_path) -> None:
    import json

    from scripts.label_distance import confident_sets

    calls = {str(u): {"label": lab, "trace": [(lp, 1.0)]}
             for u, (lab, lp) in enumerate([("card_arrival", -0.1), ("pin_change", -3.0),
                                            ("exchange_rates", -0.5), ("refund", -2.0)])}
    path = tmp_path / "calls.json"
    path.write_text(json.dumps(calls))
    assert confident_sets(str(path), 4, 0.5) == [["cardarrival"], [], ["exchangerate"], []]
    assert confident_sets(str(path), 4, 1.0) == [["cardarrival"], ["pinchange"],
                                                 ["exchangerate"], ["refund"]]
    with pytest.raises(SystemExit, match="holds 4 of the run's 5"):
        confident_sets(str(path), 5, 0.5)
