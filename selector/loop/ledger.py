"""The round ledger: one JSON line per ``selector select`` in ``.selector/rounds.jsonl`` beside the data.

The ledger is what makes the labeling loop resumable: it records, for every round, what was
selected (the queue's ids and where the queue was written), from which data (sha256), with which
settings (resolved config, seed, model fingerprint), and what the classifier looked like at that
moment (cross-validated accuracy and macro-F1 on the labels so far, and its predictions on a fixed
"stop set" of rows, from which ``selector status`` computes the stopping hint).

Appends are one ``write`` of one line on a file opened with ``O_APPEND`` under an exclusive
``flock``, then ``fsync``: concurrent rounds never interleave, and a crash can at worst leave a torn
last line, which :func:`read_ledger` reports and skips and the next append removes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from selector.errors import DataError

__all__ = [
    "LEDGER_NAME",
    "STOP_SET_SIZE",
    "CV_MAX_ROWS",
    "ledger_path",
    "read_ledger",
    "append_record",
    "next_round_number",
    "stop_set_ids",
    "cv_metrics",
    "round_ledger_record",
    "record_round",
]

LEDGER_NAME = "rounds.jsonl"
#: Rows in the held-aside stop set (Bloodgood & Vijay-Shanker 2009 used 2000; 500 keeps records small
#: while kappa's standard error stays below ~0.02 at the agreement levels that matter).
STOP_SET_SIZE = 500
#: Cross-validation runs on at most this many labeled rows (a seeded stratified-by-chance sample).
CV_MAX_ROWS = 5000


def ledger_path(data: str | os.PathLike) -> Path:
    """``.selector/rounds.jsonl`` in the data file's folder (one loop per folder)."""
    return Path(data).resolve().parent / ".selector" / LEDGER_NAME


def read_ledger(path: str | os.PathLike) -> list[dict[str, Any]]:
    """All round records in file order; ``[]`` when the ledger does not exist yet.

    Raises
    ------
    DataError
        A line other than a torn last line is not a JSON object.
    """
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.decode("utf-8").split("\n")
    records = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            torn = lineno == len(lines) and not raw.endswith(b"\n")
            if torn:
                warnings.warn(f"{path}: line {lineno} is an incomplete record (interrupted write); ignoring it",
                              stacklevel=2)
                continue
            raise DataError(f"{path}: line {lineno} is not valid JSON; fix or remove that line") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {lineno} is not a JSON object; each line must be one round record")
        records.append(obj)
    return records


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Append ``record`` as one JSON line, safely against concurrent writers and crashes."""
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(record, default=_json_default, ensure_ascii=False, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                last = fh.read(1)
            if last != b"\n":
                # A torn last line from an interrupted write (every writer holds this lock, so no
                # one is mid-write): drop it, since it never was a complete record.
                whole = path.read_bytes()
                os.ftruncate(fd, whole.rfind(b"\n") + 1)
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def next_round_number(records: list[dict[str, Any]]) -> int:
    """One more than the highest round number so far (1 for an empty ledger)."""
    return max((int(r.get("round", 0)) for r in records), default=0) + 1


def _id_hash(ids: np.ndarray) -> np.ndarray:
    return np.array([hashlib.sha256(str(i).encode("utf-8")).hexdigest() for i in ids], dtype=object)


def stop_set_ids(ids: np.ndarray, records: list[dict[str, Any]], size: int = STOP_SET_SIZE) -> np.ndarray:
    """The fixed held-aside sample whose predictions are compared between rounds.

    The first round takes the ``size`` rows with the smallest sha256 of their id (a deterministic,
    order-free sample); later rounds reuse the first recorded stop set (the ids still present), so
    the sample stays fixed while rows are labeled or ingested.

    Parameters
    ----------
    ids : ndarray of str, shape (n,)
        Ids of every row in the data now.

    Returns
    -------
    ndarray of str, shape (m,)
    """
    for rec in records:
        stored = (rec.get("stop_set") or {}).get("ids")
        if stored:
            present = set(map(str, ids))
            return np.array([i for i in stored if i in present], dtype=object)
    order = np.argsort(_id_hash(ids), kind="stable")[:size]
    return np.asarray(ids, dtype=object)[np.sort(order)]


def cv_metrics(X: np.ndarray, y: np.ndarray, *, classifier=None, n_splits: int = 5,
               random_state: int | None = 0, max_rows: int = CV_MAX_ROWS) -> dict[str, Any] | None:
    """Cross-validated accuracy and macro-F1 of the classifier on the labeled rows.

    Parameters
    ----------
    X : ndarray, shape (n_labeled, d)
    y : ndarray of str, shape (n_labeled,)
    classifier : unfitted scikit-learn estimator, optional (default logistic regression)
    max_rows : int
        Larger labeled sets are subsampled (seeded) to this many rows to bound the cost.

    Returns
    -------
    dict or None
        ``accuracy``, ``macro_f1``, ``n`` (rows used), ``n_splits``; None with fewer than two
        classes or fewer than four labeled rows (nothing meaningful to cross-validate).
    """
    from sklearn.metrics import accuracy_score, f1_score

    from selector.models.classifiers import make_classifier, out_of_fold_proba

    y = np.asarray(y, dtype=object).astype(str)
    if y.size < 4 or np.unique(y).size < 2:
        return None
    if y.size > max_rows:
        rng = np.random.default_rng(random_state)
        keep = np.sort(rng.choice(y.size, size=max_rows, replace=False))
        X, y = X[keep], y[keep]
    template = classifier if classifier is not None else make_classifier(random_state=random_state)
    from threadpoolctl import threadpool_limits

    # Five small fits: single-threaded BLAS avoids thread hand-off overhead.
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="blas"):
        # Small classes are expected early in a loop; the record keeps the class counts instead.
        warnings.filterwarnings("ignore", message=".*fewer than.*labeled rows.*")
        proba, classes = out_of_fold_proba(template, X, y, n_splits=n_splits, random_state=random_state)
    pred = classes[proba.argmax(axis=1)]
    return {"accuracy": round(float(accuracy_score(y, pred)), 6),
            "macro_f1": round(float(f1_score(y, pred, average="macro", zero_division=0)), 6),
            "n": int(y.size), "n_splits": int(min(n_splits, max(2, np.unique(y, return_counts=True)[1].max())))}


def stop_set_predictions(ids: np.ndarray, X: np.ndarray, model, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Predictions of a fitted ``model`` on the stop set (``None`` predictions without a model).

    Parameters
    ----------
    ids : ndarray of str, shape (n,)
    X : ndarray, shape (n, d)
        Embeddings of every row, aligned with ``ids``.
    """
    stop = stop_set_ids(ids, records)
    pos = {str(i): k for k, i in enumerate(ids)}
    rows = np.array([pos[str(i)] for i in stop], dtype=np.int64)
    preds = None
    if model is not None and rows.size:
        preds = [str(p) for p in model.predict(X[rows])]
    return {"ids": [str(i) for i in stop], "predictions": preds}


