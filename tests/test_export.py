"""Exports checked against each tool's documented import format.

label-studio-sdk is not used: installing it would downgrade numpy (pip --dry-run wants numpy 2.2.6).
Label Studio tasks are checked against the documented task format (labelstud.io/guide/task_format:
``data`` object; ``predictions[]`` with ``model_version``, ``score`` and ``result[]`` items
``from_name``/``to_name``/``type``/``value.choices``) and against the labeling config written
beside them (names and choices must match). Argilla records go through the real ``argilla`` SDK's
``Record.from_dict`` when it is installed (test extra). Prodigy (JSONL tasks with ``text`` and
``meta``; choice ``options`` as ``{id, text}``) and doccano (JSONL text classification with
``text`` and ``label``) are checked from their documented formats. Each tool's "score" means what the
tool reads it as: Label Studio's prediction score and Prodigy's ``meta.score`` are the model's
probability of the pre-annotated label; the queue's priority travels under its own key.
"""

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.cli.app import app
from selector.errors import ConfigError
from selector.loop.export import check_label_config, export_records, write_export
from selector.loop.merge import read_labels

runner = CliRunner()
LABELS = ["finance", "sports", "weather"]


@pytest.fixture
def queue():
    rng = np.random.default_rng(0)
    scores = np.sort(rng.random(8))[::-1].round(6)
    return pd.DataFrame({
        "rank": np.arange(1, 9), "id": [f"r{i}" for i in (5, 3, 9, 1, 0, 7, 2, 4)],
        "text": [f"text number {i} \u00e9" for i in range(8)], "score": scores, "strategy": "margin",
        "reason": "top margin uncertainty", "predicted_label": [LABELS[i % 3] for i in range(8)],
        "predicted_proba": rng.uniform(0.34, 0.99, 8).round(4),
    })


def _check_number(x):
    assert isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def test_label_studio_tasks_match_documented_format_and_config(tmp_path, queue):
    out = tmp_path / "tasks.json"
    written = write_export(queue, "label-studio", out, labels=LABELS, round_number=3)
    assert written == [out, tmp_path / "tasks.label_config.xml"]
    tasks = json.loads(out.read_text(encoding="utf-8"))
    view = ET.fromstring(written[1].read_text())
    text_tag = view.find("Text")
    choices_tag = view.find("Choices")
    allowed = [c.get("value") for c in choices_tag.findall("Choice")]
    assert allowed == LABELS and text_tag.get("value") == "$text" and choices_tag.get("choice") == "single"
    assert isinstance(tasks, list) and len(tasks) == len(queue)
    for task, row in zip(tasks, queue.itertuples()):
        assert set(task) == {"data", "predictions"}
        assert task["data"]["text"] == row.text and task["data"]["selector_id"] == row.id
        assert task["data"]["rank"] == row.rank and task["data"]["priority"] == pytest.approx(row.score)
        (pred,) = task["predictions"]
        assert pred["model_version"] == "selector-r3-margin"  # one version per round
        # Label Studio's score is the queue position (uncertainty sampling serves the lowest first);
        # the model's probability of the pre-selected choice is the choice's own score.
        _check_number(pred["score"])
        assert pred["score"] == pytest.approx(row.rank / (len(queue) + 1))
        (res,) = pred["result"]
        assert res["score"] == pytest.approx(row.predicted_proba)
        assert res["from_name"] == choices_tag.get("name") and res["to_name"] == text_tag.get("name")
        assert res["type"] == "choices" and res["value"]["choices"] == [row.predicted_label]
        assert res["value"]["choices"][0] in allowed
    # The queue's order is in the task data (rank; priority = the strategy's score).
    by_rank = sorted(tasks, key=lambda t: t["data"]["rank"])
    assert [t["data"]["selector_id"] for t in by_rank] == queue["id"].tolist()


def test_label_studio_names_are_checked_against_the_project_config(queue):
    config = ('<View><Text name="body" value="$text"/>'
              '<Choices name="topic" toName="body"><Choice value="sports"/><Choice value="weather"/></Choices></View>')
    assert check_label_config(config, "topic", "body") == ["sports", "weather"]
    with pytest.raises(ConfigError, match=r"no <Choices name='label'> \(Choices controls: topic\)"):
        check_label_config(config, "label", "body")
    with pytest.raises(ConfigError, match="pass --to-name body"):
        check_label_config(config, "topic", "text")
    task = export_records(queue, "label-studio", from_name="topic", to_name="body")[0]
    assert task["predictions"][0]["result"][0]["from_name"] == "topic"
    assert task["predictions"][0]["result"][0]["to_name"] == "body"


