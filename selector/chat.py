"""Chat-format fine-tuning data (``{"messages": [...]}`` JSONL) as the pipeline's flat table.

The major fine-tuning APIs take one conversation per line::

    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "{\\"category\\": \\"billing\\"}"}]}

:func:`read_chat` turns such a file into the table every command already reads:

- ``text`` (the configured text column): the model's input, i.e. the conversation before the last
  assistant turn. ``input_turns="last"`` (default) keeps the user's last message, ``"all"`` the
  whole prompt including the system message, one ``role: content`` line per turn.
- ``output``: the last assistant message (the reply a fine-tune learns); empty when the
  conversation does not end with an assistant turn (a prompt still waiting for its reply).
- ``label`` (the configured label column): with ``label_from="json:KEY.PATH"`` the value at that
  key of the reply parsed as JSON; with ``"reply"`` the reply itself; with ``"none"`` nothing (a
  generation set). Without ``label_from`` the reply is the label when the replies look like class
  names (few distinct, short, one line) and the set is a generation set otherwise. A row without
  a label is unlabeled, so selectable.
- ``system`` (the system prompt or empty), ``conversation`` (the messages as JSON, for exports
  that show the whole exchange), ``has_reply`` and ``line`` (the line number in the file).
  ``frame.attrs["selector_chat"]`` holds ``task`` and ``label_from``.
- Other top-level keys (e.g. ``id``) are kept as columns; objects and lists as JSON text.

Malformed lines (not JSON, no ``messages`` list, an unknown role, non-text content, a reply that
is not JSON or lacks the key when ``label_from`` asks for one) are a :class:`DataError` naming
the line, or with ``skip_invalid`` are left out, counted and listed in :attr:`ChatTable.skipped`.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from selector.errors import ConfigError, DataError
from selector.io import (
    FORMATS,
    atomic_write,
    decode_utf8,
    read_bytes,
    read_table,
    table_extension,
)

__all__ = ["ChatTable", "read_chat", "read_data", "looks_like_chat", "parse_label_from", "chat_rows", "parse_json_reply",
           "ROLES", "INPUT_TURNS", "DATA_FORMATS", "skipped_path_for"]

#: Roles a message may have (OpenAI's ``developer`` is a system message by another name).
ROLES = ("system", "developer", "user", "assistant", "tool")
INPUT_TURNS = ("last", "all")
DATA_FORMATS = ("auto", "table", "chat")
#: Replies look like class names when at most this many characters, on one line, ...
_CLASS_NAME_CHARS = 64
#: ... and the distinct replies are at most a third of the replies (and at most this many).
_MAX_AUTO_CLASSES = 100
_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n\s*```\s*$", re.S)


@dataclass
class ChatTable:
    """A chat file flattened to one row per conversation.

    Attributes
    ----------
    frame : DataFrame, shape (n_rows, n_columns)
        The table (see the module docstring for its columns).
    task : {"classification", "generation"}
        Whether the label column holds class labels taken from the replies.
    label_from : str
        How labels were taken: ``json:PATH``, ``reply`` or ``none`` (as decided when not given).
    n_lines : int
        Non-blank lines read.
    skipped : list of dict
        ``{"line", "reason", "raw"}`` per line left out under ``skip_invalid``.
    note : str
        One line saying what was read and how, for the CLI.
    """

    frame: pd.DataFrame
    task: str
    label_from: str
    n_lines: int
    skipped: list = field(default_factory=list)
    note: str = ""


def parse_label_from(spec: str | None) -> tuple[str, list[str]]:
    """``"json:a.b"`` -> ``("json", ["a", "b"])``; ``"reply"``/``"none"`` -> (kind, []); None -> ("auto", [])."""
    if spec is None:
        return "auto", []
    spec = str(spec).strip()
    if spec in ("reply", "none"):
        return spec, []
    if spec.startswith("json:") and spec[5:].strip():
        path = [p for p in spec[5:].strip().split(".")]
        if any(not p for p in path):
            raise ConfigError(f"--label-from {spec!r}: empty key in the path; write json:key or json:outer.inner")
        return "json", path
    raise ConfigError(f"--label-from {spec!r}: use json:KEY (a key path such as json:category or "
                      "json:result.label), reply (the reply is the label) or none (replies are outputs)")


def looks_like_chat(path: str | Path) -> bool:
    """Whether ``path`` is JSONL whose first record has a ``messages`` key."""
    path = Path(path)
    if not _is_jsonl(path) or not path.is_file():
        return False
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            for raw in fh:
                if raw.strip():
                    obj = json.loads(raw.decode("utf-8-sig"))
                    return isinstance(obj, dict) and "messages" in obj
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return False


def _is_jsonl(path: Path) -> bool:
    ext = table_extension(path)
    return FORMATS.get(ext.removesuffix(".gz")) == "jsonl"


class _Invalid(Exception):
    """One line's problem (becomes a DataError or a skipped line)."""


