"""Turning a table into the pipeline's one index space: ids, texts and labels by position.

Row ids exist only here and at output; inside, everything is a position in the table.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from selector.errors import DataError
from selector.labels import DEFAULT_UNSURE_LABELS, normalise_label, unsure_mask
from selector.labelsets import (
    DEFAULT_LABEL_SEP,
    DEFAULT_NONE_LABEL,
    LabelSpace,
    detect_multi_label,
    parse_label_sets,
)

__all__ = ["LabeledPool", "prepare_pool", "pool_from_config", "GENERATED_ID_NOTE"]

GENERATED_ID_NOTE = "id generated from the sha256 of the text and the row number (no id column)"


@dataclass(frozen=True)
class LabeledPool:
    """A table split into labeled and unlabeled positions.

    Attributes
    ----------
    ids : ndarray of object (str), shape (n,)
    texts : ndarray of object (str), shape (n,)
    labels : ndarray of object, shape (n,)
        The label as text, or None where the row is unlabeled.
    labeled : ndarray of bool, shape (n,)
    ids_generated : bool
        True when ids were generated because the table had no id column.
    source : str
        Where the table came from (a file path or "<DataFrame>"), for messages.
    space : LabelSpace or None
        A multi-label task's labels; None for a single-label task. Then ``labels`` holds each
        labeled row's set written as one cell (:meth:`LabelSpace.join`) and ``Y`` the indicator matrix.
    Y : ndarray of int8, shape (n, L), or None
        Multi-label only: the given label sets (all-zero rows for unlabeled rows and "none of these").
    """

    ids: np.ndarray
    texts: np.ndarray
    labels: np.ndarray
    labeled: np.ndarray
    ids_generated: bool
    source: str
    space: LabelSpace | None = None
    Y: np.ndarray | None = None

    @property
    def multi_label(self) -> bool:
        return self.space is not None

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])

    @property
    def labeled_positions(self) -> np.ndarray:
        return np.flatnonzero(self.labeled)

    @property
    def pool_positions(self) -> np.ndarray:
        return np.flatnonzero(~self.labeled)

    def take(self, positions: np.ndarray) -> "LabeledPool":
        """The pool restricted to ``positions`` (shape (m,), sorted), in that order."""
        positions = np.asarray(positions, dtype=np.int64)
        return LabeledPool(ids=self.ids[positions], texts=self.texts[positions], labels=self.labels[positions],
                           labeled=self.labeled[positions], ids_generated=self.ids_generated, source=self.source,
                           space=self.space, Y=None if self.Y is None else self.Y[positions])


def generated_ids(texts: np.ndarray) -> np.ndarray:
    return np.array(
        [f"{hashlib.sha256(t.encode('utf-8')).hexdigest()[:12]}-{i}" for i, t in enumerate(texts)],
        dtype=object,
    )


def _missing_column(source: str, kind: str, col: str, df: pd.DataFrame, flag: str) -> DataError:
    found = ", ".join(map(str, df.columns[:30])) + (" ..." if df.shape[1] > 30 else "")
    return DataError(f"{source}: no {kind} column {col!r} (columns found: {found}); pass {flag} COLUMN")


def check_text_cells(values: np.ndarray, source: str, text_col: str) -> None:
    """Refuse a text column whose cells are lists, arrays or objects (a Parquet or JSON column of
    lists reads fine but is not one text per row).

    Parameters
    ----------
    values : ndarray of object, shape (n,)
    """
    for i, t in enumerate(values):
        if isinstance(t, (list, tuple, dict, set, np.ndarray)):
            kind = "a list" if isinstance(t, (list, tuple, np.ndarray, set)) else "an object"
            raise DataError(f"{source}: row {i + 1}'s {text_col!r} cell is {kind}, not text; give one text per "
                            "row (join the parts, or name another column with --text-col)")


def prepare_pool(df: pd.DataFrame, *, text_col: str = "text", label_col: str = "label",
                 id_col: str = "id", source: str = "<DataFrame>",
                 require_label_col: bool = True, require_id_col: bool = False,
                 unsure_labels=DEFAULT_UNSURE_LABELS, multi_label: bool = False,
                 label_sep: str = DEFAULT_LABEL_SEP, none_label: str = DEFAULT_NONE_LABEL,
                 declared_labels=None, warn_label_sets: bool = True) -> LabeledPool:
    """Validate a table and split it into labeled and unlabeled rows.

    Parameters
    ----------
    df : DataFrame
    text_col, label_col, id_col : str
        Column names. A missing id column is allowed (ids are generated) unless ``require_id_col``;
        a missing text column is an error; a missing label column is an error unless
        ``require_label_col`` is False.
    source : str
        Name used in error messages (the file path).
    unsure_labels : iterable of str
        Label values that mean "no label yet" (case-insensitive; default ``unsure``,
        ``needs_review``): such rows are unlabeled. ``()`` makes every value a label.
    multi_label : bool
        Label cells hold label sets (``label_sep``-joined, or JSON lists); see :mod:`selector.labelsets`.
    label_sep, none_label : str
        The multi-label delimiter and "none of these" token.
    declared_labels : sequence of str, optional
        The task's declared labels (multi-label: the first columns of the label space).
    warn_label_sets : bool
        Warn when a single-label read meets cells that look like label sets (callers that resolved the
        task type themselves pass whether it was declared single-label: an undeclared one was detected
        as single-label already).

    Raises
    ------
    DataError
        Missing columns, non-text cells in the text column, empty texts or duplicate ids.
    """
    if df.shape[0] == 0:
        raise DataError(f"{source}: has no data rows")
    if text_col not in df.columns:
        raise _missing_column(source, "text", text_col, df, "--text-col")
    if label_col not in df.columns and require_label_col:
        raise _missing_column(source, "label", label_col, df, "--label-col")
    if id_col not in df.columns and require_id_col:
        raise _missing_column(source, "id", id_col, df, "--id-col")

    raw_texts = df[text_col].to_numpy(dtype=object)
    texts = np.empty(raw_texts.shape[0], dtype=object)
    check_text_cells(raw_texts, source, text_col)
    for i, t in enumerate(raw_texts):
        if t is None or (isinstance(t, float) and math.isnan(t)):
            raise DataError(f"{source}: row {i + 1} has no text in column {text_col!r}; fill it in or drop the row")
        texts[i] = t if isinstance(t, str) else str(t)
    blank = [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        rows = ", ".join(str(i + 1) for i in blank[:10])
        raise DataError(f"{source}: {len(blank)} row(s) have an empty text in column {text_col!r} "
                        f"(data rows {rows}{' ...' if len(blank) > 10 else ''}); fill them in or drop them")

    space, Y = None, None
    if label_col in df.columns and multi_label:
        raw = df[label_col].to_numpy(dtype=object)
        sets = parse_label_sets(raw, sep=label_sep, none_label=none_label, source=source, label_col=label_col)
        cells = np.array([v if isinstance(v, str) else None for v in raw], dtype=object)
        for i in np.flatnonzero(unsure_mask(cells, unsure_labels)):
            sets[i] = None
        space = LabelSpace.from_sets(sets, declared=declared_labels, sep=label_sep, none_label=none_label)
        Y = space.indicator(sets)
        labels = np.array([None if s is None else space.join(s) for s in sets], dtype=object)
    elif label_col in df.columns:
        if warn_label_sets and detect_multi_label(df[label_col].to_numpy(dtype=object), label_sep):
            warnings.warn(f"{source}: column {label_col!r} holds label sets ({label_sep!r}-joined); this command reads "
                          "each cell as one label (declare the task multi-label to read them as sets)", stacklevel=2)
        labels = np.array([normalise_label(v) for v in df[label_col].to_numpy(dtype=object)], dtype=object)
        labels[unsure_mask(labels, unsure_labels)] = None
    else:
        labels = np.full(texts.shape[0], None, dtype=object)
    labeled = np.array([lab is not None for lab in labels], dtype=bool)

    if id_col in df.columns:
        ids = np.array([normalise_label(v) for v in df[id_col].to_numpy(dtype=object)], dtype=object)
        empty = np.flatnonzero([v is None for v in ids])
        if empty.size:
            raise DataError(f"{source}: row {empty[0] + 1} has an empty id in column {id_col!r}; every row needs an id")
        uniq, first, counts = np.unique(ids.astype(str), return_index=True, return_counts=True)
        if (counts > 1).any():
            dup = uniq[counts > 1]
            rows = np.flatnonzero(ids.astype(str) == dup[0])[:5] + 1
            raise DataError(
                f"{source}: {dup.size} duplicate id(s) in column {id_col!r}, e.g. {dup[0]!r} on data rows "
                f"{', '.join(map(str, rows))}; ids must be unique"
            )
        generated = False
    else:
        ids = generated_ids(texts)
        generated = True
    return LabeledPool(ids=ids, texts=texts, labels=labels, labeled=labeled,
                       ids_generated=generated, source=source, space=space, Y=Y)


def pool_from_config(df: pd.DataFrame, config, *, source: str, require_id_col: bool | None = None,
                     require_label_col: bool = True) -> tuple[LabeledPool, bool]:
    """:func:`prepare_pool` with the config's columns, unsure values and task type.

    Parameters
    ----------
    config : SelectConfig
        ``task`` ``auto`` detects label sets (:func:`selector.labelsets.detect_multi_label`).

    Returns
    -------
    pool : LabeledPool
    detected : bool
        True when the task was detected as multi-label rather than declared (the caller says so).
    """
    from selector.labelsets import table_task

    task, detected = table_task(df, config.label_col, config.task, config.label_sep)
    multi = task == "multi_label"
    pool = prepare_pool(df, text_col=config.text_col, label_col=config.label_col, id_col=config.id_col,
                        source=source, require_id_col=(config.id_col != "id") if require_id_col is None else require_id_col,
                        require_label_col=require_label_col,
                        unsure_labels=config.unsure_labels, multi_label=multi, label_sep=config.label_sep,
                        none_label=config.none_label, declared_labels=config.labels if multi else None,
                        warn_label_sets=False)
    return pool, detected and multi
