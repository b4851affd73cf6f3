"""Uncertainty × diversity strategies: cluster-margin, BADGE and margin + k-means.

Each needs the classifier's pool probabilities; at cold start (no classifier) they fall back to
their ``cold_start`` diversity strategy like every :class:`UncertaintyStrategy`. Their diversity
step runs on a candidate subset or on cached centres, never on a pool × pool matrix.
"""

from __future__ import annotations

import numpy as np
from selector.strategies._geometry import cached, data_fingerprint, round_robin
from selector.strategies.base import Selection, SelectionContext, UncertaintyStrategy, _number
from selector.strategies.diversity import _positive_int
from selector.strategies.registry import register

from selector.kmeans import (
    CHUNK_ROWS,
    chunked_nearest,
    cluster_pool,
    fit_kmeans,
    subsample,
)
from selector.scoring import margin

__all__ = ["ClusterMarginStrategy", "BadgeStrategy", "MarginKMeansStrategy", "top_by_score", "gradient_sq_distances",
           "uncertain_per_cluster"]

DEFAULT_COLD_START = "typiclust"


def top_by_score(scores: np.ndarray, m: int) -> np.ndarray:
    """Positions of the ``m`` highest scores, highest first (ties: lower position first).

    Parameters
    ----------
    scores : ndarray, shape (n,)

    Returns
    -------
    ndarray of int64, shape (min(m, n),)
    """
    n = scores.shape[0]
    m = min(m, n)
    cand = np.argpartition(-scores, m - 1)[:m] if m < n else np.arange(n)
    return cand[np.lexsort((cand, -scores[cand]))].astype(np.int64)


