"""scripts/label_merge.py and scripts/label_canon.py: the merge rules join only the
neighbouring clusters their labels say are one, and the edge and sharing counts are the
ones a reader of the reports would compute by hand."""

from __future__ import annotations

import numpy as np

from scripts.label_canon import canon_groups, measure
from scripts.label_merge import auc, edge_stats, merge, merge_same_top

# Four tight clusters of two texts at the corners of a square in 2-d.
X = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99],
              [-1, 0], [-0.99, -0.1], [0, -1], [-0.1, -0.99]], dtype=np.float32)
PART = np.array([0, 0, 1, 1, 2, 2, 3, 3])


def test_same_top_label_merges_exactly_the_clusters_named_alike() -> None:
    labels = [["card"], ["card"], ["card"], ["card", "top_up"],
              ["refund"], ["refund"], ["pin"], ["pin"]]
    got = merge_same_top(X, PART, labels)
    assert got.max() + 1 == 3
    assert got[0] == got[2] and got[4] != got[0] and got[6] not in (got[0], got[4])


def test_few_clusters_do_not_pair_a_cluster_with_itself() -> None:
    # with 4 clusters and 5 neighbours asked, a cluster's own index must not come back
    from scripts.label_merge import centroid_neighbours

    assert all(i != j for i, j in centroid_neighbours(X, PART))


def test_no_merge_when_every_cluster_has_its_own_label() -> None:
    labels = [["a"], ["a"], ["b"], ["b"], ["c"], ["c"], ["d"], ["d"]]
    assert np.array_equal(merge_same_top(X, PART, labels), PART)
    assert np.array_equal(merge(X, PART, labels, 0.1), PART)


def test_threshold_decides_a_partial_overlap() -> None:
    # clusters 0 and 1 share one label of two: cosine 0.5, histogram intersection 0.5
    labels = [["a"], ["x"], ["a"], ["y"], ["c"], ["c"], ["d"], ["d"]]
    assert merge(X, PART, labels, 0.49).max() + 1 == 3
    assert merge(X, PART, labels, 0.51).max() + 1 == 4
    assert merge(X, PART, labels, 0.49, "overlap").max() + 1 == 3
    assert merge(X, PART, labels, 0.51, "overlap").max() + 1 == 4


def test_auc_counts_ties_as_half() -> None:
    assert auc([0.9, 0.8], [0.1, 0.8]) == 3.5 / 4
    assert np.isnan(auc([], [0.1]))


def test_edge_stats_split_the_graph_by_shared_labels() -> None:
    # with 10 neighbours every pair of the 8 texts is an edge: 28 edges
    gold = ["a", "a", "b", "b", "c", "c", "d", "d"]
    labels = [["p"], ["p"], ["p"], ["q"], ["r"], ["s"], ["t"], ["u"]]
    e = edge_stats(X, gold, labels)
    assert e["edges"] == 28
    # sharing "p": (0,1) same intent, (0,2) and (1,2) not
    assert e["share_frac"] == 3 / 28 and e["p_same_share"] == 1 / 3
    assert e["p_same_none"] == 3 / 25  # (2,3), (4,5), (6,7)


def test_canon_groups_join_near_duplicates_only() -> None:
    v = np.array([[1, 0, 0], [0.999, 0.04, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32)
    g = canon_groups(v, 0.95)
    assert g[0] == g[1] and len({g[0], g[2], g[3]}) == 3
    assert len(set(canon_groups(v, -0.5).tolist())) == 1  # cosine distance 1 < 1.5


def test_measure_counts_sharing_and_its_precision() -> None:
    gold = ["a", "a", "b", "b", "c", "c", "d", "d"]
    got = measure(X, gold, ["l1", "l1", "l2", "l2", "l3", "l3", "l1", "l4"])
    # pairs sharing a label: (0,1) a=a, (2,3), (4,5), (0,6) and (1,6) across intents
    assert got["distinct"] == 4
    assert got["share"] == 5 / 28 and got["p_same_share"] == 3 / 5
    assert got["homogeneity"] < 100 and got["completeness"] < 100  # l1 spans a and d
    perfect = measure(X, gold, gold)
    assert perfect["homogeneity"] == perfect["completeness"] == 100
    assert perfect["share"] == 4 / 28 and perfect["p_same_share"] == 1