def _content(msg: dict, n: int) -> str:
    content = msg.get("content")
    if isinstance(content, str):
        return content
    # The APIs' multi-part form: [{"type": "text", "text": ...}, ...]; only text parts are readable here.
    if isinstance(content, list) and content and all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
        return "\n".join(p["text"] for p in content)
    raise _Invalid(f"message {n} ({msg.get('role')}) has {type(content).__name__} content, not text")


def _messages(obj: Any) -> list[dict]:
    if not isinstance(obj, dict):
        raise _Invalid("is not a JSON object")
    msgs = obj.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise _Invalid("has no 'messages' list" if msgs is None else "has an empty or non-list 'messages'")
    out = []
    for n, msg in enumerate(msgs, start=1):
        if not isinstance(msg, dict):
            raise _Invalid(f"message {n} is not an object with 'role' and 'content'")
        role = msg.get("role")
        if role not in ROLES:
            raise _Invalid(f"message {n} has role {role!r}; roles are {', '.join(ROLES)}")
        out.append({"role": role, "content": _content(msg, n)})
    if not any(m["role"] == "user" for m in out):
        raise _Invalid("has no user message")
    return out


def parse_json_reply(reply: str) -> Any:
    """A reply parsed as JSON, a Markdown code fence around it allowed (```json ... ```).

    Raises
    ------
    ValueError
        The reply is not JSON.
    """
    m = _FENCE.match(reply.strip())
    return json.loads(m.group(1) if m else reply)


def _at_path(value: Any, path: list[str]) -> Any:
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            raise KeyError(key)
    return value


def _label_at(reply: str, path: list[str]) -> str | list[str]:
    try:
        parsed = parse_json_reply(reply)
    except ValueError:
        raise _Invalid(f"reply is not JSON, so json:{'.'.join(path)} cannot be read: {reply[:60]!r}") from None
    try:
        value = _at_path(parsed, path)
    except KeyError as exc:
        raise _Invalid(f"reply has no key {'.'.join(path)!r} (missing {exc.args[0]!r})") from None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value):
        # A list of labels: a multi-label task's label set ([] = none of these), see selector.labelsets.
        return [v.strip() for v in value]
    raise _Invalid(f"reply's {'.'.join(path)!r} is {json.dumps(value)[:40]}, not a label (a string or number, or a "
                   "list of strings for a multi-label task)")


def _input_text(prompt: list[dict], input_turns: str) -> str:
    if input_turns == "all":
        return "\n".join(f"{m['role']}: {m['content']}" for m in prompt)
    users = [m["content"] for m in prompt if m["role"] == "user"]
    return users[-1]


