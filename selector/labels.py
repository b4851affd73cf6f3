"""Label cells as values: what counts as "no label" (empty cells, unsure answers).

Shared by the round (which rows are labeled), label quality and the loop, so every command
agrees on which cells are labels.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

from selector.errors import ConfigError

__all__ = ["DATA_ANNOTATOR", "normalise_label", "DEFAULT_UNSURE_LABELS", "normalise_unsure_labels", "unsure_mask"]

#: Who a label in the data table is from, as a vote beside long-format annotations, when the
#: table has no ``annotator`` column (``select --annotations``, ``merge --annotations``).
DATA_ANNOTATOR = "(data)"
DEFAULT_UNSURE_LABELS: tuple[str, ...] = ("unsure", "needs_review")


def normalise_unsure_labels(values: Iterable[str] | str | None) -> frozenset[str]:
    """The unsure values as a case-folded set.

    Parameters
    ----------
    values : iterable of str, a comma-separated str, or None
        None means the default set; an empty iterable switches the unsure path off.

    Raises
    ------
    ConfigError
        A value that is not a non-empty string.
    """
    if values is None:
        values = DEFAULT_UNSURE_LABELS
    if isinstance(values, str):
        values = [v for v in values.split(",")]
    out = set()
    for v in values:
        if not isinstance(v, str) or not v.strip():
            raise ConfigError(f"unsure_labels must be non-empty strings, got {v!r}")
        out.add(v.strip().casefold())
    return frozenset(out)


def unsure_mask(labels, unsure_labels: Iterable[str] | str | None = None) -> np.ndarray:
    """Which labels are unsure values.

    Parameters
    ----------
    labels : array-like of str or None, shape (n,)
    unsure_labels : iterable of str, optional
        Default :data:`DEFAULT_UNSURE_LABELS`.

    Returns
    -------
    ndarray of bool, shape (n,)
    """
    unsure = normalise_unsure_labels(unsure_labels)
    labels = np.asarray(labels, dtype=object)
    if not unsure:
        return np.zeros(labels.shape[0], dtype=bool)
    return np.array([isinstance(v, str) and v.strip().casefold() in unsure for v in labels], dtype=bool)


def normalise_label(value) -> str | None:
    """A label cell as text; None for empty, whitespace-only, NaN or null (= unlabeled).

    Whole-number floats (``1.0``, as Parquet/JSON give for an int column with gaps) become ``"1"``.
    """
    if value is None:
        return None
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if value is pd.NA or value is pd.NaT:
        return None
    text = str(value).strip()
    return text or None