def test_label_studio_cold_start_queue_has_no_preselected_choice(queue):
    queue = queue.assign(predicted_label=None, predicted_proba=np.nan)
    tasks = export_records(queue, "label-studio")
    # Only the queue position, so Label Studio still serves the queue in order.
    assert all(t["predictions"][0]["result"] == [] for t in tasks)
    assert all("predicted_label" not in t["data"] and "rank" in t["data"] for t in tasks)


def test_argilla_nested_records_load_in_the_sdk(tmp_path, queue):
    out = tmp_path / "records.jsonl"
    write_export(queue, "argilla", out, argilla_nested=True)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    for rec, row in zip(records, queue.itertuples()):
        assert rec["id"] == row.id and rec["fields"] == {"text": row.text}
        sug = rec["suggestions"]["label"]
        assert sug["value"] == row.predicted_label and sug["agent"] == "selector-margin"
        assert 0.0 <= sug["score"] <= 1.0 and sug["score"] == pytest.approx(row.predicted_proba)
        assert rec["metadata"]["rank"] == row.rank and rec["metadata"]["priority"] == pytest.approx(row.score)
    rg = pytest.importorskip("argilla")
    for rec, row in zip(records, queue.itertuples()):
        loaded = rg.Record.from_dict(rec)
        assert loaded.id == row.id and loaded.fields["text"] == row.text
        s = loaded.suggestions["label"]
        assert (s.value, s.agent) == (row.predicted_label, "selector-margin")
        assert s.score == pytest.approx(row.predicted_proba)


def test_prodigy_tasks_have_text_meta_score_and_options(tmp_path, queue):
    out = tmp_path / "tasks.jsonl"
    write_export(queue, "prodigy", out, labels=LABELS)
    tasks = [json.loads(line) for line in out.read_text().splitlines()]
    for task, row in zip(tasks, queue.itertuples()):
        assert isinstance(task["text"], str) and task["text"] == row.text
        # textcat.teach: meta.score is the probability of the task's label; the priority has its own key.
        assert task["label"] == row.predicted_label
        _check_number(task["meta"]["score"])
        assert task["meta"]["score"] == pytest.approx(row.predicted_proba)
        assert task["meta"]["priority"] == pytest.approx(row.score) and task["meta"]["rank"] == row.rank
        assert task["options"] == [{"id": c, "text": c} for c in LABELS]
        assert task["selector_id"] == row.id
        assert "_input_hash" not in task and "_task_hash" not in task  # Prodigy computes its own


