"""Multi-label suspects: (row, label) pairs whose given value is probably wrong.

A pair is either a label the row carries that probably does not apply (``kind = "wrong"``) or a
label it lacks that probably does (``kind = "missing"``). Evidence per pair, as for single labels
(:mod:`selector.round.suspects`): the out-of-fold per-label probability ``P[i, l]`` and the
similarity-weighted share of the row's nearest other labeled rows carrying the label ``V[i, l]``,
blended ``Q = (1 - a) P + a V`` (``a = knn_weight``).

Each label is then one binary problem, judged by confident learning as cleanlab judges it per
label (:func:`_label_noise`): the confident joint sizes the list, the margin towards the other value
ranks it, and the joint's noise rates give each pair's posterior ``p_wrong = P(true value != given |
evidence)``. A label carried by fewer than :data:`MIN_LABEL_ROWS` rows is not judged. With ``knn_weight = 0`` the list is cleanlab's ``find_label_issues(multi_label=True)`` on
the same probabilities, pair by pair; the neighbour votes are what selector adds.
A row's ``suggested_labels`` flips every listed pair of that row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from selector.labelsets import LabelSpace
from selector.neighbors import nearest_neighbors

__all__ = ["MIN_LABEL_ROWS", "LabelSuspects", "find_label_suspects", "label_suspects_frame", "label_suspects_for_pool", "listed_pairs", "label_neighbour_votes",
           "LABEL_SUSPECT_COLUMNS", "DEFAULT_LABEL_KNN_WEIGHT"]

#: Share of neighbour votes in the evidence. 0: on goemotions (scripts/bench_multilabel.py --section
#: suspects) the blend moved row-level F1 by -0.019 to +0.017 against the model alone (0.3: -0.010,
#: +0.014, +0.002 over three noise settings; chosen leave-one-setting-out it lost on one), so the
#: default list is confident learning's on the out-of-fold probabilities, as cleanlab's is.
DEFAULT_LABEL_KNN_WEIGHT = 0.0
DEFAULT_NEIGHBORS = 10
#: Rows a label needs on each side (carrying it and not) before it is judged: a 5-fold out-of-fold
#: model of a rarer label trains on fewer than 24 examples of it, and on a 300-row goemotions sample
#: such labels filled the list with "wrong" verdicts on every row that carried them. On 10,000 rows
#: (scripts/bench_multilabel.py) 30 instead of 10 changed row-level F1 by at most 0.001.
MIN_LABEL_ROWS = 30
LABEL_SUSPECT_COLUMNS = ["id", "text", "label", "kind", "p_wrong", "evidence", "given_labels", "suggested_labels"]


def label_neighbour_votes(X: np.ndarray, Y: np.ndarray, n_neighbors: int = DEFAULT_NEIGHBORS, *,
                          random_state: int | None = None) -> np.ndarray:
    """Similarity-weighted share of each row's nearest other rows that carry each label.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    Y : ndarray of 0/1, shape (n, L)

    Returns
    -------
    ndarray of float64, shape (n, L)
    """
    k = min(n_neighbors, X.shape[0] - 1)
    idx, sim = nearest_neighbors(X, k, random_state=random_state)
    # As selector.round.suspects.knn_label_votes: cosine weights floored at a small positive value.
    w = np.maximum(sim.astype(np.float64), 1e-3)
    Y = np.asarray(Y, dtype=np.float64)
    votes = np.zeros(Y.shape)
    for j in range(k):  # one neighbour rank at a time: memory O(n L), not O(n k L)
        votes += w[:, j:j + 1] * Y[idx[:, j]]
    return votes / w.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class LabelSuspects:
    """Every labeled (row, label) pair judged.

    Attributes
    ----------
    Y : ndarray of int8, shape (n, L)
        Given values.
    evidence : ndarray of float64, shape (n, L)
        ``Q``: blended probability that the label applies.
    p_wrong : ndarray of float64, shape (n, L)
        Probability that the given value is wrong.
    flagged : ndarray of bool, shape (n, L)
        The default list.
    """

    Y: np.ndarray
    evidence: np.ndarray
    p_wrong: np.ndarray
    flagged: np.ndarray

    @property
    def suggested(self) -> np.ndarray:
        """The corrected indicator matrix (shape (n, L)): every flagged pair flipped."""
        return np.where(self.flagged, 1 - self.Y, self.Y).astype(np.int8)

    @property
    def flagged_rows(self) -> np.ndarray:
        """Rows with at least one flagged pair, shape (n,) bool."""
        return self.flagged.any(axis=1)

    def summary(self) -> str:
        n_pairs = int(self.flagged.sum())
        wrong = int((self.flagged & (self.Y == 1)).sum())
        return (f"{n_pairs} (row, label) pairs on {int(self.flagged_rows.sum())} of {self.Y.shape[0]} rows: "
                f"{wrong} given labels that probably do not apply, {n_pairs - wrong} probably missing; "
                f"estimated wrong pairs {self.p_wrong.sum():.0f}")


def _platt(q: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``q`` (shape (n,)) recalibrated to the given 0/1 values ``y``: a one-feature logistic fit on logit(q)."""
    from sklearn.linear_model import LogisticRegression

    z = np.log(q / (1.0 - q)).reshape(-1, 1)
    return LogisticRegression(C=1e4, max_iter=1000).fit(z, y).predict_proba(z)[:, 1]


