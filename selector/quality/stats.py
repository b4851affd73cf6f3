"""Statistics shared by the label-quality measurements."""

from __future__ import annotations

import numpy as np

__all__ = ["Z_95", "wilson_interval"]

Z_95 = 1.959963984540054


def wilson_interval(k, n, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a proportion ``k / n`` (95% by default).

    Parameters
    ----------
    k, n : int or array-like of int, same shape
        Successes and trials; where ``n`` is 0 the interval is NaN.

    Returns
    -------
    low, high : ndarray of float, same shape as ``k``
    """
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # k = 0 and k = n have exact bounds 0 and 1 (the formula gives them up to rounding)
    low = np.where(n > 0, np.where(k <= 0, 0.0, np.clip(centre - half, 0.0, 1.0)), np.nan)
    high = np.where(n > 0, np.where(k >= n, 1.0, np.clip(centre + half, 0.0, 1.0)), np.nan)
    return low, high
