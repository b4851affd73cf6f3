"""The round ledger: one JSON line per ``selector select`` in ``.selector/<data file>.rounds.jsonl``.

There is one ledger per data file (two data files in one folder are two loops). Earlier versions
kept one ledger per folder (``.selector/rounds.jsonl``); :func:`ledger_path` moves a file's rounds
out of it on first use (:func:`migrate_folder_ledger`), leaving the folder ledger in place for the
other files.

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

import contextlib
import fcntl
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from selector.errors import DataError
from selector.io import append_line, atomic_write, drop_torn_line

__all__ = [
    "LEDGER_SUFFIX",
    "LEGACY_LEDGER_NAME",
    "ledger_name",
    "migrate_folder_ledger",
    "STOP_SET_SIZE",
    "ledger_path",
    "read_ledger",
    "append_record",
    "next_round_number",
    "stop_set_ids",
    "stop_set_predictions",
    "locked_ledger",
    "LockedLedger",
    "round_records",
]

#: ``data.csv`` -> ``.selector/data.csv.rounds.jsonl``
LEDGER_SUFFIX = ".rounds.jsonl"
#: The folder-wide ledger of earlier versions, migrated per data file.
LEGACY_LEDGER_NAME = "rounds.jsonl"
#: Rows in the held-aside stop set (Bloodgood & Vijay-Shanker 2009 used 2000; 500 keeps records small
#: while kappa's standard error stays below ~0.02 at the agreement levels that matter).
STOP_SET_SIZE = 500


def ledger_name(data: str | os.PathLike) -> str:
    """The ledger file name of a data file: ``<name>.rounds.jsonl``."""
    return Path(data).name + LEDGER_SUFFIX


def ledger_path(data: str | os.PathLike) -> Path:
    """``.selector/<data file name>.rounds.jsonl`` in the data file's folder: one loop per data file.

    A folder ledger of earlier versions (``.selector/rounds.jsonl``) holding this file's rounds is
    migrated first (:func:`migrate_folder_ledger`).
    """
    data = Path(data).resolve()
    path = data.parent / ".selector" / ledger_name(data)
    migrate_folder_ledger(data, path)
    return path


def _record_data_path(record: dict[str, Any]) -> str | None:
    data = record.get("data")
    return data.get("path") if isinstance(data, dict) else data if isinstance(data, str) else None


def migrate_folder_ledger(data: str | os.PathLike, path: str | os.PathLike) -> int:
    """Copy ``data``'s records from the folder's old ``rounds.jsonl`` into its own ledger ``path``.

    Runs only while ``path`` does not exist, so it happens once; records of other data files stay in
    the folder ledger for theirs. Returns how many records were moved.

    Raises
    ------
    DataError
        The folder ledger is damaged, or the new ledger cannot be written.
    """
    data, path = Path(data).resolve(), Path(path)
    legacy = path.parent / LEGACY_LEDGER_NAME
    if path.exists() or not legacy.is_file():
        return 0
    mine = [r for r in read_ledger(legacy, warn_torn=False) if _record_data_path(r) == str(data)]
    if not mine:
        return 0
    body = "".join(json.dumps(r, default=_json_default, ensure_ascii=False, separators=(",", ":")) + "\n" for r in mine)
    try:
        with atomic_write(path) as fh:
            fh.write(body)
    except OSError as exc:
        raise DataError(f"{path}: cannot write the ledger while moving {data.name}'s rounds out of {legacy} "
                        f"({exc.strerror}); check the folder's permissions") from None
    return len(mine)


def read_ledger(path: str | os.PathLike, *, warn_torn: bool = True) -> list[dict[str, Any]]:
    """All round records in file order; ``[]`` when the ledger does not exist yet.

    A torn last line (an interrupted write) is skipped, with a warning unless ``warn_torn`` is False.

    Raises
    ------
    DataError
        A line other than a torn last line is not a JSON object.
    """
    path = Path(path)
    if not path.exists():
        return []
    try:
        raw = path.read_bytes()
        lines = raw.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise DataError(f"{path}: the ledger is not UTF-8 text; restore it from a backup or move it away") from None
    records = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            torn = lineno == len(lines) and not raw.endswith(b"\n")
            if torn:
                if not warn_torn:
                    continue
                warnings.warn(f"{path}: line {lineno} is an incomplete record (interrupted write); ignoring it",
                              stacklevel=2)
                continue
            raise DataError(f"{path}: line {lineno} is not valid JSON; fix or remove that line") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}: line {lineno} is not a JSON object; each line must be one round record")
        problem = _record_problem(obj)
        if problem is not None:
            raise DataError(f"{path}: line {lineno} is not a valid record ({problem}); fix that line or delete it "
                            "(the rounds before and after it stay valid)")
        records.append(obj)
    return records


def _record_problem(obj: dict) -> str | None:
    """What is wrong with a ledger line's shape, in words, or None."""
    kind = obj.get("kind", "round")
    if not isinstance(kind, str):
        return f"'kind' is {type(kind).__name__}, not text"
    if kind == "round":
        number = obj.get("round")
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            return f"'round' must be a whole number, got {number!r}"
        queue = obj.get("queue")
        if queue is not None:
            if not isinstance(queue, dict):
                return f"'queue' must be an object, got {type(queue).__name__}"
            ids = queue.get("ids")
            if ids is not None and not isinstance(ids, list):
                return f"'queue.ids' must be a list, got {type(ids).__name__}"
        for key in ("config", "counts", "data", "stop_set", "cv"):
            value = obj.get(key)
            if value is not None and not isinstance(value, dict):
                return f"{key!r} must be an object, got {type(value).__name__}"
        gold = obj.get("gold_ids")
        if gold is not None and not isinstance(gold, list):
            return f"'gold_ids' must be a list, got {type(gold).__name__}"
    return None


