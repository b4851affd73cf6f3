"""The round's classifier: one rule for "enough labels", one full fit, one out-of-fold pass.

The out-of-fold probabilities are computed once per round with the configured classifier and
shared by everything that needs a label-free view of the labeled rows: the mislabel suspects, the
round record's cross-validated accuracy and macro-F1, the review queue and the data card.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import accuracy_score, f1_score
from threadpoolctl import threadpool_limits

from selector.errors import ConfigError, DataError
from selector.models.classifiers import make_classifier, out_of_fold_proba

__all__ = ["MIN_LABELED_ROWS", "labels_problem", "check_enough_labels", "OutOfFold", "out_of_fold",
           "cv_figures", "cv_metrics", "validate_classifier", "classifier_template"]

#: Fewest labeled rows (of at least two classes) a classifier is fitted and cross-validated on.
MIN_LABELED_ROWS = 3


def labels_problem(labels: np.ndarray) -> str | None:
    """Why ``labels`` cannot train and cross-validate a classifier, or None when they can.

    Parameters
    ----------
    labels : ndarray of str, shape (n_labeled,)
    """
    labels = np.asarray(labels, dtype=object)
    if labels.size == 0:
        return "0 labeled rows"
    classes = np.unique(labels.astype(str))
    if classes.size < 2:
        return f"only one class labeled ({classes[0]})"
    if labels.size < MIN_LABELED_ROWS:
        return f"only {labels.size} labeled rows (at least {MIN_LABELED_ROWS} needed)"
    return None


def check_enough_labels(labels: np.ndarray, source: str, label_col: str, what: str = "suspects") -> None:
    """Raise DataError naming ``source`` and ``label_col`` when :func:`labels_problem` finds one."""
    problem = labels_problem(labels)
    if problem is not None:
        raise DataError(f"{source}: {what} need at least {MIN_LABELED_ROWS} labeled rows of at least 2 classes "
                        f"in column {label_col!r}; found {problem}")


def validate_classifier(template) -> None:
    """Run scikit-learn's own parameter validation on an unfitted classifier template.

    Raises
    ------
    ConfigError
        An invalid parameter (e.g. ``C: -1``), named as scikit-learn names it.
    """
    if not hasattr(template, "fit") or not hasattr(template, "predict_proba"):
        raise ConfigError(f"classifier {type(template).__name__} needs fit() and predict_proba()")
    validate = getattr(template, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"invalid classifier parameter: {str(exc).splitlines()[0]}; "
                          "fix classifier_params in the config") from None


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold probabilities of the labeled rows.

    Attributes
    ----------
    proba : ndarray of float64, shape (n_labeled, n_classes)
        Columns in ``classes`` order; each row from a model that never saw it.
    classes : ndarray of str, shape (n_classes,)
        Sorted class labels.
    n_splits : int
    """

    proba: np.ndarray
    classes: np.ndarray
    n_splits: int


def out_of_fold(template, X: np.ndarray, y: np.ndarray, *, n_splits: int = 5,
                random_state: int | None = None) -> OutOfFold:
    """Stratified K-fold out-of-fold probabilities (K fits of ``template``).

    Parameters
    ----------
    X : ndarray, shape (n_labeled, d)
    y : ndarray of str, shape (n_labeled,)
    """
    y = np.asarray(y, dtype=object).astype(str)
    # K small fits: single-threaded BLAS avoids thread hand-off overhead.
    with threadpool_limits(limits=1, user_api="blas"):
        proba, classes = out_of_fold_proba(template, X, y, n_splits=n_splits, random_state=random_state)
    counts = np.unique(y, return_counts=True)[1]
    return OutOfFold(proba=proba, classes=classes, n_splits=int(max(2, min(n_splits, counts.max()))))


def cv_figures(oof: OutOfFold, y: np.ndarray) -> dict:
    """Cross-validated accuracy and macro-F1 read off the out-of-fold probabilities.

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``n`` (rows), ``n_splits``.
    """
    y = np.asarray(y, dtype=object).astype(str)
    pred = oof.classes[oof.proba.argmax(axis=1)]
    return {"accuracy": round(float(accuracy_score(y, pred)), 6),
            "macro_f1": round(float(f1_score(y, pred, average="macro", zero_division=0)), 6),
            "n": int(y.size), "n_splits": oof.n_splits}


def cv_metrics(X: np.ndarray, y: np.ndarray, *, classifier=None, n_splits: int = 5,
               random_state: int | None = 0) -> dict | None:
    """Cross-validated accuracy and macro-F1 of ``classifier`` on labeled rows (one out-of-fold pass).

    Parameters
    ----------
    X : ndarray, shape (n_labeled, d)
    y : ndarray of str, shape (n_labeled,)
    classifier : unfitted scikit-learn estimator, optional (default logistic regression)

    Returns
    -------
    dict or None
        :func:`cv_figures`; None when :func:`labels_problem` finds the labels too few.
    """
    if labels_problem(y) is not None:
        return None
    template = classifier if classifier is not None else make_classifier(random_state=random_state)
    return cv_figures(out_of_fold(template, X, y, n_splits=n_splits, random_state=random_state), y)


def classifier_template(config, classifier=None):
    """The unfitted classifier a command fits: ``classifier`` if given, else the configured one
    (``config.classifier`` with ``config.classifier_params``), validated by scikit-learn.

    Parameters
    ----------
    config : SelectConfig
    classifier : unfitted scikit-learn estimator with predict_proba, optional
    """
    template = classifier if classifier is not None else make_classifier(
        config.classifier, random_state=config.seed, **config.classifier_params)
    validate_classifier(template)
    return template
