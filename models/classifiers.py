"""Classifiers on embeddings and the probabilities the pipeline needs from them.

Any scikit-learn estimator with ``predict_proba`` works; the default is logistic regression.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from selector.errors import ConfigError

__all__ = ["SmallClassWarning", "quiet_fit", "make_classifier", "fit_classifier", "aligned_proba", "out_of_fold_proba", "CLASSIFIERS"]

CLASSIFIERS = ("logistic_regression",)


class SmallClassWarning(UserWarning):
    """Some classes have fewer labeled rows than there are folds; their out-of-fold figures are shaky."""


def make_classifier(name: str = "logistic_regression", *, random_state: int | None = None,
                    **params: Any):
    """Build a named classifier.

    Parameters
    ----------
    name : {"logistic_regression"}
    random_state : int or None
    **params
        Passed to the estimator (e.g. ``C``, ``max_iter``).
    """
    if name == "logistic_regression":
        defaults = {"C": 1.0, "max_iter": 1000}
        defaults.update(params)
        try:
            return LogisticRegression(random_state=random_state, **defaults)
        except TypeError as exc:
            raise ConfigError(f"invalid classifier parameter: {exc}") from None
    raise ConfigError(f"unknown classifier {name!r}; choose one of: {', '.join(CLASSIFIERS)} "
                      "(any scikit-learn estimator with predict_proba works through the Python API)")


def _check_estimator(estimator) -> None:
    if not hasattr(estimator, "fit") or not hasattr(estimator, "predict_proba"):
        raise ConfigError(f"classifier {type(estimator).__name__} needs fit() and predict_proba()")


@contextlib.contextmanager
def quiet_fit():
    """Silence scikit-learn's warnings that are not actionable on labels we know are classes.

    lbfgs convergence chatter on tiny labeled sets, and ``type_of_target``'s "`y` could represent a
    regression problem" (it fires whenever a small early round has more classes than half its rows;
    our labels are class names by construction).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message=r".*could represent a regression problem", category=UserWarning)
        yield


def fit_classifier(estimator, X: np.ndarray, y: np.ndarray):
    """Fit a clone of ``estimator`` on ``X`` (n, d) and ``y`` (n,); returns the fitted clone."""
    _check_estimator(estimator)
    model = clone(estimator)
    with quiet_fit():
        model.fit(X, y)
    return model


def aligned_proba(model, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``model.predict_proba(X)`` with columns in the order of ``classes`` (missing classes get 0).

    Returns
    -------
    ndarray of float64, shape (n, len(classes))
    """
    p = np.asarray(model.predict_proba(X), dtype=np.float64)
    model_classes = list(model.classes_)
    if list(classes) == model_classes:
        return p
    out = np.zeros((X.shape[0], len(classes)))
    col = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model_classes):
        out[:, col[c]] = p[:, j]
    return out


def out_of_fold_proba(estimator, X: np.ndarray, y: np.ndarray, *, n_splits: int = 5,
                      random_state: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predicted probabilities by stratified K-fold.

    Classes with fewer members than ``n_splits`` still get out-of-fold predictions: the folds are
    stratified on the classes that can be split, and each small class's rows are spread over the
    folds in turn. A warning names the small classes, since their probabilities are less reliable.

    Parameters
    ----------
    X : ndarray, shape (n, d)
    y : ndarray, shape (n,)

    Returns
    -------
    proba : ndarray of float64, shape (n, k)
    classes : ndarray, shape (k,)
        Sorted class labels (column order of ``proba``).
    """
    classes, y_idx, counts = np.unique(y, return_inverse=True, return_counts=True)
    n = y.shape[0]
    k = classes.size
    if k < 2:
        raise ConfigError("out-of-fold probabilities need at least two classes")
    n_splits = int(max(2, min(n_splits, counts.max())))
    small = classes[counts < n_splits]
    if small.size:
        warnings.warn(
            f"{small.size} class(es) have fewer than {n_splits} labeled rows "
            f"({', '.join(map(str, small[:5]))}{'...' if small.size > 5 else ''}); "
            "their out-of-fold probabilities are less reliable",
            SmallClassWarning,
            stacklevel=2,
        )
    fold = np.empty(n, dtype=np.int64)
    big = np.isin(y_idx, np.flatnonzero(counts >= n_splits))
    if big.any() and np.unique(y_idx[big]).size >= 1:
        skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        big_pos = np.flatnonzero(big)
        with quiet_fit():
            splits = list(skf.split(np.zeros(big_pos.size), y_idx[big]))
        for f, (_, test) in enumerate(splits):
            fold[big_pos[test]] = f
    rng = np.random.default_rng(random_state)
    for c in np.flatnonzero(counts < n_splits):
        pos = np.flatnonzero(y_idx == c)
        fold[pos] = (rng.permutation(pos.size) + rng.integers(n_splits)) % n_splits
    proba = np.zeros((n, k))
    for f in range(n_splits):
        test = fold == f
        train = ~test
        if not test.any():
            continue
        if np.unique(y_idx[train]).size < 2:
            proba[test] = counts / counts.sum()
            continue
        model = fit_classifier(estimator, X[train], y[train])
        proba[test] = aligned_proba(model, X[test], classes)
    return proba, classes
