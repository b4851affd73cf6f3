"""The multi-label round on arrays: the classifier, its out-of-fold pass, the context and the queue.

One classifier per label by default (scikit-learn's ``OneVsRestClassifier`` around the configured
estimator); an estimator that is already multi-label
(``OneVsRestClassifier``, ``MultiOutputClassifier``, ``ClassifierChain``) is used as given. Its
probabilities are one per label, shape (n, L), in :attr:`selector.labelsets.LabelSpace.names` order.

The default estimator is logistic regression with ``class_weight="balanced"``
(:data:`MULTILABEL_CLASSIFIER_DEFAULTS`): most labels are on a few percent of the rows, and the
unweighted fit predicts no label at all until there are thousands of labels (goemotions, random
labeled rows, test micro-F1 at 200 / 500 / 2,000 labels: 0.07 / 0.10 / 0.20 unweighted against
0.30 / 0.34 / 0.34 balanced on the 28 labels; 0.28 / 0.38 / 0.46 against 0.47 / 0.50 / 0.52 on the
Ekman grouping; C = 10 or 100 unweighted and balanced were measured too and are no better).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import KFold
from threadpoolctl import threadpool_limits

from selector.errors import DataError
from selector.labelsets import LabelSpace
from selector.models.classifiers import make_classifier, quiet_fit
from selector.round.compute import queue_table
from selector.round.embed import as_embeddings
from selector.round.model import MIN_LABELED_ROWS, OutOfFold
from selector.round.pool import LabeledPool
from selector.scoring import as_label_proba
from selector.strategies import Selection, SelectionContext

__all__ = ["multilabel_cv_figures", "multilabel_problem", "multilabel_template", "multilabel_classifier", "MULTILABEL_CLASSIFIER_DEFAULTS", "fit_multilabel", "label_proba",
           "multilabel_out_of_fold", "build_multilabel_context", "multilabel_queue_frame",
           "MULTILABEL_QUEUE_COLUMNS", "PREDICT_THRESHOLD"]

MULTILABEL_QUEUE_COLUMNS = ["rank", "id", "text", "score", "strategy_score", "strategy", "reason",
                            "predicted_labels", "label_probas"]
#: A label is predicted when its probability reaches this (independent per-label decisions).
PREDICT_THRESHOLD = 0.5
_SCORE_CHUNK_ROWS = 65_536
#: Parameters the default logistic regression gets on a multi-label task (the module docstring says why).
MULTILABEL_CLASSIFIER_DEFAULTS = {"class_weight": "balanced"}


def multilabel_classifier(name: str = "logistic_regression", *, random_state: int | None = None, **params):
    """The configured per-label estimator with :data:`MULTILABEL_CLASSIFIER_DEFAULTS` under ``params``."""
    defaults = MULTILABEL_CLASSIFIER_DEFAULTS if name == "logistic_regression" else {}
    return make_classifier(name, random_state=random_state, **{**defaults, **params})


def multilabel_cv_figures(oof: OutOfFold, Y: np.ndarray) -> dict:
    """Cross-validated micro- and macro-F1 and exact-set accuracy from the out-of-fold probabilities.

    Parameters
    ----------
    oof : OutOfFold
        From :func:`multilabel_out_of_fold`; ``proba`` of shape (n, L).
    Y : ndarray of 0/1, shape (n, L)
    """
    from sklearn.metrics import f1_score

    pred = (oof.proba >= PREDICT_THRESHOLD).astype(np.int8)
    Y = np.asarray(Y, dtype=np.int8)
    return {"micro_f1": round(float(f1_score(Y, pred, average="micro", zero_division=0)), 6),
            "macro_f1": round(float(f1_score(Y, pred, average="macro", zero_division=0)), 6),
            "exact_set_accuracy": round(float((pred == Y).all(axis=1).mean()), 6),
            "n": int(Y.shape[0]), "n_splits": oof.n_splits}


def multilabel_problem(Y: np.ndarray) -> str | None:
    """Why an indicator matrix (n_labeled, L) cannot train a classifier, or None when it can.

    It can once there are :data:`~selector.round.model.MIN_LABELED_ROWS` labeled rows and some
    label is present on some rows and absent on others.
    """
    Y = np.asarray(Y)
    if Y.shape[0] == 0:
        return "0 labeled rows"
    if Y.shape[0] < MIN_LABELED_ROWS:
        return f"only {Y.shape[0]} labeled rows (at least {MIN_LABELED_ROWS} needed)"
    pos = Y.sum(axis=0)
    if not ((pos > 0) & (pos < Y.shape[0])).any():
        return "no label is both present and absent among the labeled rows"
    return None


def multilabel_template(template=None, random_state: int | None = None):
    """The unfitted multi-label classifier: ``template`` wrapped one-vs-rest unless it is multi-label already."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.multioutput import ClassifierChain, MultiOutputClassifier

    template = template if template is not None else multilabel_classifier(random_state=random_state)
    if isinstance(template, (OneVsRestClassifier, MultiOutputClassifier, ClassifierChain)):
        return template
    return OneVsRestClassifier(template)


