"""Nearest neighbours in memory: the exact top k, never a removed row."""

from __future__ import annotations

import numpy as np

from mcode.retrieval.vectors import VectorMatrix

DIM = 32


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Vectors around a few centres, with variance falling off across dimensions as in real
    embeddings (uniform noise in every dimension would leave no principal directions to find)."""
    rng = np.random.default_rng(seed)
    spectrum = 1.0 / np.arange(1, DIM + 1)
    centres = rng.normal(size=(12, DIM)) * spectrum
    noise = 0.3 * rng.normal(size=(n, DIM)) * spectrum
    return (centres[rng.integers(0, 12, n)] + noise).astype(np.float32)


def exact(data: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    unit = data / np.linalg.norm(data, axis=1, keepdims=True)
    return list(np.argsort(-(unit @ (query / np.linalg.norm(query))), kind="stable")[:k])


def filled(data: np.ndarray) -> VectorMatrix:
    matrix = VectorMatrix(DIM)
    matrix.set(np.arange(len(data)), data)
    return matrix


def test_neighbours_are_the_exact_ones() -> None:
    data = clustered(500)
    matrix = filled(data)
    query = clustered(1, seed=9)[0]
    found = matrix.nearest(query, 10, len(data))
    assert [i for i, _ in found] == exact(data, query, 10)
    similarities = [s for _, s in found]
    assert similarities == sorted(similarities, reverse=True)


def test_removed_rows_are_never_found_and_compaction_keeps_answers() -> None:
    data = clustered(3_000)
    matrix = filled(data)
    query = data[42]
    assert matrix.nearest(query, 1, len(data))[0][0] == 42
    matrix.kill(42)
    assert 42 not in [i for i, _ in matrix.nearest(query, 50, len(data))]
    keep = np.array([i for i in range(len(data)) if i != 42])
    expected = [int(np.searchsorted(keep, i)) for i, _ in matrix.nearest(query, 10, len(data))]
    matrix.compact(keep)
    assert [i for i, _ in matrix.nearest(query, 10, len(keep))] == expected


def test_rows_set_later_are_found_and_the_matrix_grows() -> None:
    matrix = VectorMatrix(DIM, capacity=4)
    data = clustered(3_000)
    for start in range(0, 3_000, 700):
        rows = np.arange(start, min(start + 700, 3_000))
        matrix.set(rows, data[rows])
    assert matrix.nearest(data[2_999], 1, 3_000)[0][0] == 2_999