class LockedLedger:
    """A ledger held under its exclusive lock: read the records, take the next round, append.

    Attributes
    ----------
    path : Path
    records : list of dict
        Every complete record, read under the lock (so the next round number is unique).
    """

    def __init__(self, path: Path, fd: int, created: bool) -> None:
        self.path = path
        self._fd = fd
        self._created = created
        self.appended = False
        # The round's plan already read (and reported) this ledger; the torn line is dropped on append.
        self.records = read_ledger(path, warn_torn=False)

    @property
    def next_round(self) -> int:
        return next_round_number(self.records)

    @staticmethod
    def line_for(record: dict[str, Any]) -> str:
        """``record`` as the one JSON line :meth:`append` writes (newline included)."""
        return json.dumps(record, default=_json_default, ensure_ascii=False, separators=(",", ":")) + "\n"

    def append(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one JSON line (fsynced); a torn last line of a crashed writer is dropped first."""
        line = self.line_for(record)
        # Every writer holds this lock, so an incomplete last line is a killed writer's, never one mid-write.
        drop_torn_line(self._fd, self.path)
        append_line(self._fd, line.encode("utf-8"), self.path)
        self.appended = True
        self.records.append(record)


@contextlib.contextmanager
def locked_ledger(path: str | os.PathLike) -> Iterator[LockedLedger]:
    """Hold the ledger at ``path`` under an exclusive ``flock`` for one commit.

    Concurrent rounds queue here, so each reads every earlier record and takes its own round
    number. A ledger file this call created and nothing was appended to is removed on exit.

    Raises
    ------
    DataError
        A line other than a torn last line is not a JSON object.
    OSError
        The ledger folder cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    ledger = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        ledger = LockedLedger(path, fd, created)
        yield ledger
    finally:
        if created and (ledger is None or not ledger.appended) and os.fstat(fd).st_size == 0:
            path.unlink(missing_ok=True)
        os.close(fd)


def append_record(path: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Append ``record`` as one JSON line, safely against concurrent writers and crashes."""
    with locked_ledger(path) as ledger:
        ledger.append(record)
    return Path(path)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return str(obj)


def round_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of ``selector select`` rounds, leaving out other entries (``kind`` set, e.g.
    ``"corrections"`` written by ``selector merge --accept-corrections``)."""
    return [r for r in records if r.get("kind", "round") == "round"]


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