def uncertain_per_cluster(X_pool: np.ndarray, unc: np.ndarray, budget: int, factor: float,
                          rng: np.random.Generator, centre_weight: float = 0.0
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Zhdanov's (2019) diverse batch: the ``factor x budget`` most uncertain rows, k-means into ``budget``
    clusters, the most uncertain row of each cluster in turn (clusters visited by their most uncertain
    member, so the batch is ranked by uncertainty).

    Parameters
    ----------
    X_pool : ndarray, shape (n_pool, d)
    unc : ndarray, shape (n_pool,)
        Uncertainty, higher = pick first.
    centre_weight : float
        In [0, 1]: which row each cluster gives. 0 (the default): its most uncertain; 1: the one
        nearest its centre (Zhdanov's original); between: the best weighted mean of the two ranks
        among the candidates, ``(1 - w) * uncertainty rank + w * nearness rank``.

    Returns
    -------
    indices : ndarray of int64, shape (budget,)
        Pool positions, best first.
    cluster : ndarray of int64, shape (budget,)
    pass_no : ndarray of int64, shape (budget,)
        0 for a cluster's most uncertain member, 1 for its next, ...
    n_candidates : int
    """
    cand = top_by_score(unc, max(budget, int(round(factor * budget))))
    centres, labels, sq_dist = cluster_pool(X_pool[cand], budget, rng)
    sizes = np.bincount(labels, minlength=centres.shape[0])
    best = np.full(sizes.size, -np.inf)
    np.maximum.at(best, labels, unc[cand])
    order = np.lexsort((np.arange(sizes.size), -best))
    order = order[sizes[order] > 0]
    priority = unc[cand]
    if centre_weight > 0:
        r_unc = np.argsort(np.argsort(unc[cand], kind="stable"), kind="stable")
        r_cen = np.argsort(np.argsort(-np.asarray(sq_dist, dtype=np.float64), kind="stable"), kind="stable")
        priority = (1.0 - centre_weight) * r_unc + centre_weight * r_cen
    picks, pass_no = round_robin(labels, priority, order, budget)
    return cand[picks], labels[picks], pass_no, int(cand.size)


def _positive_float(name: str, value, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or value <= minimum:
        raise ValueError(f"{name} must be a number > {minimum}, got {value!r}")
    return float(value)


@register
class MarginKMeansStrategy(UncertaintyStrategy):
    """Margin pre-filter, then k-means: the most uncertain row of each of ``budget`` clusters.

    Zhdanov (2019), "Diverse mini-batch Active Learning" (arXiv:1901.05954): keep the
    ``factor × budget`` rows with the smallest margin between the two most probable classes,
    cluster them into ``budget`` clusters (k-means), and take from each cluster the
    row with the smallest margin (the paper takes the row nearest the centre; the most uncertain
    member measured better on our text benchmarks). The batch is uncertain but not redundant.

    Parameters
    ----------
    factor : float
        Candidates kept per batch slot (the paper's beta; 10 by default).
    cold_start : str
        Diversity strategy used while no classifier can be fitted.
    centre_weight : float
        In [0, 1]: 0 (the default) takes each cluster's most uncertain row, 1 the row nearest its
        centre, a value between the best weighted mean of the two ranks (see
        :func:`uncertain_per_cluster`). ``auto`` sets it to 1 - the model's prediction stability.
    """

    name = "margin_kmeans"
    description = "uncertainty x diversity: top factor x budget by margin, k-means, most uncertain per cluster"

    def __init__(self, factor: float = 10.0, cold_start: str = DEFAULT_COLD_START, centre_weight: float = 0.0) -> None:
        super().__init__(cold_start=cold_start)
        self.factor = _positive_float("factor", factor, minimum=1.0 - 1e-12)
        self.centre_weight = _number("centre_weight", centre_weight, lambda v: 0 <= v <= 1, "a number in [0, 1]")

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        rng = np.random.default_rng(random_state)
        unc = margin(context.proba_pool)
        idx, cluster, pass_no, n_cand = uncertain_per_cluster(context.X_pool, unc, budget, self.factor, rng,
                                                              self.centre_weight)
        which = ("uncertain" if not self.centre_weight else
                 f"uncertain and central (centre weight {self.centre_weight:.2f})")
        reasons = np.array(
            [f"margin_kmeans: {'most' if p == 0 else 'next most'} {which} of cluster {c} "
             f"among the {n_cand} lowest-margin rows (margin score {s:.3f})"
             for c, p, s in zip(cluster, pass_no, unc[idx])], dtype=object)
        return Selection(idx, unc[idx], reasons, {"cluster": cluster, "n_candidates": n_cand})


def _union_rows(context: SelectionContext, positions: np.ndarray) -> np.ndarray:
    """Rows of the union ``[X_pool; X_labeled]`` at ``positions`` (without concatenating)."""
    n_pool = context.n_pool
    from_pool = positions < n_pool
    out = np.empty((positions.size, context.X_pool.shape[1]), dtype=np.float32)
    out[from_pool] = context.X_pool[positions[from_pool]]
    if (~from_pool).any():
        out[~from_pool] = context.X_labeled[positions[~from_pool] - n_pool]
    return out


@register
class ClusterMarginStrategy(UncertaintyStrategy):
    """Cluster-Margin: cluster once, take the lowest-margin rows round-robin over clusters.

    Citovsky et al. (2021), "Batch Active Learning at Scale" (NeurIPS). The whole data (pool and
    labeled rows together) is clustered once — k-means on a subsample into ``n_clusters`` clusters
    instead of the paper's hierarchical agglomerative clustering, which does not scale — and the
    centres are cached in-process, keyed by the data, so later rounds on the same data reuse them.
    Each round keeps the ``factor × budget`` lowest-margin pool rows, groups them by cluster and
    takes one row per cluster in turn, smallest clusters first (as in the paper), the most
    uncertain member first (the paper samples a random member).

    Parameters
    ----------
    factor : float
        Candidates kept per batch slot (the paper's k_m / k_t; 10 by default).
    n_clusters : int or None
        Number of clusters; None = ``clip(n_rows // 20, 2, 1000)``.
    cold_start : str
        Diversity strategy used while no classifier can be fitted.
    """

    name = "cluster_margin"
    description = "uncertainty x diversity: lowest-margin rows round-robin over clusters computed once (cached)"

    def __init__(self, factor: float = 10.0, n_clusters: int | None = None,
                 cold_start: str = DEFAULT_COLD_START) -> None:
        super().__init__(cold_start=cold_start)
        self.factor = _positive_float("factor", factor, minimum=1.0 - 1e-12)
        self.n_clusters = None if n_clusters is None else _positive_int("n_clusters", n_clusters)

    def _centres(self, context: SelectionContext, random_state: int | None) -> np.ndarray:
        n_total = context.n_pool + context.n_labeled
        k = self.n_clusters or int(np.clip(n_total // 20, 2, 1000))
        key = ("cluster_margin", data_fingerprint(context.X_pool, context.X_labeled), k, random_state)

        def compute() -> np.ndarray:
            rng = np.random.default_rng(random_state)
            rows = _union_rows(context, subsample(n_total, max(20_000, 10 * k), rng))
            return fit_kmeans(rows, k, rng)

        return cached(key, compute)

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        centres = self._centres(context, random_state)
        unc = margin(context.proba_pool)
        cand = top_by_score(unc, max(budget, int(round(self.factor * budget))))
        labels, _ = chunked_nearest(context.X_pool[cand], centres)
        counts = np.bincount(labels, minlength=centres.shape[0])
        order = np.lexsort((np.arange(counts.size), counts))
        order = order[counts[order] > 0]
        picks, pass_no = round_robin(labels, unc[cand], order, budget)
        idx = cand[picks]
        reasons = np.array(
            [f"cluster_margin: round {p + 1} over clusters, cluster {c} "
             f"({counts[c]} of the {cand.size} lowest-margin rows; margin score {s:.3f})"
             for c, p, s in zip(labels[picks], pass_no, unc[idx])], dtype=object)
        return Selection(idx, unc[idx], reasons,
                         {"cluster": labels[picks], "n_clusters": int(centres.shape[0]),
                          "n_candidates": int(cand.size)})


def gradient_sq_distances(A: np.ndarray, X: np.ndarray, g_sq: np.ndarray, j: int) -> np.ndarray:
    """Squared distances of every row's gradient embedding to row ``j``'s, in factorised form.

    With ``g_i = a_i ⊗ [x_i, 1]``: ``||g_i - g_j||² = ||g_i||² + ||g_j||² - 2 <a_i, a_j> (<x_i, x_j> + 1)``.

    Parameters
    ----------
    A : ndarray of float32, shape (n, k)
        ``p_i - e_ŷi`` per row.
    X : ndarray of float32, shape (n, d)
    g_sq : ndarray of float32, shape (n,)
        ``||a_i||² (||x_i||² + 1)``.

    Returns
    -------
    ndarray of float32, shape (n,)
    """
    inner = (A @ A[j]) * (X @ X[j] + 1.0)
    return np.maximum(g_sq + g_sq[j] - 2.0 * inner, 0.0)


@register
class BadgeStrategy(UncertaintyStrategy):
    """BADGE: k-means++ seeding on the gradient embeddings of the last layer.

    Ash et al. (2020), "Deep Batch Active Learning by Diverse, Uncertain Gradient Lower Bounds"
    (ICLR). For a softmax-linear model (logistic regression on the embeddings) the gradient of the
    loss at the predicted label ŷ with respect to the weights of row x is exactly
    ``g = (p - e_ŷ) ⊗ [x, 1]``, so ``<g_i, g_j> = <p_i - e_ŷi, p_j - e_ŷj> (<x_i, x_j> + 1)``: the
    k-means++ seeding only ever needs these factorised inner products with chosen centres,
    never the (classes × dims) embedding itself. The first centre is the largest gradient, each
    next one is drawn with probability proportional to its squared distance to the nearest chosen
    centre. With another classifier the same formula is the gradient of a linear softmax head on
    the embeddings (a proxy). Pools larger than ``max_candidates`` keep the rows with the
    largest gradient norm (the rows k-means++ would sample most).

    Parameters
    ----------
    max_candidates : int
        Pool rows seeded over.
    cold_start : str
        Diversity strategy used while no classifier can be fitted.
    """

    name = "badge"
    description = "uncertainty x diversity: k-means++ on exact (factorised) logistic-regression gradient embeddings"

    def __init__(self, max_candidates: int = 20_000, cold_start: str = DEFAULT_COLD_START) -> None:
        super().__init__(cold_start=cold_start)
        self.max_candidates = _positive_int("max_candidates", max_candidates)

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        rng = np.random.default_rng(random_state)
        P = context.proba_pool
        A_all = P.astype(np.float32)
        A_all[np.arange(P.shape[0]), P.argmax(axis=1)] -= 1.0
        a_sq_all = np.einsum("ij,ij->i", A_all, A_all)
        x_sq_all = np.empty(context.n_pool, dtype=np.float32)
        for start in range(0, context.n_pool, CHUNK_ROWS):
            block = np.asarray(context.X_pool[start : start + CHUNK_ROWS], dtype=np.float32)
            x_sq_all[start : start + block.shape[0]] = np.einsum("ij,ij->i", block, block)
        g_sq_all = a_sq_all * (x_sq_all + 1.0)
        cand = (top_by_score(g_sq_all.astype(np.float64), max(self.max_candidates, budget))
                if context.n_pool > max(self.max_candidates, budget) else np.arange(context.n_pool))
        cand = np.sort(cand)
        A = A_all[cand]
        X = np.ascontiguousarray(context.X_pool[cand], dtype=np.float32)
        g_sq = g_sq_all[cand]
        picks, scores = [], []
        d2 = None
        for step in range(budget):
            if step == 0:
                j = int(np.argmax(g_sq))
                scores.append(float(g_sq[j]))
            else:
                # Draw proportional to d2 by inverse CDF (float64 cumsum: no normalisation drift);
                # chosen rows have d2 = 0 and so are never drawn again.
                cum = np.cumsum(d2, dtype=np.float64)
                if cum[-1] > 0 and np.isfinite(cum[-1]):
                    j = int(min(np.searchsorted(cum, rng.random() * cum[-1], side="right"), d2.size - 1))
                    if d2[j] <= 0:  # only at a floating-point edge: take the largest instead
                        j = int(np.argmax(d2))
                else:  # every remaining gradient coincides with a centre: any row is as good
                    free = np.setdiff1d(np.arange(d2.size), picks)
                    j = int(rng.choice(free))
                scores.append(float(d2[j]))
            picks.append(j)
            new = gradient_sq_distances(A, X, g_sq, j)
            d2 = new if d2 is None else np.minimum(d2, new)
            d2[picks] = 0.0
        picks = np.asarray(picks, dtype=np.int64)
        idx = cand[picks]
        norms = np.sqrt(g_sq[picks])
        reasons = np.array(
            ["badge: largest gradient embedding (first k-means++ centre, norm {:.3f})".format(norms[0])]
            + [f"badge: k-means++ draw in gradient space (norm {g:.3f}, sq. distance to chosen {s:.3f})"
               for g, s in zip(norms[1:], scores[1:])], dtype=object)
        return Selection(idx, np.asarray(scores, dtype=np.float64), reasons, {"n_candidates": int(cand.size)})
