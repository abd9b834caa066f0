"""MapEquationK: the auto-K estimator (intentlocal/pipeline/autok.py)."""

import numpy as np
import pytest
from scipy import sparse

from intentlocal.pipeline.autok import (
    MapEquationK,
    _merge_path,
    _multilevel,
    graph_communities,
    knn_graph,
    knn_indices,
    map_equation,
    neighbours_for,
)


def _sphere_blobs(
    k: int, d: int, spread: float, seed: int = 0, sizes: tuple[int, int] = (15, 120)
) -> tuple[np.ndarray, np.ndarray]:
    """k Gaussian blobs of varied sizes around random unit centres, projected on the
    unit sphere; returns (vectors, labels)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    n_each = rng.integers(sizes[0], sizes[1] + 1, size=k)
    x = np.vstack(
        [c + spread * rng.normal(size=(m, d)) for c, m in zip(centres, n_each, strict=True)]
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(len(x))
    return x[perm].astype(np.float32), np.repeat(np.arange(k), n_each)[perm]


@pytest.mark.parametrize(
    ("k", "d", "spread", "tolerance"),
    [(5, 32, 0.12, 0.0), (20, 64, 0.1, 0.1), (60, 384, 0.05, 0.1), (60, 64, 0.15, 0.1)],
)
def test_finds_the_number_of_separated_blobs(
    k: int, d: int, spread: float, tolerance: float
) -> None:
    x, _ = _sphere_blobs(k, d, spread)
    est = MapEquationK().estimate(x)
    assert abs(est - k) <= tolerance * k, est


def test_blobs_of_very_unequal_sizes() -> None:
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 48))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = [600, 12, 25, 40, 80, 200]
    x = np.vstack([c + 0.1 * rng.normal(size=(m, 48)) for c, m in zip(centres, sizes, strict=True)])
    assert MapEquationK().estimate(x) == 6


def test_high_dimensional_structureless_cloud_is_one_cluster() -> None:
    """Isotropic noise in 384 dimensions: no partition codes the walk shorter than one
    module (local moving alone stops at ~200 modules; the merge path must undo them).
    In few dimensions (<= ~128) a kNN graph of noise is spatial and does get tiled."""
    x = np.random.default_rng(0).normal(size=(800, 384))
    assert MapEquationK().estimate(x) == 1


def test_merge_path_rejoins_a_large_cloud_that_local_moving_shatters() -> None:
    """A 1500-point isotropic blob next to five small ones: greedy local moving leaves
    the big blob in dozens of modules, the merge path must rejoin it."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(6, 64))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sizes = [1500, 40, 60, 80, 100, 50]
    x = np.vstack([c + 0.1 * rng.normal(size=(m, 64)) for c, m in zip(centres, sizes, strict=True)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    a = sparse.csr_matrix(knn_graph(x.astype(np.float32), 10), dtype=np.float64)
    greedy = _multilevel(a, "mapequation", np.random.default_rng(0))
    assert greedy.max() + 1 > 12  # the failure the merge path exists for
    merged = _merge_path(a, greedy)
    assert merged.max() + 1 == 6
    assert map_equation(a, merged) < map_equation(a, greedy)
    assert MapEquationK().estimate(x) == 6


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_tiny_inputs(n: int) -> None:
    x = np.random.default_rng(n).normal(size=(n, 8)).astype(np.float32)
    est = MapEquationK().estimate(x)
    assert 1 <= est <= n


def test_tiny_input_of_two_far_groups() -> None:
    x = np.array([[1, 0, 0], [1, 0.01, 0], [0, 0, 1], [0, 0.01, 1]], dtype=np.float32)
    assert 1 <= MapEquationK().estimate(x) <= 2


def test_identical_vectors_and_zero_vectors() -> None:
    x = np.vstack([np.tile([1.0, 0.0, 0.0], (20, 1)), np.zeros((3, 3))])
    assert MapEquationK().estimate(x) >= 1


def test_empty_or_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError):
        MapEquationK().estimate(np.zeros((0, 4)))
    with pytest.raises(ValueError):
        MapEquationK().estimate(np.zeros(5))


def test_deterministic_given_the_seed() -> None:
    x, _ = _sphere_blobs(20, 32, 0.25, seed=5)  # overlapping: the search order matters
    a, b = MapEquationK(random_state=7), MapEquationK(random_state=7)
    assert a.estimate(x) == b.estimate(x)
    assert np.array_equal(a.labels_, b.labels_)


def test_scale_of_the_vectors_does_not_matter() -> None:
    x, _ = _sphere_blobs(12, 32, 0.1, seed=2)
    assert MapEquationK().estimate(x) == MapEquationK().estimate(3.5 * x)


def test_partition_agrees_with_the_blobs() -> None:
    from sklearn.metrics import adjusted_rand_score

    x, y = _sphere_blobs(15, 48, 0.1, seed=4)
    est = MapEquationK()
    est.estimate(x)
    assert adjusted_rand_score(y, est.labels_) > 0.95


def test_knn_indices_equal_brute_force() -> None:
    x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    s = x.astype(np.float64) @ x.T.astype(np.float64)
    np.fill_diagonal(s, -np.inf)
    brute = np.argsort(-s, axis=1, kind="stable")[:, :7]
    got = knn_indices(x, 7, block=64)
    assert np.mean(got == brute) > 0.999
    assert not (got == np.arange(300)[:, None]).any()


def test_map_equation_of_one_module_is_the_visit_entropy() -> None:
    x = np.random.default_rng(1).normal(size=(200, 8)).astype(np.float32)
    a = knn_graph(x / np.linalg.norm(x, axis=1, keepdims=True), 5)
    deg = np.asarray(a.sum(1)).ravel()
    p = deg / deg.sum()
    assert map_equation(a, np.zeros(200, dtype=int)) == pytest.approx(-(p * np.log2(p)).sum())


def test_two_cliques_joined_by_one_edge() -> None:
    block = np.ones((6, 6)) - np.eye(6)
    a = sparse.lil_matrix(sparse.block_diag([block, block]))
    a[0, 6] = a[6, 0] = 1
    lab = graph_communities(a.tocsr(), "mapequation", seed=0)
    assert lab.max() + 1 == 2
    assert len(set(lab[:6])) == 1 and len(set(lab[6:])) == 1


def test_knn_graph_union_or_mean_of_the_two_directions() -> None:
    """Points on a line at 0, 1, 3 (as unit vectors by angle): with k=1, 0 and 1 list each
    other, 3 lists 1 alone. The union weighs every edge 1; the mean weighs the one-way
    edge 0.5 (the spectral clusterer's graph)."""
    angles = np.array([0.0, 0.1, 0.3])
    x = np.c_[np.cos(angles), np.sin(angles)].astype(np.float32)
    union = knn_graph(x, 1).toarray()
    mean = knn_graph(x, 1, symmetrise="mean").toarray()
    assert union[0, 1] == union[1, 0] == 1 and union[1, 2] == union[2, 1] == 1
    assert mean[0, 1] == 1 and mean[1, 2] == mean[2, 1] == 0.5 and mean[0, 2] == 0


@pytest.mark.parametrize(
    ("n", "k"), [(3, 10), (770, 10), (4500, 10), (5000, 11), (9999, 22), (10**6, 40)]
)
def test_neighbour_count_grows_with_the_number_of_texts(n: int, k: int) -> None:
    assert neighbours_for(n) == k


def test_the_estimate_uses_the_scaled_count_unless_one_is_given(monkeypatch) -> None:
    from intentlocal.pipeline import autok

    x, _ = _sphere_blobs(5, 32, 0.12)
    est = MapEquationK()
    est.estimate(x)
    assert est.n_neighbors_ == neighbours_for(len(x)) == 10

    class Built(Exception):
        pass

    def graph_only(v: np.ndarray, k: int) -> None:
        raise Built(k)  # the graph's k is all this checks; skip the search

    monkeypatch.setattr(autok, "knn_graph", graph_only)
    with pytest.raises(Built) as got:
        MapEquationK().estimate(np.random.default_rng(0).normal(size=(9999, 8)))
    assert got.value.args == (22,)
    monkeypatch.undo()
    fixed = MapEquationK(n_neighbors=12)
    fixed.estimate(x)
    assert fixed.n_neighbors_ == 12


def test_more_neighbours_read_a_coarser_granularity() -> None:
    """The knob's direction, which the scaling relies on: blobs made of two close
    sub-blobs are split in two with few neighbours and read whole with many."""
    rng = np.random.default_rng(5)
    centres = rng.normal(size=(4, 24))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    parts = []
    for c in centres:
        offset = rng.normal(size=24)
        offset *= 0.2 / np.linalg.norm(offset)
        parts += [c + offset + 0.05 * rng.normal(size=(60, 24)),
                  c - offset + 0.05 * rng.normal(size=(60, 24))]
    x = np.vstack(parts).astype(np.float32)
    fine = MapEquationK(n_neighbors=10).estimate(x)
    coarse = MapEquationK(n_neighbors=90).estimate(x)
    assert fine == 8, fine
    assert coarse == 4, coarse
