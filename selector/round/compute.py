"""The compute step of a round on arrays: fit, score the pool, select, and the queue it produces.

:func:`select_batch` is the array-level entry (benchmarks and training scripts);
:func:`selector.round.run.run_round` is the table-level round the CLI and :func:`selector.select` use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.models.classifiers import aligned_proba, fit_classifier, make_classifier
from selector.round.embed import as_embeddings
from selector.round.model import labels_problem
from selector.round.pool import LabeledPool
from selector.strategies import Selection, SelectionContext, make_strategy

__all__ = ["select_batch", "build_context", "queue_frame", "queue_table", "QUEUE_COLUMNS"]

QUEUE_COLUMNS = ["rank", "id", "text", "score", "strategy_score", "strategy", "reason", "predicted_label",
                 "predicted_proba"]

# Pool rows scored per classifier call. Scoring is row-wise, so chunks give the same probabilities
# as one call, while the float64 copies scikit-learn makes stay ~100 MB instead of O(pool).
SCORE_CHUNK_ROWS = 65_536


def _chunked_proba(model, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``aligned_proba`` over ``X`` (shape (n, d)) in ``SCORE_CHUNK_ROWS`` blocks; returns (n, n_classes)."""
    n = X.shape[0]
    if n <= SCORE_CHUNK_ROWS:
        return aligned_proba(model, X, classes)
    out = np.empty((n, classes.size), dtype=np.float64)
    for start in range(0, n, SCORE_CHUNK_ROWS):
        out[start : start + SCORE_CHUNK_ROWS] = aligned_proba(model, X[start : start + SCORE_CHUNK_ROWS], classes)
    return out


def build_context(X_labeled: np.ndarray, y_labeled: np.ndarray, X_pool: np.ndarray, *,
                  classifier=None, random_state: int | None = None,
                  label_set: Sequence[str] | None = None) -> SelectionContext:
    """Fit the classifier on the labeled rows (when possible) and score the pool.

    Parameters
    ----------
    X_labeled : ndarray, shape (n_labeled, d)
    y_labeled : ndarray, shape (n_labeled,)
    X_pool : ndarray, shape (n_pool, d)
    classifier : scikit-learn estimator with predict_proba, optional
        Unfitted template; default logistic regression.
    label_set : sequence of str, optional
        Every label the task allows (the config's ``labels``); ``auto`` looks for declared labels that
        have no labeled row yet.

    Returns
    -------
    SelectionContext
        ``proba_pool`` is None (with ``cold_start_reason``) when the labels cannot train a classifier
        (:func:`selector.round.model.labels_problem`).
    """
    X_labeled = as_embeddings(X_labeled, "X_labeled")
    X_pool = as_embeddings(X_pool, "X_pool")
    y_labeled = np.asarray(y_labeled, dtype=object)
    if X_labeled.shape[0] != y_labeled.shape[0]:
        raise DataError(f"X_labeled has {X_labeled.shape[0]} rows but y_labeled has {y_labeled.shape[0]}")
    if X_labeled.shape[0] and X_labeled.shape[1] != X_pool.shape[1]:
        raise DataError(f"X_labeled has {X_labeled.shape[1]} dimensions but X_pool has {X_pool.shape[1]}")
    declared = declared_labels(label_set)
    problem = labels_problem(y_labeled)
    if problem is not None:
        return SelectionContext(X_pool, X_labeled, y_labeled, cold_start_reason=problem, label_set=declared)
    template = classifier if classifier is not None else make_classifier(random_state=random_state)
    model = fit_classifier(template, X_labeled, y_labeled.astype(str))
    classes = np.asarray(model.classes_, dtype=object)
    proba = _chunked_proba(model, X_pool, classes) if X_pool.shape[0] else np.zeros((0, classes.size))
    return SelectionContext(X_pool, X_labeled, y_labeled, proba_pool=proba, classes=classes, classifier=model,
                            label_set=declared)