def chat_rows(records: list[tuple[int, Any]], *, input_turns: str = "last", label_path: list[str] | None = None,
              skip_invalid: bool = False, source: str = "<chat>") -> tuple[list[dict], list[dict]]:
    """Flatten parsed lines into row dicts (``text``, ``output``, ``label``, ``system``, ...).

    Parameters
    ----------
    records : list of (int, object)
        Line number and the parsed JSON value (or a ``_Invalid`` for a line that did not parse).
    label_path : list of str, optional
        A JSON key path read from each reply as the label.

    Returns
    -------
    rows, skipped : list of dict, list of dict
    """
    rows, skipped = [], []
    for lineno, obj in records:
        try:
            if isinstance(obj, _Invalid):
                raise obj
            msgs = _messages(obj)
            has_reply = msgs[-1]["role"] == "assistant"
            prompt = msgs[:-1] if has_reply else msgs
            if not any(m["role"] == "user" for m in prompt):
                raise _Invalid("has no user message before the reply")
            reply = msgs[-1]["content"] if has_reply else ""
            label = None
            if has_reply and label_path:
                label = _label_at(reply, label_path)
            text = _input_text(prompt, input_turns)
            if not text.strip():
                raise _Invalid("has an empty user message as its input")
        except _Invalid as exc:
            if not skip_invalid:
                raise DataError(f"{source}: line {lineno} {exc}; fix that line, or pass --skip-invalid "
                                "to leave malformed lines out") from None
            skipped.append({"line": lineno, "reason": str(exc)})
            continue
        system = "\n".join(m["content"] for m in prompt if m["role"] in ("system", "developer"))
        extras = {k: (v if v is None or isinstance(v, (str, int, float, bool)) else json.dumps(v, ensure_ascii=False))
                  for k, v in obj.items() if k != "messages"}
        rows.append({**extras, "text": text, "output": reply, "label": label, "has_reply": has_reply,
                     "system": system, "conversation": json.dumps(msgs, ensure_ascii=False), "line": lineno})
    return rows, skipped


def _json_reply_keys(replies: list[str]) -> list[str] | None:
    """The top-level keys of the replies when (nearly) all are JSON objects, most common first; else None."""
    keys: dict[str, int] = {}
    n_obj = 0
    for r in replies:
        try:
            parsed = parse_json_reply(r)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            n_obj += 1
            for k in parsed:
                keys[k] = keys.get(k, 0) + 1
    if not replies or n_obj < 0.8 * len(replies):
        return None
    return sorted(keys, key=lambda k: (-keys[k], k))


