"""An explicit label-noise model: how likely each given label is to be wrong.

The suspect *score* ranks rows; this module turns the same evidence into a probability a team can
act on. Steps, all from the out-of-fold evidence ``Q`` (n, k) (probabilities of a model that never
saw the row, blended with its neighbours' votes) and the given labels ``y``:

1. **Calibrate** ``Q`` to the given labels with one temperature, ``Q_T = softmax(log Q / T)``,
   ``T`` fitted by the negative log-likelihood of the given labels (one parameter on n rows, so
   fitting it on the rows it calibrates does not overfit). Regularised classifiers on many
   classes are under-confident; this fixes the scale without changing any ranking.
2. **Confident joint** (Northcutt et al. 2021, "Confident learning"): a row counts towards
   ``C[given, true]`` when its calibrated probability for ``true`` reaches that class's threshold
   (the mean self-confidence of the rows labeled with it), choosing the most probable such class.
   ``C`` is rescaled so each row sums to the number of rows given that label, then normalised into
   the joint ``J[given, true]``. From it come the class priors ``pi[true] = sum_given J`` and the
   noise matrix ``N[given, true] = P(given | true) = J / pi``.
3. **Deconvolution**: the calibrated evidence estimates the *noisy* label's distribution,
   ``q(x) = N p(x)`` with ``p(x)`` the true class's. ``p(x)`` is recovered row by row by the EM
   (Richardson-Lucy) iteration ``p <- p * N^T (q / N p)``, which keeps it a distribution (no
   matrix inverse, no negative mass), from ``p = q``.
4. **Per-row posterior** by Bayes with that noise model:
   ``P(true = j | x, given = y) = N[y, j] * p_j(x) / sum_l N[y, l] * p_l(x)``, and
   ``p_mislabeled = 1 - P(true = y | x, given = y)``.

The estimated error rate is the mean of ``p_mislabeled``; its interval adds the sampling spread of
the rows to the Poisson-binomial spread of the count (normal approximation, 95%).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

__all__ = ["NoiseModel", "fit_temperature", "apply_temperature", "confident_labels", "confident_joint", "estimate_noise",
           "mislabel_posterior", "deconvolve", "error_rate_interval"]

_EPS = 1e-6


@dataclass(frozen=True)
class NoiseModel:
    """The estimated label-noise process.

    Attributes
    ----------
    temperature : float
        Calibration temperature applied to the evidence (``< 1`` sharpens).
    joint : ndarray of float64, shape (k, k)
        ``J[given, true]``, sums to 1.
    prior : ndarray of float64, shape (k,)
        Estimated share of each true class.
    noise : ndarray of float64, shape (k, k)
        ``N[given, true] = P(given | true)``; columns sum to 1.
    """

    temperature: float
    joint: np.ndarray
    prior: np.ndarray
    noise: np.ndarray

    @property
    def error_rate(self) -> float:
        """Share of labels the joint puts off the diagonal."""
        return float(1.0 - np.trace(self.joint))


def apply_temperature(evidence: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(evidence) / temperature)`` row by row; shape (n, k) in, (n, k) out."""
    logits = np.log(np.clip(evidence, _EPS, None)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return out / out.sum(axis=1, keepdims=True)


def fit_temperature(evidence: np.ndarray, y_idx: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of the given labels.

    Parameters
    ----------
    evidence : ndarray, shape (n, k)
        Rows sum to 1.
    y_idx : ndarray of int, shape (n,)

    Returns
    -------
    float
        In [0.05, 20].
    """
    logits = np.log(np.clip(evidence, _EPS, None))
    rows = np.arange(y_idx.size)

    def nll(log_t: float) -> float:
        return -float(log_softmax(logits / np.exp(log_t), axis=1)[rows, y_idx].mean())

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                          options={"xatol": 1e-4})
    return float(np.exp(res.x))


def confident_labels(proba: np.ndarray, y_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confident learning's per-class thresholds and each row's confident class.

    ``t_j`` is the mean probability of class ``j`` over the rows labeled ``j`` (1 for a class with
    no rows); a row's confident class is its most probable class among those at or above their
    threshold.

    Returns
    -------
    thresholds : ndarray of float64, shape (k,)
    has_confident : ndarray of bool, shape (n,)
        Some class reaches its threshold.
    confident_class : ndarray of int64, shape (n,)
        Meaningful where ``has_confident``.
    """
    n, k = proba.shape
    counts = np.bincount(y_idx, minlength=k)
    sums = np.zeros(k)
    np.add.at(sums, y_idx, proba[np.arange(n), y_idx])
    thresholds = np.where(counts > 0, sums / np.maximum(counts, 1), 1.0)
    confident = np.where(proba >= thresholds[None, :] - 1e-12, proba, -np.inf)
    return thresholds, np.isfinite(confident).any(axis=1), confident.argmax(axis=1)


def confident_joint(proba: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """Calibrated confident joint ``C[given, true]`` (counts; row ``i`` sums to the rows given ``i``).

    Parameters
    ----------
    proba : ndarray, shape (n, k)
    y_idx : ndarray of int, shape (n,)

    Returns
    -------
    ndarray of float64, shape (k, k)
    """
    k = proba.shape[1]
    counts = np.bincount(y_idx, minlength=k).astype(np.float64)
    _, has, true_idx = confident_labels(proba, y_idx)
    C = np.zeros((k, k))
    np.add.at(C, (y_idx[has], true_idx[has]), 1.0)
    # A class no row was confidently counted for keeps its rows on the diagonal.
    empty = C.sum(axis=1) == 0
    C[empty, empty] = counts[empty]
    return C * (counts / np.maximum(C.sum(axis=1), 1.0))[:, None]


def estimate_noise(evidence: np.ndarray, y_idx: np.ndarray) -> NoiseModel:
    """Fit the temperature and the noise model (module docstring, steps 1-2).

    Parameters
    ----------
    evidence : ndarray, shape (n, k)
        Out-of-fold evidence; rows sum to 1.
    y_idx : ndarray of int, shape (n,)
    """
    temperature = fit_temperature(evidence, y_idx)
    calibrated = apply_temperature(evidence, temperature)
    C = confident_joint(calibrated, y_idx)
    joint = C / C.sum()
    prior = joint.sum(axis=0)
    noise = joint / np.maximum(prior, 1e-12)[None, :]
    # A class with no estimated true rows: its given label only ever means itself.
    void = prior <= 1e-12
    noise[:, void] = 0.0
    noise[void, void] = 1.0
    return NoiseModel(temperature=temperature, joint=joint, prior=prior, noise=noise)


def deconvolve(noisy: np.ndarray, noise: np.ndarray, n_iter: int = 50) -> np.ndarray:
    """True-class distributions ``p`` whose noisy image ``N p`` best matches ``noisy`` (EM).

    Parameters
    ----------
    noisy : ndarray, shape (n, k)
        Distributions of the noisy label per row.
    noise : ndarray, shape (k, k)
        ``N[given, true]``, columns summing to 1.
    n_iter : int

    Returns
    -------
    ndarray of float64, shape (n, k)
        Rows sum to 1.
    """
    p = noisy.copy()
    for _ in range(n_iter):
        p *= (noisy / np.maximum(p @ noise.T, 1e-12)) @ noise
        p /= np.maximum(p.sum(axis=1, keepdims=True), 1e-300)
    return p


def mislabel_posterior(evidence: np.ndarray, y_idx: np.ndarray, model: NoiseModel) -> tuple[np.ndarray, np.ndarray]:
    """Probability that each given label is wrong, and the posterior over the true label.

    Parameters
    ----------
    evidence : ndarray, shape (n, k)
    y_idx : ndarray of int, shape (n,)
    model : NoiseModel

    Returns
    -------
    p_mislabeled : ndarray of float64, shape (n,)
    posterior : ndarray of float64, shape (n, k)
        ``P(true = j | x, given)``; rows sum to 1.
    """
    calibrated = deconvolve(apply_temperature(evidence, model.temperature), model.noise)
    post = calibrated * model.noise[y_idx]
    total = post.sum(axis=1, keepdims=True)
    # A row whose evidence is all on classes its label can never come from: trust the evidence.
    post = np.where(total > 0, post / np.where(total > 0, total, 1.0), calibrated)
    return 1.0 - post[np.arange(y_idx.size), y_idx], post


def error_rate_interval(p_mislabeled: np.ndarray, z: float = 1.96) -> tuple[float, float, float]:
    """Estimated share of wrong labels with a normal-approximation interval.

    Returns
    -------
    (rate, low, high) : floats in [0, 1]
    """
    p = np.asarray(p_mislabeled, dtype=np.float64)
    n = p.size
    rate = float(p.mean())
    var = (p.var() + (p * (1.0 - p)).mean()) / n
    half = z * float(np.sqrt(var))
    return rate, max(0.0, rate - half), min(1.0, rate + half)
