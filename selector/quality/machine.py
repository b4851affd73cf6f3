"""Machine annotators: a model's labels (an LLM pre-labeler, a rule) beside the humans'.

A machine annotator votes in the consensus with a weight of its own, fitted like the model's by how
well it predicts the people's votes (:mod:`selector.quality.weighted_votes`); it is not a person: it is left out of the human
agreement figures and out of "annotators disagree", and it gets its own report, its per-class
accuracy against the human consensus. ``review`` puts first the rows where it disagrees with the
humans or with the model.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import numpy as np
import pandas as pd

from selector.errors import DataError

__all__ = ["MACHINE_REPORT_COLUMNS", "check_machine_annotators", "split_machine", "machine_accuracy"]

#: One row per (machine annotator, class) and one ``(all)`` row per machine annotator.
MACHINE_REPORT_COLUMNS = ["annotator", "label", "n_items", "n_agree", "accuracy"]


def check_machine_annotators(ann: pd.DataFrame, names: Iterable[str] | None, *, source: str = "<DataFrame>") -> tuple[str, ...]:
    """The machine annotators' names, each checked to be an annotator of ``ann`` (prepared long format).

    Raises
    ------
    DataError
        A name that labels nothing (naming the closest annotator), or every annotator a machine.
    """
    names = tuple(dict.fromkeys(str(n).strip() for n in (names or ()) if str(n).strip()))
    if not names:
        return ()
    known = sorted(set(ann["annotator"].astype(str)))
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            raise DataError(f"{source}: --machine-annotators names {name!r}, who labeled nothing here"
                            + (f"; did you mean {close[0]!r}?" if close else f"; annotators: {', '.join(known[:10])}"))
    if set(known) <= set(names):
        raise DataError(f"{source}: every annotator is a machine annotator; the human figures need at least one person")
    return names


def split_machine(ann: pd.DataFrame, names: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(human ratings, machine ratings) of prepared long-format annotations."""
    is_machine = ann["annotator"].astype(str).isin(set(names)).to_numpy()
    return ann[~is_machine].reset_index(drop=True), ann[is_machine].reset_index(drop=True)


def machine_accuracy(machines: pd.DataFrame, reference: pd.Series) -> pd.DataFrame:
    """Each machine annotator's accuracy against ``reference``, per class of the reference and in all.

    Parameters
    ----------
    machines : DataFrame
        The machine annotators' ratings (``item_id, annotator, label``).
    reference : Series
        The human consensus label per item id (items without one, or with a missing one, are not scored).

    Returns
    -------
    DataFrame
        :data:`MACHINE_REPORT_COLUMNS`; per annotator its ``(all)`` row first, then the classes.
    """
    ref = machines["item_id"].map(reference)
    scored = machines.assign(reference=ref)[ref.notna().to_numpy()]
    rows = []
    for name, g in scored.groupby("annotator", sort=True):
        hit = (g["label"].astype(str) == g["reference"].astype(str)).to_numpy()
        rows.append((name, "(all)", int(hit.size), int(hit.sum()), round(float(hit.mean()), 6) if hit.size else np.nan))
        for label, h in g.assign(hit=hit).groupby("reference", sort=True):
            rows.append((name, str(label), int(len(h)), int(h["hit"].sum()), round(float(h["hit"].mean()), 6)))
    return pd.DataFrame(rows, columns=MACHINE_REPORT_COLUMNS)
