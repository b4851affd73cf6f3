"""Golden set: checking annotators against expert labels, drift over time and guideline versions,
and mixing gold items unmarked into a labeling queue.

A gold file holds ``item_id, gold_label`` (typically 50-300 expert-checked items). Annotations are
long format (:func:`selector.quality.annotations.prepare_annotations`). Ratings with an unsure value
(:mod:`selector.quality.unsure`) are "no label": counted as seen, never scored right or wrong.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.io import read_table
from selector.labels import normalise_label, normalise_unsure_labels, unsure_mask
from selector.quality.stats import wilson_interval
from selector.tables import text_table

__all__ = [
    "prepare_gold",
    "read_gold",
    "check_gold_rate",
    "GoldReport",
    "gold_report",
    "DriftReport",
    "gold_drift",
    "GoldInjection",
    "inject_gold",
    "gold_for_round",
    "split_gold",
    "format_gold_report",
    "format_drift_report",
    "ALL_ANNOTATORS",
]

ALL_ANNOTATORS = "(all annotators)"
DRIFT_BY = ("week", "month", "guideline_version")


def prepare_gold(df: pd.DataFrame, *, item_col: str = "item_id", label_col: str = "gold_label",
                 source: str = "<DataFrame>", keep: tuple[str, ...] = ("text",)) -> pd.DataFrame:
    """Validate a gold table and return ``item_id, gold_label`` (str) plus any ``keep`` columns.

    Several rows for one item (e.g. a long-format file with a gold column) are collapsed when they
    agree.

    Raises
    ------
    DataError
        A missing column, an empty item id or gold label, or one item with two different gold labels.
    """
    found = ", ".join(map(str, df.columns[:30]))
    for col, flag in ((item_col, "--gold-item-col"), (label_col, "--gold-col")):
        if col not in df.columns:
            raise DataError(f"{source}: no column {col!r} (columns found: {found}); pass {flag} COLUMN")
    items = [normalise_label(v) for v in df[item_col].to_numpy(dtype=object)]
    labels = [normalise_label(v) for v in df[label_col].to_numpy(dtype=object)]
    for name, values in ((item_col, items), (label_col, labels)):
        empty = [i for i, v in enumerate(values) if v is None]
        if empty:
            raise DataError(f"{source}: data row {empty[0] + 1} has an empty {name!r}; "
                            "every gold row needs an item id and a gold label")
    out = pd.DataFrame({"item_id": items, "gold_label": labels}, dtype=object)
    for col in keep:
        if col in df.columns:
            out[col] = df[col].to_numpy(dtype=object)
    n_labels = out.groupby("item_id")["gold_label"].nunique()
    if (n_labels > 1).any():
        item = n_labels[n_labels > 1].index[0]
        got = sorted(out.loc[out["item_id"] == item, "gold_label"].unique())
        raise DataError(f"{source}: item {item!r} has {len(got)} different gold labels ({', '.join(got)}); "
                        "keep one gold label per item")
    return out.drop_duplicates("item_id").reset_index(drop=True)


def read_gold(path, *, item_col: str = "item_id", label_col: str = "gold_label") -> pd.DataFrame:
    """Read a gold file (CSV, Parquet or JSONL) with :func:`prepare_gold` (keeps a ``text`` column)."""

    return prepare_gold(read_table(path), item_col=item_col, label_col=label_col, source=str(path))


def check_gold_rate(rate) -> float:
    """``rate`` as a float in (0, 1), else a ConfigError."""
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 < rate < 1.0:
        raise ConfigError(f"gold rate must be a share between 0 and 1 (e.g. 0.05), got {rate!r}")
    return float(rate)


def _scored(annotations: pd.DataFrame, gold: pd.DataFrame, unsure_labels) -> pd.DataFrame:
    """Ratings of gold items with ``gold_label``, ``unsure`` and ``correct`` columns."""
    for name, frame, cols in (("annotations", annotations, ("item_id", "annotator", "label")),
                              ("gold", gold, ("item_id", "gold_label"))):
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{name} must be a DataFrame, got {type(frame).__name__}")
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise DataError(f"{name} lack column(s) {', '.join(missing)}; read them with "
                            f"selector.{'annotations.prepare_annotations' if name == 'annotations' else 'gold.prepare_gold'}")
    merged = annotations.merge(gold[["item_id", "gold_label"]], on="item_id", how="inner")
    merged["unsure"] = unsure_mask(merged["label"], unsure_labels)
    merged["correct"] = (~merged["unsure"]) & (merged["label"] == merged["gold_label"])
    return merged


def _accuracy_table(scored: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    sure = scored[~scored["unsure"]]
    seen = scored.groupby(keys, sort=True).size().rename("n_gold_seen")
    n_unsure = scored.groupby(keys, sort=True)["unsure"].sum().rename("n_unsure")
    n_scored = sure.groupby(keys, sort=True).size().rename("n_scored")
    n_correct = sure.groupby(keys, sort=True)["correct"].sum().rename("n_correct")
    table = pd.concat([seen, n_unsure, n_scored, n_correct], axis=1).fillna(0).astype(int).reset_index()
    lo, hi = wilson_interval(table["n_correct"], table["n_scored"])
    with np.errstate(invalid="ignore", divide="ignore"):
        table["accuracy"] = table["n_correct"] / table["n_scored"].replace(0, np.nan)
    table["ci_low"] = lo
    table["ci_high"] = hi
    return table


def _per_class(scored: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Precision and recall per class for each group of ``keys``."""
    sure = scored[~scored["unsure"]]
    rows = []
    for key, grp in sure.groupby(keys, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        gold_l = grp["gold_label"].to_numpy(dtype=object)
        given = grp["label"].to_numpy(dtype=object)
        for cls in sorted(set(gold_l) | set(given)):
            tp = int(((gold_l == cls) & (given == cls)).sum())
            support = int((gold_l == cls).sum())
            predicted = int((given == cls).sum())
            rows.append({**dict(zip(keys, key)), "class": cls, "support": support, "n_given": predicted,
                         "n_correct": tp, "precision": tp / predicted if predicted else np.nan,
                         "recall": tp / support if support else np.nan})
    return pd.DataFrame(rows, columns=[*keys, "class", "support", "n_given", "n_correct", "precision", "recall"])


def _confusions(scored: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    sure = scored[~scored["unsure"] & ~scored["correct"]]
    cols = [*keys, "gold_label", "given_label", "count"]
    if sure.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in cols})
    out = (sure.groupby([*keys, "gold_label", "label"], sort=True).size().rename("count").reset_index()
           .rename(columns={"label": "given_label"}))
    return out.sort_values([*keys, "count", "gold_label", "given_label"],
                           ascending=[True] * len(keys) + [False, True, True], kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class GoldReport:
    """Each annotator against the golden set.

    Attributes
    ----------
    annotators : DataFrame
        One row per annotator (those who saw no gold item have ``n_gold_seen`` 0): ``annotator, n_gold_seen,
        n_unsure, n_scored, n_correct, accuracy, ci_low, ci_high`` (Wilson 95%), ``top_confusion``
        (``gold -> given (count)``), ``flagged`` (accuracy below ``min_accuracy``), ``evidence``.
        Sorted by accuracy, lowest first.
    per_class : DataFrame
        ``annotator, class, support, n_given, n_correct, precision, recall`` (support = gold
        items of the class the annotator scored; NaN where undefined).
    confusions : DataFrame
        ``annotator, gold_label, given_label, count``: every wrong (gold, given) pair, most frequent
        first within each annotator.
    n_gold_items : int
        Items in the gold set.
    n_gold_rated : int
        Gold items with at least one rating.
    min_accuracy : float
    """

    @property
    def n_unchecked(self) -> int:
        """Annotators who saw no gold item."""
        return int((self.annotators["n_gold_seen"] == 0).sum())

    annotators: pd.DataFrame
    per_class: pd.DataFrame
    confusions: pd.DataFrame
    n_gold_items: int
    n_gold_rated: int
    min_accuracy: float

    @property
    def flagged(self) -> pd.DataFrame:
        """The flagged annotators' rows."""
        return self.annotators[self.annotators["flagged"]].reset_index(drop=True)


def _evidence(row, min_accuracy: float) -> str:
    if row["n_gold_seen"] == 0:
        return "saw no gold item: not checked"
    if row["n_scored"] == 0:
        return f"no sure rating on {row['n_gold_seen']} gold item(s) seen (all unsure)"
    text = (f"accuracy {row['accuracy']:.2f} [{row['ci_low']:.2f}, {row['ci_high']:.2f}] on "
            f"{row['n_scored']} gold item(s) ({row['n_correct']} right)")
    if row["flagged"]:
        if row["ci_high"] < min_accuracy:
            text += f"; whole 95% interval below {min_accuracy:g}"
        else:
            text += f"; interval reaches {min_accuracy:g}: few items, check again with more gold"
    if row["top_confusion"]:
        text += f"; most confused: {row['top_confusion']}"
    return text


def gold_report(annotations: pd.DataFrame, gold: pd.DataFrame, *, min_accuracy: float = 0.7,
                unsure_labels: Iterable[str] | str | None = None) -> GoldReport:
    """Score every annotator against the gold labels.

    Parameters
    ----------
    annotations : DataFrame
        Long format ``item_id, annotator, label`` (:func:`selector.quality.annotations.prepare_annotations`).
    gold : DataFrame
        ``item_id, gold_label`` (:func:`prepare_gold`).
    min_accuracy : float
        Annotators whose accuracy is below it are flagged, with the evidence.
    unsure_labels : iterable of str, optional
        Values that mean "no label" (default ``unsure``, ``needs_review``): seen, not scored.

    Raises
    ------
    DataError
        No annotation touches a gold item (check the item ids match).
    """
    if not 0.0 <= min_accuracy <= 1.0:
        raise ConfigError(f"min_accuracy must be between 0 and 1, got {min_accuracy!r}")
    scored = _scored(annotations, gold, normalise_unsure_labels(unsure_labels))
    if scored.empty:
        example = ", ".join(map(repr, gold["item_id"].head(3)))
        raise DataError(f"no annotation is of a gold item (gold item ids e.g. {example}); "
                        "check that both files use the same item ids")
    table = _accuracy_table(scored, ["annotator"])
    unchecked = sorted(set(annotations["annotator"]) - set(table["annotator"]))
    if unchecked:  # listed so the team sees who is not checked at all
        table = pd.concat([table, pd.DataFrame({"annotator": unchecked, "n_gold_seen": 0, "n_unsure": 0, "n_scored": 0,
                                                "n_correct": 0, "accuracy": np.nan, "ci_low": np.nan,
                                                "ci_high": np.nan})], ignore_index=True)
    conf = _confusions(scored, ["annotator"])
    top = conf.drop_duplicates("annotator").set_index("annotator")
    table["top_confusion"] = [
        f"{top.at[a, 'gold_label']} -> {top.at[a, 'given_label']} ({int(top.at[a, 'count'])})" if a in top.index else ""
        for a in table["annotator"]]
    table["flagged"] = table["accuracy"].lt(min_accuracy).fillna(False).astype(bool)
    table["evidence"] = [_evidence(r, min_accuracy) for _, r in table.iterrows()]
    table = table.sort_values(["accuracy", "n_scored", "annotator"], ascending=[True, False, True],
                              na_position="last", kind="stable").reset_index(drop=True)
    return GoldReport(annotators=table, per_class=_per_class(scored, ["annotator"]), confusions=conf,
                      n_gold_items=int(gold["item_id"].nunique()), n_gold_rated=int(scored["item_id"].nunique()),
                      min_accuracy=float(min_accuracy))


# --------------------------------------------------------------------------- drift


def _natural_key(text: str):
    return [int(t) if t.isdigit() else t.casefold() for t in re.split(r"(\d+)", text)]


def _periods(annotations: pd.DataFrame, by: str, timestamp_col: str, version_col: str) -> tuple[pd.Series, list]:
    """The period label of each rating and the labels in time order."""
    if by == "guideline_version":
        if version_col not in annotations.columns:
            raise DataError(f"annotations have no {version_col!r} column, so drift per guideline version "
                            "cannot be measured; add the column or use --by week|month")
        labels = annotations[version_col].map(normalise_label)
        if labels.isna().any():
            raise DataError(f"{int(labels.isna().sum())} rating(s) have an empty {version_col!r}; fill them in")
        return labels.astype(object), sorted(labels.unique(), key=_natural_key)
    if timestamp_col not in annotations.columns:
        raise DataError(f"annotations have no {timestamp_col!r} column, so drift per {by} cannot be measured; "
                        "add one (ISO dates such as 2024-03-01T10:00:00) or use guideline_version")
    raw = annotations[timestamp_col]
    ts = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
    if ts.isna().any():
        bad = raw[ts.isna()].iloc[0]
        raise DataError(f"{int(ts.isna().sum())} rating(s) have an empty or unreadable {timestamp_col!r} "
                        f"(e.g. {bad!r}); use ISO dates such as 2024-03-01T10:00:00")
    ts = ts.dt.tz_convert(None)
    if by == "week":
        iso = ts.dt.isocalendar()
        labels = iso["year"].astype(str) + "-W" + iso["week"].astype(int).map("{:02d}".format)
    elif by == "month":
        labels = ts.dt.strftime("%Y-%m")
    else:
        raise ConfigError(f"by must be one of {', '.join(DRIFT_BY)}, got {by!r}")
    order = pd.DataFrame({"label": labels, "ts": ts}).groupby("label")["ts"].min().sort_values()
    return labels.astype(object), list(order.index)


@dataclass(frozen=True)
class DriftReport:
    """Gold figures per period and the changes that count as drift.

    Attributes
    ----------
    by : str
        ``week``, ``month`` or ``guideline_version``.
    periods : list of str
        Period labels in order.
    windows : DataFrame
        ``annotator, period`` + the accuracy columns of :class:`GoldReport` per period; the
        annotator :data:`ALL_ANNOTATORS` pools everyone.
    per_class : DataFrame
        ``annotator, period, class, support, n_given, n_correct, precision, recall``.
    drifts : DataFrame
        One row per drift: ``annotator, from_period, baseline, to_period, accuracy_before,
        ci_before, accuracy_after, ci_after, change, classes, detail``. Each period is compared
        with the annotator's baseline: every earlier period pooled (``from_period`` to the one
        before ``to_period``), restarted after each drift. It is drift when both have at least
        ``min_items`` scored gold ratings and their Wilson 95% intervals do not overlap.
        ``classes`` names the classes whose recall intervals do not overlap either (else the
        class with the largest recall change).
    min_items : int
    """

    by: str
    periods: list
    windows: pd.DataFrame
    per_class: pd.DataFrame
    drifts: pd.DataFrame
    min_items: int


_DRIFT_COLUMNS = ["annotator", "from_period", "baseline", "to_period", "accuracy_before", "ci_before", "accuracy_after",
                  "ci_after", "change", "classes", "detail"]


def _drift_classes(pc: pd.DataFrame, annotator: str, before: list, after: str) -> tuple[list[str], str]:
    """Classes whose recall moved between the pooled ``before`` periods and ``after``."""
    mine = pc[pc["annotator"] == annotator]
    a = mine[mine["period"].isin(before)].groupby("class")[["support", "n_correct"]].sum()
    b = mine[mine["period"] == after].set_index("class")
    changes = []
    for cls in sorted(set(a.index) & set(b.index)):
        sa, sb = int(a.at[cls, "support"]), int(b.at[cls, "support"])
        if sa == 0 or sb == 0:
            continue
        ka, kb = int(a.at[cls, "n_correct"]), int(b.at[cls, "n_correct"])
        (la, ha), (lb, hb) = wilson_interval(ka, sa), wilson_interval(kb, sb)
        changes.append((cls, ka / sa, kb / sb, bool(ha < lb or hb < la)))
    named = [c for c in changes if c[3]]
    if not named and changes:
        named = [max(changes, key=lambda c: (abs(c[2] - c[1]), c[0]))]
    text = ", ".join(f"{cls} recall {ra:.2f} -> {rb:.2f}" for cls, ra, rb, _ in named)
    return [c[0] for c in named], text


def _find_drifts(grp: pd.DataFrame, min_items: int):
    """Walk one annotator's periods in order; yield (baseline periods, period row) at each drift.

    The baseline pools every period since the start or the last drift, so a step change is
    measured against many items, not one noisy week; after a drift the baseline restarts at the
    drifted period, so a lasting change is reported once. A change is drift when the baseline's
    and the period's Wilson 95% intervals do not overlap -- stricter than a plain 95% test of
    the change, which with many annotators x periods (and items of varying difficulty) reports
    drifts that are not there.
    """
    base: list = []
    k = n = 0
    for _, row in grp.iterrows():
        if base and n >= min_items and row["n_scored"] >= min_items:
            lo, hi = (float(v) for v in wilson_interval(k, n))
            if hi < row["ci_low"] or row["ci_high"] < lo:
                yield list(base), k, n, row
                base, k, n = [], 0, 0
        base.append(row["period"])
        k += int(row["n_correct"])
        n += int(row["n_scored"])


def gold_drift(annotations: pd.DataFrame, gold: pd.DataFrame, *, by: str = "week", min_items: int = 5,
               unsure_labels: Iterable[str] | str | None = None, timestamp_col: str = "timestamp",
               version_col: str = "guideline_version") -> DriftReport:
    """Gold accuracy per annotator and period, and where it changed by more than its interval.

    Parameters
    ----------
    annotations : DataFrame
        Long format with a ``timestamp`` column (``by`` = ``week``/``month``; any format pandas
        parses, time zones converted to UTC) or a ``guideline_version`` column (versions ordered
        naturally: v2 before v10).
    gold : DataFrame
        ``item_id, gold_label``.
    by : {"week", "month", "guideline_version"}
    min_items : int
        A period (or baseline) with fewer scored gold ratings is not tested (too noisy); a short
        period still joins the baseline.
    unsure_labels : iterable of str, optional
    """
    if by not in DRIFT_BY:
        raise ConfigError(f"by must be one of {', '.join(DRIFT_BY)}, got {by!r}")
    if isinstance(min_items, bool) or not isinstance(min_items, int) or min_items < 1:
        raise ConfigError(f"min_items must be a positive integer, got {min_items!r}")
    scored = _scored(annotations, gold, normalise_unsure_labels(unsure_labels))
    if scored.empty:
        raise DataError("no annotation is of a gold item; check that both files use the same item ids")
    # _scored keeps the annotation columns, so periods come from the merged rows.
    labels, order = _periods(scored, by, timestamp_col, version_col)
    rank = {p: i for i, p in enumerate(order)}
    scored = scored.assign(period=labels.to_numpy())
    pooled = scored.assign(annotator=ALL_ANNOTATORS)
    both = pd.concat([scored, pooled], ignore_index=True)
    windows = _accuracy_table(both, ["annotator", "period"])
    windows["_order"] = windows["period"].map(rank)
    windows = windows.sort_values(["annotator", "_order"], kind="stable").drop(columns="_order").reset_index(drop=True)
    per_class = _per_class(both, ["annotator", "period"])

    drifts = []
    where = "guideline version" if by == "guideline_version" else by
    for annotator, grp in windows.groupby("annotator", sort=True):
        for base, k, n, cur in _find_drifts(grp, min_items):
            lo, hi = (float(v) for v in wilson_interval(k, n))
            before = k / n
            span = base[0] if len(base) == 1 else f"{base[0]} to {base[-1]}"
            classes, class_text = _drift_classes(per_class, annotator, base, cur["period"])
            detail = (f"{annotator}: accuracy {before:.2f} [{lo:.2f}, {hi:.2f}] in {where} {span} -> "
                      f"{cur['accuracy']:.2f} [{cur['ci_low']:.2f}, {cur['ci_high']:.2f}] in {where} {cur['period']}"
                      + (f"; {class_text}" if class_text else ""))
            drifts.append({"annotator": annotator, "from_period": base[0], "baseline": span, "to_period": cur["period"],
                           "accuracy_before": before, "ci_before": f"[{lo:.2f}, {hi:.2f}]",
                           "accuracy_after": cur["accuracy"], "ci_after": f"[{cur['ci_low']:.2f}, {cur['ci_high']:.2f}]",
                           "change": float(cur["accuracy"] - before), "classes": ", ".join(classes), "detail": detail})
    drift_frame = pd.DataFrame(drifts, columns=_DRIFT_COLUMNS)
    return DriftReport(by=by, periods=list(order), windows=windows, per_class=per_class, drifts=drift_frame,
                       min_items=min_items)


# --------------------------------------------------------------------------- injection


@dataclass(frozen=True)
class GoldInjection:
    """A labeling queue with gold items mixed in.

    Attributes
    ----------
    queue : DataFrame
        What annotators get: ``rank, id, text`` only, so nothing tells gold rows apart (model
        columns would: gold rows have no selection score).
    key : DataFrame
        The full queue for the data team: the original columns (empty for gold rows) plus
        ``gold`` (bool) and ``gold_label``.
    gold_ids : list of str
        Ids of the gold items mixed in, for the round record / ledger.
    """

    queue: pd.DataFrame
    key: pd.DataFrame
    gold_ids: list = field(default_factory=list)


def inject_gold(queue: pd.DataFrame, gold_items: pd.DataFrame, rate: float, *,
                random_state: int | None = None) -> GoldInjection:
    """Mix ``rate`` x queue-length gold items, unmarked, into a labeling queue.

    The queue keeps its length (the labeling budget): gold items take the place of the
    lowest-ranked picks and are put at random positions.

    Parameters
    ----------
    queue : DataFrame
        A queue from ``selector select`` (``rank, id, text, ...``), best first.
    gold_items : DataFrame
        ``item_id, gold_label, text``. Items already in the queue are not drawn.
    rate : float
        Share of the queue that is gold, in (0, 1).
    random_state : int or None

    Raises
    ------
    ConfigError
        ``rate`` outside (0, 1).
    DataError
        ``gold_items`` lacks a column.
    """
    rate = check_gold_rate(rate)
    missing = [c for c in ("item_id", "gold_label", "text") if c not in gold_items.columns]
    if missing:
        raise DataError(f"gold items lack column(s) {', '.join(missing)}")
    rng = np.random.default_rng(random_state)
    n_total = len(queue)
    n_gold = int(round(rate * n_total))
    in_queue = set(queue["id"].astype(str))
    candidates = gold_items[~gold_items["item_id"].astype(str).isin(in_queue)].reset_index(drop=True)
    if n_gold == 0:
        warnings.warn(f"gold rate {rate:g} of a {n_total}-row queue rounds to 0 gold items; none mixed in",
                      stacklevel=2)
    if n_gold > len(candidates):
        warnings.warn(f"gold rate {rate:g} asks for {n_gold} gold items but only {len(candidates)} are "
                      "available (not already in the queue); mixing in all of them", stacklevel=2)
        n_gold = len(candidates)
    drawn = candidates.iloc[np.sort(rng.choice(len(candidates), size=n_gold, replace=False))] if n_gold else candidates.iloc[:0]
    kept = queue.iloc[: n_total - n_gold].copy()
    kept["gold"] = False
    kept["gold_label"] = None
    gold_rows = pd.DataFrame({"id": drawn["item_id"].astype(str).to_numpy(), "text": drawn["text"].to_numpy(),
                              "gold": True, "gold_label": drawn["gold_label"].to_numpy()})
    gold_rows = gold_rows.reindex(columns=kept.columns)
    gold_rows["gold"] = True
    positions = np.sort(rng.choice(n_total, size=n_gold, replace=False)) if n_gold else np.array([], dtype=int)
    is_gold = np.zeros(n_total, dtype=bool)
    is_gold[positions] = True
    order = np.empty(n_total, dtype=int)
    order[is_gold] = np.arange(len(kept), n_total)
    order[~is_gold] = np.arange(len(kept))
    key = pd.concat([kept, gold_rows], ignore_index=True).iloc[order].reset_index(drop=True)
    key["rank"] = np.arange(1, n_total + 1)
    key["gold"] = key["gold"].astype(bool)
    blind = key[["rank", "id", "text"]].copy()
    return GoldInjection(queue=blind, key=key, gold_ids=[str(i) for i in gold_rows["id"]])


def gold_for_round(result, gold: pd.DataFrame, rate: float, *, random_state: int | None = None,
                   pool=None) -> GoldInjection:
    """:func:`inject_gold` for a :class:`selector.round.compute.RoundResult`.

    Gold texts come from the gold table's ``text`` column when present, else from the data row
    with the same id in ``pool`` (a :class:`~selector.round.pool.LabeledPool`; default ``result.pool``,
    which a two-stage round narrows to the rows it embedded exactly).

    Raises
    ------
    DataError
        A gold item with no text in either place.
    """
    gold = gold.copy()
    if "text" not in gold.columns:
        gold["text"] = None
    pool = result.pool if pool is None else pool
    texts = dict(zip(pool.ids.astype(str), pool.texts))
    missing_text = gold["text"].map(lambda t: normalise_label(t) is None)
    gold.loc[missing_text, "text"] = gold.loc[missing_text, "item_id"].astype(str).map(texts)
    still = gold["text"].isna()
    if still.any():
        raise DataError(f"gold item {gold.loc[still, 'item_id'].iloc[0]!r} has no text: it is not a row of the data "
                        f"({int(still.sum())} such item(s)); add a 'text' column to the gold file")
    return inject_gold(result.queue, gold, rate, random_state=random_state)


def split_gold(returned: pd.DataFrame, gold_ids: Iterable[str], *, id_col: str = "id") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split labels that came back from a queue into new training labels and gold answers.

    Gold answers are scored (:func:`gold_report`), never added as training labels, so an item
    is not counted twice.

    Parameters
    ----------
    returned : DataFrame
        Labeled rows (one per row, or long format with ``id_col`` = ``item_id``).
    gold_ids : iterable of str
        The round record's ``gold_ids``.

    Returns
    -------
    new_labels, gold_answers : DataFrame
    """
    if id_col not in returned.columns:
        raise DataError(f"returned labels have no {id_col!r} column (columns found: "
                        f"{', '.join(map(str, returned.columns[:30]))})")
    is_gold = returned[id_col].map(normalise_label).isin({str(g) for g in gold_ids}).to_numpy()
    return returned[~is_gold].reset_index(drop=True), returned[is_gold].reset_index(drop=True)


# --------------------------------------------------------------------------- text


def _fmt(v, spec: str = ".2f") -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def format_gold_report(report: GoldReport, *, max_rows: int | None = None) -> str:
    """The per-annotator gold report as a fixed-width table (lowest accuracy first) + flags."""
    t = report.annotators if max_rows is None else report.annotators.head(max_rows)
    pr = {a: "  ".join(f"{c} {_fmt(p)}/{_fmt(r)}" for c, p, r in zip(g["class"], g["precision"], g["recall"]))
          for a, g in report.per_class.groupby("annotator", sort=False)}
    lines = [f"gold set: {report.n_gold_items} items, {report.n_gold_rated} rated; "
             f"{len(report.annotators)} annotators ({report.n_unchecked} saw no gold item); "
             f"flag below accuracy {report.min_accuracy:g}"]
    header = ["annotator", "seen", "unsure", "right", "accuracy", "95% interval", "flag",
              "most confused (gold -> given)", "per class precision/recall"]
    rows = [[str(r["annotator"]), str(r["n_gold_seen"]), str(r["n_unsure"]), str(r["n_correct"]), _fmt(r["accuracy"]),
             f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]", "FLAG" if r["flagged"] else "", r["top_confusion"],
             pr.get(r["annotator"], "")] for _, r in t.iterrows()]
    lines.extend(text_table(header, rows, right=(1, 2, 3, 4)))
    if max_rows is not None and len(report.annotators) > max_rows:
        lines.append(f"... {len(report.annotators) - max_rows} more annotator(s)")
    flagged = report.flagged
    lines.append(f"{len(flagged)} annotator(s) flagged below {report.min_accuracy:g}")
    for _, r in flagged.iterrows():
        lines.append(f"  {r['annotator']}: {r['evidence']}")
    return "\n".join(lines)


def format_drift_report(report: DriftReport) -> str:
    """The drift findings, one line each (``no drift found`` when none)."""
    where = "guideline version" if report.by == "guideline_version" else report.by
    lines = [f"drift per {where}: {len(report.periods)} period(s) ({', '.join(map(str, report.periods[:12]))}"
             f"{' ...' if len(report.periods) > 12 else ''}); each period vs the annotator's earlier periods pooled "
             f"(restarted after a drift), >= {report.min_items} scored gold ratings each; "
             "drift = 95% intervals do not overlap"]
    if report.drifts.empty:
        lines.append("no drift found")
    for _, d in report.drifts.iterrows():
        lines.append(f"DRIFT {d['detail']}")
    return "\n".join(lines)