def _looks_like_class_names(replies: list[str]) -> bool:
    if not replies:
        return False
    distinct = set(r.strip() for r in replies)
    limit = max(2, min(_MAX_AUTO_CLASSES, len(replies) // 3))
    return (len(distinct) <= limit
            and all(r.strip() and len(r.strip()) <= _CLASS_NAME_CHARS and "\n" not in r.strip() for r in distinct))


def read_chat(path: str | Path, *, text_col: str = "text", label_col: str = "label", label_from: str | None = None,
              input_turns: str = "last", skip_invalid: bool = False) -> ChatTable:
    """Read a chat-format JSONL file into a :class:`ChatTable` (see the module docstring).

    Raises
    ------
    DataError
        A missing or empty file, a malformed line (unless ``skip_invalid``), or no valid line at all.
    ConfigError
        An unknown ``label_from`` or ``input_turns``.
    """
    path = Path(path)
    kind, key_path = parse_label_from(label_from)
    if input_turns not in INPUT_TURNS:
        raise ConfigError(f"--input-turns must be one of {', '.join(INPUT_TURNS)}, got {input_turns!r}")
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the path")
    text = decode_utf8(path, read_bytes(path))
    records: list[tuple[int, Any]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((lineno, json.loads(line)))
        except json.JSONDecodeError as exc:
            records.append((lineno, _Invalid(f"is not valid JSON ({exc.msg})")))
    if not records:
        raise DataError(f"{path}: file is empty; it needs one {{\"messages\": [...]}} object per line")
    rows, skipped = chat_rows(records, input_turns=input_turns, label_path=key_path if kind == "json" else None,
                              skip_invalid=skip_invalid, source=str(path))
    lines = text.splitlines()
    for s in skipped:
        s["raw"] = lines[s["line"] - 1]
    if not rows:
        raise DataError(f"{path}: none of the {len(records)} lines is a usable conversation "
                        f"(first problem, line {skipped[0]['line']}: {skipped[0]['reason']})")
    frame = pd.DataFrame(rows)
    replies = frame.loc[frame["has_reply"], "output"].tolist()
    json_keys = _json_reply_keys(replies)
    if kind == "auto":
        # JSON replies are structured outputs: which key (if any) is the label is the user's call.
        kind = "reply" if json_keys is None and _looks_like_class_names(replies) else "none"
    if kind == "reply":
        frame["label"] = [o.strip() if h and o.strip() else None for o, h in zip(frame["output"], frame["has_reply"])]
    task = "generation" if kind == "none" else "classification"
    label_from = f"json:{'.'.join(key_path)}" if kind == "json" else kind
    # The configured column names; a top-level key of the same name gives way (said in the note).
    clashes = [c for c in (text_col, label_col) if c not in ("text", "label") and c in frame.columns]
    frame = frame.drop(columns=clashes).rename(columns={"text": text_col, "label": label_col})
    # A list at json:KEY is a label set (multi-label); it stays a list for selector.labelsets to read.
    frame[label_col] = pd.Series([v if isinstance(v, (str, list)) else "" for v in frame[label_col]],
                                 index=frame.index, dtype=object)
    n_reply, n_labeled = len(replies), int(sum(not (isinstance(v, str) and v == "") for v in frame[label_col]))
    how = {"reply": "the reply is the label", "none": "replies are outputs (a generation set); no class labels",
           "json": f"label from the reply's JSON key {'.'.join(key_path)}"}[kind]
    note = (f"chat data: {len(frame)} conversations ({n_reply} with a reply, {n_labeled} labeled); {how}"
            + (f"; the replies are JSON (keys {', '.join(json_keys[:8])}): pass --label-from json:KEY to use one "
               "as the label" if json_keys and kind == "none" else
               "; pass --label-from json:KEY, reply or none to choose" if label_from in ("reply", "none") else "")
            + (f"; skipped {len(skipped)} malformed line(s)" if skipped else ""))
    frame = frame.reset_index(drop=True)
    # Commands that treat chat data differently (validate's generation checks) read this.
    frame.attrs["selector_chat"] = {"task": task, "label_from": label_from}
    return ChatTable(frame=frame, task=task, label_from=label_from, n_lines=len(records),
                     skipped=skipped, note=note)


def skipped_path_for(data: str | Path, folder: str | Path) -> Path:
    """Where the lines left out of ``data`` under ``--skip-invalid`` are listed: ``<folder>/<name>.skipped.jsonl``."""
    return Path(folder) / f"{Path(data).name}.skipped.jsonl"


def read_data(path: str | Path, config, *, skipped_folder: str | Path | None = None) -> tuple[pd.DataFrame, ChatTable | None]:
    """The data table a command works on: a table file as is, or a chat file flattened.

    Parameters
    ----------
    path : path
        CSV, Parquet or JSONL; chat JSONL is detected (``config.data_format="auto"``) or forced (``"chat"``).
    config : SelectConfig
        ``data_format``, ``label_from``, ``input_turns``, ``skip_invalid``, ``text_col``, ``label_col``.
    skipped_folder : path, optional
        Where the skipped lines are listed (:func:`skipped_path_for`); default: not written.

    Returns
    -------
    frame : DataFrame
    chat : ChatTable or None
        None for a table file.
    """
    fmt = config.data_format
    if fmt == "table" or (fmt == "auto" and not looks_like_chat(path)):
        if config.label_from is not None or config.input_turns != "last":
            raise ConfigError(f"{path}: --label-from and --input-turns apply to chat-format JSONL "
                              "({\"messages\": [...]} per line); this file is a table")
        return read_table(path), None
    if not _is_jsonl(Path(path)):
        raise ConfigError(f"{path}: chat format needs a .jsonl file with one {{\"messages\": [...]}} object per line")
    chat = read_chat(path, text_col=config.text_col, label_col=config.label_col, label_from=config.label_from,
                     input_turns=config.input_turns, skip_invalid=config.skip_invalid)
    if chat.skipped and skipped_folder is not None:
        out = skipped_path_for(path, skipped_folder)
        with atomic_write(out) as fh:
            for s in chat.skipped:
                fh.write(json.dumps({"line": s["line"], "reason": s["reason"], "raw": s["raw"]}, ensure_ascii=False) + "\n")
        chat.note += f" (listed in {out})"
    return chat.frame, chat
