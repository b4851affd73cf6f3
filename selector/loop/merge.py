"""Bring labels back from a labeling tool's export into the data file, by id.

:func:`read_labels` turns an export into one table ``id, label[, annotator, guideline_version,
round]`` whatever the tool: a plain CSV/JSONL/Parquet with an id and a label column, a Label Studio
JSON export (``annotations[].result[].value.choices``), an Argilla export (``responses`` per
question, v2 nested or flattened, or v1 ``annotation``), a Prodigy JSONL (``answer`` ==
``"accept"``; the label from ``accept`` (choice) or ``label`` (binary)), or a doccano JSONL
(``label`` list; also its zip export, one ``<user>.jsonl`` per annotator). The id comes from ``selector_id`` (written by ``selector export``) or ``id``.

:func:`merge_labels` writes them into the label column and refuses, with every conflict listed and
nothing written, ids the data does not know, annotators who disagree and labels that would overwrite a
different one; with ``partial`` it writes the clean labels and returns the conflicts. A row whose
current label is an unsure value takes the returned label.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
import os
from pathlib import Path

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.io import decode_utf8, read_table, unguard_cell
from selector.labels import DATA_ANNOTATOR, DEFAULT_UNSURE_LABELS, normalise_label, unsure_mask
from selector.labelsets import DEFAULT_NONE_LABEL, canonical_cell, differing_labels, parse_label_set
from selector.outputs import OutputPlan, Writer, bytes_file, same_file, table
from selector.quality.annotations import prepare_annotations

__all__ = ["annotator_name", "MergeConflictError", "MergeResult", "read_labels", "merge_labels", "apply_corrections",
           "CorrectionResult", "ROUND_COL", "LABEL_FIELDS", "CORRECTED_COL", "VOTE_COLUMNS",
           "export_votes", "read_votes", "append_votes", "second_opinion_ids"]

ROUND_COL = "label_round"
ID_KEYS = ("selector_id", "id")
#: Export columns carried into the data when present.
LABEL_FIELDS = ("annotator", "guideline_version")
#: Columns of the votes file ``merge --annotations`` appends to (long format, as ``--annotations`` reads it).
VOTE_COLUMNS = ["item_id", "annotator", "label", ROUND_COL]
#: The column a reviewer fills in a suspect list (``selector suspects``) to confirm a new label.
CORRECTED_COL = "corrected_label"


class MergeConflictError(DataError):
    """Some exported labels cannot be merged; ``conflicts`` lists them (nothing was written)."""

    def __init__(self, message: str, conflicts: pd.DataFrame) -> None:
        super().__init__(message)
        self.conflicts = conflicts


@dataclass
class MergeResult:
    """The data with labels merged in, and what changed.

    Attributes
    ----------
    data : DataFrame
    n_labels : int
        Labels in the export (after skipping rejected/ignored/empty ones).
    n_new : int
        Rows that were unlabeled and now have a label.
    n_unchanged : int
        Rows that already had the same label.
    rounds : dict
        Labels merged per round number.
    conflicts : DataFrame
        ``id, label, annotator, existing, problem`` per label left out (only with ``partial``;
        otherwise conflicts raise).
    from_unsure : list of dict
        ``{"id", "was", "label"}`` per row whose unsure value was replaced by a returned label.
    """

    data: pd.DataFrame
    n_labels: int
    n_new: int
    n_unchanged: int
    rounds: dict = field(default_factory=dict)
    conflicts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=["id", "label", "annotator", "existing", "problem"]))
    from_unsure: list = field(default_factory=list)


def _id_of(*sources: dict) -> str | None:
    """The row id: ``selector_id`` from any source first (tools renumber ``id``), then ``id`` in order."""
    for key in ID_KEYS:
        for src in sources:
            if isinstance(src, dict):
                value = normalise_label(src.get(key))
                if value is not None:
                    return value
    return None


def annotator_name(value):
    """A labeling tool's user as one name: a user object's email, username or id; anything else as is."""
    if isinstance(value, dict):
        return value.get("email") or value.get("username") or value.get("id")
    return value


def _text_label(value, source: str, where: str):
    """A label value from a tool export: text (or None); anything else is an error naming the place."""
    if value is None or isinstance(value, str):
        return value
    raise DataError(f"{source}: {where} has a label of type {type(value).__name__} ({str(value)[:40]!r}); "
                    "labels must be text: export the project again with its text labels")


@dataclass(frozen=True)
class _Sets:
    """How a multi-label merge reads label sets: the delimiter and the none token."""

    sep: str
    none_label: str = DEFAULT_NONE_LABEL

    def cell(self, values, source: str, where: str) -> str:
        """Several chosen labels (a list, or one text) as the canonical cell (:func:`canonical_cell`)."""
        values = [values] if isinstance(values, str) else list(values or [])
        for v in values:
            if not isinstance(v, str):
                raise DataError(f"{source}: {where} has a label of type {type(v).__name__} ({str(v)[:40]!r}); "
                                "labels must be text")
            if self.sep in v and len(values) > 1:
                raise DataError(f"{source}: {where}: label {v!r} contains the label delimiter {self.sep!r}; rename "
                                "the label or choose another delimiter with --label-sep")
        parts = [p for v in values for p in (parse_label_set(v, sep=self.sep, none_label=self.none_label) or ())]
        return canonical_cell(parts, self.sep, self.none_label)


def _label_studio(items: list[dict], source: str, sets: _Sets | None = None) -> tuple[list[dict], int]:
    rows, skipped = [], 0
    for n, task in enumerate(items, start=1):
        if not isinstance(task, dict):
            raise DataError(f"{source}: task {n} is not a JSON object; export the project as Label Studio JSON")
        data = task.get("data") or {}
        if not isinstance(data, dict):
            raise DataError(f"{source}: task {n}'s 'data' is {type(data).__name__}, not an object; export the "
                            "project as Label Studio JSON (not JSON-MIN or CSV)")
        item_id = _id_of(data)  # the top-level "id" is Label Studio's own task number
        got = False
        for ann in task.get("annotations") or []:
            result = ann.get("result") if isinstance(ann, dict) else None
            if not isinstance(ann, dict) or not isinstance(result or [], list) or not all(
                    isinstance(r, dict) and isinstance(r.get("value") or {}, dict) for r in result or []):
                raise DataError(f"{source}: task {n} (id {item_id}) has an annotation whose 'result' is not a list of "
                                "objects with a 'value'; export the project as Label Studio JSON (not JSON-MIN or CSV)")
            if ann.get("was_cancelled"):
                continue
            choices = [c for res in result or [] if res.get("type") in (None, "choices")
                       for c in (res.get("value") or {}).get("choices") or []]
            if sets is not None and choices:  # <Choices choice="multiple">: the chosen set
                rows.append({"id": item_id, "label": sets.cell(choices, source, f"task {n} (id {item_id})"),
                             "annotator": annotator_name(ann.get("completed_by")),
                             "guideline_version": data.get("guideline_version")})
                got = True
                continue
            if len(choices) > 1:
                raise DataError(f"{source}: task {n} (id {item_id}) has {len(choices)} choices in one annotation "
                                f"({', '.join(map(str, choices))}); selector merges single-label classification "
                                "unless the task is multi-label (--multi-label)")
            if choices:
                _text_label(choices[0], source, f"task {n} (id {item_id})")
                rows.append({"id": item_id, "label": choices[0], "annotator": annotator_name(ann.get("completed_by")),
                             "guideline_version": data.get("guideline_version")})
                got = True
        skipped += not got
    return rows, skipped


def _no_status(source: str, item_id, question: str) -> DataError:
    return DataError(
        f"{source}: record {item_id!r} has an Argilla response without a 'status', so a draft or discarded answer "
        "cannot be told from a submitted one (Argilla's nested export, records.to_json / to_list(), drops it); "
        f"export with dataset.records(with_responses=True).to_list(flatten=True), which keeps "
        f"'{question}.responses.status', and merge that")


def _argilla(items: list[dict], question: str, source: str, sets: _Sets | None = None) -> tuple[list[dict], int]:
    """Only ``submitted`` responses are labels; ``draft`` and ``discarded`` are skipped, and a
    response without a status is refused (it could be either)."""
    rows, skipped = [], 0
    for n, rec in enumerate(items, start=1):
        meta = rec.get("metadata") or {}
        if not isinstance(meta, dict):
            raise DataError(f"{source}: record {n}'s 'metadata' is {type(meta).__name__}, not an object")
        item_id = _id_of(meta, rec)
        got = False
        responses = rec.get("responses")
        if responses is not None and not isinstance(responses, dict):
            raise DataError(f"{source}: record {n} (id {item_id}) has 'responses' of type {type(responses).__name__}; "
                            f"Argilla exports them as an object of questions ('{question}': [responses]): export with "
                            "dataset.records(with_responses=True).to_list(flatten=True)")
        if isinstance(responses, dict) and question in responses:
            answers = responses[question] or []
            if not isinstance(answers, list) or not all(isinstance(a, dict) for a in answers):
                raise DataError(f"{source}: record {n} (id {item_id}): responses['{question}'] must be a list of "
                                "response objects ({'value', 'status', 'user_id'})")
            for resp in answers:
                if sets is not None and isinstance(resp.get("value"), list):  # a MultiLabelQuestion's answer
                    resp = dict(resp, value=sets.cell(resp["value"], source, f"record {n} (id {item_id})"))
                _text_label(resp.get("value"), source, f"record {n} (id {item_id})")
                if normalise_label(resp.get("value")) is None:
                    continue
                if normalise_label(resp.get("status")) is None:
                    raise _no_status(source, item_id, question)
                if resp["status"] == "submitted":
                    rows.append({"id": item_id, "label": resp["value"], "annotator": resp.get("user_id"),
                                 "guideline_version": meta.get("guideline_version")})
                    got = True
        elif f"{question}.responses" in rec:
            values = rec.get(f"{question}.responses") or []
            users = rec.get(f"{question}.responses.users") or [None] * len(values)
            status = rec.get(f"{question}.responses.status") or [None] * len(values)
            if not isinstance(values, list):
                values, users, status = [values], [users] if not isinstance(users, list) else users, \
                    [status] if not isinstance(status, list) else status
            if sets is not None and values and not any(isinstance(v, list) for v in values) and len(values) != len(users):
                values = [values]  # one flattened multi-label answer, not one answer per user
            for v, u, s in zip(values, users, status):
                if sets is not None and isinstance(v, list):
                    v = sets.cell(v, source, f"record {n} (id {item_id})")
                _text_label(v, source, f"record {n} (id {item_id})")
                if normalise_label(v) is not None and normalise_label(s) is None:
                    raise _no_status(source, item_id, question)
                if s == "submitted" and normalise_label(v) is not None:
                    rows.append({"id": item_id, "label": v, "annotator": u,
                                 "guideline_version": meta.get("guideline_version")})
                    got = True
        elif normalise_label(rec.get("annotation")) is not None:  # Argilla 1.x TextClassificationRecord
            rows.append({"id": item_id, "label": rec["annotation"], "annotator": rec.get("annotation_agent"),
                         "guideline_version": meta.get("guideline_version")})
            got = True
        skipped += not got
    return rows, skipped


def _prodigy(items: list[dict], source: str, sets: _Sets | None = None) -> tuple[list[dict], int]:
    rows, skipped = [], 0
    for n, task in enumerate(items, start=1):
        if task.get("answer") != "accept":
            skipped += 1
            continue
        item_id = _id_of(task, task.get("meta") or {})
        if "accept" in task and task.get("options"):
            accepted = task.get("accept") or []
            if not isinstance(accepted, list):
                raise DataError(f"{source}: line {n} (id {item_id}) has 'accept' of type {type(accepted).__name__}; "
                                "Prodigy writes the accepted option ids as a list")
            if sets is not None:  # textcat_multilabel / choice_style multiple: the accepted set; none = "none of these"
                label = sets.cell([str(a) for a in accepted], source, f"line {n} (id {item_id})")
            elif len(accepted) > 1:
                raise DataError(f"{source}: line {n} (id {item_id}) accepts {len(accepted)} options; "
                                "selector merges single-label classification (use choice_style single, or "
                                "--multi-label)")
            else:
                label = accepted[0] if accepted else None
        else:
            label = task.get("label")
        if not isinstance(label, (int, float)):  # a number is a label too; a list or object is not
            _text_label(label, source, f"line {n} (id {item_id})")
        if normalise_label(label) is None:
            skipped += 1
            continue
        rows.append({"id": item_id, "label": label, "annotator": task.get("_annotator_id") or task.get("_session_id"),
                     "guideline_version": (task.get("meta") or {}).get("guideline_version")})
    return rows, skipped


def _doccano(items: list[dict], source: str, sets: _Sets | None = None) -> tuple[list[dict], int]:
    rows, skipped = [], 0
    for n, task in enumerate(items, start=1):
        labels = task.get("label", task.get("labels")) or []
        labels = [labels] if isinstance(labels, str) else labels
        if not isinstance(labels, list):
            raise DataError(f"{source}: line {n}'s label is {type(labels).__name__}; doccano exports a list of "
                            "label names")
        for label in labels:
            if not isinstance(label, str):
                raise DataError(f"{source}: line {n} has a label of type {type(label).__name__} ({label!r}); "
                                "doccano exports label names as text: export the project as JSONL again")
        if len(labels) > 1 and sets is None:
            raise DataError(f"{source}: line {n} has {len(labels)} labels ({', '.join(map(str, labels))}); "
                            "selector merges single-label classification unless the task is multi-label (--multi-label)")
        if not labels:
            skipped += 1
            continue
        if sets is not None:
            labels = [sets.cell(labels, source, f"line {n}")]
        # doccano replaces ``id`` with its own number, so only ``selector_id`` identifies the row.
        rows.append({"id": normalise_label(task.get("selector_id")), "label": labels[0],
                     "annotator": task.get("annotator"), "guideline_version": task.get("guideline_version")})
    return rows, skipped


def _zip_items(path: Path) -> list[dict]:
    """doccano's export: a zip of ``<username>.jsonl`` per member (``all.jsonl`` for a collaborative
    project). Each item gets its file's user as ``annotator`` unless it names one itself."""
    import zipfile

    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise DataError(f"{path}: not a readable zip file; re-download the export") from None
    items = []
    with archive:
        members = [m for m in archive.namelist() if m.lower().endswith((".jsonl", ".json")) and not m.endswith("/")]
        if not members:
            raise DataError(f"{path}: the zip holds no .jsonl/.json file; export the project as JSONL")
        for member in sorted(members):
            user = Path(member).stem
            text = decode_utf8(f"{path}:{member}", archive.read(member))
            for item in _parse_json_text(text, f"{path}:{member}", Path(member).suffix.lower()):
                if user != "all" and normalise_label(item.get("annotator")) is None:
                    item = {**item, "annotator": user}
                items.append(item)
    return items


