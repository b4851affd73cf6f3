"""Multi-label query strategies: per-label uncertainty, MMC, CVIRS, max loss, and their diverse hybrid.

In a multi-label context (``context.multi_label``) the classifier gives one independent probability
per label, ``P`` of shape (n_pool, L), and the labeled rows carry an indicator matrix ``Y`` of shape
(n_labeled, L). ``f = 2 P - 1`` plays the part of the SVM outputs in the papers (in [-1, 1], sign =
predicted label). Every score is oriented higher = pick first. At cold start each falls back to
``typiclust``, like every uncertainty strategy.
"""

from __future__ import annotations

import numpy as np
from selector.strategies.base import Selection, SelectionContext, UncertaintyStrategy
from selector.strategies.hybrid import uncertain_per_cluster
from selector.strategies.registry import register
from selector.strategies.simple import TopKUncertainty

from selector.scoring import as_label_proba, label_entropy, label_margin

__all__ = ["LabelEntropyStrategy", "LabelMarginStrategy", "MMCStrategy", "CVIRSStrategy", "MaxLossStrategy",
           "LabelKMeansStrategy", "mmc_scores", "cvirs_scores", "max_loss_scores", "label_vector_distance",
           "MULTILABEL_SCORE_NAMES", "multilabel_scores"]

_COLD = "typiclust"


def max_loss_scores(P: np.ndarray) -> np.ndarray:
    """modAL's max loss: hinge loss of ``f`` against "only the most probable label", per label, in [0, 1].

    Parameters
    ----------
    P : ndarray, shape (n, L)

    Returns
    -------
    ndarray, shape (n,)
    """
    f = 2.0 * P - 1.0
    t = -np.ones_like(f)
    t[np.arange(P.shape[0]), P.argmax(axis=1)] = 1.0
    return np.maximum(1.0 - t * f, 0.0).sum(axis=1) / (2.0 * max(P.shape[1], 1))


def mmc_scores(P: np.ndarray, P_labeled: np.ndarray, Y_labeled: np.ndarray,
               random_state: int | None = None) -> np.ndarray:
    """Maximum loss reduction with maximal confidence (Yang et al. 2009, KDD), in [0, 1].

    A logistic regression learns each labeled row's number of labels from its sorted, normalised
    label probabilities; a pool row's predicted set is its ``m`` most probable labels, and its
    score the expected loss reduction ``sum_l (1 - yhat_l f_l) / 2`` (divided by L).

    Parameters
    ----------
    P : ndarray, shape (n_pool, L)
    P_labeled : ndarray, shape (n_labeled, L)
        The classifier's probabilities on the labeled rows.
    Y_labeled : ndarray of 0/1, shape (n_labeled, L)
    """
    from sklearn.linear_model import LogisticRegression

    L = P.shape[1]

    def features(Q):
        q = -np.sort(-Q, axis=1)
        return q / np.maximum(q.sum(axis=1, keepdims=True), 1e-12)

    counts = np.asarray(Y_labeled).sum(axis=1).astype(int)
    if np.unique(counts).size < 2:
        m = np.full(P.shape[0], int(counts[0]) if counts.size else 1)
    else:
        lr = LogisticRegression(max_iter=1000, random_state=random_state).fit(features(P_labeled), counts)
        m = lr.predict(features(P)).astype(int)
    m = np.clip(m, 0, L)
    rank = np.argsort(np.argsort(-P, axis=1, kind="stable"), axis=1, kind="stable")
    yhat = np.where(rank < m[:, None], 1.0, -1.0)
    return ((1.0 - yhat * (2.0 * P - 1.0)) / 2.0).sum(axis=1) / max(L, 1)


def _entropy2(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-12, 1.0)
    return np.where(p > 0, -p * np.log2(q), 0.0)


