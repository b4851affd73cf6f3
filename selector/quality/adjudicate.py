"""Adjudication: a reviewer's recorded final label for contested items, and the rework rate.

Decisions are ``item_id, final_label, reviewer, note`` (note may be empty). The resolved label set
has one row per item with its final label and every original vote kept beside it. The rework rate
is the share of adjudicated items whose final label differs from the first label given (the
earliest rating by ``timestamp`` when the annotations have one, else the first in file order;
unsure ratings are not labels and are skipped).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from selector.errors import DataError
from selector.labels import normalise_label, normalise_unsure_labels, unsure_mask
from selector.quality.unsure import join_by_group

__all__ = ["prepare_decisions", "Adjudication", "adjudicate", "DECISION_COLUMNS", "format_adjudication"]

DECISION_COLUMNS = ("item_id", "final_label", "reviewer", "note")

RESOLVED_COLUMNS = ["item_id", "label", "status", "first_label", "first_annotator", "changed", "reviewer",
                    "note", "n_votes", "n_unsure", "votes"]


def prepare_decisions(df: pd.DataFrame, *, source: str = "<DataFrame>",
                      unsure_labels: Iterable[str] | str | None = None) -> pd.DataFrame:
    """Validate adjudication decisions and return ``item_id, final_label, reviewer, note`` (str).

    Raises
    ------
    DataError
        A missing column (``note`` may be absent), an empty item id, final label or reviewer, a
        final label that is an unsure value, or two different final labels for one item.
    """
    found = ", ".join(map(str, df.columns[:30]))
    for col in DECISION_COLUMNS[:3]:
        if col not in df.columns:
            raise DataError(f"{source}: no column {col!r} (columns found: {found}); decisions need "
                            "item_id, final_label, reviewer and optionally note")
    out = pd.DataFrame({c: [normalise_label(v) for v in df[c].to_numpy(dtype=object)] for c in DECISION_COLUMNS[:3]},
                       dtype=object)
    out["note"] = ([normalise_label(v) or "" for v in df["note"].to_numpy(dtype=object)]
                   if "note" in df.columns else "")
    for col in DECISION_COLUMNS[:3]:
        empty = out[col].isna().to_numpy()
        if empty.any():
            raise DataError(f"{source}: data row {int(empty.argmax()) + 1} has an empty {col!r}; fill it in")
    unsure = unsure_mask(out["final_label"], unsure_labels)
    if unsure.any():
        row = int(unsure.argmax())
        raise DataError(f"{source}: data row {row + 1} has final_label {out['final_label'].iloc[row]!r}, an unsure "
                        "value; a decision must give a real label (leave the item out until it is decided)")
    n_final = out.groupby("item_id")["final_label"].nunique()
    if (n_final > 1).any():
        item = n_final[n_final > 1].index[0]
        raise DataError(f"{source}: item {item!r} has {int(n_final[item])} different final labels; "
                        "keep one decision per item")
    return out.drop_duplicates("item_id").reset_index(drop=True)


@dataclass(frozen=True)
class Adjudication:
    """The resolved label set and the rework figures.

    Attributes
    ----------
    resolved : DataFrame
        One row per item: ``item_id, label`` (the final label; empty when unresolved), ``status``
        (``adjudicated``; ``agreed`` = every sure vote the same; ``unresolved`` = votes differ or
        all are unsure, and no decision), ``first_label, first_annotator, changed`` (final label
        differs from the first label), ``reviewer, note, n_votes, n_unsure`` and ``votes``
        (``annotator=label; ...`` in the order given: the original votes).
    n_adjudicated : int
    n_changed : int
        Adjudicated items whose final label differs from the first label given.
    n_no_first_label : int
        Adjudicated items whose every vote was unsure (left out of the rework rate).
    rework_by_annotator : DataFrame
        ``annotator, n_first, n_overturned, overturn_rate``: for adjudicated items, how often the
        annotator who gave the first label was overturned.
    """

    resolved: pd.DataFrame
    n_adjudicated: int
    n_changed: int
    n_no_first_label: int
    rework_by_annotator: pd.DataFrame

    @property
    def rework_rate(self) -> float:
        """Share of adjudicated items (with a first label) whose final label differs from it."""
        n = self.n_adjudicated - self.n_no_first_label
        return self.n_changed / n if n else float("nan")


def _ordered(annotations: pd.DataFrame) -> pd.DataFrame:
    """Ratings in the order they were given: by timestamp when present, else file order."""
    out = annotations.assign(_pos=np.arange(len(annotations)))
    if "timestamp" in annotations.columns:
        ts = pd.to_datetime(annotations["timestamp"], errors="coerce", utc=True, format="mixed")
        if ts.isna().any():
            bad = annotations["timestamp"][ts.isna()].iloc[0]
            raise DataError(f"{int(ts.isna().sum())} rating(s) have an empty or unreadable 'timestamp' (e.g. {bad!r}); "
                            "fix them or drop the column to use file order")
        out = out.assign(_ts=ts.to_numpy()).sort_values(["_ts", "_pos"], kind="stable")
    return out


def adjudicate(annotations: pd.DataFrame, decisions: pd.DataFrame, *,
               unsure_labels: Iterable[str] | str | None = None) -> Adjudication:
    """Apply reviewers' decisions to the annotations.

    Parameters
    ----------
    annotations : DataFrame
        Long format ``item_id, annotator, label`` (+ ``timestamp``), from
        :func:`selector.quality.annotations.prepare_annotations`. Not modified.
    decisions : DataFrame
        From :func:`prepare_decisions`.
    unsure_labels : iterable of str, optional
        Values that are "no label" (default ``unsure``, ``needs_review``).

    Warns
    -----
    UserWarning
        Decisions for items that have no annotation (they are still in the resolved set).
    """
    for name, frame, cols in (("annotations", annotations, ("item_id", "annotator", "label")),
                              ("decisions", decisions, ("item_id", "final_label", "reviewer"))):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(f"{name} lack column(s) {', '.join(missing)}")
    unsure_set = normalise_unsure_labels(unsure_labels)
    ordered = _ordered(annotations)
    ordered = ordered.assign(_unsure=unsure_mask(ordered["label"], unsure_set))
    decided = decisions.set_index("item_id")
    unknown = sorted(set(decided.index) - set(annotations["item_id"]))
    if unknown:
        warnings.warn(f"{len(unknown)} decision(s) are for items with no annotation (e.g. {unknown[0]!r}); "
                      "they are in the resolved set with no votes", stacklevel=2)

    # One row per item, built column-wise (a Python loop per item is slow at 10^6 items).
    items = pd.Index(pd.unique(annotations["item_id"].to_numpy(dtype=object)).tolist() + unknown, dtype=object)
    by_item = ordered.groupby("item_id", sort=False)
    # in the order given (timestamp, else file order)
    votes_text = join_by_group(ordered["item_id"], ordered["annotator"].astype(str) + "=" + ordered["label"].astype(str))
    sure = ordered[~ordered["_unsure"]]
    first = sure.drop_duplicates("item_id").set_index("item_id")
    n_distinct = sure.groupby("item_id", sort=False)["label"].nunique()
    resolved = pd.DataFrame({"item_id": items})
    resolved["first_label"] = first["label"].reindex(items).to_numpy(dtype=object)
    resolved["first_annotator"] = first["annotator"].reindex(items).to_numpy(dtype=object)
    resolved["n_votes"] = by_item.size().reindex(items).fillna(0).astype(int).to_numpy()
    resolved["n_unsure"] = by_item["_unsure"].sum().reindex(items).fillna(0).astype(int).to_numpy()
    resolved["votes"] = votes_text.reindex(items).fillna("").to_numpy(dtype=object)
    final = decided["final_label"].reindex(items).to_numpy(dtype=object)
    is_decided = items.isin(decided.index)
    agreed = ~is_decided & (n_distinct.reindex(items).fillna(0).to_numpy() == 1)
    resolved["status"] = np.where(is_decided, "adjudicated", np.where(agreed, "agreed", "unresolved"))
    resolved["label"] = np.where(is_decided, final, np.where(agreed, resolved["first_label"], None))
    resolved["reviewer"] = decided["reviewer"].reindex(items).fillna("").to_numpy(dtype=object)
    notes = decided["note"] if "note" in decided.columns else pd.Series("", index=decided.index)
    resolved["note"] = notes.reindex(items).fillna("").to_numpy(dtype=object)
    resolved["changed"] = is_decided & resolved["first_label"].notna().to_numpy() & (
        resolved["label"].to_numpy(dtype=object) != resolved["first_label"].to_numpy(dtype=object))
    resolved = resolved[RESOLVED_COLUMNS]
    resolved["changed"] = resolved["changed"].astype(bool)

    adj = resolved[resolved["status"] == "adjudicated"]
    with_first = adj[adj["first_label"].notna()]
    by_ann = (with_first.groupby("first_annotator", sort=True)["changed"].agg(["size", "sum"]).reset_index()
              .rename(columns={"first_annotator": "annotator", "size": "n_first", "sum": "n_overturned"}))
    by_ann["n_overturned"] = by_ann["n_overturned"].astype(int)
    by_ann["overturn_rate"] = by_ann["n_overturned"] / by_ann["n_first"]
    by_ann = by_ann.sort_values(["overturn_rate", "n_first", "annotator"], ascending=[False, False, True],
                                kind="stable").reset_index(drop=True)
    return Adjudication(resolved=resolved, n_adjudicated=int(len(adj)), n_changed=int(with_first["changed"].sum()),
                        n_no_first_label=int(len(adj) - len(with_first)), rework_by_annotator=by_ann)


def format_adjudication(result: Adjudication) -> str:
    """A short summary: counts per status and the rework rate."""
    counts = result.resolved["status"].value_counts()
    n_rated = result.n_adjudicated - result.n_no_first_label
    rate = result.rework_rate
    lines = [f"items: {len(result.resolved)} ({int(counts.get('adjudicated', 0))} adjudicated, "
             f"{int(counts.get('agreed', 0))} agreed, {int(counts.get('unresolved', 0))} unresolved)",
             f"rework rate: {'n/a' if np.isnan(rate) else f'{rate:.3f}'} ({result.n_changed} of {n_rated} adjudicated "
             "items got a final label different from the first label given)"]
    if result.n_no_first_label:
        lines.append(f"{result.n_no_first_label} adjudicated item(s) had only unsure votes (not in the rework rate)")
    return "\n".join(lines)