def _parse_json_text(text: str, source: str, suffix: str) -> list[dict]:
    if suffix == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}); re-export the file") from None
        except RecursionError:
            raise DataError(f"{source}: nested too deeply to be a tool export") from None
        if isinstance(items, dict):
            items = items.get("records") or items.get("tasks") or [items]
    else:
        items = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{source}: line {lineno} is not valid JSON ({exc.msg}); fix that line") from None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DataError(f"{source}: expected a list of JSON objects (one per task or record)")
    return items


def _load_json_items(path: Path) -> list[dict] | None:
    """A JSON array, JSONL file or zip of JSONL files as a list of dicts; None for a tabular file."""
    suffix = path.suffix.lower()
    if suffix == ".zip":
        return _zip_items(path)
    if suffix not in (".json", ".jsonl", ".ndjson"):
        return None
    return _parse_json_text(decode_utf8(path, path.read_bytes()), str(path), suffix)


def _detect(items: list[dict]) -> str:
    first = items[0] if items else {}
    if "annotations" in first and "data" in first:
        return "label-studio"
    if "responses" in first or any(k.endswith(".responses") for k in first) or "annotation_agent" in first:
        return "argilla"
    if "answer" in first and ("_input_hash" in first or "_task_hash" in first or "text" in first):
        return "prodigy"
    if isinstance(first.get("label", first.get("labels")), list):
        return "doccano"
    return "table"