def fit_multilabel(template, X: np.ndarray, Y: np.ndarray):
    """Fit a clone of the multi-label ``template`` on ``X`` (n, d) and ``Y`` (n, L).

    A label present on every row, or on none, gets a constant prediction (scikit-learn's one-vs-rest
    does that itself; its warning about it is expected here, so it is silenced).
    """
    model = clone(multilabel_template(template))
    with quiet_fit(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Label .* is present in all training examples")
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples")
        model.fit(X, np.asarray(Y, dtype=np.int64))
    return model


def label_proba(model, X: np.ndarray, n_labels: int) -> np.ndarray:
    """Per-label probabilities of ``X`` (shape (n, d)) in blocks; returns (n, n_labels)."""
    n = X.shape[0]
    if n == 0:
        return np.zeros((0, n_labels))
    out = np.empty((n, n_labels), dtype=np.float64)
    for start in range(0, n, _SCORE_CHUNK_ROWS):
        block = X[start:start + _SCORE_CHUNK_ROWS]
        out[start:start + block.shape[0]] = as_label_proba(model.predict_proba(block), n_labels)
    return out


def multilabel_out_of_fold(template, X: np.ndarray, Y: np.ndarray, *, n_splits: int = 5,
                           random_state: int | None = None, classes: Sequence[str] | None = None) -> OutOfFold:
    """Out-of-fold per-label probabilities by seeded K-fold: each row scored by a model that never saw it.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    Y : ndarray of 0/1, shape (n, L)
    classes : sequence of str, optional
        The L label names (default their column numbers).

    Returns
    -------
    OutOfFold
        ``proba`` of shape (n, L) (a fold whose training rows cannot train a classifier gets the
        training rows' label rates), ``classes`` and the folds used.
    """
    Y = np.asarray(Y, dtype=np.int8)
    n, L = Y.shape
    n_splits = int(max(2, min(n_splits, n)))
    out = np.zeros((n, L))
    with threadpool_limits(limits=1, user_api="blas"):
        for train, test in KFold(n_splits=n_splits, shuffle=True, random_state=random_state).split(X):
            if multilabel_problem(Y[train]) is not None:
                out[test] = Y[train].mean(axis=0)
                continue
            model = fit_multilabel(template, X[train], Y[train])
            out[test] = label_proba(model, X[test], L)
    names = np.asarray(classes if classes is not None else np.arange(L).astype(str), dtype=object)
    return OutOfFold(proba=out, classes=names, n_splits=n_splits)


def build_multilabel_context(X_labeled: np.ndarray, Y_labeled: np.ndarray, X_pool: np.ndarray, space: LabelSpace, *,
                             classifier=None, random_state: int | None = None,
                             label_set: Sequence[str] | None = None) -> SelectionContext:
    """Fit the multi-label classifier (when the labels allow) and score the pool.

    Parameters
    ----------
    X_labeled : ndarray, shape (n_labeled, d)
    Y_labeled : ndarray of 0/1, shape (n_labeled, L)
    X_pool : ndarray, shape (n_pool, d)
    space : LabelSpace
        The L labels, in column order.

    Returns
    -------
    SelectionContext
        ``multi_label=True``; ``proba_pool`` (n_pool, L) or None with ``cold_start_reason``.
    """
    X_labeled = as_embeddings(X_labeled, "X_labeled")
    X_pool = as_embeddings(X_pool, "X_pool")
    Y_labeled = np.asarray(Y_labeled, dtype=np.int8).reshape(-1, space.n_labels)
    if X_labeled.shape[0] != Y_labeled.shape[0]:
        raise DataError(f"X_labeled has {X_labeled.shape[0]} rows but Y_labeled has {Y_labeled.shape[0]}")
    classes = np.asarray(space.names, dtype=object)
    declared = tuple(label_set) if label_set else None
    problem = multilabel_problem(Y_labeled)
    if problem is not None:
        return SelectionContext(X_pool, X_labeled, Y_labeled, classes=classes, cold_start_reason=problem,
                                label_set=declared, multi_label=True)
    model = fit_multilabel(classifier if classifier is not None else multilabel_classifier(random_state=random_state),
                           X_labeled, Y_labeled)
    proba = label_proba(model, X_pool, space.n_labels)
    return SelectionContext(X_pool, X_labeled, Y_labeled, proba_pool=proba, classes=classes, classifier=model,
                            label_set=declared, multi_label=True)


def multilabel_queue_frame(pool: LabeledPool, context: SelectionContext, selection: Selection, strategy: str,
                           space: LabelSpace) -> pd.DataFrame:
    """The multi-label queue: ``MULTILABEL_QUEUE_COLUMNS`` (+ ``cluster``), best first.

    ``predicted_labels`` is the set of labels at or above :data:`PREDICT_THRESHOLD` (the none token
    when there is none); ``label_probas`` a JSON object of every label's probability, most probable
    first.
    """
    n = len(selection)
    if context.has_model:
        P = context.proba_pool[selection.indices]
        names = np.asarray(space.names, dtype=object)
        predicted = [space.join(names[p >= PREDICT_THRESHOLD]) for p in P]
        probas = [json.dumps({str(names[j]): round(float(p[j]), 4) for j in np.argsort(-p, kind="stable")})
                  for p in P]
    else:
        predicted = [None] * n
        probas = [None] * n
    return queue_table(pool, selection, strategy, {"predicted_labels": predicted, "label_probas": probas})
