"""Chat-format fine-tuning data: reading, malformed lines, and every command on it (hashing embedder)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.chat import read_chat, read_data
from selector.cli import app
from selector.config import SelectConfig
from selector.errors import ConfigError, DataError
from selector.loop.export import argilla_settings, export_records, label_studio_config

EXAMPLE = Path(__file__).parent / "data" / "chat_banking77.jsonl"
SYSTEM = {"role": "system", "content": "Classify the ticket. Reply with JSON."}


def _write(path: Path, records) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write((r if isinstance(r, str) else json.dumps(r)) + "\n")
    return path


def _conv(user, reply=None, *, system=True, extra=None, **top):
    msgs = ([SYSTEM] if system else []) + [{"role": "user", "content": user}]
    if reply is not None:
        msgs.append({"role": "assistant", "content": reply})
    return {**top, "messages": msgs + (extra or [])}


def test_json_key_label_input_and_unlabeled_rows(tmp_path):
    path = _write(tmp_path / "d.jsonl", [
        _conv("card lost", json.dumps({"category": "card", "why": "x"}), id="t1"),
        _conv("refund please", "```json\n{\"category\": \"refund\"}\n```", id="t2"),  # fenced JSON
        _conv("where is my money", None, id="t3"),  # no reply yet: unlabeled, selectable
    ])
    chat = read_chat(path, label_from="json:category")
    f = chat.frame
    assert f["id"].tolist() == ["t1", "t2", "t3"]
    assert f["text"].tolist() == ["card lost", "refund please", "where is my money"]
    assert f["label"].tolist() == ["card", "refund", ""]
    assert f["output"].iloc[2] == "" and not f["has_reply"].iloc[2]
    assert f["system"].iloc[0] == SYSTEM["content"]
    assert json.loads(f["conversation"].iloc[0])[-1]["role"] == "assistant"
    assert chat.task == "classification" and chat.label_from == "json:category"
    assert f.attrs["selector_chat"]["task"] == "classification"


def test_nested_key_path_numbers_and_input_turns_all(tmp_path):
    path = _write(tmp_path / "d.jsonl", [
        {"messages": [SYSTEM, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                      {"role": "user", "content": "rate it"},
                      {"role": "assistant", "content": json.dumps({"result": {"score": 4}})}]},
    ])
    chat = read_chat(path, label_from="json:result.score", input_turns="all")
    assert chat.frame["label"].tolist() == ["4"]
    assert chat.frame["text"].iloc[0] == (f"system: {SYSTEM['content']}\nuser: hi\nassistant: hello\nuser: rate it")
    last = read_chat(path, label_from="json:result.score")
    assert last.frame["text"].iloc[0] == "rate it"


def test_reply_as_label_or_generation_set_is_decided_and_said(tmp_path):
    short = _write(tmp_path / "cls.jsonl", [_conv(f"text {i}", ["pos", "neg"][i % 2]) for i in range(12)])
    chat = read_chat(short)
    assert chat.label_from == "reply" and chat.frame["label"].tolist()[:2] == ["pos", "neg"]
    long = _write(tmp_path / "gen.jsonl", [_conv(f"question {i}", f"A full answer number {i}, in a sentence.")
                                           for i in range(12)])
    gen = read_chat(long)
    assert gen.task == "generation" and set(gen.frame["label"]) == {""}
    assert "generation set" in gen.note
    as_json = _write(tmp_path / "json.jsonl", [_conv(f"t {i}", json.dumps({"intent": ["a", "b"][i % 2]}))
                                               for i in range(12)])
    j = read_chat(as_json)
    assert j.task == "generation" and "--label-from json:KEY" in j.note and "intent" in j.note
    forced = read_chat(long, label_from="reply")
    assert forced.task == "classification" and forced.frame["label"].iloc[0].startswith("A full answer")


@pytest.mark.parametrize("line, message", [
    ("not json", "line 2 is not valid JSON"),
    (json.dumps({"text": "no messages"}), "line 2 has no 'messages' list"),
    (json.dumps({"messages": [{"role": "bot", "content": "x"}]}), "line 2 message 1 has role 'bot'"),
    (json.dumps({"messages": [{"role": "user", "content": 5}]}), "line 2 message 1 (user) has int content"),
    (json.dumps({"messages": [{"role": "assistant", "content": "x"}]}), "line 2 has no user message"),
    (json.dumps(_conv("x", "not json at all")), "line 2 reply is not JSON"),
    (json.dumps(_conv("x", json.dumps({"other": 1}))), "line 2 reply has no key 'category'"),
])
def test_malformed_lines_name_the_line(tmp_path, line, message):
    path = _write(tmp_path / "d.jsonl", [_conv("ok", json.dumps({"category": "a"})), line])
    with pytest.raises(DataError, match=re.escape(message)) as err:
        read_chat(path, label_from="json:category")
    assert "--skip-invalid" in str(err.value) and str(path) in str(err.value)


def test_skip_invalid_counts_and_lists_skipped_lines(tmp_path):
    good = [_conv(f"t{i}", json.dumps({"category": "a" if i % 2 else "b"})) for i in range(4)]
    path = _write(tmp_path / "d.jsonl", [good[0], "{broken", good[1], _conv("x", "plain"), good[2], "", good[3]])
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    config = SelectConfig(label_from="json:category", skip_invalid=True)
    frame, chat = read_data(path, config, skipped_folder=tmp_path / ".selector")
    assert len(frame) == 4 and [s["line"] for s in chat.skipped] == [2, 4]
    listed = [json.loads(line) for line in (tmp_path / ".selector" / "d.jsonl.skipped.jsonl").read_text().splitlines()]
    assert [s["line"] for s in listed] == [2, 4] and listed[0]["raw"] == "{broken"
    assert "skipped 2 malformed line(s)" in chat.note
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # the input is never touched


def test_multipart_text_content_is_read(tmp_path):
    path = _write(tmp_path / "d.jsonl", [{"messages": [
        {"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}]},
        {"role": "assistant", "content": "ok"}]}])
    assert read_chat(path).frame["text"].iloc[0] == "part one\npart two"


def test_format_options_are_checked(tmp_path, csv_file):
    with pytest.raises(ConfigError, match="--label-from"):
        SelectConfig(label_from="category")
    with pytest.raises(ConfigError, match="input_turns"):
        SelectConfig(input_turns="first")
    with pytest.raises(ConfigError, match="apply to chat-format JSONL"):
        read_data(csv_file, SelectConfig(label_from="json:x"))
    with pytest.raises(ConfigError, match="needs a .jsonl file"):
        read_data(csv_file, SelectConfig(data_format="chat"))
    frame, chat = read_data(csv_file, SelectConfig())
    assert chat is None and "text" in frame.columns
    # --format chat forces the chat reader; --format table reads the same file as a plain JSONL table.
    path = _write(tmp_path / "d.jsonl", [_conv("hello", "greeting", id="x")])
    assert read_data(path, SelectConfig(data_format="chat"))[1].frame["label"].tolist() == ["greeting"]
    as_table, none = read_data(path, SelectConfig(data_format="table"))
    assert none is None and "messages" in as_table.columns


def test_every_command_runs_on_chat_data(tmp_path):
    data = tmp_path / "chat.jsonl"
    data.write_bytes(EXAMPLE.read_bytes())
    before = hashlib.sha256(data.read_bytes()).hexdigest()
    runner = CliRunner()
    common = ["--model", "hashing", "--label-from", "json:intent"]
    res = runner.invoke(app, ["select", str(data), "--budget", "12", "-o", str(tmp_path / "q.csv"), *common])
    assert res.exit_code == 0, res.output
    queue = pd.read_csv(tmp_path / "q.csv", dtype=str, keep_default_na=False)
    assert len(queue) == 12 and {"conversation", "system", "output"} <= set(queue.columns)
    assert all(json.loads(c)[-1]["role"] == "user" for c in queue["conversation"])  # the prompts still to label
    record = json.loads((tmp_path / "q.round.json").read_text())
    assert record["chat"]["label_from"] == "json:intent" and record["chat"]["n_skipped"] == 0
    res = runner.invoke(app, ["suspects", str(data), "-o", str(tmp_path / "s.csv"), *common])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["validate", str(data), *common])
    assert res.exit_code == 0, res.output
    assert "180 labeled, 10 labels" in res.output
    res = runner.invoke(app, ["card", str(data), "-o", str(tmp_path / "card.md"), *common])
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["counts"]["n_labeled"] == 180 and card["counts"]["n_labels"] == 10
    # Without --label-from the JSON replies make a generation set, and validate says how to pick a key.
    res = runner.invoke(app, ["validate", str(data), "--model", "hashing"])
    assert res.exit_code == 0 and "--label-from json:KEY" in res.output
    assert hashlib.sha256(data.read_bytes()).hexdigest() == before


def test_chat_queue_exports_show_the_conversation(tmp_path):
    msgs = [SYSTEM, {"role": "user", "content": "my card is gone"}]
    queue = pd.DataFrame({"rank": [1], "id": ["t1"], "text": ["my card is gone"], "score": [0.9],
                          "strategy": ["auto"], "predicted_label": ["card"], "predicted_proba": [0.6],
                          "conversation": [json.dumps(msgs)]})
    ls = export_records(queue, "label-studio", labels=["card", "refund"])[0]
    assert ls["data"]["dialogue"] == [{"author": "system", "text": SYSTEM["content"]},
                                      {"author": "user", "text": "my card is gone"}]
    assert ls["predictions"][0]["result"][0]["to_name"] == "dialogue"
    config = label_studio_config(["card", "refund"], dialogue=True)
    assert '<Paragraphs name="dialogue" value="$dialogue" layout="dialogue"' in config and 'toName="dialogue"' in config
    assert export_records(queue, "argilla")[0]["conversation"] == msgs  # the flat record's chat field
    rg = pytest.importorskip("argilla")
    rec = export_records(queue, "argilla", argilla_nested=True)[0]
    model = rg.Record.from_dict(rec).api_model()  # the SDK validates a chat field's messages here
    assert [m.role for m in model.fields["conversation"]] == ["system", "user"]
    from argilla._models import FieldModel

    (field,) = argilla_settings(["card", "refund"], chat=True)["fields"]
    assert FieldModel(**field).settings.type == "chat" and field["name"] == "conversation"