def read_labels(path: str | Path, *, id_col: str = "id", label_col: str = "label",
                question: str = "label", label_sep: str | None = None,
                none_label: str = DEFAULT_NONE_LABEL) -> tuple[pd.DataFrame, int, str]:
    """Read a labeling tool's export as one row per label.

    Parameters
    ----------
    path : path
        CSV/Parquet/JSONL table, or a tool export (detected from its structure).
    id_col, label_col : str
        Column names in a plain table export.
    question : str
        Argilla question name holding the label.
    label_sep : str, optional
        A multi-label task: several choices in one answer are its label set, written as one cell
        (distinct labels sorted and joined by ``label_sep``; ``none_label`` for an accepted empty set).

    Returns
    -------
    labels : DataFrame
        ``id, label, annotator, guideline_version, round`` (the last three may be empty), as text.
    n_skipped : int
        Items without a usable label (rejected, ignored, cancelled, unanswered).
    kind : str
        ``label-studio``, ``argilla``, ``prodigy``, ``doccano`` or ``table``.
    """

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    items = _load_json_items(path)
    kind = _detect(items) if items is not None else "table"
    source = str(path)
    sets = None if label_sep is None else _Sets(label_sep, none_label)
    if kind == "label-studio":
        rows, skipped = _label_studio(items, source, sets)
    elif kind == "argilla":
        rows, skipped = _argilla(items, question, source, sets)
    elif kind == "prodigy":
        rows, skipped = _prodigy(items, source, sets)
    elif kind == "doccano":
        rows, skipped = _doccano(items, source, sets)
    else:
        df = read_table(path) if items is None or path.suffix.lower() not in (".json", ".zip") else pd.DataFrame(items)
        key = next((k for k in ("selector_id", id_col) if k in df.columns), None)
        if key is None:
            raise DataError(f"{path}: no id column ({id_col!r} or 'selector_id'; columns found: "
                            f"{', '.join(map(str, df.columns[:20]))}); pass --id-col COLUMN")
        if label_col not in df.columns:
            raise DataError(f"{path}: no label column {label_col!r} (columns found: "
                            f"{', '.join(map(str, df.columns[:20]))}); pass --label-col COLUMN")
        rows = [{"id": r[key], "label": r[label_col], "annotator": r.get("annotator"),
                 "guideline_version": r.get("guideline_version"), "round": r.get("round")}
                for r in df.to_dict("records")]
        kept = [r for r in rows if normalise_label(r["label"]) is not None]
        skipped, rows = len(rows) - len(kept), kept
        if sets is not None:
            for r in rows:
                r["label"] = sets.cell(r["label"] if isinstance(r["label"], list) else str(r["label"]), source,
                                       f"item {r[key]!r}")
    out = pd.DataFrame(rows, columns=["id", "label", "annotator", "guideline_version", "round"])
    missing = [i + 1 for i, v in enumerate(out["id"]) if normalise_label(v) is None]
    if missing:
        raise DataError(f"{path}: {len(missing)} labeled item(s) have no id ('selector_id' or 'id'), e.g. item "
                        f"{missing[0]}; export from a queue made by `selector export` so each task carries its id")
    for col in out.columns:
        out[col] = pd.Series([normalise_label(v) for v in out[col]], index=out.index, dtype=object)
    return out, int(skipped), kind


