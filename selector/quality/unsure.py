"""The "unsure" path: label values that mean "no label yet".

An annotator who is not sure should say so rather than guess. Ratings whose label is one of the
configured unsure values (default ``unsure``, ``needs_review``; matched case-insensitively) are
not labels: :func:`selector.round.pool.prepare_pool` treats such rows as unlabeled (so they are
neither trained on nor excluded from selection), :func:`unsure_report` measures how often each
annotator, class and guideline version produces them (a high rate means the guideline is unclear
there), and :func:`unsure_items` lists every unsure item for ``selector review`` at top priority.

This module imports nothing else from selector at load time, so ``selector.round.pool`` can use it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.labels import normalise_unsure_labels, unsure_mask
from selector.quality.annotations import guideline_versions
from selector.quality.stats import wilson_interval

__all__ = [
    "UNSURE_PRIORITY",
    "UnsureReport",
    "unsure_report",
    "unsure_items",
    "join_by_group",
]

#: Base priority of an unsure item in a review queue. Review scores elsewhere are in [0, 1]
#: (higher = review first), so anything at or above this sorts ahead of every other item.
UNSURE_PRIORITY = 2.0


def join_by_group(keys, strings, sep: str = "; ") -> pd.Series:
    """``sep``-joined ``strings`` per key, in the given order (fast for 10^6 rows, unlike groupby-agg).

    Parameters
    ----------
    keys, strings : array-like, shape (n,)

    Returns
    -------
    Series of str indexed by key, keys in order of first appearance.
    """
    codes, uniques = pd.factorize(np.asarray(keys, dtype=object))
    order = np.argsort(codes, kind="stable")
    values = np.asarray(strings, dtype=object)[order]
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    joined = [sep.join(chunk) for chunk in np.split(values, bounds)] if len(values) else []
    return pd.Series(joined, index=pd.Index(uniques, dtype=object), dtype=object)


def _reference_labels(annotations: pd.DataFrame, sure: np.ndarray, gold: pd.DataFrame | None) -> pd.Series:
    """Class of each item: its gold label, else the most common sure label (ties: alphabetically first)."""
    counts = (annotations[sure].groupby(["item_id", "label"], sort=False).size().rename("n").reset_index()
              .sort_values(["item_id", "n", "label"], ascending=[True, False, True], kind="stable")
              .drop_duplicates("item_id"))
    ref = dict(zip(counts["item_id"], counts["label"]))
    if gold is not None:
        ref.update(zip(gold["item_id"], gold["gold_label"]))
    return annotations["item_id"].map(ref).fillna("(no label)")


def _rate_table(keys: pd.Series, unsure: np.ndarray, name: str, max_rate: float) -> pd.DataFrame:

    frame = pd.DataFrame({name: keys.to_numpy(dtype=object), "unsure": unsure})
    grouped = frame.groupby(name, sort=True)["unsure"].agg(["size", "sum"])
    lo, hi = wilson_interval(grouped["sum"].to_numpy(), grouped["size"].to_numpy())
    out = pd.DataFrame({
        name: grouped.index.to_numpy(dtype=object),
        "n_ratings": grouped["size"].to_numpy(dtype=int),
        "n_unsure": grouped["sum"].to_numpy(dtype=int),
    })
    out["unsure_rate"] = out["n_unsure"] / out["n_ratings"]
    out["ci_low"] = lo
    out["ci_high"] = hi
    out["too_high"] = out["unsure_rate"] > max_rate
    return out.sort_values(["unsure_rate", name], ascending=[False, True]).reset_index(drop=True)


@dataclass(frozen=True)
class UnsureReport:
    """How often ratings are unsure, by annotator, class and guideline version.

    Each table has ``n_ratings, n_unsure, unsure_rate, ci_low, ci_high`` (Wilson 95%) and
    ``too_high`` (rate above ``max_rate``), sorted by rate, highest first.

    Attributes
    ----------
    by_annotator : DataFrame
    by_class : DataFrame
        Class = the item's gold label when a gold set is given, else the most common sure label of
        the item; ``(no label)`` when every rating of the item is unsure.
    by_guideline_version : DataFrame or None
        None when the annotations have no ``guideline_version`` column.
    n_ratings, n_unsure : int
    unsure_labels : tuple of str
    max_rate : float
    """

    by_annotator: pd.DataFrame
    by_class: pd.DataFrame
    by_guideline_version: pd.DataFrame | None
    n_ratings: int
    n_unsure: int
    unsure_labels: tuple[str, ...]
    max_rate: float

    @property
    def unsure_rate(self) -> float:
        return self.n_unsure / self.n_ratings if self.n_ratings else 0.0


def unsure_report(annotations: pd.DataFrame, unsure_labels: Iterable[str] | str | None = None, *,
                  gold: pd.DataFrame | None = None, max_rate: float = 0.2) -> UnsureReport:
    """Unsure rates per annotator, class and guideline version.

    Parameters
    ----------
    annotations : DataFrame
        Long format from :func:`selector.quality.annotations.prepare_annotations` (``item_id, annotator,
        label`` and optionally ``guideline_version``).
    unsure_labels : iterable of str, optional
        Default :data:`DEFAULT_UNSURE_LABELS`.
    gold : DataFrame, optional
        ``item_id, gold_label`` (from :func:`selector.quality.gold.prepare_gold`), used as the class.
    max_rate : float
        Rates above it are marked ``too_high``.
    """
    if not 0.0 <= max_rate <= 1.0:
        raise ConfigError(f"max_rate must be between 0 and 1, got {max_rate!r}")
    _check_annotations(annotations)
    unsure_set = normalise_unsure_labels(unsure_labels)
    unsure = unsure_mask(annotations["label"], unsure_set)
    by_class = _rate_table(_reference_labels(annotations, ~unsure, gold), unsure, "class", max_rate)
    by_version = None
    if "guideline_version" in annotations.columns:
        versions = guideline_versions(annotations["guideline_version"])
        by_version = _rate_table(versions, unsure, "guideline_version", max_rate)
    return UnsureReport(
        by_annotator=_rate_table(annotations["annotator"], unsure, "annotator", max_rate),
        by_class=by_class, by_guideline_version=by_version,
        n_ratings=int(unsure.size), n_unsure=int(unsure.sum()),
        unsure_labels=tuple(sorted(unsure_set)), max_rate=max_rate)


def unsure_items(annotations: pd.DataFrame, unsure_labels: Iterable[str] | str | None = None) -> pd.DataFrame:
    """Every item with at least one unsure rating, ready to merge into a review queue at top priority.

    Parameters
    ----------
    annotations : DataFrame
        Long format (``item_id, annotator, label``, optionally ``text``).
    unsure_labels : iterable of str, optional

    Returns
    -------
    DataFrame
        One row per item: ``item_id, priority, reason, n_unsure, n_ratings, unsure_by, votes``
        (+ ``text`` when present). ``priority`` = :data:`UNSURE_PRIORITY` + share of unsure
        ratings, so it is >= 2 and sorts above review scores in [0, 1] (higher = review first);
        rows are sorted by it, highest first, then by item id.
    """
    _check_annotations(annotations)
    unsure = unsure_mask(annotations["label"], unsure_labels)
    columns = ["item_id", "priority", "reason", "n_unsure", "n_ratings", "unsure_by", "votes"]
    if "text" in annotations.columns:
        columns.append("text")
    if not unsure.any():
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    in_flagged = annotations["item_id"].isin(set(annotations["item_id"].to_numpy()[unsure])).to_numpy()
    sub = annotations[in_flagged].assign(_unsure=unsure[in_flagged])
    grouped = sub.groupby("item_id", sort=False)
    out = pd.DataFrame({"n_unsure": grouped["_unsure"].sum().astype(int), "n_ratings": grouped.size().astype(int)})
    out.index = out.index.astype(object)
    who = join_by_group(sub.loc[sub["_unsure"], "item_id"], sub.loc[sub["_unsure"], "annotator"].astype(str), ", ")
    out["unsure_by"] = who.reindex(out.index)
    out["votes"] = join_by_group(sub["item_id"], sub["annotator"].astype(str) + "=" + sub["label"].astype(str)
                                 ).reindex(out.index)
    out["priority"] = (UNSURE_PRIORITY + out["n_unsure"] / out["n_ratings"]).round(6)
    out["reason"] = ("unsure: " + out["n_unsure"].astype(str) + " of " + out["n_ratings"].astype(str)
                     + " rating(s) unsure (" + out["unsure_by"] + ")")
    if "text" in sub.columns:
        out["text"] = grouped["text"].first()
    out = out.rename_axis("item_id").reset_index()[columns]
    return out.sort_values(["priority", "item_id"], ascending=[False, True], kind="stable").reset_index(drop=True)


def _check_annotations(annotations: pd.DataFrame) -> None:
    if not isinstance(annotations, pd.DataFrame):
        raise DataError(f"annotations must be a DataFrame, got {type(annotations).__name__}")
    missing = [c for c in ("item_id", "annotator", "label") if c not in annotations.columns]
    if missing:
        raise DataError(f"annotations lack column(s) {', '.join(missing)}; "
                        "read them with selector.quality.annotations.prepare_annotations")
