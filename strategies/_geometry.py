"""Geometry helpers shared by the diversity strategies (k-means itself is :mod:`selector.kmeans`).

Nothing here builds a pool × pool matrix: per-cluster work is capped and distances are computed
in row chunks. Everything stays float32 so a 1,000,000 × 384 pool fits in a few GB.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np

from selector.kmeans import CHUNK_ROWS

__all__ = [
    "round_robin",
    "typicality",
    "data_fingerprint",
    "cached",
]


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