def _index_labels(data: pd.DataFrame, id_col: str, label_col: str) -> tuple[dict, np.ndarray]:
    """Row position by normalised id, and the normalised current labels (None = unlabeled), shape (n,)."""
    # Comprehensions, not Series.map: map turns None back into NaN.
    # Cells as they mean (a table read raw keeps the spreadsheet guard of earlier writes).
    ids = np.array([normalise_label(unguard_cell(v)) for v in data[id_col]], dtype=object)
    current = (np.array([normalise_label(unguard_cell(v)) for v in data[label_col]], dtype=object)
               if label_col in data.columns else np.full(len(data), None, dtype=object))
    return {i: k for k, i in enumerate(ids)}, current


def _with_label_column(data: pd.DataFrame, label_col: str) -> pd.DataFrame:
    """A copy of ``data`` whose label column exists and holds objects (ready for ``iat`` writes)."""
    out = data.copy()
    if label_col not in out.columns:
        out[label_col] = ""
    out[label_col] = out[label_col].astype(object)
    return out


def latest_per_annotator(records: list[dict]) -> list[dict]:
    """Keep each annotator's last label per id (file order), in the order of those last labels.

    An append-only log (``selector serve``'s labels file) or a tool export that keeps history holds
    every edit one annotator made to an item as another line; the latest edit is their answer, not a
    disagreement with themselves. Records without an annotator are all kept.
    """
    last: dict[tuple, int] = {}
    for k, rec in enumerate(records):
        if rec.get("annotator") is not None:
            last[(rec["id"], rec["annotator"])] = k
    return [rec for k, rec in enumerate(records)
            if rec.get("annotator") is None or last[(rec["id"], rec["annotator"])] == k]


