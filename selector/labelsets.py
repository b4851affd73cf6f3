"""Multi-label cells: a label *set* per row, and the one indicator-matrix view every module shares.

A multi-label table holds, in its label column, delimiter-joined labels (``anger;fear``; the
delimiter is ``label_sep``, ``;`` by default) or, in JSONL, a JSON list (``["anger", "fear"]``).

* An empty cell (or null) is "not labeled yet": the row is in the pool.
* The none token (``none_label``, ``none`` by default; an empty JSON list too) is "labeled: none of
  these labels": a labeled row whose indicator row is all zeros.

Inside, a labeled set of rows is an indicator matrix ``Y`` of shape (n, L) with columns in
:attr:`LabelSpace.names` order, as scikit-learn's ``MultiLabelBinarizer`` makes; a set is written
back as its labels in that order joined by the delimiter (:meth:`LabelSpace.join`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from selector.errors import ConfigError, DataError

__all__ = ["DEFAULT_LABEL_SEP", "DEFAULT_NONE_LABEL", "TASKS", "LabelSpace", "parse_label_set", "canonical_cell",
           "differing_labels",
           "parse_label_sets", "detect_multi_label", "check_label_sep", "resolve_task", "table_task"]

DEFAULT_LABEL_SEP = ";"
DEFAULT_NONE_LABEL = "none"
#: ``task`` values: declared single label, declared multi-label, or detected from the label cells.
TASKS = ("auto", "single_label", "multi_label")


def check_label_sep(sep: str, none_label: str) -> None:
    """Refuse an empty or whitespace delimiter and a none token that contains it.

    Raises
    ------
    ConfigError
    """
    if not isinstance(sep, str) or not sep or sep.strip() != sep:
        raise ConfigError(f"label_sep must be a non-empty string without surrounding spaces, got {sep!r}")
    if not isinstance(none_label, str) or not none_label.strip():
        raise ConfigError(f"none_label must be a non-empty string, got {none_label!r}")
    if sep in none_label:
        raise ConfigError(f"none_label {none_label!r} contains the label delimiter {sep!r}; choose another "
                          "none token (--none-label) or delimiter (--label-sep)")


def _is_missing(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    try:
        import pandas as pd

        return value is pd.NA
    except ImportError:  # pragma: no cover - pandas is a dependency
        return False


def parse_label_set(value, *, sep: str = DEFAULT_LABEL_SEP,
                    none_label: str = DEFAULT_NONE_LABEL) -> tuple[str, ...] | None:
    """One label cell as a set of labels.

    Parameters
    ----------
    value : str, list, tuple, ndarray or None
        A delimiter-joined cell, or a list (JSONL).
    sep, none_label : str

    Returns
    -------
    tuple of str or None
        None: not labeled yet (empty cell, null). ``()``: labeled "none of these" (the none token
        alone, or an empty list). Otherwise the distinct labels in the order first given; the none
        token is kept when it comes with other labels, so ``validate`` can report the row.

    Raises
    ------
    DataError
        A list element that is not text, or that contains the delimiter (it could not be written
        back to a table cell).
    """
    if isinstance(value, (list, tuple, np.ndarray)):
        parts = []
        for v in value:
            if not isinstance(v, (str, int)) or isinstance(v, bool):
                raise DataError(f"a label list holds {v!r}, which is not a label name")
            text = str(v).strip()
            if sep in text:
                raise DataError(f"label {text!r} contains the label delimiter {sep!r}; rename the label or "
                                "choose another delimiter with --label-sep")
            if text:
                parts.append(text)
    else:
        if _is_missing(value):
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        if not text:
            return None
        parts = [p.strip() for p in text.split(sep)]
        parts = [p for p in parts if p]
        if not parts:
            return None
    distinct = tuple(dict.fromkeys(parts))
    if distinct == (none_label,):
        return ()
    return distinct


def canonical_cell(labels: Iterable[str], sep: str = DEFAULT_LABEL_SEP, none_label: str = DEFAULT_NONE_LABEL) -> str:
    """A set as one cell in one spelling: distinct labels sorted by name and joined; the none token when empty.

    Two cells naming the same set in another order (``fear;anger``, ``anger;fear``) get the same text,
    so a merge compares sets, not spellings.
    """
    distinct = sorted({str(v).strip() for v in labels if str(v).strip()} - {none_label})
    return sep.join(distinct) if distinct else none_label


def differing_labels(cells: Iterable, sep: str = DEFAULT_LABEL_SEP, none_label: str = DEFAULT_NONE_LABEL) -> list[str]:
    """Labels some of the set cells carry and others do not (sorted), e.g. for a conflict message."""
    sets = [set(parse_label_set(c, sep=sep, none_label=none_label) or ()) for c in cells]
    if not sets:
        return []
    return sorted(set.union(*sets) - set.intersection(*sets))


def parse_label_sets(values: Iterable, *, sep: str = DEFAULT_LABEL_SEP,
                     none_label: str = DEFAULT_NONE_LABEL, source: str = "labels",
                     label_col: str = "label") -> list[tuple[str, ...] | None]:
    """:func:`parse_label_set` over a column; a DataError names the data row (1-based)."""
    out = []
    for i, v in enumerate(values):
        try:
            out.append(parse_label_set(v, sep=sep, none_label=none_label))
        except DataError as exc:
            raise DataError(f"{source}: row {i + 1}, column {label_col!r}: {exc}") from None
    return out


def detect_multi_label(values: Sequence, sep: str = DEFAULT_LABEL_SEP) -> bool:
    """Whether a label column holds label sets.

    True when any cell is a list, or when at least one cell joins two or more labels with ``sep``
    and most of the parts of such cells (at least half) also occur as a whole cell elsewhere, as
    ``anger;fear`` beside ``anger`` rows does. A single label that merely contains ``;`` (a JSON
    reply, a sentence) does not qualify: its parts are not labels of other rows.

    Parameters
    ----------
    values : sequence of cells, shape (n,)
    """
    # Every round of a table reads its cells once here, so the common case (text without the
    # delimiter) costs a membership test and a set insert; cells are stripped once per distinct text.
    plain: set[str] = set()
    with_sep: dict[str, int] = {}  # cell -> rows: each row's parts count
    for v in values:
        if not isinstance(v, str):
            if isinstance(v, (list, tuple, np.ndarray)):
                return True
            if _is_missing(v):
                continue
            v = str(v)
        if sep in v:
            with_sep[v] = with_sep.get(v, 0) + 1
        else:
            plain.add(v)
    whole = {t.strip() for t in plain} - {""}
    joined = []  # (parts, rows)
    for cell, rows in with_sep.items():
        text = cell.strip()
        parts = [p.strip() for p in text.split(sep) if p.strip()]
        if len(parts) >= 2:
            joined.append((parts, rows))
        elif text:
            whole.add(text)
    if not joined:
        return False
    n_parts = sum(len(ps) * rows for ps, rows in joined)
    n_known = sum(sum(p in whole for p in ps) * rows for ps, rows in joined)
    return n_known >= 0.5 * n_parts


def resolve_task(task: str, values: Sequence, sep: str) -> tuple[str, bool]:
    """The task type, and whether it was detected rather than declared.

    Parameters
    ----------
    task : {"auto", "single_label", "multi_label"}
    values : sequence of label cells
    """
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    if task != "auto":
        return task, False
    return ("multi_label" if detect_multi_label(values, sep) else "single_label"), True


def table_task(df, label_col: str, task: str = "auto", sep: str = DEFAULT_LABEL_SEP) -> tuple[str, bool]:
    """:func:`resolve_task` on a table's label column (a table without it is single-label unless declared).

    Parameters
    ----------
    df : DataFrame
    """
    values = df[label_col].to_numpy(dtype=object) if label_col in df.columns else []
    return resolve_task(task, values, sep)


@dataclass(frozen=True)
class LabelSpace:
    """The labels of a multi-label task, in column order, and how sets are written.

    Attributes
    ----------
    names : tuple of str
        Column order of every indicator matrix and probability matrix (shape (n, L)).
    sep : str
        Delimiter of a written set.
    none_label : str
        What an empty set is written as.
    """

    names: tuple[str, ...]
    sep: str = DEFAULT_LABEL_SEP
    none_label: str = DEFAULT_NONE_LABEL

    @classmethod
    def from_sets(cls, sets: Iterable[tuple[str, ...] | None], *, declared: Sequence[str] | None = None,
                  sep: str = DEFAULT_LABEL_SEP, none_label: str = DEFAULT_NONE_LABEL) -> "LabelSpace":
        """The space of ``declared`` labels (in declared order) plus any others seen, sorted.

        The none token is never a column. A declared label that contains ``sep`` is an error
        naming it.
        """
        check_label_sep(sep, none_label)
        names = list(dict.fromkeys(declared or ()))
        for name in names:
            if sep in name:
                raise ConfigError(f"declared label {name!r} contains the label delimiter {sep!r}; rename the "
                                  "label or choose another delimiter with --label-sep")
        seen = sorted({lab for s in sets if s for lab in s} - set(names) - {none_label})
        return cls(tuple(n for n in names if n != none_label) + tuple(seen), sep, none_label)

    @property
    def n_labels(self) -> int:
        return len(self.names)

    def indicator(self, sets: Sequence[tuple[str, ...] | None]) -> np.ndarray:
        """Indicator matrix of ``sets``; unlabeled (None) rows are all zero.

        Returns
        -------
        ndarray of int8, shape (len(sets), L)

        Raises
        ------
        DataError
            A label outside :attr:`names`.
        """
        col = {n: j for j, n in enumerate(self.names)}
        Y = np.zeros((len(sets), len(self.names)), dtype=np.int8)
        for i, s in enumerate(sets):
            for lab in s or ():
                if lab == self.none_label:
                    continue
                try:
                    Y[i, col[lab]] = 1
                except KeyError:
                    raise DataError(f"label {lab!r} is not one of the task's labels "
                                    f"({', '.join(self.names[:10])}{' ...' if len(self.names) > 10 else ''})") from None
        return Y

    def sets(self, Y: np.ndarray) -> list[tuple[str, ...]]:
        """Label sets of an indicator (or 0/1 prediction) matrix of shape (n, L), in column order."""
        names = np.asarray(self.names, dtype=object)
        return [tuple(names[np.flatnonzero(row)]) for row in np.asarray(Y)]

    def join(self, labels: Iterable[str]) -> str:
        """A set as one cell: the labels in column order joined by :attr:`sep`; the none token when empty."""
        order = {n: j for j, n in enumerate(self.names)}
        labels = sorted(set(labels) - {self.none_label}, key=lambda v: (order.get(v, len(order)), v))
        return self.sep.join(labels) if labels else self.none_label

    def counts(self, Y: np.ndarray) -> dict[str, int]:
        """Rows carrying each label, by name (columns of ``Y``, shape (n, L))."""
        return dict(zip(self.names, map(int, np.asarray(Y).sum(axis=0))))

    def cardinality(self, Y: np.ndarray) -> float:
        """Mean labels per row of ``Y`` (shape (n, L))."""
        return float(np.asarray(Y).sum(axis=1).mean()) if len(Y) else 0.0
