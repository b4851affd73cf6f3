"""A bridge for training scripts built on modAL: any selector strategy as a modAL ``query_strategy``.

::

    from modAL.models import ActiveLearner
    from sklearn.linear_model import LogisticRegression
    import selector.modal

    learner = ActiveLearner(estimator=LogisticRegression(max_iter=1000),
                            query_strategy=selector.modal.query_strategy("auto", random_state=0),
                            X_training=X_seed, y_training=y_seed)
    idx, _ = learner.query(X_pool, n_instances=50)
    selector.modal.teach(learner, X_pool[idx], y_new)     # instead of learner.teach (see below)

The strategy sees what a selector round sees: the learner's training rows and labels, the pool,
and the learner's own fitted estimator's ``predict_proba`` on the pool (no second model is fitted).
Rows are L2-normalised for the strategy's distances (selector's strategies work in cosine geometry),
the caller's arrays are not modified. The query returns ``(indices, scores)``: modAL's
``ActiveLearner.query`` unpacks a pair as (result, metrics), and a bare index array of length 2
would be unpacked wrongly.

``modAL.ActiveLearner.teach`` calls ``check_X_y(..., force_all_finite=...)``, an argument scikit-learn
removed in 1.8, so on current scikit-learn every ``teach`` raises ``TypeError``. :func:`teach` adds the
rows and refits the learner's estimator the way ``teach`` would, without that call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Callable

import numpy as np

from selector.errors import DataError
from selector.round.compute import declared_labels
from selector.round.embed import as_embeddings
from selector.round.model import labels_problem
from selector.strategies import SelectionContext, make_strategy

__all__ = ["query_strategy", "teach"]


def _unit_rows(X) -> np.ndarray:
    X = as_embeddings(X, "X")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def query_strategy(name: str = "auto", *, random_state: int | None = 0, labels: Sequence[str] | None = None,
                   **params: Any) -> Callable:
    """A modAL ``query_strategy`` running the selector strategy ``name`` (with ``params``).

    Parameters
    ----------
    name : str
        Any registered strategy (``selector strategies`` lists them); checked now.
    random_state : int or None
        Seed of each query (the same learner state and seed give the same picks).
    labels : sequence of str, optional
        Every label the task allows; ``auto`` looks for the declared labels no training row has yet.

    Returns
    -------
    callable
        ``query(learner, X_pool, n_instances=1) -> (indices, scores)``; ``indices`` are positions in
        ``X_pool``, best first, shape (n_instances,).
    """
    strategy = make_strategy(name, **params)
    label_set = declared_labels(labels)

    def query(learner, X_pool, n_instances: int = 1, **_: Any):
        pool = _unit_rows(X_pool)
        X_lab = getattr(learner, "X_training", None)
        y_lab = getattr(learner, "y_training", None)
        if X_lab is None or y_lab is None or len(y_lab) == 0:
            X_lab, y_lab = np.zeros((0, pool.shape[1]), np.float32), np.zeros(0, dtype=object)
        else:
            X_lab, y_lab = _unit_rows(X_lab), np.asarray(y_lab, dtype=object).ravel()
        if X_lab.shape[0] and X_lab.shape[1] != pool.shape[1]:
            raise DataError(f"the learner's training rows have {X_lab.shape[1]} features but X_pool has {pool.shape[1]}")
        problem = labels_problem(y_lab)
        estimator = getattr(learner, "estimator", None)
        if problem is None and hasattr(estimator, "classes_"):
            # The learner's own fitted model scores the pool (raw features, as it was trained).
            proba = np.asarray(estimator.predict_proba(np.asarray(X_pool)), dtype=np.float64)
            context = SelectionContext(pool, X_lab, y_lab, proba_pool=proba,
                                       classes=np.asarray(estimator.classes_, dtype=object), classifier=estimator,
                                       label_set=label_set)
        else:
            context = SelectionContext(pool, X_lab, y_lab, label_set=label_set,
                                       cold_start_reason=problem or "the learner's estimator is not fitted yet")
        selection = strategy.select(context, int(n_instances), random_state=random_state)
        return selection.indices, selection.scores

    query.__name__ = f"selector_{strategy.name}"
    query.__doc__ = f"selector strategy {strategy.name!r} as a modAL query strategy."
    return query


def teach(learner, X, y) -> None:
    """Add ``X`` (n, d) and ``y`` (n,) to a modAL learner's training data and refit its estimator.

    What ``ActiveLearner.teach`` does, without the ``check_X_y(force_all_finite=...)`` call that fails on
    scikit-learn >= 1.8.
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.shape[0] != y.shape[0]:
        raise DataError(f"X has {X.shape[0]} rows but y has {y.shape[0]}")
    if getattr(learner, "X_training", None) is None:
        learner.X_training, learner.y_training = X, y
    else:
        learner.X_training = np.concatenate([np.asarray(learner.X_training), X])
        learner.y_training = np.concatenate([np.asarray(learner.y_training), y])
    learner._fit_to_known()