def _join(values) -> str | None:
    """Distinct non-empty values in first-seen order, joined with ';' (None when there are none)."""
    seen = list(dict.fromkeys(str(v) for v in values if v is not None))
    return ";".join(seen) or None


def _one_conflict_per_id(conflicts: list[dict], join=None) -> list[dict]:
    """Merge conflict rows that name the same id into one row (labels, annotators, problems joined;
    ``join`` joins the labels, default :func:`_join`)."""
    join = join or _join
    by_id: dict = {}
    for c in conflicts:
        by_id.setdefault(c["id"], []).append(c)
    out = []
    for i, rows in by_id.items():
        if len(rows) == 1:
            out.append(rows[0])
            continue
        out.append({"id": i, "label": join(r["label"] for r in rows), "annotator": _join(r["annotator"] for r in rows),
                    "existing": rows[0]["existing"], "problem": "; ".join(dict.fromkeys(r["problem"] for r in rows))})
    return out


def _who(rec: dict) -> str:
    return f"annotator {rec['annotator']}" if rec.get("annotator") else "the export"


def merge_labels(data: pd.DataFrame, labels: pd.DataFrame, *, label_col: str = "label", id_col: str = "id",
                 round_number: int | None = None, round_of_id: dict[str, int] | None = None,
                 partial: bool = False, unsure_labels=DEFAULT_UNSURE_LABELS,
                 label_sep: str | None = None, none_label: str = DEFAULT_NONE_LABEL,
                 source: str = "<data>") -> MergeResult:
    """Write exported labels into ``data``'s label column by id.

    Parameters
    ----------
    data : DataFrame
        Not modified. Needs ``id_col`` (the ids the queue carried).
    labels : DataFrame
        ``id, label[, annotator, guideline_version, round]`` from :func:`read_labels`.
    round_number : int, optional
        Round to record for every label (``--round``); else the export's ``round`` column, else
        ``round_of_id`` (the ledger round whose queue held the id).
    partial : bool
        Merge the clean labels and return the conflicts (``MergeResult.conflicts``) instead of
        refusing everything.
    unsure_labels : iterable of str
        A row whose current label is one of these (re-queued as unsure) takes the returned label;
        its id is listed in ``MergeResult.from_unsure``.
    label_sep : str, optional
        A multi-label task: labels are sets (cells as :func:`read_labels` writes them with the same
        ``label_sep``); the data's sets are compared as sets, whatever their order, and a conflict
        names the labels the answers differ on.

    Raises
    ------
    MergeConflictError
        Without ``partial``: unknown ids, annotators giving one id different labels, or a label that
        differs from the one the data already has. Lists every conflict; nothing is merged.
    """
    if id_col not in data.columns:
        raise DataError(f"{source}: no id column {id_col!r}; merging needs the ids the queue was made with "
                        "(pass --id-col, or give the data an id column before the first round)")
    pos, current = _index_labels(data, id_col, label_col)
    unsure = unsure_mask(current, unsure_labels) if len(current) else np.zeros(0, bool)
    if label_sep is not None:  # compare sets, not spellings
        current = np.array([v if v is None or unsure[k] else
                            canonical_cell(parse_label_set(v, sep=label_sep, none_label=none_label) or (), label_sep,
                                           none_label) for k, v in enumerate(current)], dtype=object)

    def differ(*cells) -> str:
        if label_sep is None:
            return ""
        names = differing_labels(cells, label_sep, none_label)
        return f" (they differ on {', '.join(names)})" if names else ""

    join = _join if label_sep is None else (lambda values: " | ".join(dict.fromkeys(str(v) for v in values if v is not None)) or None)
    conflicts = []
    chosen: dict[str, dict] = {}
    disputed: dict[str, list] = {}
    records = latest_per_annotator([{k: normalise_label(v) for k, v in rec.items()}
                                    for rec in labels.to_dict("records")])
    if label_sep is not None:
        for rec in records:
            if rec.get("label") is not None:
                rec["label"] = canonical_cell(parse_label_set(rec["label"], sep=label_sep, none_label=none_label) or (),
                                              label_sep, none_label)
    for rec in records:
        i, lab = rec["id"], rec["label"]
        if i not in pos:
            conflicts.append({"id": i, "label": lab, "annotator": rec.get("annotator"), "existing": None,
                              "problem": "unknown id: the data has no row with this id"})
            continue
        k = pos[i]
        if i in disputed or (i in chosen and chosen[i]["label"] != lab):
            votes = disputed.setdefault(i, [chosen.pop(i)] if i in chosen else [])
            votes.append(rec)
            continue
        if current[k] is not None and not unsure[k] and current[k] != lab:
            conflicts.append({"id": i, "label": lab, "annotator": rec.get("annotator"), "existing": current[k],
                              "problem": f"the data already has {current[k]!r}; {_who(rec)} says {lab!r}"
                                         f"{differ(current[k], lab)}"})
            continue
        if i not in chosen:
            chosen[i] = rec
        elif rec.get("annotator") and chosen[i].get("annotator") and \
                rec["annotator"] not in str(chosen[i]["annotator"]).split(";"):
            chosen[i]["annotator"] = f"{chosen[i]['annotator']};{rec['annotator']}"
    for i, votes in disputed.items():
        said = ", ".join(f"{_who(v).removeprefix('annotator ')} says {v['label']!r}" for v in votes)
        conflicts.append({"id": i, "label": join(v["label"] for v in votes),
                          "annotator": _join(v.get("annotator") for v in votes),
                          "existing": current[pos[i]],
                          "problem": f"annotators disagree: {said}{differ(*(v['label'] for v in votes))}"})
    conflicts = _one_conflict_per_id(conflicts, join)
    # An id with any conflict is merged by nobody, even with --partial: its clean votes wait with it.
    for c in conflicts:
        chosen.pop(c["id"], None)
    table_ = pd.DataFrame(conflicts, columns=["id", "label", "annotator", "existing", "problem"])
    if conflicts and not partial:
        first = table_.iloc[0]
        raise MergeConflictError(
            f"{len(table_)} conflict(s), nothing written; first: id {first['id']!r}: {first['problem']}; "
            "fix the export or the data and merge again, or pass --partial to merge the clean labels", table_)

    out = _with_label_column(data, label_col)
    n_new = n_same = 0
    rounds: dict[int, int] = {}
    from_unsure = []
    extra_cols = [c for c in LABEL_FIELDS if any(r.get(c) is not None for r in records)]
    record_round = (round_number is not None or any(r.get("round") is not None for r in records)
                    or bool(round_of_id))
    for col in ([ROUND_COL] if record_round else []) + extra_cols:
        if col not in out.columns:
            out[col] = ""
        out[col] = out[col].astype(object)
    for i, rec in chosen.items():
        k = pos[i]
        if current[k] == rec["label"]:
            n_same += 1
            continue
        n_new += 1
        if unsure[k]:
            from_unsure.append({"id": i, "was": current[k], "label": rec["label"]})
        out.iat[k, out.columns.get_loc(label_col)] = rec["label"]
        r = round_number if round_number is not None else rec.get("round") or (round_of_id or {}).get(i)
        if record_round and r is not None:
            out.iat[k, out.columns.get_loc(ROUND_COL)] = str(r)
            rounds[int(r)] = rounds.get(int(r), 0) + 1
        for col in extra_cols:
            if rec.get(col) is not None:
                out.iat[k, out.columns.get_loc(col)] = str(rec[col])
    return MergeResult(data=out, n_labels=len(labels), n_new=n_new, n_unchanged=n_same,
                       rounds=rounds, conflicts=table_, from_unsure=from_unsure)


