"""Multi-label queues through the labeling tools and back: export forms, merge of label sets, conflicts."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from selector import SelectConfig, run_round
from selector.loop.export import export_records, label_studio_config, write_export
from selector.loop.merge import MergeConflictError, merge_labels, read_labels
from test_multilabel import LABELS, _table


@pytest.fixture(scope="module")
def ml_queue() -> pd.DataFrame:
    df, X, _ = _table()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_round(df, SelectConfig(budget=8, task="multi_label"), embeddings=X, suspects=False).queue


def _answers(queue: pd.DataFrame) -> dict[str, list[str]]:
    """A label set per queued id: one or two labels, and "none of these" for the last row."""
    out = {}
    for k, i in enumerate(queue["id"]):
        out[i] = [] if k == len(queue) - 1 else sorted({LABELS[k % 4], LABELS[(k * 3) % 4]})
    return out


def test_label_studio_multiple_choice_prediction_and_config(ml_queue):
    tasks = export_records(ml_queue, "label-studio")
    for task, row in zip(tasks, ml_queue.itertuples()):
        predicted = [] if row.predicted_labels == "none" else row.predicted_labels.split(";")
        result = task["predictions"][0]["result"]
        assert (result[0]["value"]["choices"] if result else []) == predicted
        assert task["data"]["predicted_labels"] == predicted
    xml = label_studio_config(LABELS, multi_label=True)
    assert 'choice="multiple"' in xml and all(f'value="{c}"' in xml for c in LABELS)


def test_argilla_multilabel_records_and_settings_load_in_the_sdk(tmp_path, ml_queue):
    out = tmp_path / "records.jsonl"
    write_export(ml_queue, "argilla", out)
    settings = json.loads((tmp_path / "records.settings.json").read_text())
    question = settings["questions"][0]
    assert question["settings"]["type"] == "multi_label_selection"
    assert sorted(o["value"] for o in question["settings"]["options"]) == sorted(LABELS)
    nested = tmp_path / "nested.jsonl"
    write_export(ml_queue, "argilla", nested, argilla_nested=True)
    records = [json.loads(line) for line in nested.read_text().splitlines()]
    rg = pytest.importorskip("argilla")
    from argilla._models import QuestionModel

    assert QuestionModel(**question).settings.type == "multi_label_selection"
    for rec in records:
        loaded = rg.Record.from_dict(rec)
        if "suggestions" in rec:
            s = loaded.suggestions["label"]
            assert isinstance(s.value, list) and len(s.score) == len(s.value)


def test_prodigy_tasks_preselect_the_predicted_set(ml_queue):
    tasks = export_records(ml_queue, "prodigy")
    for task, row in zip(tasks, ml_queue.itertuples()):
        assert task["config"] == {"choice_style": "multiple"}
        assert sorted(o["id"] for o in task["options"]) == sorted(LABELS)
        assert task["accept"] == ([] if row.predicted_labels == "none" else row.predicted_labels.split(";"))


@pytest.mark.parametrize("fmt", ["label-studio", "argilla", "prodigy", "doccano"])
def test_each_format_round_trips_label_sets_through_merge(tmp_path, ml_queue, fmt):
    suffix = ".json" if fmt == "label-studio" else ".jsonl"
    out = tmp_path / f"export{suffix}"
    write_export(ml_queue, fmt, out, argilla_nested=True)
    gold = _answers(ml_queue)
    items = json.loads(out.read_text()) if fmt == "label-studio" else [json.loads(x) for x in out.read_text().splitlines()]
    for n, it in enumerate(items):
        if fmt == "label-studio":
            it["annotations"] = [{"id": n, "completed_by": 1, "result": [
                {"from_name": "label", "to_name": "text", "type": "choices",
                 "value": {"choices": list(reversed(gold[it["data"]["selector_id"]]))}}]}]
        elif fmt == "argilla":
            it["responses"] = {"label": [{"value": gold[it["id"]], "user_id": "u", "status": "submitted"}]}
        elif fmt == "prodigy":
            it.update(answer="accept", accept=gold[it["selector_id"]])
        else:
            it.update(id=100 + n, label=gold[it["selector_id"]])
    back = tmp_path / f"back{suffix}"
    back.write_text(json.dumps(items) if fmt == "label-studio" else "".join(json.dumps(x) + "\n" for x in items))
    labels, skipped, kind = read_labels(back, label_sep=";")
    expect = {i: ";".join(v) or "none" for i, v in gold.items()}
    if fmt in ("label-studio", "doccano"):  # an empty answer is no answer in these tools
        expect = {i: v for i, v in expect.items() if v != "none"}
        assert skipped == 1
    assert dict(zip(labels["id"], labels["label"])) == expect
    df, _, _ = _table()
    merged = merge_labels(df, labels, label_sep=";").data.set_index("id")["label"]
    assert all(merged[i] == v for i, v in expect.items())


def test_merge_compares_sets_and_names_the_differing_labels():
    df = pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": ["fear;joy", ""]})
    same = pd.DataFrame({"id": ["a"], "label": ["joy;fear"], "annotator": ["u"]})
    assert merge_labels(df, same, label_sep=";").n_new == 0
    other = pd.DataFrame({"id": ["a"], "label": ["joy"], "annotator": ["u"]})
    with pytest.raises(MergeConflictError, match="differ on fear"):
        merge_labels(df, other, label_sep=";")
    split = pd.DataFrame({"id": ["b", "b"], "label": ["anger;joy", "joy"], "annotator": ["u", "v"]})
    with pytest.raises(MergeConflictError) as err:
        merge_labels(df, split, label_sep=";")
    row = err.value.conflicts.iloc[0]
    assert row["label"] == "anger;joy | joy" and "differ on anger" in row["problem"]


def test_single_label_merge_still_refuses_several_choices(tmp_path, ml_queue):
    items = [{"data": {"selector_id": "r1", "text": "t"}, "annotations": [{"result": [
        {"type": "choices", "value": {"choices": ["joy", "fear"]}}]}]}]
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(items))
    with pytest.raises(Exception, match="--multi-label"):
        read_labels(path)
    assert np.array_equal(read_labels(path, label_sep=";")[0]["label"].to_numpy(), np.array(["fear;joy"], dtype=object))


def test_serve_predicts_and_learns_label_sets(tmp_path):
    """`selector serve` on a multi-label table: multiple-choice predictions, multi-choice webhooks."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from selector.loop.ledger import ledger_path, read_ledger
    from selector.loop.serve import BackendState, make_app, served_labels_path
    from selector.models import HashingEmbedder
    from test_multilabel import _multilabel_data

    rng = np.random.default_rng(0)
    words = {"joy": "happy glad smile", "anger": "angry mad furious", "fear": "scared afraid panic",
             "surprise": "wow sudden unexpected"}
    _, Y = _multilabel_data(160, seed=5)
    texts = [" ".join(" ".join(rng.permutation(words[LABELS[j]].split())) for j in np.flatnonzero(r)) + f" {i}"
             for i, r in enumerate(Y)]
    cells = [";".join(LABELS[j] for j in np.flatnonzero(r)) for r in Y]
    data = tmp_path / "data.csv"
    pd.DataFrame({"id": [f"r{i}" for i in range(160)], "text": texts,
                  "label": cells[:100] + [""] * 60}).to_csv(data, index=False)
    state = BackendState(data, SelectConfig(task="multi_label"), embedder=HashingEmbedder(64))
    client = TestClient(make_app(state))
    config = label_studio_config(LABELS, multi_label=True)
    client.post("/setup", json={"schema": config})
    body = client.post("/predict", json={"tasks": [{"id": 1, "data": {"text": "so happy and glad, wow, sudden"}}],
                                         "label_config": config}).json()
    (res,) = body["results"]
    assert set(res["result"][0]["value"]["choices"]) <= set(LABELS) and 0 < res["score"] <= 1
    payload = {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": config},
               "task": {"id": 7, "data": {"selector_id": "r120", "text": texts[120]}},
               "annotation": {"id": 1, "completed_by": 3, "result": [
                   {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["joy", "fear"]}}]}}
    assert client.post("/webhook", json=payload).json()["status"] == "refitted"
    got = [json.loads(x) for x in served_labels_path(data).read_text().splitlines()]
    assert got[0]["label"] == "fear;joy"
    record = read_ledger(ledger_path(data))[-1]
    assert record["task"] == "multi_label" and set(record["class_counts"]) == set(LABELS)
    assert "micro_f1" in record["cv"]
    bad = dict(payload, annotation={"id": 2, "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                                          "value": {"choices": ["joy", "bliss"]}}]})
    assert client.post("/webhook", json=bad).status_code >= 400
