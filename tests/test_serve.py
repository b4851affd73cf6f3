"""`selector serve`: the Label Studio ML backend's HTTP contract (FastAPI TestClient, hashing embedder),
replayed on requests recorded from a real Label Studio 1.23.2 (``scripts/ls_roundtrip.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import make_table
from selector.config import SelectConfig
from selector.errors import ConfigError
from selector.loop.export import export_records, label_studio_config
from selector.loop.ledger import ledger_path, read_ledger
from selector.loop.merge import read_labels
from selector.loop.serve import (
    BackendState,
    make_app,
    parse_label_config,
    served_labels_path,
)
from selector.models import HashingEmbedder

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

RECORDED = Path(__file__).parent / "data" / "label_studio"
CONFIG = label_studio_config(["finance", "sports", "weather"])


@pytest.fixture
def served(tmp_path):
    data = tmp_path / "data.csv"
    make_table(120, labeled_frac=0.3).to_csv(data, index=False)
    state = BackendState(data, SelectConfig(), embedder=HashingEmbedder(64))
    return data, state, TestClient(make_app(state))


def _task(tid, sid=None, text=None):
    data = {"text": text or "a text"}
    if sid is not None:
        data["selector_id"] = sid
    return {"id": tid, "data": data, "project": 1}


def test_health_setup_and_predict_follow_the_protocol(served):
    data, state, client = served
    health = client.get("/health").json()
    assert health["status"] == "UP" and health["model_version"] == "selector-serve"
    assert client.post("/setup", json={"project": "1.1700000000", "schema": CONFIG}).json() == \
        {"model_version": "selector-serve"}
    tasks = [_task(1, "r0005"), _task(2, text="storm and rain and cold wind forecast")]
    body = client.post("/predict", json={"tasks": tasks, "project": "1.1700000000", "label_config": CONFIG}).json()
    assert len(body["results"]) == 2
    for res in body["results"]:
        (choice,) = res["result"]
        assert choice["from_name"] == "label" and choice["to_name"] == "text" and choice["type"] == "choices"
        assert choice["value"]["choices"][0] in {"finance", "sports", "weather"}
        assert 0 < res["score"] <= 1 and res["model_version"] == "selector-serve"
    # The score is the model's confidence in its choice: the max class probability of that row.
    proba = state.model.predict_proba(state.X[[state.position["r0005"]]])[0]
    assert body["results"][0]["score"] == pytest.approx(proba.max(), abs=1e-6)


def test_annotation_webhook_refits_and_records_a_round(served):
    data, state, client = served
    client.post("/setup", json={"schema": CONFIG})
    unlabeled = [i for i, lab in zip(state.pool.ids, state.pool.labels) if lab is None][:3]
    before = state.training_labels()[0].size
    for n, sid in enumerate(unlabeled):
        payload = {"action": "ANNOTATION_CREATED", "project": {"id": 1, "label_config": CONFIG},
                   "task": _task(10 + n, sid),
                   "annotation": {"id": n, "completed_by": 7, "was_cancelled": False,
                                  "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                                              "value": {"choices": ["weather"]}}]}}
        out = client.post("/webhook", json=payload).json()
        assert out["status"] == "refitted" and out["model_version"] == f"selector-r{n + 1}-serve"
    assert state.training_labels()[0].size == before + 3
    got = [json.loads(x) for x in served_labels_path(data).read_text().splitlines()]
    assert [g["id"] for g in got] == unlabeled and {g["annotator"] for g in got} == {"7"}
    labels, _, kind = read_labels(served_labels_path(data))  # what `selector merge DATA that-file` reads
    assert kind == "table" and labels["id"].tolist() == unlabeled and set(labels["label"]) == {"weather"}
    ledger = read_ledger(ledger_path(data))
    assert [r["round"] for r in ledger] == [1, 2, 3] and ledger[-1]["command"] == "selector serve"
    assert ledger[-1]["counts"]["n_labeled"] == before + 3 and ledger[-1]["cv"]["n"] == before + 3
    # A cancelled annotation or another action changes nothing; a restart replays the labels.
    cancelled = {"action": "ANNOTATION_CREATED", "task": _task(99, "r0001"),
                 "annotation": {"was_cancelled": True, "result": []}}
    assert client.post("/webhook", json=cancelled).json()["status"] == "no label"
    assert client.post("/webhook", json={"action": "PROJECT_UPDATED"}).json()["status"] == "ignored"
    again = BackendState(data, SelectConfig(), embedder=HashingEmbedder(64))
    assert again.training_labels()[0].size == before + 3 and again.model_version == "selector-r3-serve"
    assert data.read_text().count("weather") == make_table(120, labeled_frac=0.3).to_csv(index=False).count("weather")


def test_cold_start_and_bad_configs(tmp_path):
    data = tmp_path / "data.csv"
    make_table(30, labeled_frac=0.0).assign(label="").to_csv(data, index=False)
    state = BackendState(data, SelectConfig(), embedder=HashingEmbedder(64))
    client = TestClient(make_app(state))
    body = client.post("/predict", json={"tasks": [_task(1, "r0001")], "label_config": CONFIG}).json()
    assert body["results"] == [{"result": [], "score": 0.0, "model_version": "selector-serve"}]
    bad = client.post("/predict", json={"tasks": [_task(1, "r0001")], "label_config": "<View><Text name='t' value='$text'/></View>"})
    assert bad.status_code == 400 and "no <Choices> control" in bad.json()["error"]
    with pytest.raises(ConfigError, match="points at 'body'"):
        parse_label_config('<View><Text name="text" value="$text"/><Choices name="label" toName="body"/></View>')
    t = parse_label_config('<View><Paragraphs name="dialogue" value="$dialogue"/>'
                           '<Choices name="intent" toName="dialogue"><Choice value="a"/></Choices></View>')
    assert (t.from_name, t.to_name, t.data_key, t.choices) == ("intent", "dialogue", "dialogue", ("a",))


def test_exported_tasks_round_trip_through_predict(served):
    """Tasks as `selector export` writes them are what Label Studio sends back to /predict."""
    data, state, client = served
    import pandas as pd

    queue = pd.DataFrame({"rank": [1, 2], "id": ["r0003", "r0004"], "text": ["x", "y"], "score": [0.9, 0.8],
                          "strategy": "margin", "predicted_label": ["sports", "finance"], "predicted_proba": [0.5, 0.6]})
    tasks = [{"id": n + 1, **t} for n, t in enumerate(export_records(queue, "label-studio"))]
    body = client.post("/predict", json={"tasks": tasks, "label_config": CONFIG}).json()
    assert len(body["results"]) == 2 and all(r["result"] for r in body["results"])


def _recorded():
    return sorted(RECORDED.glob("*.json")) if RECORDED.is_dir() else []


@pytest.mark.skipif(not _recorded(), reason="no recorded Label Studio traffic")
def test_replays_requests_recorded_from_a_real_label_studio(tmp_path):
    """Requests a real Label Studio 1.23.2 sent to `selector serve` (scripts/ls_roundtrip.py --record),
    replayed: the same endpoints answer with the same shape (the recorded run used the real model;
    this one uses the hashing embedder, so the choices may differ)."""
    data = tmp_path / "data.csv"
    data.write_bytes((RECORDED / "data.csv").read_bytes())
    state = BackendState(data, SelectConfig(), embedder=HashingEmbedder(64))
    client = TestClient(make_app(state))
    seen = set()
    for path in _recorded():
        rec = json.loads(path.read_text())
        seen.add(rec["path"])
        if rec["method"] == "GET":
            got = client.get(rec["path"])
        else:
            got = client.post(rec["path"], json=rec["request"])
        assert got.status_code == rec["status"] == 200, (path.name, got.text)
        body, want = got.json(), rec["response"]
        assert set(want) <= set(body), path.name
        if rec["path"] == "/predict":
            assert len(body["results"]) == len(rec["request"]["tasks"]) == len(want["results"])
            for mine, theirs in zip(body["results"], want["results"]):
                assert mine["result"][0]["from_name"] == theirs["result"][0]["from_name"]
                assert mine["result"][0]["to_name"] == theirs["result"][0]["to_name"]
                assert 0 < theirs["score"] <= 1
        if rec["path"] == "/webhook":
            assert body["status"] == want["status"]
    assert {"/health", "/setup", "/predict", "/webhook"} <= seen
    assert np.isfinite(state.X).all()
