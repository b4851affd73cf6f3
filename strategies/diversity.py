"""Diversity strategies that need no classifier: k-means centres, TypiClust and core-set.

They work from embeddings alone, so they run at cold start (zero labels) and are what the
uncertainty strategies fall back to there. None builds a pool × pool matrix: k-means is fitted on
a subsample and distances are taken to centres or chosen points, chunk by chunk.
"""

from __future__ import annotations

import numpy as np
from selector.strategies._geometry import round_robin, typicality
from selector.strategies.base import Selection, SelectionContext, Strategy
from selector.strategies.registry import register

from selector.kmeans import chunked_nearest, cluster_pool, subsample

__all__ = ["KMeansStrategy", "TypiclustStrategy", "CoresetStrategy"]


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


@register
class KMeansStrategy(Strategy):
    """Diversity only: k-means with ``budget`` clusters, the pool row nearest each centre.

    Representative sampling by clustering goes back to Nguyen & Smeulders (2004), "Active learning
    using pre-clustering" (ICML), and is the k-means baseline of Zhdanov (2019), "Diverse
    mini-batch active learning". Centres (k-means++ seeding, then Lloyd steps) are fitted on a
    seeded subsample of ``max(max_fit, 10 × budget)`` rows; every pool row is then assigned in chunks, and the row
    nearest each centre is picked, largest clusters first. Clusters left empty are topped up with
    the next-nearest members of the largest clusters, so the batch is always exactly ``budget``.

    Parameters
    ----------
    max_fit : int
        Largest subsample the centres are fitted on.
    """

    name = "kmeans"
    tasks = ("single_label", "multi_label")
    description = "diversity: k-means with budget clusters, the row nearest each centre"

    def __init__(self, max_fit: int = 20_000) -> None:
        self.max_fit = _positive_int("max_fit", max_fit)

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        rng = np.random.default_rng(random_state)
        _, labels, dist = cluster_pool(context.X_pool, budget, rng, max_fit=self.max_fit)
        sizes = np.bincount(labels, minlength=labels.max() + 1)
        order = np.lexsort((np.arange(sizes.size), -sizes))
        order = order[sizes[order] > 0]
        picks, pass_no = round_robin(labels, -dist.astype(np.float64), order, budget)
        cl = labels[picks]
        reasons = np.array(
            [f"kmeans: {'nearest' if p == 0 else 'next-nearest'} row to centre of cluster {c} ({sizes[c]} rows)"
             for c, p in zip(cl, pass_no)], dtype=object)
        scores = 1.0 / (1.0 + np.sqrt(dist[picks].astype(np.float64)))
        return Selection(picks, scores, reasons, {"cluster": cl, "n_clusters": int(sizes.size)})


@register
class TypiclustStrategy(Strategy):
    """TypiClust: the most typical row of the largest clusters that hold the fewest labels.

    Hacohen, Dekel & Weinshall (2022), "Active Learning on a Budget: Opposite Strategies Suit
    High and Low Budgets" (ICML). The pool is clustered into ``min(n_labeled + budget,
    max_clusters)`` clusters (k-means on a subsample); each pick goes to the cluster with the fewest
    labeled rows (labeled rows are assigned to the nearest centre), ties broken by size, skipping
    clusters with fewer than ``min_cluster_size`` rows while larger ones remain. Within the cluster
    the most typical row is taken: the highest inverse mean distance to its ``n_neighbors``
    nearest neighbours, computed on at most ``max_members`` members of that cluster. Pools larger
    than ``max_candidates`` are first sub-sampled (seeded). Made for cold start and low budgets.

    Parameters
    ----------
    max_clusters : int
        Upper bound on the number of clusters (at least ``budget`` are always used).
    n_neighbors : int
        Neighbours in the typicality estimate (20 in the paper).
    min_cluster_size : int
        Clusters smaller than this are used only when no larger one is left (5 in the paper).
    max_members : int
        Members per cluster the typicality is computed on.
    max_candidates : int
        Pool rows considered (a seeded subsample beyond this).
    """

    name = "typiclust"
    tasks = ("single_label", "multi_label")
    description = "cold start / low budget: most typical row of the largest uncovered clusters (TypiClust)"

    def __init__(self, max_clusters: int = 1000, n_neighbors: int = 20, min_cluster_size: int = 5,
                 max_members: int = 2000, max_candidates: int = 200_000) -> None:
        self.max_clusters = _positive_int("max_clusters", max_clusters)
        self.n_neighbors = _positive_int("n_neighbors", n_neighbors)
        self.min_cluster_size = _positive_int("min_cluster_size", min_cluster_size)
        self.max_members = _positive_int("max_members", max_members)
        self.max_candidates = _positive_int("max_candidates", max_candidates)

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        rng = np.random.default_rng(random_state)
        cand = subsample(context.n_pool, max(self.max_candidates, budget), rng)
        X = context.X_pool[cand] if cand.size < context.n_pool else context.X_pool
        k = min(max(context.n_labeled + budget, budget), max(self.max_clusters, budget), X.shape[0])
        centres, labels, _ = cluster_pool(X, k, rng)
        k = centres.shape[0]
        sizes = np.bincount(labels, minlength=k)
        covered = np.zeros(k, dtype=np.int64)
        if context.n_labeled:
            lab_cl, _ = chunked_nearest(context.X_labeled, centres)
            covered += np.bincount(lab_cl, minlength=k)
        members = {}
        remaining = sizes.copy()
        picks, scores, reasons, clusters = [], [], [], []
        for _ in range(budget):
            big = remaining >= min(self.min_cluster_size, int(remaining.max()))
            eligible = np.flatnonzero(big & (remaining > 0))
            # Fewest labels first, then the largest cluster, then the lowest id (deterministic).
            c = int(eligible[np.lexsort((eligible, -sizes[eligible], covered[eligible]))[0]])
            if c not in members:
                rows = np.flatnonzero(labels == c)
                # Capped so the (m, m) typicality matrix stays small, but never below the budget
                # so that one cluster alone can still fill the batch.
                cap = max(self.max_members, budget)
                if rows.size > cap:
                    rows = np.sort(rng.choice(rows, size=cap, replace=False))
                typ = typicality(np.asarray(X[rows], dtype=np.float32), self.n_neighbors)
                order = np.lexsort((rows, -typ))
                members[c] = [rows[order].tolist(), typ[order].tolist(), 0]
                # Rows beyond the capped sample are never taken; keep the count consistent.
                remaining[c] = rows.size
            rows, typ, nxt = members[c]
            picks.append(rows[nxt])
            scores.append(typ[nxt])
            reasons.append(f"typiclust: most typical remaining row of cluster {c} "
                           f"({sizes[c]} rows, {covered[c]} labeled or picked before)")
            clusters.append(c)
            members[c][2] += 1
            covered[c] += 1
            remaining[c] -= 1
        idx = cand[np.asarray(picks, dtype=np.int64)]
        return Selection(idx, np.asarray(scores, dtype=np.float64), np.array(reasons, dtype=object),
                         {"cluster": np.asarray(clusters, dtype=np.int64), "n_clusters": int(k),
                          "n_candidates": int(cand.size)})


