import numpy as np
import pytest

from intentlocal.errors import RunError
from intentlocal.pipeline.neighbours import nearest_neighbours


def _unit(n: int, d: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _brute(x: np.ndarray, k: int) -> np.ndarray:
    x64 = x.astype(np.float64)
    s = x64 @ x64.T
    np.fill_diagonal(s, -np.inf)
    return np.array([np.lexsort((np.arange(len(x)), -row))[:k] for row in s])


def test_equals_exact_brute_force_on_1000_vectors() -> None:
    x = _unit(1000, 64)
    assert np.array_equal(nearest_neighbours(x, 10), _brute(x, 10))


def test_hnsw_path_close_to_exact() -> None:
    x = _unit(1000, 32, seed=1)
    approx = nearest_neighbours(x, 10, exact_limit=10)
    exact = _brute(x, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact, strict=True)])
    assert recall > 0.98


def test_never_lists_itself_even_with_duplicates() -> None:
    x = np.vstack([_unit(5, 8)] * 3)
    nb = nearest_neighbours(x, 4)
    assert all(i not in row for i, row in enumerate(nb))
    assert set(nb[0][:2]) == {5, 10}  # its identical copies come first


def test_fewer_texts_than_neighbours() -> None:
    x = _unit(3, 8)
    nb = nearest_neighbours(x, 10)
    assert nb.shape == (3, 2)
    assert nearest_neighbours(_unit(1, 8), 10).shape == (1, 0)


def test_rejects_zero_neighbours() -> None:
    with pytest.raises(RunError):
        nearest_neighbours(_unit(4, 8), 0)


def test_exact_search_in_query_blocks_gives_the_same_neighbours() -> None:
    """The exhaustive search runs the queries in blocks to bound memory; block edges
    (here 7 rows, not dividing 53) must not change any row's neighbours."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(53, 12)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    whole = nearest_neighbours(x, 5, query_block=10_000)
    assert np.array_equal(nearest_neighbours(x, 5, query_block=7), whole)
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    assert np.array_equal(whole[:, 0], sims.argmax(axis=1))
