"""Write a labeling queue in the import format of a labeling tool, with each tool's field meanings.

Every task carries the row's id as ``selector_id`` so ``selector merge`` can bring the label back
(tools renumber their own ``id``), plus the queue's ``rank`` and ``priority`` (the strategy's score,
higher = label first). Where a tool has a "score" field it means what the tool means by it:

- ``label-studio``: a JSON list of tasks ``{"data": {"text", "selector_id", "rank", "priority", ...},
  "predictions": [{"model_version", "score", "result": [choices]}]}``. The prediction's ``score`` is
  the task's queue position, ``rank / (n + 1)``: Label Studio's "uncertainty sampling" serves the
  lowest score first, so it serves selector's queue order whatever the strategy. The model's
  probability of the pre-selected choice is the choice's own ``score`` in ``result`` and
  ``data.predicted_proba``. ``model_version`` is per round (``selector-r3-auto``), so a project can
  tell rounds apart. ``from_name``/``to_name`` default to ``label``/``text`` (``dialogue`` for a chat
  queue) and can name an existing project's controls. A cold-start queue (no model yet) has no
  prediction. With ``labels`` a matching labeling config is written beside the file.
- ``argilla``: JSONL of flat Argilla 2.x records ``{"id", "text", "label", "label_score",
  "label_agent", "rank", "priority", ...}`` as ``dataset.records.log`` takes plain dicts (keys = the
  dataset's field, question and metadata names), and with ``labels`` a ``.settings.json`` beside them
  (``rg.Settings.from_json``) that declares exactly those names and maps ``label_score``/``label_agent``
  to the suggestion of ``label``, whose score is the model's probability. ``argilla_nested`` writes
  nested ``rg.Record.from_dict`` dicts instead. A chat queue's records have a ``conversation`` field
  (``[{"role", "content"}]``) for an ``rg.ChatField``.
- ``prodigy``: JSONL tasks ``{"text", "label"?, "meta": {"score", "priority", "rank", ...}}``:
  ``meta.score`` is the model's probability of ``label`` (the predicted label), as ``textcat.teach``
  shows it; the queue's priority has its own key. ``_input_hash``/``_task_hash`` are left to
  Prodigy (it computes them on import). ``options`` for the choice interface when ``labels`` are given.
- ``doccano``: JSONL ``{"text", "label": [], "selector_id", ...}`` for a text-classification project:
  doccano's importer needs the ``label`` column, and an empty list imports no annotation.

A relabel queue (``select --relabel``) adds ``kind`` (new / relabel) and ``labeled_by`` (who already
labeled the row, for routing) to each task's data/metadata; its current label, votes and the model's
suggestion are left out, so a second opinion stays independent.

A multi-label queue (``predicted_labels`` and ``label_probas`` columns, from a multi-label round)
exports each tool's multi-choice form: Label Studio ``<Choices choice="multiple">`` with the predicted
set pre-selected (the result's score is the mean probability of its choices), Argilla a
``multi_label_selection`` question (``MultiLabelQuestion``) whose suggestion is the predicted set with
one score per label, Prodigy ``options`` with the predicted set in ``accept`` and
``config.choice_style = "multiple"`` (as ``textcat_multilabel`` / ``textcat.manual`` with several
labels show it), doccano the same empty ``label`` list (a multi-label project imports a list). Without
``labels`` the label set is the queue's ``label_probas`` keys.

A chat queue (``conversation`` column, from chat-format data) adds ``data.dialogue`` and a
``Paragraphs`` dialogue config for Label Studio, so the annotator reads the whole exchange.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence
from xml.sax.saxutils import quoteattr

import pandas as pd

from selector.errors import ConfigError, DataError
from selector.labels import normalise_label
from selector.labelsets import DEFAULT_LABEL_SEP, DEFAULT_NONE_LABEL, parse_label_set
from selector.outputs import OutputPlan, Writer, text_file

__all__ = ["EXPORT_FORMATS", "export_records", "write_export", "export_writers", "export_suffix",
           "label_config_path_for", "label_studio_config", "model_version", "rank_score", "check_label_config",
           "predictions_path_for", "argilla_settings", "argilla_settings_path_for", "ARGILLA_MAPPING",
           "ARGILLA_METADATA"]

EXPORT_FORMATS = ("label-studio", "argilla", "prodigy", "doccano")
QUESTION = "label"
#: The Label Studio object (and task key) holding a chat queue's conversation.
DIALOGUE = "dialogue"
#: Metadata properties of an Argilla export, with their Argilla type.
ARGILLA_METADATA = {"selector_id": "terms", "rank": "integer", "priority": "float", "strategy": "terms",
                    "predicted_proba": "float", "kind": "terms", "labeled_by": "terms"}
#: Flat record keys that records.log maps onto the label question's suggestion.
ARGILLA_MAPPING = {"label_score": f"{QUESTION}.suggestion.score", "label_agent": f"{QUESTION}.suggestion.agent"}


def argilla_settings(labels: Sequence[str], *, chat: bool = False, guidelines: str | None = None,
                     multi_label: bool = False) -> dict[str, Any]:
    """An Argilla 2.x dataset settings dict (the shape ``rg.Settings.serialize()`` writes and
    ``rg.Settings.from_json`` reads) matching the exported records.

    One field (``text``, or ``conversation`` as a chat field), the question ``label`` with ``labels``
    (single-label, or with ``multi_label`` a ``multi_label_selection`` question as ``rg.MultiLabelQuestion``
    serializes it), the metadata properties :data:`ARGILLA_METADATA`, and the mapping of ``label_score`` /
    ``label_agent`` to the suggestion. No vectors (optional in Argilla; selector's embeddings stay in
    its cache).
    """
    if not labels:
        raise ConfigError("Argilla settings need the label set: pass --labels or --data")
    field_ = ({"name": "conversation", "settings": {"type": "chat", "use_markdown": True}, "title": "conversation"}
              if chat else {"name": "text", "settings": {"type": "text", "use_markdown": False}, "title": "text"})
    return {
        "guidelines": guidelines or "Choose the label that fits. Rows come in selector's queue order (metadata rank).",
        "questions": [{"name": QUESTION, "title": QUESTION, "required": True,
                       "settings": {"type": "multi_label_selection" if multi_label else "label_selection",
                                    "options": [{"value": str(c), "text": str(c)} for c in labels],
                                    **({"options_order": "natural"} if multi_label else {})}}],
        "fields": [{**field_, "required": True}],
        "vectors": [],
        "metadata": [{"name": k, "settings": {"type": t, **({} if t == "terms" else {"min": None, "max": None})},
                      "title": k, "visible_for_annotators": True} for k, t in ARGILLA_METADATA.items()],
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": 1},
        "mapping": dict(ARGILLA_MAPPING),
    }


def argilla_settings_path_for(out: str | Path) -> Path:
    """``records.jsonl`` -> ``records.settings.json``."""
    out = Path(out)
    return out.with_name(out.stem + ".settings.json")


def _number(value) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) else out


def _row_fields(row: dict) -> dict[str, Any]:
    return {
        "selector_id": str(row["id"]),
        "rank": int(row["rank"]) if _number(row.get("rank")) is not None else None,
        "priority": _number(row.get("score")),
        "strategy": normalise_label(row.get("strategy")),
        "predicted_label": normalise_label(row.get("predicted_label")),
        "predicted_proba": _number(row.get("predicted_proba")),
        # A relabel queue (`select --relabel`): new row or second opinion, and who already labeled it,
        # so the tool can route it to someone else. The current label and votes stay out of the task:
        # a second opinion is worth most when it is independent.
        "kind": normalise_label(row.get("kind")),
        "labeled_by": normalise_label(row.get("labeled_by")),
    }


def _predicted_set(row: dict, sep: str, none_label: str) -> tuple[list[str], list[float]] | None:
    """A multi-label queue row's predicted labels and their probabilities (None on a cold-start row)."""
    cell = normalise_label(row.get("predicted_labels"))
    if cell is None:
        return None
    probas = json.loads(row["label_probas"]) if isinstance(row.get("label_probas"), str) else {}
    names = [v for v in (parse_label_set(cell, sep=sep, none_label=none_label) or ()) if v != none_label]
    return names, [float(probas.get(v, float("nan"))) for v in names]