def label_vector_distance(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Reyes et al.'s (2018) information-theoretic distance between binary label vectors.

    With ``a, b, c, d`` the shares of positions where both vectors are 1, only ``B``, only ``A``,
    both 0: 1 when the vectors differ everywhere, else ``(2 H(A, B) - H(A) - H(B)) / H(A, B)``
    (normalised variation of information; 0 when both are the same constant vector).

    Parameters
    ----------
    A : ndarray of 0/1, shape (m, L)
    B : ndarray of 0/1, shape (k, L)

    Returns
    -------
    ndarray, shape (m, k)
    """
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    L = max(A.shape[1], 1)
    a = A @ B.T / L
    b = (1 - A) @ B.T / L
    c = A @ (1 - B).T / L
    d = (1 - A) @ (1 - B).T / L
    hA = _entropy2(A.mean(axis=1)) + _entropy2(1 - A.mean(axis=1))
    hB = _entropy2(B.mean(axis=1)) + _entropy2(1 - B.mean(axis=1))
    joint = _entropy2(a) + _entropy2(b) + _entropy2(c) + _entropy2(d)
    dist = np.where(joint > 1e-12, (2 * joint - hA[:, None] - hB[None, :]) / np.maximum(joint, 1e-12), 0.0)
    dist[(b + c) >= 1.0 - 1e-12] = 1.0
    return np.clip(dist, 0.0, 1.0)


def cvirs_scores(P: np.ndarray, Y_labeled: np.ndarray) -> np.ndarray:
    """Category vector inconsistency and ranking of scores (Reyes, Morell & Ventura 2018), in [0, 1].

    The product of (1) a Borda count of each row's per-label margin ranks (smallest margin
    ``|2 p - 1|`` ranked first, averaged over labels and scaled to [0, 1]) and (2) the mean
    :func:`label_vector_distance` between the row's predicted set (``p > 0.5``) and the labeled rows'
    sets. Distances are computed once per distinct predicted and labeled set, so the cost grows with
    the number of distinct sets, not with pool x labeled rows.

    Parameters
    ----------
    P : ndarray, shape (n_pool, L)
    Y_labeled : ndarray of 0/1, shape (n_labeled, L)
    """
    from scipy.stats import rankdata

    n, L = P.shape
    margins = np.abs(2.0 * P - 1.0)
    ranks = rankdata(margins, axis=0, method="average") - 1.0  # 0 = most uncertain
    borda = ((n - 1) - ranks).sum(axis=1) / (L * max(n - 1, 1))
    pred = (P > 0.5).astype(np.int8)
    pred_sets, pred_inv = np.unique(pred, axis=0, return_inverse=True)
    lab_sets, lab_counts = np.unique(np.asarray(Y_labeled, dtype=np.int8), axis=0, return_counts=True)
    inconsistency = label_vector_distance(pred_sets, lab_sets) @ (lab_counts / lab_counts.sum())
    return borda * inconsistency[np.asarray(pred_inv).reshape(-1)]


def _labeled_proba(context: SelectionContext) -> np.ndarray:
    """The fitted classifier's probabilities on the labeled rows, shape (n_labeled, L)."""
    return as_label_proba(context.classifier.predict_proba(context.X_labeled), len(context.classes))


#: Multi-label uncertainty scores by name (each ``(context, random_state) -> (n_pool,)``).
MULTILABEL_SCORE_NAMES = ("label_entropy", "label_margin", "mmc", "cvirs", "max_loss")


def multilabel_scores(name: str, context: SelectionContext, random_state: int | None = None) -> np.ndarray:
    """The named multi-label uncertainty score of every pool row, shape (n_pool,), higher = pick first."""
    P = context.proba_pool
    if name == "label_entropy":
        return label_entropy(P)
    if name == "label_margin":
        return label_margin(P)
    if name == "max_loss":
        return max_loss_scores(P)
    if name == "mmc":
        return mmc_scores(P, _labeled_proba(context), context.y_labeled, random_state=random_state)
    if name == "cvirs":
        return cvirs_scores(P, context.y_labeled)
    raise ValueError(f"unknown multi-label score {name!r}; choose one of {', '.join(MULTILABEL_SCORE_NAMES)}")


