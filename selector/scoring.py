"""Uncertainty and loss scores computed from predicted class probabilities.

Every score here is oriented **higher = pick first / more suspect**. All functions take a
probability matrix ``proba`` of shape ``(n, k)`` whose rows sum to 1 and return a float64
vector of shape ``(n,)``. They are invariant to the order of the classes (columns).
"""

from __future__ import annotations

import numpy as np

__all__ = ["entropy", "margin", "least_confidence", "label_loss", "UNCERTAINTY_SCORES", "label_entropy",
           "label_margin", "as_label_proba"]

_EPS = 1e-12


def _as_proba(proba: np.ndarray) -> np.ndarray:
    p = np.asarray(proba, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"proba must be 2-D (n, k), got shape {p.shape}")
    return p


def entropy(proba: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row, normalised by ``log(k)`` so it lies in [0, 1].

    Parameters
    ----------
    proba : ndarray of shape (n, k)

    Returns
    -------
    ndarray of shape (n,)
        0 for a one-hot row, 1 for a uniform row (0 everywhere when ``k == 1``).
    """
    p = _as_proba(proba)
    k = p.shape[1]
    if k <= 1:
        return np.zeros(p.shape[0])
    h = -np.sum(p * np.log(np.clip(p, _EPS, 1.0)), axis=1)
    return np.clip(h / np.log(k), 0.0, 1.0)


def margin(proba: np.ndarray) -> np.ndarray:
    """One minus the gap between the two most probable classes, in [0, 1].

    Parameters
    ----------
    proba : ndarray of shape (n, k)

    Returns
    -------
    ndarray of shape (n,)
        1 when the top two classes tie, 0 for a one-hot row.
    """
    p = _as_proba(proba)
    if p.shape[1] <= 1:
        return np.zeros(p.shape[0])
    top2 = np.partition(p, p.shape[1] - 2, axis=1)[:, -2:]
    return np.clip(1.0 - (top2[:, 1] - top2[:, 0]), 0.0, 1.0)


def least_confidence(proba: np.ndarray) -> np.ndarray:
    """One minus the highest class probability, rescaled by ``k / (k - 1)`` to lie in [0, 1].

    Parameters
    ----------
    proba : ndarray of shape (n, k)

    Returns
    -------
    ndarray of shape (n,)
    """
    p = _as_proba(proba)
    k = p.shape[1]
    if k <= 1:
        return np.zeros(p.shape[0])
    return np.clip((1.0 - p.max(axis=1)) * k / (k - 1), 0.0, 1.0)


def label_loss(proba: np.ndarray, label_index: np.ndarray) -> np.ndarray:
    """Cross-entropy loss of the given label: ``-log p[i, y_i]`` (higher = more suspect).

    Parameters
    ----------
    proba : ndarray of shape (n, k)
    label_index : ndarray of int, shape (n,)
        Column of each row's given label in ``proba``.

    Returns
    -------
    ndarray of shape (n,)
    """
    p = _as_proba(proba)
    idx = np.asarray(label_index, dtype=np.int64)
    return -np.log(np.clip(p[np.arange(p.shape[0]), idx], _EPS, 1.0))


UNCERTAINTY_SCORES = {
    "entropy": entropy,
    "margin": margin,
    "least_confidence": least_confidence,
}


# Multi-label: ``proba`` holds one independent probability per label, shape (n, L); rows need not
# sum to 1. Scores stay oriented higher = pick first and lie in [0, 1].


def _as_label_matrix(proba: np.ndarray) -> np.ndarray:
    p = _as_proba(proba)
    return np.clip(p, 0.0, 1.0)


def label_entropy(proba: np.ndarray) -> np.ndarray:
    """Mean binary entropy (in bits) over the labels: 1 when every label sits at 0.5.

    Parameters
    ----------
    proba : ndarray of shape (n, L)
        Per-label probabilities.

    Returns
    -------
    ndarray of shape (n,)
    """
    p = _as_label_matrix(proba)
    if p.shape[1] == 0:
        return np.zeros(p.shape[0])
    q = np.clip(p, _EPS, 1.0 - _EPS)
    h = -(q * np.log2(q) + (1.0 - q) * np.log2(1.0 - q))
    return np.clip(h.mean(axis=1), 0.0, 1.0)


def label_margin(proba: np.ndarray) -> np.ndarray:
    """One minus the smallest per-label margin ``|2 p - 1|``: 1 when some label sits at 0.5.

    Parameters
    ----------
    proba : ndarray of shape (n, L)

    Returns
    -------
    ndarray of shape (n,)
    """
    p = _as_label_matrix(proba)
    if p.shape[1] == 0:
        return np.zeros(p.shape[0])
    return np.clip(1.0 - np.abs(2.0 * p - 1.0).min(axis=1), 0.0, 1.0)


def as_label_proba(raw, n_labels: int) -> np.ndarray:
    """A multi-label ``predict_proba`` output as one probability per label, shape (n, L).

    scikit-learn's one-vs-rest estimators return (n, L) already; multi-output ones
    (``MultiOutputClassifier``, k-NN, forests on an indicator matrix) return a list of L arrays of
    shape (n, 2) whose second column is P(label).
    """
    if isinstance(raw, list):
        cols = []
        for part in raw:
            part = np.asarray(part, dtype=np.float64)
            cols.append(part[:, -1] if part.ndim == 2 and part.shape[1] == 2 else
                        np.zeros(part.shape[0]) if part.ndim == 2 and part.shape[1] == 1 else part.reshape(-1))
        out = np.column_stack(cols) if cols else np.zeros((0, n_labels))
    else:
        out = np.asarray(raw, dtype=np.float64)
    if out.ndim != 2 or out.shape[1] != n_labels:
        raise ValueError(f"a multi-label classifier must give one probability per label, shape (n, {n_labels}); "
                         f"got shape {out.shape}")
    return np.clip(out, 0.0, 1.0)