def test_doccano_lines_are_text_classification_imports_with_an_empty_label(tmp_path, queue):
    out = tmp_path / "doccano.jsonl"
    write_export(queue, "doccano", out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(queue)
    for line, row in zip(lines, queue.itertuples()):
        obj = json.loads(line)
        assert obj["text"] == row.text and obj["selector_id"] == row.id
        # doccano's importer needs the label column ("Column label not found"); [] imports no annotation.
        assert obj["label"] == [] and "id" not in obj


def test_argilla_flat_records_match_the_settings_file(tmp_path, queue):
    """The default Argilla export: flat records whose keys are the settings' names (what
    dataset.records.log maps by name), and settings that Argilla's own models accept."""
    out = tmp_path / "records.jsonl"
    written = write_export(queue, "argilla", out, labels=LABELS, round_number=2)
    assert written == [out, tmp_path / "records.settings.json"]
    settings = json.loads((tmp_path / "records.settings.json").read_text())
    records = [json.loads(line) for line in out.read_text().splitlines()]
    names = {x["name"] for part in ("fields", "questions", "metadata") for x in settings[part]}
    for rec, row in zip(records, queue.itertuples()):
        assert set(rec) <= names | set(settings["mapping"]) | {"id"}
        assert rec["id"] == row.id and rec["text"] == row.text and rec["label"] == row.predicted_label
        assert rec["label_score"] == pytest.approx(row.predicted_proba) and rec["label_agent"] == "selector-r2-margin"
        assert rec["rank"] == row.rank and rec["priority"] == pytest.approx(row.score)
    assert settings["mapping"] == {"label_score": "label.suggestion.score", "label_agent": "label.suggestion.agent"}
    assert [o["value"] for o in settings["questions"][0]["settings"]["options"]] == LABELS
    pytest.importorskip("argilla")
    from argilla._models import FieldModel, MetadataFieldModel, QuestionModel  # what rg.Settings.from_json builds

    assert [FieldModel(**f).settings.type for f in settings["fields"]] == ["text"]
    assert [QuestionModel(**q).settings.type for q in settings["questions"]] == ["label_selection"]
    assert {m["name"]: MetadataFieldModel(**m).settings.type for m in settings["metadata"]} == \
        {"selector_id": "terms", "rank": "integer", "priority": "float", "strategy": "terms", "predicted_proba": "float",
             "kind": "terms", "labeled_by": "terms"}


@pytest.mark.parametrize("fmt", ["label-studio", "argilla", "prodigy", "doccano"])
def test_each_format_round_trips_through_merge(tmp_path, queue, fmt):
    suffix = ".json" if fmt == "label-studio" else ".jsonl"
    out = tmp_path / f"export{suffix}"
    write_export(queue, fmt, out, labels=LABELS, argilla_nested=True)
    gold = {i: LABELS[k % 3] for k, i in enumerate(queue["id"])}
    items = json.loads(out.read_text()) if fmt == "label-studio" else [json.loads(x) for x in out.read_text().splitlines()]
    # What each tool hands back after annotation.
    for n, it in enumerate(items):
        if fmt == "label-studio":
            it["id"] = n + 1
            it["annotations"] = [{"id": n, "completed_by": 1, "was_cancelled": False, "result": [
                {"from_name": "label", "to_name": "text", "type": "choices",
                 "value": {"choices": [gold[it["data"]["selector_id"]]]}}]}]
        elif fmt == "argilla":
            it["responses"] = {"label": [{"value": gold[it["id"]], "user_id": "u", "status": "submitted"}]}
        elif fmt == "prodigy":
            it.update(answer="accept", accept=[gold[it["selector_id"]]], _input_hash=n, _task_hash=n)
        else:
            it.update(id=100 + n, label=[gold[it["selector_id"]]], Comments=[])
    back = tmp_path / f"back{suffix}"
    back.write_text(json.dumps(items) if fmt == "label-studio" else "".join(json.dumps(x) + "\n" for x in items))
    labels, skipped, kind = read_labels(back)
    assert kind == fmt and skipped == 0
    assert dict(zip(labels["id"], labels["label"])) == gold


def test_cli_export_and_errors(tmp_path, queue):
    q = tmp_path / "queue.csv"
    queue.to_csv(q, index=False)
    data = tmp_path / "data.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "label": ["sports", "", "finance"]}).to_csv(data, index=False)
    res = runner.invoke(app, ["export", str(q), "--format", "label-studio", "--out", str(tmp_path / "t.json"),
                              "--data", str(data)])
    assert res.exit_code == 0, res.output
    assert '<Choice value="finance"/>' in (tmp_path / "t.label_config.xml").read_text()
    res = runner.invoke(app, ["export", str(q), "--format", "labelbox", "--out", str(tmp_path / "t.jsonl")])
    assert res.exit_code == 1 and "unknown export format 'labelbox'" in res.output
    res = runner.invoke(app, ["export", str(q), "--format", "prodigy", "--out", str(tmp_path / "t.json")])
    assert res.exit_code == 1 and "*.jsonl" in res.output
    with pytest.raises(ConfigError):
        export_records(queue, "csv")


def test_update_project_writes_this_rounds_predictions_by_selector_id(tmp_path, queue):
    q = tmp_path / "queue.csv"
    queue.to_csv(q, index=False)
    (tmp_path / "queue.round.json").write_text(json.dumps({"round": 4}))
    res = runner.invoke(app, ["export", str(q), "--format", "label-studio", "--out", str(tmp_path / "t.json"),
                              "--update-project"])
    assert res.exit_code == 0, res.output
    preds = json.loads((tmp_path / "t.predictions.json").read_text())
    assert [p["selector_id"] for p in preds] == queue["id"].tolist()
    assert {p["model_version"] for p in preds} == {"selector-r4-margin"}
    assert [p["score"] for p in preds] == pytest.approx((queue["rank"] / (len(queue) + 1)).tolist())
    assert [p["result"][0]["score"] for p in preds] == pytest.approx(queue["predicted_proba"].tolist())
    res = runner.invoke(app, ["export", str(q), "--format", "prodigy", "--out", str(tmp_path / "t.jsonl"),
                              "--update-project"])
    assert res.exit_code == 1 and "--update-project goes with --format label-studio" in res.output
