"""Nearest neighbours among L2-normalised embeddings, without an N x N matrix.

Up to ``exact_max`` rows the search is exact (cosine similarity by chunked dot products, each
chunk ``chunk x n``). Above it an inverted-file index is used: a few Lloyd steps of
:func:`selector.kmeans.fit_kmeans` place ``~sqrt(n)`` centroids, every row joins its nearest
centroid's cell, and the rows of one cell search only the rows of the ``n_probe`` cells whose
centroids are nearest to theirs, so the work grows like ``n * sqrt(n)`` instead of ``n^2``. That
search is approximate (a true neighbour in an unprobed cell is missed); ``scripts/bench_suspects.py``
reports its recall against the exact one. :func:`nearest_in` searches one set of rows for another's
nearest rows (exact, chunked).
"""

from __future__ import annotations

import numpy as np

from selector.kmeans import chunked_nearest, fit_kmeans

__all__ = ["nearest_neighbors", "nearest_in", "EXACT_MAX"]

EXACT_MAX = 20_000
_CHUNK_FLOATS = 1 << 24  # similarities held at once: 64 MB of float32


def _top_k(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Column positions and values of the ``k`` largest entries of each row, largest first."""
    n = sim.shape[1]
    # Partition for the k largest in place of the k smallest of ``-sim``: no negated copy of the block.
    part = np.argpartition(sim, n - k, axis=1)[:, n - k:]
    vals = np.take_along_axis(sim, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(vals, order, axis=1)


def _exact(X: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = X.shape[0]
    idx = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float32)
    chunk = max(1, _CHUNK_FLOATS // max(n, 1))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        s = X[start:stop] @ X.T
        s[np.arange(stop - start), np.arange(start, stop)] = -np.inf  # a row is not its own neighbour
        idx[start:stop], sim[start:stop] = _top_k(s, k)
    return idx, sim


def _ivf(X: np.ndarray, k: int, n_probe: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = X.shape[0]
    n_cells = max(2, int(np.sqrt(n)))
    # A few Lloyd steps: cells of similar size are what matters, not convergence.
    centroids = fit_kmeans(X, n_cells, rng, n_iter=3)
    centroids /= np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), np.float32(1e-12))
    cell, _ = chunked_nearest(X, centroids)
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(n_cells + 1))
    n_probe = min(n_probe, n_cells)
    probe, _ = _top_k(centroids @ centroids.T, n_probe)  # each cell probes itself first
    idx = np.empty((n, k), dtype=np.int64)
    sim = np.empty((n, k), dtype=np.float32)
    for c in range(n_cells):
        members = order[bounds[c]:bounds[c + 1]]
        if members.size == 0:
            continue
        cand = np.concatenate([order[bounds[p]:bounds[p + 1]] for p in probe[c]])
        if cand.size <= k:  # too few candidates (tiny cells of small data): search every row
            cand = np.arange(n)
        s = X[members] @ X[cand].T
        s[cand[None, :] == members[:, None]] = -np.inf  # a row is not its own neighbour
        pos, val = _top_k(s, k)
        idx[members], sim[members] = cand[pos], val
    return idx, sim


def nearest_neighbors(X: np.ndarray, k: int, *, exact_max: int = EXACT_MAX, n_probe: int = 16,
                      random_state: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` most similar other rows of every row (cosine similarity).

    Parameters
    ----------
    X : ndarray, shape (n, d)
        L2-normalised rows.
    k : int
        Neighbours per row; must be < n.
    exact_max : int
        Exact search up to this many rows, the inverted-file index above.
    n_probe : int
        Cells searched per cell in the inverted-file index.
    random_state : int or None
        Seeds the index's initial centroids.

    Returns
    -------
    indices : ndarray of int64, shape (n, k)
        Row positions, most similar first; never the row itself.
    similarities : ndarray of float32, shape (n, k)
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k must be between 1 and n - 1 = {n - 1}, got {k}")
    if n <= exact_max:
        return _exact(X, k)
    return _ivf(X, k, n_probe, np.random.default_rng(random_state))


def nearest_in(X_index: np.ndarray, X_query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` rows of ``X_index`` most similar to each row of ``X_query`` (exact, chunked).

    Parameters
    ----------
    X_index : ndarray, shape (n, d)
        L2-normalised rows to search.
    X_query : ndarray, shape (m, d)
        L2-normalised rows to search for.
    k : int
        Clipped to ``n``.

    Returns
    -------
    indices : ndarray of int64, shape (m, min(k, n))
        Positions in ``X_index``, most similar first.
    similarities : ndarray of float32, shape (m, min(k, n))
    """
    X_index = np.ascontiguousarray(X_index, dtype=np.float32)
    X_query = np.ascontiguousarray(X_query, dtype=np.float32)
    n, m = X_index.shape[0], X_query.shape[0]
    k = int(min(k, n))
    idx = np.empty((m, k), dtype=np.int64)
    sim = np.empty((m, k), dtype=np.float32)
    chunk = max(1, _CHUNK_FLOATS // max(n, 1))
    for start in range(0, m, chunk):
        idx[start:start + chunk], sim[start:start + chunk] = _top_k(X_query[start:start + chunk] @ X_index.T, k)
    return idx, sim
