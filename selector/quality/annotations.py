"""Multi-annotator data in long format: one row per (item, annotator, label).

The agreement, review, gold and adjudication tools all start from :func:`prepare_annotations`.
"""

from __future__ import annotations

import pandas as pd

from selector.errors import DataError
from selector.labels import normalise_label

__all__ = ["prepare_annotations", "ANNOTATION_COLUMNS", "guideline_versions", "NO_VERSION"]

#: The version of a rating with no ``guideline_version``.
NO_VERSION = "(none)"

ANNOTATION_COLUMNS = ("item_id", "annotator", "label")


def prepare_annotations(df: pd.DataFrame, *, item_col: str = "item_id", annotator_col: str = "annotator",
                        label_col: str = "label", source: str = "<DataFrame>",
                        keep: tuple[str, ...] = ("text", "guideline_version", "timestamp")) -> pd.DataFrame:
    """Validate long-format annotations and return them with canonical column names.

    Parameters
    ----------
    df : DataFrame
        One row per (item, annotator) rating.
    item_col, annotator_col, label_col : str
        Column names in ``df``.
    source : str
        Name used in error messages (the file path).
    keep : tuple of str
        Optional columns carried along when present.

    Returns
    -------
    DataFrame
        Columns ``item_id, annotator, label`` (all str) plus whichever ``keep`` columns exist.
        Rows whose label is empty are dropped (a missing rating, not a label).

    Raises
    ------
    DataError
        A missing column (listing the columns found), an empty item id or annotator, or one
        annotator rating the same item twice with different labels.
    """
    found = ", ".join(map(str, df.columns[:30]))
    for col, flag in ((item_col, "--item-col"), (annotator_col, "--annotator-col"), (label_col, "--label-col")):
        if col not in df.columns:
            raise DataError(f"{source}: no column {col!r} (columns found: {found}); pass {flag} COLUMN")
    out = pd.DataFrame({
        "item_id": [normalise_label(v) for v in df[item_col].to_numpy(dtype=object)],
        "annotator": [normalise_label(v) for v in df[annotator_col].to_numpy(dtype=object)],
        "label": [normalise_label(v) for v in df[label_col].to_numpy(dtype=object)],
    }, dtype=object)
    for col in keep:
        if col in df.columns and col not in out.columns:
            out[col] = df[col].to_numpy(dtype=object)
    for col, name in (("item_id", item_col), ("annotator", annotator_col)):
        empty = out[col].isna().to_numpy()
        if empty.any():
            raise DataError(f"{source}: data row {int(empty.argmax()) + 1} has an empty {name!r}; fill it in or drop the row")
    out = out[out["label"].notna()].reset_index(drop=True)
    if out.empty:
        raise DataError(f"{source}: no ratings: every {label_col!r} cell is empty")
    dup = out.duplicated(["item_id", "annotator"], keep=False)
    if dup.any():
        conflicting = out[dup].groupby(["item_id", "annotator"])["label"].nunique()
        conflicting = conflicting[conflicting > 1]
        if len(conflicting):
            item, ann = conflicting.index[0]
            raise DataError(f"{source}: annotator {ann!r} gave item {item!r} {int(conflicting.iloc[0])} different labels; "
                            "keep one rating per annotator and item")
        out = out.drop_duplicates(["item_id", "annotator"]).reset_index(drop=True)
    return out


def guideline_versions(values: pd.Series) -> pd.Series:
    """Each rating's guideline version as text: stripped, and :data:`NO_VERSION` where it is missing or empty."""
    return values.map(lambda v: NO_VERSION if v is None or pd.isna(v) or str(v).strip() == "" else str(v).strip())