class _MultiLabelTopK(TopKUncertainty):
    tasks = ("multi_label",)

    def __init__(self, cold_start: str = _COLD) -> None:
        super().__init__(cold_start=cold_start)

    def _context_scores(self, context: SelectionContext) -> np.ndarray:
        return multilabel_scores(self.score_name, context)


@register
class LabelEntropyStrategy(_MultiLabelTopK):
    """Top-k by the mean binary entropy over labels (multi-label)."""

    name = "label_entropy"
    description = "multi-label: top-k by mean per-label binary entropy"
    score_name = "label_entropy"


@register
class LabelMarginStrategy(_MultiLabelTopK):
    """Top-k by the smallest per-label margin (multi-label)."""

    name = "label_margin"
    description = "multi-label: top-k by the smallest per-label margin |2p - 1|"
    score_name = "label_margin"


@register
class MaxLossStrategy(_MultiLabelTopK):
    """modAL's ``max_loss`` on probabilities (multi-label); see :func:`max_loss_scores`."""

    name = "max_loss"
    description = "multi-label: top-k by hinge loss against the most probable label alone (modAL max loss)"
    score_name = "max_loss"


@register
class MMCStrategy(_MultiLabelTopK):
    """Maximum loss reduction with maximal confidence (Yang et al. 2009); see :func:`mmc_scores`."""

    name = "mmc"
    description = "multi-label: maximum loss reduction with maximal confidence (MMC, Yang et al. 2009)"
    score_name = "mmc"


@register
class CVIRSStrategy(_MultiLabelTopK):
    """Category vector inconsistency and ranking of scores (Reyes et al. 2018); see :func:`cvirs_scores`."""

    name = "cvirs"
    description = "multi-label: category vector inconsistency x margin ranks (CVIRS, Reyes et al. 2018)"
    score_name = "cvirs"


@register
class LabelKMeansStrategy(UncertaintyStrategy):
    """Multi-label uncertainty x diversity: top ``factor x budget`` by a score, k-means, most uncertain per cluster.

    The multi-label counterpart of ``margin_kmeans`` (Zhdanov 2019): the candidates are the rows
    with the highest ``score`` (one of :data:`MULTILABEL_SCORE_NAMES`), clustered into ``budget``
    clusters; each cluster gives its most uncertain row, clusters visited by that row's score.

    Parameters
    ----------
    score : str
        The multi-label uncertainty score.
    factor : float
        Candidates per batch slot.
    cold_start : str
        Diversity strategy while no classifier can be fitted.
    """

    name = "label_kmeans"
    description = "multi-label: top factor x budget by a per-label uncertainty score, k-means, most uncertain per cluster"
    tasks = ("multi_label",)

    def __init__(self, score: str = "label_entropy", factor: float = 10.0, cold_start: str = _COLD) -> None:
        super().__init__(cold_start=cold_start)
        if score not in MULTILABEL_SCORE_NAMES:
            raise ValueError(f"score must be one of {', '.join(MULTILABEL_SCORE_NAMES)}, got {score!r}")
        self.score = score
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or factor < 1:
            raise ValueError(f"factor must be a number >= 1, got {factor!r}")
        self.factor = float(factor)

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        rng = np.random.default_rng(random_state)
        unc = multilabel_scores(self.score, context, random_state)
        idx, cluster, pass_no, n_cand = uncertain_per_cluster(context.X_pool, unc, budget, self.factor, rng)
        reasons = np.array(
            [f"label_kmeans: {'most' if p == 0 else 'next most'} uncertain of cluster {c} among the {n_cand} "
             f"rows of highest {self.score} ({s:.3f})" for c, p, s in zip(cluster, pass_no, unc[idx])],
            dtype=object)
        return Selection(idx, unc[idx], reasons, {"cluster": cluster, "n_candidates": n_cand, "score": self.score})

