"""Scalable geometry helpers shared by the diversity strategies.

Nothing here builds a pool × pool matrix: distances are computed in row chunks against a small
set of centres, k-means is fitted on a seeded subsample with mini-batches, and per-cluster work is
capped. Everything stays float32 so a 1,000,000 × 384 pool fits in a few GB.
"""

from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict

import numpy as np

__all__ = [
    "CHUNK_ROWS",
    "chunked_nearest",
    "fit_kmeans",
    "cluster_pool",
    "subsample",
    "round_robin",
    "typicality",
    "data_fingerprint",
    "cached",
]

#: Rows per distance chunk: 16384 rows × 1000 centres × 4 bytes = 64 MB of scratch.
CHUNK_ROWS = 16384


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**31 - 1))


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


def fit_kmeans(X: np.ndarray, k: int, rng: np.random.Generator, *, max_fit: int = 50_000) -> np.ndarray:
    """Centres of a mini-batch k-means on a seeded subsample of ``X``.

    Parameters
    ----------
    X : ndarray of float32, shape (n, d)
    k : int
        Number of clusters; when ``k >= n`` every row is its own centre.
    max_fit : int
        Largest subsample the centres are fitted on (at least ``20 * k`` rows are used when the
        pool has them, so each centre sees enough points).

    Returns
    -------
    ndarray of float32, shape (min(k, n), d)
    """
    from sklearn.cluster import MiniBatchKMeans

    n = X.shape[0]
    if k >= n:
        return np.array(X, dtype=np.float32, copy=True)
    fit_rows = subsample(n, max(max_fit, 20 * k), rng)
    X_fit = np.asarray(X[fit_rows], dtype=np.float32)
    km = MiniBatchKMeans(
        n_clusters=k,
        random_state=_seed(rng),
        batch_size=max(2048, 2 * k),
        n_init=1,
        max_iter=20,
        max_no_improvement=5,
        init_size=min(X_fit.shape[0], max(3 * k, 3 * 2048)),
        reassignment_ratio=0.0,
    )
    with warnings.catch_warnings():
        # Duplicate rows can leave fewer distinct points than clusters; the assignment step
        # below copes with empty clusters, so sklearn's warning is not actionable.
        warnings.filterwarnings("ignore", message=".*[Nn]umber of distinct clusters.*")
        km.fit(X_fit)
    return km.cluster_centers_.astype(np.float32)


def cluster_pool(X: np.ndarray, k: int, rng: np.random.Generator, *, max_fit: int = 50_000
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mini-batch k-means on ``X`` and the assignment of every row.

    Returns
    -------
    centres : ndarray of float32, shape (k', d) with k' = min(k, n)
    labels : ndarray of int64, shape (n,)
    sq_dist : ndarray of float32, shape (n,)
    """
    centres = fit_kmeans(X, k, rng, max_fit=max_fit)
    labels, dist = chunked_nearest(X, centres)
    return centres, labels, dist


def round_robin(clusters: np.ndarray, priority: np.ndarray, cluster_order: np.ndarray, budget: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Take the best remaining member of each cluster in turn until ``budget`` rows are taken.

    Parameters
    ----------
    clusters : ndarray of int64, shape (n,)
        Cluster of each candidate.
    priority : ndarray of float, shape (n,)
        Higher = taken first within its cluster.
    cluster_order : ndarray of int64
        Cluster ids in the order they are visited each pass; clusters not listed are skipped.
    budget : int
        At most ``n`` rows are taken.

    Returns
    -------
    picks : ndarray of int64, shape (m,)
        Positions into the candidates, in pick order.
    pass_no : ndarray of int64, shape (m,)
        0 for a cluster's first pick, 1 for its second, ...
    """
    visit_rank = np.full(int(clusters.max()) + 1 if clusters.size else 0, np.iinfo(np.int64).max, dtype=np.int64)
    visit_rank[cluster_order] = np.arange(cluster_order.size)
    keep = np.flatnonzero(visit_rank[clusters] < np.iinfo(np.int64).max)
    # Sort members by (cluster, priority desc); the rank of a member within its cluster is the
    # pass it is taken in, so the final order is (pass, cluster visit rank).
    order = keep[np.lexsort((-priority[keep], clusters[keep]))]
    cl = clusters[order]
    starts = np.r_[0, np.flatnonzero(np.diff(cl)) + 1]
    within = np.arange(order.size) - np.repeat(starts, np.diff(np.r_[starts, order.size]))
    final = np.lexsort((visit_rank[cl], within))[:budget]
    return order[final].astype(np.int64), within[final].astype(np.int64)


def typicality(X: np.ndarray, n_neighbors: int = 20) -> np.ndarray:
    """Typicality of each row within a small set: 1 / mean distance to its nearest neighbours.

    Hacohen et al. (2022) define typicality as the inverse mean distance to the K nearest
    neighbours (K = 20). ``X`` must be small (it builds an (m, m) matrix); callers cap m.

    Parameters
    ----------
    X : ndarray of float32, shape (m, d)

    Returns
    -------
    ndarray of float64, shape (m,)
    """
    m = X.shape[0]
    if m == 1:
        return np.ones(1)
    sq = np.einsum("ij,ij->i", X, X)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (X @ X.T)
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, np.inf)
    kk = min(n_neighbors, m - 1)
    nearest = np.partition(d2, kk - 1, axis=1)[:, :kk]
    return 1.0 / (np.sqrt(nearest.astype(np.float64)).mean(axis=1) + 1e-8)


def data_fingerprint(*arrays: np.ndarray) -> str:
    """A key for the *union* of the rows of ``arrays`` that ignores which array holds which row.

    Between labeling rounds rows move from the pool to the labeled set, but their union (and so
    its row count and column sums) stays the same, so a clustering of the union can be reused.
    """
    h = hashlib.sha256()
    n = sum(a.shape[0] for a in arrays)
    d = arrays[0].shape[1]
    total = np.zeros(d, dtype=np.float64)
    sq = 0.0
    for a in arrays:
        for start in range(0, a.shape[0], CHUNK_ROWS):
            block = np.asarray(a[start : start + CHUNK_ROWS], dtype=np.float64)
            total += block.sum(axis=0)
            sq += float(np.einsum("ij,ij->", block, block))
    h.update(f"{n}|{d}|{sq:.6e}".encode())
    h.update(np.round(total, 4).tobytes())
    return h.hexdigest()


_CACHE: "OrderedDict[tuple, object]" = OrderedDict()
_CACHE_SIZE = 4


def cached(key: tuple, compute):
    """Small in-process LRU cache (a few clusterings); ``compute()`` runs on a miss."""
    if key in _CACHE:
        _CACHE.move_to_end(key)
        return _CACHE[key]
    value = compute()
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return value