def _label_noise(q: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One label as a binary problem: each row's ``p_wrong`` and the confident-learning list.

    Confident learning (Northcutt et al. 2021), as cleanlab runs it per label: the thresholds are the
    mean ``q`` of the rows given 1 and the mean ``1 - q`` of the rows given 0; a row whose evidence
    reaches a threshold counts for that value (the more probable one when it reaches both), which
    gives the confident joint ``C[given, true]``, rescaled to the rows given each value. The list
    (prune by noise rate) holds, for each given value, its ``round(C[given, other])`` rows with the
    largest margin towards the other value, less any row whose evidence predicts its given value
    (``q >= 0.5`` for a 1, below for a 0). The noise rates ``r0 = P(given 1 | true 0)`` and
    ``r1 = P(given 0 | true 1)`` give each row's posterior that its given value is wrong: with ``pi``
    the evidence recalibrated to the given values (:func:`_platt`) as the probability that the label
    applies, ``(1 - pi) r0 / ((1 - pi) r0 + pi (1 - r1))`` for a given 1 and
    ``pi r1 / (pi r1 + (1 - pi)(1 - r0))`` for a given 0.

    Parameters
    ----------
    q : ndarray, shape (n,)
        Evidence that the label applies.
    y : ndarray of 0/1, shape (n,)

    Returns
    -------
    p_wrong : ndarray, shape (n,)
    listed : ndarray of bool, shape (n,)
    """
    n1 = int(y.sum())
    n0 = y.size - n1
    t1 = q[y == 1].mean()
    t0 = (1.0 - q[y == 0]).mean()
    reach1, reach0 = q >= t1, (1.0 - q) >= t0
    says1 = reach1 & (~reach0 | (q >= 0.5))
    says0 = reach0 & ~says1
    C = np.array([[np.sum((y == 0) & says0), np.sum((y == 0) & says1)],
                  [np.sum((y == 1) & says0), np.sum((y == 1) & says1)]], dtype=np.float64)
    C[0] *= n0 / max(C[0].sum(), 1.0)
    C[1] *= n1 / max(C[1].sum(), 1.0)
    r0 = C[1, 0] / max(C[0, 0] + C[1, 0], 1e-12)
    r1 = C[0, 1] / max(C[0, 1] + C[1, 1], 1e-12)
    # The label's probability given the text: the evidence recalibrated to the given values (Platt).
    # Inverting the noise (pi = (q - r0) / (1 - r0 - r1)) was tried: it pins every row below the
    # noise floor r0 at p_wrong = 1.
    pi = _platt(q, y)
    wrong1, right1 = (1.0 - pi) * r0, pi * (1.0 - r1)
    wrong0, right0 = pi * r1, (1.0 - pi) * (1.0 - r0)
    p = np.where(y == 1, wrong1 / np.maximum(wrong1 + right1, 1e-12), wrong0 / np.maximum(wrong0 + right0, 1e-12))
    listed = np.zeros(y.size, dtype=bool)
    for given, n_list, margin in ((1, C[1, 0], 1.0 - 2.0 * q), (0, C[0, 1], 2.0 * q - 1.0)):
        rows = np.flatnonzero(y == given)
        listed[rows[np.argsort(-margin[rows], kind="stable")[:int(round(n_list))]]] = True
    # As cleanlab does: a value the evidence itself predicts (q >= 0.5 for a 1) is never listed.
    listed &= (q >= 0.5) != (y == 1)
    return p, listed


def find_label_suspects(X: np.ndarray, Y: np.ndarray, oof_proba: np.ndarray, *,
                        knn_weight: float = DEFAULT_LABEL_KNN_WEIGHT, n_neighbors: int = DEFAULT_NEIGHBORS,
                        random_state: int | None = None) -> LabelSuspects:
    """Judge every (row, label) pair of a labeled multi-label table.

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Embeddings of the labeled rows.
    Y : ndarray of 0/1, shape (n, L)
    oof_proba : ndarray, shape (n, L)
        Out-of-fold per-label probabilities.
    knn_weight : float in [0, 1]
        Share of the neighbour votes in the evidence (0: the model alone).
    """
    Y = np.asarray(Y, dtype=np.int8)
    Q = np.asarray(oof_proba, dtype=np.float64)
    if knn_weight > 0 and Y.shape[0] > 2:
        Q = (1.0 - knn_weight) * Q + knn_weight * label_neighbour_votes(X, Y, n_neighbors, random_state=random_state)
    Q = np.clip(Q, 1e-6, 1.0 - 1e-6)
    p_wrong = np.zeros(Y.shape, dtype=np.float64)
    flagged = np.zeros(Y.shape, dtype=bool)
    for j in range(Y.shape[1]):
        y = Y[:, j].astype(np.int64)
        # A label on fewer than MIN_LABEL_ROWS rows (or missing from as few) cannot be judged by a
        # model trained on the other folds, as for a thin class with single labels: not listed.
        if min(y.sum(), y.size - y.sum()) < MIN_LABEL_ROWS:
            continue
        p_wrong[:, j], flagged[:, j] = _label_noise(Q[:, j], y)
    return LabelSuspects(Y=Y, evidence=Q, p_wrong=p_wrong, flagged=flagged)


def listed_pairs(result: LabelSuspects, *, top: int | None = None, threshold: float | None = None) -> np.ndarray:
    """Which pairs a list holds, shape (n, L) bool: the default list, the ``top`` most likely wrong
    pairs, or the pairs with ``p_wrong >= threshold``."""
    if top is None and threshold is None:
        return result.flagged
    p = np.where(np.isfinite(result.p_wrong), result.p_wrong, 0.0)
    if threshold is not None:
        return p >= threshold
    keep = np.zeros(p.size, dtype=bool)
    keep[np.argsort(-p.ravel(), kind="stable")[:top]] = True
    return keep.reshape(p.shape) & (p > 0)


def label_suspects_for_pool(pool, X: np.ndarray, *, classifier=None, random_state: int | None = 0,
                            top: int | None = None, threshold: float | None = None
                            ) -> tuple[LabelSuspects, pd.DataFrame]:
    """The suspects of a multi-label pool's labeled rows: out-of-fold pass, judgement, table.

    Parameters
    ----------
    pool : LabeledPool
        Multi-label (``pool.space`` set).
    X : ndarray, shape (pool.n, d)
    top, threshold : see :func:`listed_pairs`.
    """
    from selector.round.multilabel import multilabel_out_of_fold

    lab = pool.labeled_positions
    Y = pool.Y[lab]
    oof = multilabel_out_of_fold(classifier, X[lab], Y, random_state=random_state)
    found = find_label_suspects(X[lab], Y, oof.proba, random_state=random_state)
    listed = listed_pairs(found, top=top, threshold=threshold)
    if listed is not found.flagged:
        found = LabelSuspects(Y=found.Y, evidence=found.evidence, p_wrong=found.p_wrong, flagged=listed)
    return found, label_suspects_frame(found, pool.space, ids=pool.ids[lab], texts=pool.texts[lab])


def label_suspects_frame(result: LabelSuspects, space: LabelSpace, *, ids: np.ndarray,
                         texts: np.ndarray) -> pd.DataFrame:
    """The listed pairs as a table (``LABEL_SUSPECT_COLUMNS``), most likely wrong first.

    Parameters
    ----------
    ids, texts : ndarray, shape (n,)
        Of the labeled rows, in the order of ``result``.
    """
    rows, cols = np.nonzero(result.flagged)
    order = np.lexsort((cols, rows, -result.p_wrong[rows, cols]))
    rows, cols = rows[order], cols[order]
    given = {int(i): space.join(space.sets(result.Y[i:i + 1])[0]) for i in np.unique(rows)}
    fixed = {int(i): space.join(space.sets(result.suggested[i:i + 1])[0]) for i in np.unique(rows)}
    return pd.DataFrame({
        "id": ids[rows],
        "text": texts[rows],
        "label": np.asarray(space.names, dtype=object)[cols],
        "kind": np.where(result.Y[rows, cols] == 1, "wrong", "missing"),
        "p_wrong": result.p_wrong[rows, cols].round(4),
        "evidence": result.evidence[rows, cols].round(4),
        "given_labels": [given[int(i)] for i in rows],
        "suggested_labels": [fixed[int(i)] for i in rows],
    }, columns=LABEL_SUSPECT_COLUMNS)