@register
class CoresetStrategy(Strategy):
    """Core-set: greedy k-center, each pick the candidate farthest from everything labeled or picked.

    Sener & Savarese (2018), "Active Learning for Convolutional Neural Networks: A Core-Set
    Approach" (ICLR), greedy 2-approximation. It runs on a seeded candidate subset of at most
    ``max_candidates`` pool rows, so the cost is O(candidates × (labeled + budget) × d) with
    distances taken chunk by chunk; never pool × pool. At cold start the first pick is the
    candidate nearest the pool mean (the most central row) rather than an arbitrary one.

    Parameters
    ----------
    max_candidates : int
        Pool rows considered (a seeded subsample beyond this).
    """

    name = "coreset"
    tasks = ("single_label", "multi_label")
    description = "diversity: greedy k-center (core-set) on a candidate subset"

    def __init__(self, max_candidates: int = 20_000) -> None:
        self.max_candidates = _positive_int("max_candidates", max_candidates)

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        rng = np.random.default_rng(random_state)
        cand = subsample(context.n_pool, max(self.max_candidates, budget), rng)
        X = np.ascontiguousarray(context.X_pool[cand], dtype=np.float32)
        x_sq = np.einsum("ij,ij->i", X, X)
        reasons = []
        if context.n_labeled:
            min_d2 = np.full(X.shape[0], np.inf, dtype=np.float32)
            L = np.asarray(context.X_labeled, dtype=np.float32)
            # Labeled rows act as centres: nearest labeled row of every candidate, in chunks.
            for start in range(0, L.shape[0], 4096):
                _, d2 = chunked_nearest(X, L[start : start + 4096])
                np.minimum(min_d2, d2, out=min_d2)
            first = None
        else:
            mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
            first = int(np.argmin(x_sq - 2.0 * (X @ mean)))
            min_d2 = None
        picks = []
        scores = []
        for step in range(budget):
            if step == 0 and first is not None:
                j = first
                scores.append(0.0)
                reasons.append("coreset: most central candidate (cold start, nothing labeled yet)")
            else:
                j = int(np.argmax(min_d2))
                scores.append(float(np.sqrt(max(min_d2[j], 0.0))))
                reasons.append(f"coreset: farthest from labeled/picked rows (distance {scores[-1]:.3f})")
            picks.append(j)
            d2 = x_sq - 2.0 * (X @ X[j]) + x_sq[j]
            min_d2 = d2 if min_d2 is None else np.minimum(min_d2, d2)
            min_d2[j] = -np.inf
        return Selection(cand[np.asarray(picks, dtype=np.int64)], np.asarray(scores, dtype=np.float64),
                         np.array(reasons, dtype=object), {"n_candidates": int(cand.size)})