def _queue_labels(queue: pd.DataFrame) -> list[str]:
    """A multi-label queue's labels: the keys of its first ``label_probas`` object, sorted."""
    for cell in queue.get("label_probas", pd.Series(dtype=object)):
        if isinstance(cell, str) and cell.strip():
            return sorted(json.loads(cell))
    return []


def rank_score(rank: int | None, n: int) -> float:
    """Label Studio's prediction score for the task at queue ``rank`` of ``n``: ``rank / (n + 1)``.

    In (0, 1) and rising with rank, so "uncertainty sampling" (lowest score first) serves the queue
    in order. A task without a rank comes last (1.0).
    """
    return 1.0 if rank is None else round(rank / (n + 1), 6)


def model_version(strategy: str | None, round_number: int | None) -> str:
    """``selector-r3-auto``: one model version per round (``selector-auto`` without a round number)."""
    parts = ["selector"] + ([f"r{round_number}"] if round_number is not None else []) + [strategy or "queue"]
    return "-".join(parts)


def check_label_config(config_xml: str, from_name: str, to_name: str, *, source: str = "--label-config") -> list[str]:
    """The choices of the ``Choices`` control ``from_name`` attached to ``to_name`` in a Label Studio config.

    Raises
    ------
    ConfigError
        Unparsable XML, no ``Choices`` named ``from_name``, or one that points at another object.
    """
    import xml.etree.ElementTree as ET

    try:
        root = ET.fromstring(config_xml)
    except ET.ParseError as exc:
        raise ConfigError(f"{source}: not a Label Studio labeling config ({exc})") from None
    controls = {c.get("name"): c for c in root.iter("Choices")}
    if from_name not in controls:
        names = ", ".join(sorted(n for n in controls if n)) or "none"
        raise ConfigError(f"{source}: no <Choices name={from_name!r}> (Choices controls: {names}); "
                          "pass --from-name with the project's control name")
    target = controls[from_name].get("toName")
    if target != to_name:
        raise ConfigError(f"{source}: <Choices name={from_name!r}> labels {target!r}, not {to_name!r}; "
                          f"pass --to-name {target}")
    return [c.get("value") for c in controls[from_name].iter("Choice")]