def read_votes(path: str | Path, label_col: str = "label") -> pd.DataFrame:
    """The votes file ``merge --annotations`` appends to, as :data:`VOTE_COLUMNS` (checked as annotations).

    Raises
    ------
    DataError
        A missing column (the file names it), or one annotator giving an item two labels.
    """
    votes = read_table(path)
    for col in ("item_id", "annotator", label_col):
        if col not in votes.columns:
            raise DataError(f"{path}: no {col!r} column; --annotations is the votes file merge appends to "
                            f"({', '.join(VOTE_COLUMNS)}), or a new file")
    ann = prepare_annotations(votes, label_col=label_col, source=str(path), keep=(ROUND_COL,))
    rounds = ann[ROUND_COL] if ROUND_COL in ann.columns else pd.Series("", index=ann.index)
    return ann.assign(**{ROUND_COL: [normalise_label(v) or "" for v in rounds]})[VOTE_COLUMNS]


def append_votes(old: pd.DataFrame | None, new: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """The votes file with ``new`` appended (:data:`VOTE_COLUMNS`); a vote merged twice is kept once.

    Raises
    ------
    DataError
        One annotator giving an item two different labels across the two (``source`` names the file).
    """
    combined = pd.concat([old, new], ignore_index=True) if old is not None else new
    combined = combined.drop_duplicates(["item_id", "annotator", "label"]).reset_index(drop=True)
    prepare_annotations(combined, source=source, keep=())
    return combined


def second_opinion_ids(records: list[dict]) -> set[str]:
    """Ids the ledger's rounds queued as second opinions (``select --relabel``)."""
    return {str(i) for rec in records for i in ((rec.get("relabel") or {}).get("ids") or [])}


def export_votes(data: pd.DataFrame, labels: pd.DataFrame, votes: pd.DataFrame | None, *, label_col: str = "label",
                 id_col: str = "id", round_of_id: dict[str, int] | None = None, round_number: int | None = None,
                 unsure_labels=DEFAULT_UNSURE_LABELS, unnamed: str = "(export)") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every exported label as a vote, and the labels that may still fill DATA's label column.

    A second opinion never overwrites: a label on a row that already has one becomes a vote only.
    When a row gets its first vote in the votes file, its DATA label is added as a vote too (by the
    row's ``annotator`` cell, else :data:`DATA_ANNOTATOR`), so the votes file holds every opinion.

    Parameters
    ----------
    data : DataFrame
        The data as read; needs ``id_col``.
    labels : DataFrame
        ``id, label[, annotator, ...]`` from :func:`read_labels`.
    votes : DataFrame or None
        The votes file so far (:data:`VOTE_COLUMNS`), None when it does not exist yet.
    unnamed : str
        The annotator of an exported label that names none.

    Returns
    -------
    new_votes : DataFrame
        Rows to append to the votes file (:data:`VOTE_COLUMNS`).
    for_data : DataFrame
        The subset of ``labels`` on rows without a label (or with an unsure one), for :func:`merge_labels`.
    """
    if id_col not in data.columns:
        raise DataError(f"no id column {id_col!r} in the data; merging needs the ids the queue was made with")
    pos, current = _index_labels(data, id_col, label_col)
    unsure = unsure_mask(current, unsure_labels) if len(current) else np.zeros(0, bool)
    have = set() if votes is None else {str(v) for v in votes["item_id"]}
    by = (data["annotator"].to_numpy(dtype=object) if "annotator" in data.columns else None)
    records = latest_per_annotator([{k: normalise_label(v) for k, v in rec.items()}
                                    for rec in labels.to_dict("records")])
    rows, keep = [], []
    for rec in records:
        i = rec["id"]
        k = pos.get(i)
        labeled = k is not None and current[k] is not None and not unsure[k]
        keep.append(not labeled)
        if k is None:
            continue  # merge_labels reports the unknown id
        r = round_number if round_number is not None else rec.get("round") or (round_of_id or {}).get(i)
        if labeled and i not in have:
            who = normalise_label(by[k]) if by is not None else None
            rows.append((i, who or DATA_ANNOTATOR, current[k], ""))
            have.add(i)
        rows.append((i, rec.get("annotator") or unnamed, rec["label"], "" if r is None else str(r)))
    new_votes = pd.DataFrame(rows, columns=VOTE_COLUMNS, dtype=object)
    kept = [rec for rec, k in zip(records, keep) if k]
    return new_votes, pd.DataFrame(kept, columns=labels.columns) if kept else labels.iloc[0:0]


@dataclass
class CorrectionResult:
    """The data with reviewed corrections applied.

    Attributes
    ----------
    data : DataFrame
    applied : list of dict
        ``{"id", "old", "new"}`` per overwritten label (what the ledger records).
    n_kept : int
        Rows of the corrections file with no corrected label (the reviewer kept the label).
    n_unchanged : int
        Corrections equal to the label the data already has.
    """

    data: pd.DataFrame
    applied: list
    n_kept: int
    n_unchanged: int


def apply_corrections(data: pd.DataFrame, corrections: pd.DataFrame, *, label_col: str = "label", id_col: str = "id",
                      source: str = "<corrections>") -> CorrectionResult:
    """Apply reviewed corrections as deliberate overwrites of the label column.

    Parameters
    ----------
    data : DataFrame
        Not modified.
    corrections : DataFrame
        A reviewed suspect list: ``id``, ``corrected_label`` (the reviewer's label; empty = keep the
        given one) and, when present, ``given_label`` (the label the reviewer saw).

    Raises
    ------
    MergeConflictError
        Unknown ids, two different corrections for one id, or a row whose ``given_label`` is no
        longer the data's label (the data changed after the review). Nothing is applied.
    DataError
        Missing columns.
    """
    for col in ("id", CORRECTED_COL):
        if col not in corrections.columns:
            raise DataError(f"{source}: no {col!r} column (columns found: {', '.join(map(str, corrections.columns[:20]))}); "
                            f"a corrections file is a suspect list (`selector suspects`) with the reviewer's label in "
                            f"{CORRECTED_COL!r}")
    if id_col not in data.columns:
        raise DataError(f"the data has no id column {id_col!r}; corrections are matched by id (pass --id-col)")
    pos, current = _index_labels(data, id_col, label_col)
    conflicts, chosen, n_kept = [], {}, 0
    for rec in corrections.to_dict("records"):
        i, new = normalise_label(rec.get("id")), normalise_label(rec.get(CORRECTED_COL))
        if new is None:
            n_kept += 1
            continue
        seen = normalise_label(rec.get("given_label"))
        if i not in pos:
            conflicts.append({"id": i, "label": new, "existing": None, "problem": "unknown id"})
        elif i in chosen and chosen[i] != new:
            conflicts.append({"id": i, "label": new, "existing": chosen[i],
                              "problem": "the corrections give this id two different labels"})
        elif seen is not None and current[pos[i]] != seen:
            conflicts.append({"id": i, "label": new, "existing": current[pos[i]],
                              "problem": f"reviewed as {seen!r} but the data's label has changed since"})
        else:
            chosen[i] = new
    if conflicts:
        table_ = pd.DataFrame(conflicts, columns=["id", "label", "existing", "problem"])
        first = table_.iloc[0]
        raise MergeConflictError(f"{source}: {len(table_)} correction conflict(s), nothing written; first: id "
                                 f"{first['id']!r}: {first['problem']}", table_)
    out = _with_label_column(data, label_col)
    applied, n_same = [], 0
    for i, new in chosen.items():
        k = pos[i]
        if current[k] == new:
            n_same += 1
            continue
        applied.append({"id": i, "old": current[k], "new": new})
        out.iat[k, out.columns.get_loc(label_col)] = new
    return CorrectionResult(data=out, applied=applied, n_kept=n_kept, n_unchanged=n_same)


def plan_data_output(plan: OutputPlan, data: str | Path, *, out: str | Path | None, in_place: bool) -> Path:
    """Register where an updated data table goes: ``out`` (a new file) or, with ``in_place``, ``data``
    itself after a ``DATA.bak`` backup. Returns the path the table will be written to.

    ``data`` must already be registered as an input unless ``in_place`` (then it is the output).
    """
    data = Path(data)
    if in_place == (out is not None):
        raise ConfigError("choose where to write: --out FILE (a new file) or --in-place (DATA, after a DATA.bak backup)")
    if in_place:
        plan.inputs = [(w, p) for w, p in plan.inputs if not same_file(p, data)]
        plan.add_output("backup", data.with_name(data.name + ".bak"), "backup of DATA")
        # Through a symbolic link: the file it points to is replaced, and the link stays a link.
        return plan.add_output("data", Path(os.path.realpath(data)), "--in-place DATA", table_format=True)
    return plan.add_output("data", out, "--out", table_format=True)


def data_writers(df: pd.DataFrame, plan: OutputPlan, data: str | Path,
                 original: pd.DataFrame | None = None) -> dict[str, Writer]:
    """Writers for :func:`plan_data_output`'s outputs: the table (and the backup of ``data``).

    ``original``: DATA as read raw (``read_table(data, raw=True)``); the cells the command did not
    change are written back exactly as they were read."""
    writers = {"data": table(df, plan.path("data"), unchanged=original)}
    if "backup" in plan.outputs:
        writers["backup"] = bytes_file(Path(data).read_bytes())
    return writers
