"""scripts/label_edges.py: labels only weaken UMAP edges between texts that share no
label, never add one, and beta 0 leaves UMAP's graph as it was."""

from __future__ import annotations

import numpy as np

from scripts.label_distance import jaccard
from scripts.label_edges import cut_factor, edge_purity, labelled_umap


def test_cut_factor_weakens_only_edges_without_a_shared_label() -> None:
    overlap = jaccard([["a"], ["a", "b"], ["c"]])
    rows, cols = np.array([0, 0, 1]), np.array([1, 2, 2])
    assert cut_factor(rows, cols, overlap, 0.5).tolist() == [1.0, 0.5, 0.5]
    assert cut_factor(rows, cols, overlap, 0.0).tolist() == [1.0, 1.0, 1.0]


def test_the_graph_is_cut_where_labels_differ_and_kept_where_they_agree() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((60, 8)).astype(np.float32)
    sets = [["even"] if i % 2 == 0 else ["odd"] for i in range(60)]
    overlap = jaccard(sets)
    graphs = {}
    for beta in (0.0, 0.75):
        um = labelled_umap(overlap, beta, n_neighbors=10, n_components=2, random_state=0,
                           n_jobs=1, n_epochs=20)
        um.fit(x)
        graphs[beta] = um.cut_graph_.tocoo()
    base, cut = graphs[0.0], graphs[0.75]
    assert base.nnz == cut.nnz  # nothing added, nothing removed
    w0 = dict(zip(zip(base.row.tolist(), base.col.tolist(), strict=True), base.data, strict=True))
    for r, c, w in zip(cut.row, cut.col, cut.data, strict=True):
        expected = w0[(r, c)] * (1.0 if r % 2 == c % 2 else 0.25)
        assert abs(w - expected) < 1e-6


def test_edge_purity_splits_the_graph_by_shared_labels() -> None:
    # Two tight pairs far apart; with 1 neighbour each the graph holds exactly the pairs.
    x = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99]], dtype=np.float32)
    gold = np.array(["p", "p", "q", "r"])
    overlap = jaccard([["x"], ["x"], ["y"], ["z"]])
    rows = {name: (n, share) for name, n, share in edge_purity(x, overlap, gold, n_neighbors=1)}
    assert rows["all edges"] == (2, 0.5)
    assert rows["texts share a label"] == (1, 1.0)
    assert rows["texts share no label"] == (1, 0.0)