def label_studio_config(labels: Sequence[str], *, dialogue: bool = False, from_name: str = QUESTION,
                        to_name: str | None = None, multi_label: bool = False) -> str:
    """A Label Studio labeling config for classification with these labels (``choice="multiple"``
    with ``multi_label``, else single choice).

    With ``dialogue`` the object is a ``Paragraphs`` dialogue of the task's ``dialogue`` list
    (``{"author": role, "text": content}`` per turn), so the annotator reads the whole conversation.
    """
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in labels)
    target = to_name or (DIALOGUE if dialogue else "text")
    shown = (f"  <Paragraphs name={quoteattr(target)} value=\"${DIALOGUE}\" layout=\"dialogue\" nameKey=\"author\" "
             "textKey=\"text\"/>\n" if dialogue else f"  <Text name={quoteattr(target)} value=\"$text\"/>\n")
    return (f"<View>\n{shown}"
            f"  <Choices name={quoteattr(from_name)} toName={quoteattr(target)} "
            f"choice=\"{'multiple' if multi_label else 'single'}\" showInLine=\"true\">\n"
            f"{choices}\n  </Choices>\n</View>\n")


def _conversation(row: dict, source: str) -> list[dict] | None:
    """The row's chat messages (``conversation`` column of a chat queue), or None."""
    raw = row.get("conversation")
    if not isinstance(raw, str) or not raw.strip():
        return None
    try:
        msgs = json.loads(raw)
    except json.JSONDecodeError:
        raise DataError(f"{source}: row {row.get('id')!r} has a 'conversation' that is not JSON; "
                        "export the queue `selector select` wrote") from None
    return [{"role": str(m.get("role")), "content": str(m.get("content"))} for m in msgs]