def declared_labels(label_set: Sequence[str] | None) -> tuple[str, ...] | None:
    """The declared labels as a tuple of distinct strings, in order; None when none are declared."""
    if label_set is None:
        return None
    if isinstance(label_set, str) or not all(isinstance(v, str) and v.strip() for v in label_set):
        raise ConfigError(f"label_set must be a list of non-empty strings, got {label_set!r}")
    return tuple(dict.fromkeys(v.strip() for v in label_set)) or None


def select_batch(X_labeled: np.ndarray, y_labeled: np.ndarray, X_pool: np.ndarray, budget: int, *,
                 strategy: str = "auto", classifier=None, random_state: int | None = None,
                 strategy_params: dict[str, Any] | None = None, labels: Sequence[str] | None = None) -> Selection:
    """Pick ``budget`` rows of ``X_pool`` to label next.

    Parameters
    ----------
    X_labeled : ndarray, shape (n_labeled, d)
        Embeddings of labeled rows (may have 0 rows: cold start).
    y_labeled : ndarray, shape (n_labeled,)
    X_pool : ndarray, shape (n_pool, d)
        Embeddings of the unlabeled candidates.
    budget : int
    strategy : str
        A registered strategy name (``selector.strategies.available_strategies()``).
    classifier : scikit-learn estimator with predict_proba, optional
    random_state : int or None
    labels : sequence of str, optional
        Every label the task allows; ``auto`` spends a share of the batch looking for declared labels
        that have no labeled row yet (its ``unseen_share``).

    Returns
    -------
    Selection
        ``.indices`` are positions in ``X_pool`` in rank order, ``.scores`` their scores.
    """
    strat = make_strategy(strategy, **(strategy_params or {}))
    context = build_context(X_labeled, y_labeled, X_pool, classifier=classifier, random_state=random_state,
                            label_set=labels)
    return strat.select(context, budget, random_state=random_state)


def queue_priority(n: int) -> np.ndarray:
    """The queue's ``score``: ``1 - (rank - 1) / n`` for ranks 1..n, shape (n,), strictly falling."""
    return np.round(1.0 - np.arange(n, dtype=np.float64) / max(n, 1), 6)


def queue_frame(pool: LabeledPool, context: SelectionContext, selection: Selection, strategy: str) -> pd.DataFrame:
    """The labeling queue: one row per pick, best first (columns ``QUEUE_COLUMNS`` + extras)."""
    unl = pool.pool_positions
    rows = unl[selection.indices]
    if context.has_model:
        p = context.proba_pool[selection.indices]
        best = p.argmax(axis=1)
        pred_label = context.classes[best].astype(object)
        pred_proba = p[np.arange(p.shape[0]), best].round(6)
    else:
        pred_label = np.full(rows.size, None, dtype=object)
        pred_proba = np.full(rows.size, np.nan)
    return queue_table(pool, selection, strategy, {"predicted_label": pred_label, "predicted_proba": pred_proba})


def queue_table(pool: LabeledPool, selection: Selection, strategy: str, predictions: dict) -> pd.DataFrame:
    """The queue's columns every task type shares, then ``predictions`` (column -> values, shape (m,)),
    then ``cluster`` when the strategy clustered."""
    rows = pool.pool_positions[selection.indices]
    queue = pd.DataFrame({
        "rank": np.arange(1, rows.size + 1),
        "id": pool.ids[rows],
        "text": pool.texts[rows],
        # A priority that falls evenly with rank (1 for the first row, 1/n for the last), whatever the
        # strategy: a strategy's own scores are on its branch's scale (typicality, distance, margin)
        # and need not fall with rank when picks alternate clusters or branches (``strategy_score``).
        "score": queue_priority(rows.size),
        "strategy_score": np.round(selection.scores, 6),
        "strategy": strategy,
        "reason": selection.reasons,
        **predictions,
    })
    cluster = selection.info.get("cluster")
    if cluster is not None and len(cluster) == rows.size:
        queue["cluster"] = np.asarray(cluster)
    return queue
