"""Write a labeling queue in the import format of a labeling tool.

Every task carries the row's id as ``selector_id`` so ``selector merge`` can bring the label back
(tools renumber their own ``id``), plus the queue's rank and score:

- ``label-studio``: a JSON list of tasks ``{"data": {"text", "selector_id", ...}, "predictions":
  [{"model_version", "score", "result": [choices]}]}``; the prediction score is the queue score
  (higher = label first), so sorting the Data Manager by prediction score reproduces the queue
  order. With ``labels`` a matching labeling config (``<Choices name="label" toName="text">``)
  is written beside the file.
- ``argilla``: JSONL of Argilla 2.x record dicts ``{"id", "fields": {"text"}, "metadata",
  "suggestions": {"label": {"value", "score", "agent"}}}`` (``rg.Record.from_dict`` / ``records.log``);
  a chat queue's record has a ``conversation`` field (``[{"role", "content"}]``) for an ``rg.ChatField``.
  A chat queue (``conversation`` column, from chat-format data) adds ``data.dialogue`` and a
  ``Paragraphs`` dialogue config, so the annotator reads the whole exchange.
- ``prodigy``: JSONL tasks ``{"text", "meta": {"score", ...}}`` (+ ``options`` for the choice
  interface when ``labels`` are given); Prodigy shows ``meta.score`` and keeps extra keys.
- ``doccano``: JSONL ``{"text", "selector_id", ...}`` for a text-classification project; no
  ``label`` key, since doccano would import it as a finished annotation.
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
from selector.outputs import OutputPlan, Writer, text_file

__all__ = ["EXPORT_FORMATS", "export_records", "write_export", "export_writers", "export_suffix",
           "label_config_path_for", "label_studio_config"]

EXPORT_FORMATS = ("label-studio", "argilla", "prodigy", "doccano")
QUESTION = "label"
#: The Label Studio object (and task key) holding a chat queue's conversation.
DIALOGUE = "dialogue"


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
        "score": _number(row.get("score")),
        "strategy": normalise_label(row.get("strategy")),
        "predicted_label": normalise_label(row.get("predicted_label")),
        "predicted_proba": _number(row.get("predicted_proba")),
    }


def label_studio_config(labels: Sequence[str], *, dialogue: bool = False) -> str:
    """A Label Studio labeling config for single-choice classification with these labels.

    With ``dialogue`` the object is a ``Paragraphs`` dialogue of the task's ``dialogue`` list
    (``{"author": role, "text": content}`` per turn), so the annotator reads the whole conversation.
    """
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in labels)
    target = DIALOGUE if dialogue else "text"
    shown = (f"  <Paragraphs name=\"{DIALOGUE}\" value=\"${DIALOGUE}\" layout=\"dialogue\" nameKey=\"author\" "
             "textKey=\"text\"/>\n" if dialogue else "  <Text name=\"text\" value=\"$text\"/>\n")
    return (f"<View>\n{shown}"
            f"  <Choices name=\"{QUESTION}\" toName=\"{target}\" choice=\"single\" showInLine=\"true\">\n"
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
                   source: str = "<queue>") -> list[dict[str, Any]]:
    """The queue as a list of task/record dicts in ``fmt``.

    Parameters
    ----------
    queue : DataFrame
        A queue from ``selector select``: ``id``, ``text`` and usually ``rank``, ``score``,
        ``strategy``, ``predicted_label``, ``predicted_proba``.
    fmt : {"label-studio", "argilla", "prodigy", "doccano"}
    labels : sequence of str, optional
        The label set (Prodigy ``options``).
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    for col in ("id", "text"):
        if col not in queue.columns:
            raise DataError(f"{source}: no {col!r} column; export a queue written by `selector select`")
    out = []
    for row in queue.to_dict("records"):
        f = _row_fields(row)
        text = str(row["text"])
        agent = f"selector/{f['strategy']}" if f["strategy"] else "selector"
        chat = _conversation(row, source)
        if fmt == "label-studio":
            result = []
            if f["predicted_label"] is not None:
                result = [{"from_name": QUESTION, "to_name": DIALOGUE if chat else "text", "type": "choices",
                           "value": {"choices": [f["predicted_label"]]}}]
            task = {"data": {"text": text, **{k: v for k, v in f.items() if v is not None}}}
            if chat:
                task["data"][DIALOGUE] = [{"author": m["role"], "text": m["content"]} for m in chat]
            task["predictions"] = [{"model_version": agent, "score": f["score"] if f["score"] is not None else 0.0,
                                    "result": result}]
            out.append(task)
        elif fmt == "argilla":
            rec = {"id": f["selector_id"], "fields": {"conversation": chat} if chat else {"text": text},
                   "metadata": {k: v for k, v in f.items() if v is not None and k != "predicted_label"}}
            if f["predicted_label"] is not None:
                rec["suggestions"] = {QUESTION: {"value": f["predicted_label"], "score": f["predicted_proba"],
                                                 "agent": agent}}
            out.append(rec)
        elif fmt == "prodigy":
            task = {"text": text, "selector_id": f["selector_id"],
                    "meta": {k: v for k, v in f.items() if v is not None}}
            if labels:
                task["options"] = [{"id": str(c), "text": str(c)} for c in labels]
            out.append(task)
        else:
            out.append({"text": text, **{k: v for k, v in f.items() if v is not None}})
    return out


def export_suffix(fmt: str) -> str:
    """The file extension ``fmt`` imports: ``.json`` for Label Studio, ``.jsonl`` otherwise."""
    return ".json" if fmt == "label-studio" else ".jsonl"


def label_config_path_for(out: str | Path) -> Path:
    """``tasks.json`` -> ``tasks.label_config.xml``: the Label Studio labeling config beside the tasks."""
    out = Path(out)
    return out.with_name(out.stem + ".label_config.xml")


def export_writers(queue: pd.DataFrame, fmt: str, out: str | Path, *, labels: Sequence[str] | None = None,
                   source: str = "<queue>") -> dict[str, Writer]:
    """Writers of the export (key ``export``) and, for Label Studio with labels, its config (``label_config``).

    Label Studio gets a JSON array (``.json``); the others JSONL (``.jsonl``).
    """
    out = Path(out)
    want = export_suffix(fmt)
    if fmt in EXPORT_FORMATS and out.suffix.lower() != want:
        raise ConfigError(f"--out {out}: {fmt} imports {want} files; name the output *{want}")
    records = export_records(queue, fmt, labels=labels, source=source)
    if fmt == "label-studio":
        body = json.dumps(records, ensure_ascii=False, indent=1) + "\n"
    else:
        body = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records)
    writers = {"export": text_file(body)}
    if fmt == "label-studio" and labels:
        dialogue = any(DIALOGUE in r["data"] for r in records)
        writers["label_config"] = text_file(label_studio_config(labels, dialogue=dialogue))
    return writers


def write_export(queue: pd.DataFrame, fmt: str, out: str | Path, *, labels: Sequence[str] | None = None,
                 source: str = "<queue>") -> list[Path]:
    """Write the export (and Label Studio's config) together; returns the files written."""
    out = Path(out)
    plan = OutputPlan()
    plan.add_output("export", out, "--out")
    plan.add_output("label_config", label_config_path_for(out), "Label Studio config")
    plan.check()
    return list(plan.commit(export_writers(queue, fmt, out, labels=labels, source=source)).values())
