"""Uncertainty and loss scores computed from predicted class probabilities.

Every score here is oriented **higher = pick first / more suspect**. All functions take a
probability matrix ``proba`` of shape ``(n, k)`` whose rows sum to 1 and return a float64
vector of shape ``(n,)``. They are invariant to the order of the classes (columns).
"""

from __future__ import annotations

import numpy as np

__all__ = ["entropy", "margin", "least_confidence", "label_loss", "UNCERTAINTY_SCORES"]

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
