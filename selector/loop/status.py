"""Where a labeling loop stands: rounds so far, labels, model quality, and when to stop.

The report is built from the round ledger (``selector.loop.ledger``) and the data as it is now. Each
ledger record is a measurement point taken when that round selected (labels available then, the
classifier's cross-validated accuracy and macro-F1, and its predictions on the fixed stop set);
a final ``now`` point measures the current labels when they changed since the last round.

Stopping hint (after Bloodgood & Vijay-Shanker 2009, "A method for stopping active learning based on
stabilizing predictions and the need for user-adjustable stopping"): predictions on a fixed held-aside
sample (the stop set) have stabilised, and cross-validated macro-F1 has stopped rising (its last change at
most 0.01). Stability is read from the share of stop-set predictions that changed between successive
models, averaged over the last two comparisons: at most 2%, or at most 5% and no longer falling (no lower
than the two comparisons before: on noisy tasks such as sentiment or emotion a few boundary rows keep
flipping long after test accuracy has plateaued). The share of changed predictions bounds how far the
model's accuracy on the stop set can have moved, whatever the number of classes; Cohen's kappa (still
reported per round) does not, and its chance correction made the hint fire rounds late on binary tasks.
The constants were chosen on ``scripts/bench_stopping.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selector.labelsets import DEFAULT_LABEL_SEP, DEFAULT_NONE_LABEL, parse_label_set
from selector.tables import text_table

__all__ = ["MeasurePoint", "StatusReport", "kappa", "changed_share", "stopping_hint", "build_status",
           "format_status", "CHANGE_THRESHOLD", "CHANGE_CEILING", "CHANGE_FALL", "F1_TOLERANCE", "WINDOW"]

# Chosen on scripts/bench_stopping.py (six shared datasets x 3 seeds, auto, 100 labels a round): of the
# rules never stopping more than 1 point of accuracy early, the one closest to the test-accuracy plateau
# (12 of 18 traces within +-2 rounds; 12 of 18 when each setting's rule is chosen on the other five).
# The kappa rule before (kappa >= 0.98, or >= 0.93 and no longer rising): 8 of 18. On traces under issue
# 27's auto: 11 of 18, one trace 1.2 points early (docs/benchmarks/bench_stopping.md).
CHANGE_THRESHOLD = 0.02
CHANGE_CEILING = 0.05
CHANGE_FALL = 0.0
F1_TOLERANCE = 0.01
WINDOW = 2


@dataclass
class MeasurePoint:
    """The model at one point of the loop (a round's select, or now)."""

    name: str
    n_labeled: int
    cv: dict | None
    predictions: dict[str, str] | None
    kappa_prev: float | None = None
    changed_prev: float | None = None
    model: str | None = None


@dataclass
class StatusReport:
    """Everything ``selector status`` prints (see :func:`format_status`)."""

    data: str
    ledger: str
    rounds: pd.DataFrame
    points: list[MeasurePoint]
    class_counts: dict[str, int]
    labels_per_round: dict[str, int]
    n_labeled: int
    n_rows: int
    still_unlabeled_earlier: int
    still_unlabeled_latest: int
    hint: str
    flattened: bool
    hint_numbers: dict = field(default_factory=dict)
    task: str = "single_label"


def kappa(a: dict[str, str], b: dict[str, str]) -> tuple[float | None, int]:
    """Cohen's kappa between two id -> prediction maps on their common ids.

    Returns
    -------
    kappa : float or None
        1.0 when both predict one identical constant (perfect, chance-corrected agreement is
        undefined there); None without common ids.
    n : int
        Common ids compared.
    """
    from sklearn.metrics import cohen_kappa_score

    x, y = _common(a, b)
    if not x.size:
        return None, 0
    if (x == y).all():
        return 1.0, int(x.size)
    value = float(cohen_kappa_score(x, y))
    return (0.0 if math.isnan(value) else value), int(x.size)


def changed_share(a: dict[str, str], b: dict[str, str]) -> tuple[float | None, int]:
    """Share of the common ids whose prediction differs between two id -> prediction maps.

    Returns
    -------
    share : float or None
        In [0, 1]; None without common ids.
    n : int
        Common ids compared.
    """
    x, y = _common(a, b)
    if not x.size:
        return None, 0
    return float((x != y).mean()), int(x.size)


def _common(a: dict[str, str], b: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    """The two maps' predictions on their common ids, as two aligned string arrays of shape (m,)."""
    common = [i for i in a if i in b]
    return (np.array([a[i] for i in common], dtype=object).astype(str),
            np.array([b[i] for i in common], dtype=object).astype(str))


def stopping_hint(points: list[MeasurePoint], *, change_threshold: float = CHANGE_THRESHOLD,
                  change_ceiling: float = CHANGE_CEILING, change_fall: float = CHANGE_FALL,
                  f1_tolerance: float | None = F1_TOLERANCE, window: int = WINDOW) -> tuple[bool, str, dict]:
    """``(flattened, one-line hint, numbers)`` from the measurement points, oldest first.

    Predictions count as stable when the mean share of stop-set predictions that changed between
    successive models, over the last ``window`` comparisons (``MeasurePoint.changed_prev``), is at
    most ``change_threshold``, or at most ``change_ceiling`` and no longer falling: at least
    ``1 - change_fall`` times the mean of the ``window`` comparisons before (what still changes is the
    noise of the boundary, not learning). ``2 x window`` comparisons are needed either way. With
    ``f1_tolerance`` set, the last change of CV macro-F1 must also be at most that (None: stability
    alone).
    """
    changes = [p.changed_prev for p in points if p.changed_prev is not None]
    f1s = [p.cv["macro_f1"] for p in points if p.cv]
    numbers: dict[str, Any] = {"change_threshold": change_threshold, "change_ceiling": change_ceiling,
                               "change_fall": change_fall, "f1_tolerance": f1_tolerance, "window": window}
    if len(f1s) >= 2:
        numbers["f1_prev"], numbers["f1_last"] = f1s[-2], f1s[-1]
        numbers["f1_delta"] = f1s[-1] - f1s[-2]
    if changes:
        last = changes[-window:]
        numbers["changed_mean"] = float(np.mean(last))
        numbers["changed_n"] = len(last)
        if len(changes) >= 2 * window:
            numbers["changed_mean_before"] = float(np.mean(changes[-2 * window:-window]))
    need_f1 = f1_tolerance is not None
    if not changes or (need_f1 and "f1_delta" not in numbers):
        have = f"{len(changes)} model-to-model comparison(s), {len(f1s)} CV score(s)"
        return False, (f"keep labeling: too early to judge ({have}; the hint needs two rounds with a "
                       "fitted model)"), numbers
    share, n = numbers["changed_mean"], numbers["changed_n"]
    share_txt = (f"{share:.1%} of stop-set predictions changed per round"
                 f"{f' (mean of last {n})' if n > 1 else ''}")
    before = numbers.get("changed_mean_before")
    if before is None:
        return False, (f"keep labeling: {share_txt}; too early to judge ({len(changes)} of the {2 * window} "
                       "model-to-model comparisons the rule needs)"), numbers
    if share <= change_threshold:
        stable, stable_txt = True, f"{share_txt} <= {change_threshold:.1%}"
    elif share <= change_ceiling and share >= (1 - change_fall) * before:
        stable, stable_txt = True, (f"{share_txt} <= {change_ceiling:.1%} and no longer falling "
                                    f"({before:.1%} -> {share:.1%})")
    else:
        stable = False
        stable_txt = (f"predictions still changing ({share_txt} > {change_ceiling:.1%})" if share > change_ceiling
                      else f"predictions still settling ({share_txt}, down from {before:.1%})")
    if need_f1:
        d = numbers["f1_delta"]
        f1_txt = f"CV macro-F1 {numbers['f1_prev']:.3f} -> {numbers['f1_last']:.3f} ({d:+.3f})"
        flat = d <= f1_tolerance
    else:
        f1_txt, flat = "", True
    if stable and flat:
        tail = f" and {f1_txt}, within {f1_tolerance}" if need_f1 else ""
        return True, f"gains have flattened: {stable_txt}{tail}; more labels are unlikely to pay", numbers
    why = [f"predictions stable ({stable_txt})" if stable else stable_txt]
    if need_f1:
        why.append(f"{f1_txt} still rising by more than {f1_tolerance}" if not flat else f1_txt)
    return False, "keep labeling: " + "; ".join(why), numbers


def record_model(record: dict) -> str | None:
    """The embedding model a ledger record's round ran with: its model fingerprint, or None."""
    fingerprint = record.get("model_fingerprint")
    return str(fingerprint) if fingerprint else None


def model_name(fingerprint: str | None) -> str | None:
    """A fingerprint as a short name: ``st-all-MiniLM-L6-v2-3dda4743...`` -> ``all-MiniLM-L6-v2``."""
    if not fingerprint:
        return None
    name = fingerprint.removeprefix("st-").removeprefix("onnx-").removeprefix("static-")
    head, _, tail = name.rpartition("-")
    return head if head and len(tail) >= 12 and all(c in "0123456789abcdef" for c in tail) else name


def _predictions(record: dict) -> dict[str, str] | None:
    stop = record.get("stop_set") or {}
    if not stop.get("predictions"):
        return None
    return dict(zip(stop["ids"], stop["predictions"]))


def build_status(records: list[dict], ids: np.ndarray, labels: np.ndarray, *, data: str = "<data>",
                 ledger: str = "<ledger>", now: MeasurePoint | None = None,
                 round_col: np.ndarray | None = None, change_threshold: float = CHANGE_THRESHOLD,
                 change_ceiling: float = CHANGE_CEILING, change_fall: float = CHANGE_FALL,
                 f1_tolerance: float | None = F1_TOLERANCE, window: int = WINDOW) -> StatusReport:
    """Assemble the status report.

    Parameters
    ----------
    records : list of dict
        Ledger records, oldest first.
    ids : ndarray of str, shape (n,)
    labels : ndarray of object, shape (n,)
        Current labels (None = unlabeled).
    now : MeasurePoint, optional
        The current model when labels changed since the last round (``predictions`` keyed by id).
    round_col : ndarray, shape (n,), optional
        The data's ``label_round`` column (which round each label came from).
    """
    labeled_now = {str(i) for i, lab in zip(ids, labels) if lab is not None}
    rows = []
    points = []
    queued_ids: list[list[str]] = []
    for rec in records:
        q = [str(i) for i in (rec.get("queue") or {}).get("ids", [])]
        queued_ids.append(q)
        done = sum(i in labeled_now for i in q)
        cv = rec.get("cv")
        counts = rec.get("counts") or {}
        model = record_model(rec)
        points.append(MeasurePoint(name=f"round {rec.get('round')}", n_labeled=int(counts.get("n_labeled", 0)),
                                   cv=cv, predictions=_predictions(rec), model=model))
        rows.append({"round": rec.get("round"), "time": str(rec.get("time", ""))[:19].replace("T", " "),
                     "strategy": (f"{rec.get('strategy')} (cold start)" if rec.get("cold_start")
                                  else rec.get("strategy")), "model": model_name(model), "labeled_before": counts.get("n_labeled"),
                     "queued": len(q), "queue_labeled": done, "queue_unlabeled": len(q) - done,
                     # A multi-label round records micro-F1 (its cv has no accuracy): shown in the same column.
                     "cv_accuracy": cv.get("accuracy", cv.get("micro_f1")) if cv else None,
                     "cv_macro_f1": cv.get("macro_f1") if cv else None})
    if now is not None:
        if now.model is None and points:
            now.model = points[-1].model
        points.append(now)
    # Predictions are compared only between models on the same embedder: a `--model hashing` trial
    # round and a real-model round disagree for reasons that say nothing about whether labels still pay.
    prev: dict[str | None, dict[str, str]] = {}
    for p in points:
        if p.predictions is not None and p.model in prev:
            p.kappa_prev, _ = kappa(prev[p.model], p.predictions)
            p.changed_prev, _ = changed_share(prev[p.model], p.predictions)
        if p.predictions is not None:
            prev[p.model] = p.predictions
    last_model = points[-1].model if points else None
    stop_points = [p for p in points if p.model == last_model]
    table = pd.DataFrame(rows)
    if len(table):
        table["kappa_vs_prev"] = [p.kappa_prev for p in points[:len(rows)]]
        table["changed_vs_prev"] = [p.changed_prev for p in points[:len(rows)]]
    flattened, hint, numbers = stopping_hint(stop_points, change_threshold=change_threshold, change_ceiling=change_ceiling,
                                             change_fall=change_fall, f1_tolerance=f1_tolerance, window=window)
    lab = np.array([x for x in labels if x is not None], dtype=object).astype(str)
    multi = any(r.get("task") == "multi_label" for r in records)
    if multi:  # a multi-label loop counts rows per label, not per label set
        config = (records[-1].get("config") or {}) if records else {}
        sep, none = config.get("label_sep", DEFAULT_LABEL_SEP), config.get("none_label", DEFAULT_NONE_LABEL)
        parts = [v for cell in lab for v in (parse_label_set(cell, sep=sep, none_label=none) or ())]
        names, counts = np.unique(np.asarray(parts, dtype=object).astype(str), return_counts=True)
    else:
        names, counts = np.unique(lab, return_counts=True)
    per_round: dict[str, int] = {}
    if round_col is not None:
        for r, x in zip(round_col, labels):
            if x is not None:
                key = str(r) if r not in (None, "") else "before the ledger"
                per_round[key] = per_round.get(key, 0) + 1
    else:
        for row in rows:
            per_round[str(row["round"])] = row["queue_labeled"]
    per_round = dict(sorted(per_round.items(), key=lambda kv: (not kv[0].isdigit(), int(kv[0]) if kv[0].isdigit() else 0)))
    # Distinct ids: a row queued again by a later round is counted once, under the latest round.
    latest_ids = {i for i in queued_ids[-1] if i not in labeled_now} if queued_ids else set()
    earlier_ids = {i for q in queued_ids[:-1] for i in q if i not in labeled_now} - latest_ids
    earlier, latest = len(earlier_ids), len(latest_ids)
    return StatusReport(data=data, ledger=ledger, rounds=table, points=points,
                        class_counts={str(k): int(v) for k, v in zip(names, counts)}, labels_per_round=per_round,
                        n_labeled=int(lab.size), n_rows=int(len(ids)), still_unlabeled_earlier=earlier,
                        still_unlabeled_latest=latest, hint=hint, flattened=flattened, hint_numbers=numbers,
                        task="multi_label" if multi else "single_label")


def _fmt(value, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def format_status(report: StatusReport) -> str:
    """The report as the text ``selector status`` prints."""
    lines = [f"data: {report.data}  ({report.n_labeled} of {report.n_rows} rows labeled)",
             f"ledger: {report.ledger}  ({len(report.rounds)} round(s))", ""]
    # A multi-label loop's cross-validated figure is micro-F1 (over the labels), not accuracy.
    multi = report.task == "multi_label"
    header = ["round", "time (UTC)", "strategy", "model", "labeled", "queued", "q.labeled", "q.unlabeled",
              "cv_microF1" if multi else "cv_acc", "cv_macroF1", "kappa", "changed"]
    body = []
    for r in report.rounds.to_dict("records"):
        body.append([str(r["round"]), r["time"], str(r["strategy"]), _fmt(r["model"]), _fmt(r["labeled_before"]), str(r["queued"]),
                     str(r["queue_labeled"]), str(r["queue_unlabeled"]), _fmt(r["cv_accuracy"]),
                     _fmt(r["cv_macro_f1"]), _fmt(r["kappa_vs_prev"]), _pct(r["changed_vs_prev"])])
    if len(report.points) > len(report.rounds):
        p = report.points[-1]
        body.append(["now", "", "", _fmt(model_name(p.model)), str(p.n_labeled), "", "", "", _fmt(p.cv.get("accuracy", p.cv.get("micro_f1")) if p.cv else None),
                     _fmt(p.cv["macro_f1"] if p.cv else None), _fmt(p.kappa_prev), _pct(p.changed_prev)])
    lines.extend(text_table(header, body))
    lines.append("(labeled = labels when the round selected; cv_* = 5-fold cross-validated logistic regression "
                 "on those labels; kappa = agreement with the previous model on the fixed stop set, changed = "
                 "share of its stop-set predictions that changed; both compare rounds of the same model only)")
    lines.append("")
    lines.append("labels per round: " + (", ".join(f"{k}: {v}" for k, v in report.labels_per_round.items()) or "-"))
    lines.append(("labels per label: " if report.task == "multi_label" else "labels per class: ") + (", ".join(f"{k} {v}" for k, v in report.class_counts.items()) or "-"))
    lines.append(f"queued but still unlabeled: {report.still_unlabeled_earlier} from earlier rounds, "
                 f"{report.still_unlabeled_latest} from the latest round")
    lines.append(f"stopping hint: {report.hint}")
    return "\n".join(lines)