def round_ledger_record(*, round_number: int, data_path: str, data_sha256: str | None, config: dict,
                        stats: dict, queue_ids, queue_path: str, class_counts: dict[str, int],
                        cv: dict | None, stop_set: dict, command: str | None = None,
                        extra: dict | None = None) -> dict[str, Any]:
    """Assemble one JSON-serialisable ledger line."""
    counts = {k: v for k, v in stats.items() if k.startswith("n_")}
    record = {
        "round": int(round_number),
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "data": {"path": data_path, "sha256": data_sha256},
        "config": config,
        "seed": config.get("seed"),
        "strategy": config.get("strategy"),
        "model_fingerprint": stats.get("model_fingerprint"),
        "cold_start": stats.get("cold_start"),
        "counts": counts,
        "class_counts": class_counts,
        "cv": cv,
        "queue": {"path": queue_path, "ids": [str(i) for i in queue_ids]},
        "stop_set": stop_set,
    }
    if extra:
        record.update(extra)
    return record


def record_round(data: str | os.PathLike, result, config, *, queue_path: str | os.PathLike,
                 data_sha256: str | None, command: str | None = None, queue=None,
                 gold_ids=None, extra: dict | None = None, ledger_file: str | os.PathLike | None = None) -> dict[str, Any]:
    """Append the ledger record of a finished ``select`` round and return it.

    Parameters
    ----------
    data : path
        The data file the round read (the ledger lives beside it).
    result : selector.round.compute.RoundResult
    config : SelectConfig
    queue_path : path
        Where the queue was written.
    queue : DataFrame, optional
        The queue as written (default ``result.queue``), e.g. after bucket priority reordered it.
    gold_ids : sequence of str, optional
        Ids of gold items mixed into the queue (``--gold``): recorded apart from the queue's ids,
        so ``merge`` sets their answers aside and ``status`` does not count them as pending.
    ledger_file : path, optional
        Where to append (default :func:`ledger_path` of ``data``; the bundled example uses the
        working folder, since the package folder may be read-only).
    """
    from selector.models.classifiers import make_classifier

    path = Path(ledger_file) if ledger_file is not None else ledger_path(data)
    records = read_ledger(path)
    pool = result.pool
    lab = pool.labeled_positions
    labels = pool.labels[lab].astype(str)
    names, counts = np.unique(labels, return_counts=True)
    template = make_classifier(config.classifier, random_state=config.seed, **config.classifier_params)
    cv = cv_metrics(result.embeddings[lab], labels, classifier=template, random_state=config.seed)
    stop = stop_set_predictions(pool.ids, result.embeddings, result.context.classifier, records)
    queue = result.queue if queue is None else queue
    gold = {str(i) for i in (gold_ids or [])}
    queue_ids = [i for i in queue["id"].astype(str).tolist() if i not in gold]
    if gold:
        extra = dict(extra or {}, gold_ids=sorted(gold))
    record = round_ledger_record(
        round_number=next_round_number(records), data_path=str(Path(data).resolve()), data_sha256=data_sha256,
        config=config.to_dict(), stats=result.stats, queue_ids=queue_ids,
        queue_path=str(Path(queue_path).resolve()), class_counts={str(k): int(v) for k, v in zip(names, counts)},
        cv=cv, stop_set=stop, command=command, extra=extra)
    append_record(path, record)
    return record