def export_records(queue: pd.DataFrame, fmt: str, *, labels: Sequence[str] | None = None,
                   round_number: int | None = None, from_name: str = QUESTION, to_name: str | None = None,
                   argilla_nested: bool = False, source: str = "<queue>", label_sep: str = DEFAULT_LABEL_SEP,
                   none_label: str = DEFAULT_NONE_LABEL) -> list[dict[str, Any]]:
    """The queue as a list of task/record dicts in ``fmt`` (see the module docstring per tool).

    Parameters
    ----------
    queue : DataFrame
        A queue from ``selector select``: ``id``, ``text`` and usually ``rank``, ``score``,
        ``strategy``, ``predicted_label``, ``predicted_proba`` (+ ``conversation`` for chat data).
    fmt : {"label-studio", "argilla", "prodigy", "doccano"}
    labels : sequence of str, optional
        The label set (Prodigy ``options``).
    round_number : int, optional
        The queue's round (from its ``.round.json``), for Label Studio's ``model_version``.
    from_name, to_name : str
        Label Studio's control and object names (default ``label`` and ``text``/``dialogue``).
    argilla_nested : bool
        Argilla records as nested ``Record.from_dict`` dicts instead of the flat dicts ``records.log`` takes.
    label_sep, none_label : str
        How a multi-label queue's ``predicted_labels`` cells are written.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    for col in ("id", "text"):
        if col not in queue.columns:
            raise DataError(f"{source}: no {col!r} column; export a queue written by `selector select`")
    multi = "predicted_labels" in queue.columns
    if multi:
        labels = list(labels) if labels else _queue_labels(queue)
        return [_multilabel_record(row, fmt, labels, round_number=round_number, from_name=from_name, to_name=to_name,
                                   argilla_nested=argilla_nested, n=len(queue), sep=label_sep, none_label=none_label)
                for row in queue.to_dict("records")]
    out = []
    for row in queue.to_dict("records"):
        f = _row_fields(row)
        if f["kind"] == "relabel":
            # No pre-selected label on a second opinion: it would anchor the annotator on the model.
            f["predicted_label"] = f["predicted_proba"] = None
        text = str(row["text"])
        agent = model_version(f["strategy"], round_number)
        chat = _conversation(row, source)
        data_fields = {k: v for k, v in f.items() if v is not None}
        if fmt == "label-studio":
            task = {"data": {"text": text, **data_fields}}
            if chat:
                task["data"][DIALOGUE] = [{"author": m["role"], "text": m["content"]} for m in chat]
            # The prediction's score is the queue position (rank / (n + 1)), not a confidence: Label
            # Studio's "uncertainty sampling" serves the lowest score first, so it serves selector's
            # queue order for every strategy. The class probability stays on the choice (the result's
            # own score) and in data.predicted_proba. A cold-start queue has no label to pre-select.
            target = to_name or (DIALOGUE if chat else "text")
            result = []
            if f["predicted_label"] is not None:
                choice = {"from_name": from_name, "to_name": target, "type": "choices",
                          "value": {"choices": [f["predicted_label"]]}}
                if f["predicted_proba"] is not None:
                    choice["score"] = f["predicted_proba"]
                result.append(choice)
            task["predictions"] = [{"model_version": agent, "score": rank_score(f["rank"], len(queue)),
                                    "result": result}]
            out.append(task)
        elif fmt == "argilla" and argilla_nested:
            rec = {"id": f["selector_id"], "fields": {"conversation": chat} if chat else {"text": text},
                   "metadata": {k: v for k, v in data_fields.items() if k != "predicted_label"}}
            if f["predicted_label"] is not None:
                rec["suggestions"] = {QUESTION: {"value": f["predicted_label"], "score": f["predicted_proba"],
                                                 "agent": agent}}
            out.append(rec)
        elif fmt == "argilla":
            # Flat: the keys are the dataset's field, question and metadata names, as records.log reads
            # plain dicts; the settings' mapping sends label_score/label_agent to the suggestion.
            rec = {"id": f["selector_id"], **({"conversation": chat} if chat else {"text": text}),
                   **{k: v for k, v in data_fields.items() if k in ARGILLA_METADATA}}
            if f["predicted_label"] is not None:
                rec.update({QUESTION: f["predicted_label"], "label_score": f["predicted_proba"], "label_agent": agent})
            out.append(rec)
        elif fmt == "prodigy":
            meta = {k: v for k, v in data_fields.items() if k not in ("predicted_label", "predicted_proba")}
            task = {"text": text, "selector_id": f["selector_id"], "meta": meta}
            if f["predicted_label"] is not None:
                # textcat.teach's convention: the task's label with meta.score its probability.
                task["label"] = f["predicted_label"]
                if f["predicted_proba"] is not None:
                    meta["score"] = f["predicted_proba"]
            if labels:
                task["options"] = [{"id": str(c), "text": str(c)} for c in labels]
            out.append(task)
        else:
            out.append({"text": text, "label": [], **data_fields})
    return out


def _multilabel_record(row: dict, fmt: str, labels: Sequence[str], *, round_number, from_name, to_name,
                       argilla_nested: bool, n: int, sep: str, none_label: str) -> dict[str, Any]:
    """One multi-label queue row as a task/record of ``fmt`` (the module docstring says each tool's form)."""
    f = _row_fields(row)
    f.pop("predicted_label", None)
    f.pop("predicted_proba", None)
    text = str(row["text"])
    agent = model_version(f["strategy"], round_number)
    predicted = _predicted_set(row, sep, none_label)
    data_fields = {k: v for k, v in f.items() if v is not None}
    if predicted is not None:
        data_fields["predicted_labels"] = predicted[0]
    if fmt == "label-studio":
        task = {"data": {"text": text, **data_fields}}
        result = []
        if predicted is not None and predicted[0]:
            scores = [p for p in predicted[1] if not math.isnan(p)]
            choice = {"from_name": from_name, "to_name": to_name or "text", "type": "choices",
                      "value": {"choices": predicted[0]}}
            if scores:
                choice["score"] = round(sum(scores) / len(scores), 6)
            result.append(choice)
        task["predictions"] = [{"model_version": agent, "score": rank_score(f["rank"], n), "result": result}]
        return task
    if fmt == "argilla" and argilla_nested:
        rec = {"id": f["selector_id"], "fields": {"text": text},
               "metadata": {k: v for k, v in data_fields.items() if k in ARGILLA_METADATA}}
        if predicted is not None and predicted[0]:
            rec["suggestions"] = {QUESTION: {"value": predicted[0], "score": predicted[1], "agent": agent}}
        return rec
    if fmt == "argilla":
        rec = {"id": f["selector_id"], "text": text, **{k: v for k, v in data_fields.items() if k in ARGILLA_METADATA}}
        if predicted is not None and predicted[0]:
            rec.update({QUESTION: predicted[0], "label_score": predicted[1], "label_agent": agent})
        return rec
    if fmt == "prodigy":
        meta = {k: v for k, v in data_fields.items() if k != "predicted_labels"}
        task = {"text": text, "selector_id": f["selector_id"], "meta": meta,
                "options": [{"id": str(c), "text": str(c)} for c in labels],
                "config": {"choice_style": "multiple"}}
        if predicted is not None:
            task["accept"] = predicted[0]
        return task
    return {"text": text, "label": [], **{k: v for k, v in data_fields.items() if k != "predicted_labels"}}


def export_suffix(fmt: str) -> str:
    """The file extension ``fmt`` imports: ``.json`` for Label Studio, ``.jsonl`` otherwise."""
    return ".json" if fmt == "label-studio" else ".jsonl"


def label_config_path_for(out: str | Path) -> Path:
    """``tasks.json`` -> ``tasks.label_config.xml``: the Label Studio labeling config beside the tasks."""
    out = Path(out)
    return out.with_name(out.stem + ".label_config.xml")


def predictions_path_for(out: str | Path) -> Path:
    """``tasks.json`` -> ``tasks.predictions.json``: this round's predictions keyed by ``selector_id``."""
    out = Path(out)
    return out.with_name(out.stem + ".predictions.json")


def export_writers(queue: pd.DataFrame, fmt: str, out: str | Path, *, labels: Sequence[str] | None = None,
                   round_number: int | None = None, from_name: str = QUESTION, to_name: str | None = None,
                   update_project: bool = False, argilla_nested: bool = False,
                   source: str = "<queue>", label_sep: str = DEFAULT_LABEL_SEP,
                   none_label: str = DEFAULT_NONE_LABEL) -> dict[str, Writer]:
    """Writers of the export (key ``export``) and, for Label Studio with labels, its config (``label_config``).

    With ``update_project`` (Label Studio) also ``predictions``: ``[{"selector_id", "model_version",
    "score", "result"}]``, this round's prediction for each task, to refresh tasks a project already
    holds instead of importing them twice (see :func:`predictions_path_for`).

    Label Studio gets a JSON array (``.json``); the others JSONL (``.jsonl``).
    """
    out = Path(out)
    want = export_suffix(fmt)
    if fmt in EXPORT_FORMATS and str(out) != "-" and out.suffix.lower() != want:
        raise ConfigError(f"--out {out}: {fmt} imports {want} files; name the output *{want}")
    multi = "predicted_labels" in queue.columns
    if multi and not labels:
        labels = _queue_labels(queue) or None
    records = export_records(queue, fmt, labels=labels, round_number=round_number, from_name=from_name,
                             to_name=to_name, argilla_nested=argilla_nested, source=source, label_sep=label_sep,
                             none_label=none_label)
    if fmt == "label-studio":
        body = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    else:
        body = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
    writers = {"export": text_file(body)}
    if fmt == "label-studio" and update_project:
        # One prediction per selector_id, to attach to tasks already in the project (POST /api/predictions).
        refresh = [{"selector_id": r["data"]["selector_id"], **r["predictions"][0]} for r in records if r.get("predictions")]
        writers["predictions"] = text_file(json.dumps(refresh, ensure_ascii=False, indent=1) + "\n")
    if fmt == "argilla" and labels:
        chat = "conversation" in queue.columns and queue["conversation"].astype(str).str.strip().ne("").any()
        writers["argilla_settings"] = text_file(json.dumps(argilla_settings(labels, chat=bool(chat), multi_label=multi),
                                                           ensure_ascii=False, indent=1) + "\n")
    if fmt == "label-studio" and labels:
        dialogue = any(DIALOGUE in r["data"] for r in records)
        writers["label_config"] = text_file(label_studio_config(labels, dialogue=dialogue, from_name=from_name,
                                                                to_name=to_name, multi_label=multi))
    return writers


def write_export(queue: pd.DataFrame, fmt: str, out: str | Path, *, labels: Sequence[str] | None = None,
                 round_number: int | None = None, from_name: str = QUESTION, to_name: str | None = None,
                 argilla_nested: bool = False, source: str = "<queue>") -> list[Path]:
    """Write the export (and Label Studio's config) together; returns the files written."""
    out = Path(out)
    plan = OutputPlan()
    plan.add_output("export", out, "--out")
    plan.add_output("label_config", label_config_path_for(out), "Label Studio config")
    plan.add_output("argilla_settings", argilla_settings_path_for(out), "Argilla settings")
    plan.check()
    return list(plan.commit(export_writers(queue, fmt, out, labels=labels, round_number=round_number,
                                           from_name=from_name, to_name=to_name, argilla_nested=argilla_nested,
                                           source=source)).values())
