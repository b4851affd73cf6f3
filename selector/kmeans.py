"""k-means for every subsystem: float32 k-means++ seeding and Lloyd steps, in row chunks.

Nothing here builds a pool x pool matrix: distances are computed in row chunks against a small
set of centres and k-means is fitted on a seeded subsample, so a 1,000,000 x 384 pool fits in a
few GB. The strategies (diversity, hybrids), the neighbour index and the data card's coverage all
cluster with these functions.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["CHUNK_ROWS", "subsample", "chunked_nearest", "kmeans_plusplus", "fit_kmeans", "cluster_pool"]

#: Rows per distance chunk: 16384 rows × 1000 centres × 4 bytes = 64 MB of scratch.
CHUNK_ROWS = 16384


def subsample(n: int, max_n: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of a seeded random subset of ``range(n)`` of size ``min(n, max_n)``."""
    if n <= max_n:
        return np.arange(n, dtype=np.int64)
    return np.sort(rng.choice(n, size=max_n, replace=False)).astype(np.int64)


def chunked_nearest(X: np.ndarray, C: np.ndarray, chunk: int = CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray]:
    """Nearest centre of every row, chunk by chunk.

    Parameters
    ----------
    X : ndarray of float32, shape (n, d)
    C : ndarray of float32, shape (k, d)

    Returns
    -------
    labels : ndarray of int64, shape (n,)
    sq_dist : ndarray of float32, shape (n,)
        Squared Euclidean distance to that centre.
    """
    C = np.ascontiguousarray(C, dtype=np.float32)
    c_sq = np.einsum("ij,ij->i", C, C)
    labels = np.empty(X.shape[0], dtype=np.int64)
    dist = np.empty(X.shape[0], dtype=np.float32)
    for start in range(0, X.shape[0], chunk):
        block = np.asarray(X[start : start + chunk], dtype=np.float32)
        d2 = block @ C.T
        d2 *= -2.0
        d2 += c_sq[None, :]
        best = d2.argmin(axis=1)
        x_sq = np.einsum("ij,ij->i", block, block)
        labels[start : start + block.shape[0]] = best
        dist[start : start + block.shape[0]] = np.maximum(d2[np.arange(block.shape[0]), best] + x_sq, 0.0)
    return labels, dist


def kmeans_plusplus(X: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): positions of ``k`` distinct rows of ``X``.

    Each next centre is drawn with probability proportional to its squared distance to the
    nearest centre chosen so far; only an (n,) distance vector is kept.

    Parameters
    ----------
    X : ndarray of float32, shape (n, d), with n >= k

    Returns
    -------
    ndarray of int64, shape (k,)
    """
    n = X.shape[0]
    x_sq = np.einsum("ij,ij->i", X, X)
    chosen = [int(rng.integers(n))]
    d2 = np.maximum(x_sq - 2.0 * (X @ X[chosen[0]]) + x_sq[chosen[0]], 0.0)
    d2[chosen[0]] = 0.0
    for _ in range(1, k):
        cum = np.cumsum(d2, dtype=np.float64)
        if cum[-1] > 0:
            j = int(min(np.searchsorted(cum, rng.random() * cum[-1], side="right"), n - 1))
            if d2[j] <= 0:
                j = int(np.argmax(d2))
        else:  # duplicates only: any row not chosen yet
            j = int(rng.choice(np.setdiff1d(np.arange(n), chosen)))
        chosen.append(j)
        np.minimum(d2, np.maximum(x_sq - 2.0 * (X @ X[j]) + x_sq[j], 0.0), out=d2)
        d2[j] = 0.0
    return np.asarray(chosen, dtype=np.int64)


def fit_kmeans(X: np.ndarray, k: int, rng: np.random.Generator, *, max_fit: int = 20_000,
               n_iter: int = 10) -> np.ndarray:
    """Centres of k-means (k-means++ seeding, then Lloyd steps) on a seeded subsample of ``X``.

    Everything is float32 BLAS in row chunks (scikit-learn's k-means upcasts float32 distances
    to float64, which made it several times slower here). Empty clusters are re-seeded at the
    rows farthest from their centres.

    Parameters
    ----------
    X : ndarray of float32, shape (n, d)
    k : int
        Number of clusters; when ``k >= n`` every row is its own centre.
    max_fit : int
        Rows the centres are fitted on (at least ``10 * k`` when the pool has them).
    n_iter : int
        Most Lloyd iterations (stops early when no assignment changes).

    Returns
    -------
    ndarray of float32, shape (min(k, n), d)
    """
    n = X.shape[0]
    if k >= n:
        return np.array(X, dtype=np.float32, copy=True)
    fit_rows = subsample(n, max(max_fit, 10 * k), rng)
    X_fit = np.ascontiguousarray(X[fit_rows], dtype=np.float32)
    m = X_fit.shape[0]
    # Seeding is sequential (k passes over its rows), so it runs on a smaller seeded sample;
    # the Lloyd steps on all fitted rows then move the centres where they belong.
    seed_rows = subsample(m, max(3 * k, 4096), rng)
    C = X_fit[seed_rows[kmeans_plusplus(X_fit[seed_rows], k, rng)]].copy()
    labels = None
    for _ in range(n_iter):
        new_labels, d2 = chunked_nearest(X_fit, C)
        if labels is not None and np.array_equal(new_labels, labels):
            break
        labels = new_labels
        member = sparse.csr_matrix((np.ones(m, dtype=np.float32), (labels, np.arange(m))), shape=(k, m))
        counts = np.bincount(labels, minlength=k)
        sums = np.asarray(member @ X_fit, dtype=np.float32)
        full = counts > 0
        C[full] = sums[full] / counts[full, None]
        empty = np.flatnonzero(~full)
        if empty.size:
            far = np.argsort(-d2, kind="stable")[: empty.size]
            C[empty] = X_fit[far]
    return C


def cluster_pool(X: np.ndarray, k: int, rng: np.random.Generator, *, max_fit: int = 20_000
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k-means (fitted on a subsample) on ``X`` and the assignment of every row.

    Returns
    -------
    centres : ndarray of float32, shape (k', d) with k' = min(k, n)
    labels : ndarray of int64, shape (n,)
    sq_dist : ndarray of float32, shape (n,)
    """
    centres = fit_kmeans(X, k, rng, max_fit=max_fit)
    labels, dist = chunked_nearest(X, centres)
    return centres, labels, dist
