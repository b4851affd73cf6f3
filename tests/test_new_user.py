"""The rough edges a new user hit on a fresh clone (issue 26, items 1-13), one test each or more."""

from __future__ import annotations

import json
import re
import threading
import warnings
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import EXAMPLE, REPO
from loop_helpers import label_studio_export, write_data
from selector.cli.app import app
from selector.config import default_config_path
from selector.loop.export import export_records
from selector.loop.merge import merge_labels

runner = CliRunner()


def invoke(args, cwd: Path):
    """Run the CLI in ``cwd`` (``--example`` writes its copy in the working folder)."""
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(app, args)
    finally:
        os.chdir(old)


# ------------------------------------------------------------------ 1. status counts distinct ids

def test_status_counts_each_queued_row_once(tmp_path):
    data = tmp_path / "data.csv"
    data.write_bytes(EXAMPLE.read_bytes())
    for _ in range(3):
        res = runner.invoke(app, ["select", str(data), "--budget", "20", "--model", "hashing", "-q",
                                  "-o", str(tmp_path / "queue.csv")])
        assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["status", str(data)])
    assert res.exit_code == 0, res.output
    ledger_ids = set()
    for line in (tmp_path / ".selector" / "data.csv.rounds.jsonl").read_text().splitlines():
        ledger_ids |= set(json.loads(line)["queue"]["ids"])
    assert len(ledger_ids) == 20  # the same 20 rows, queued three times
    assert "queued but still unlabeled: 0 from earlier rounds, 20 from the latest round" in res.output


# ------------------------------------------------------------------ 2. a missing --labels file

def test_missing_labels_file_is_an_error_not_a_label(tmp_path):
    data = tmp_path / "dirty.csv"
    write_data(data, n=60, n_labeled=30)
    res = runner.invoke(app, ["validate", str(data), "--labels", str(tmp_path / "labels.txt"), "--model", "hashing"])
    assert res.exit_code == 1
    assert "labels.txt: --labels file not found" in res.stderr
    assert "invalid_label" not in res.output
    res = runner.invoke(app, ["validate", str(data), "--labels", "labels.txt", "--model", "hashing"])
    assert res.exit_code == 1 and "--labels file not found" in res.stderr


def test_labels_file_and_list_still_work(tmp_path):
    data = tmp_path / "d.csv"
    write_data(data, n=60, n_labeled=30)
    (tmp_path / "labels.txt").write_text("sports\nweather\nfinance\n")
    for given in (str(tmp_path / "labels.txt"), "sports,weather,finance"):
        res = runner.invoke(app, ["validate", str(data), "--labels", given, "--model", "hashing"])
        assert "invalid_label" not in res.output, res.output
    res = runner.invoke(app, ["validate", str(data), "--labels", "sports,,weather", "--model", "hashing"])
    assert res.exit_code == 1 and "empty entry" in res.stderr


# ------------------------------------------------------------------ 3. no raw scikit-learn warning

def test_simulate_prints_no_raw_sklearn_warning(tmp_path):
    df = pd.read_csv(EXAMPLE, dtype=str, keep_default_na=False)
    labeled = tmp_path / "labeled.csv"
    df[df["label"] != ""].to_csv(labeled, index=False)
    res = runner.invoke(app, ["simulate", str(labeled), "--strategies", "random,margin", "--batch", "40",
                              "--rounds", "4", "--seeds", "2", "--out", str(tmp_path / "sim"), "--model", "hashing"])
    assert res.exit_code == 0, res.output
    assert "regression problem" not in res.output and "warning:" not in res.stderr


def test_classifier_helpers_silence_the_regression_warning():
    from selector.models.classifiers import fit_classifier, make_classifier, out_of_fold_proba

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 5))
    y = np.array([f"c{i % 30}" for i in range(40)])  # 30 classes over 40 rows
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit_classifier(make_classifier(), X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out_of_fold_proba(make_classifier(), X, y, random_state=0)
    assert not any("regression problem" in str(w.message) for w in caught)


# ------------------------------------------------------------------ 4. --example on every data command

@pytest.mark.parametrize("command", [
    ["status", "--example"],
    ["validate", "--example", "--model", "hashing"],
    ["suspects", "--example", "--model", "hashing", "-o", "s.csv"],
    ["card", "--example", "--model", "hashing", "-o", "card.md"],
    ["review", "--example", "--model", "hashing", "--budget", "5", "-o", "review.csv"],
])
def test_example_follows_one_loop(tmp_path, command):
    res = invoke(["select", "--example", "--budget", "10", "--model", "hashing"], tmp_path)
    assert res.exit_code == 0, res.output
    copy = tmp_path / "banking77_sample.csv"
    assert copy.read_bytes() == EXAMPLE.read_bytes()
    assert "wrote the bundled example to banking77_sample.csv" in res.stderr
    assert (tmp_path / ".selector" / "banking77_sample.csv.rounds.jsonl").is_file()
    res = invoke(command, tmp_path)
    assert res.exit_code in (0, 1), res.output  # validate exits 1 on blockers
    assert "Traceback" not in res.output
    assert "using banking77_sample.csv" in res.stderr
    assert copy.read_bytes() == EXAMPLE.read_bytes()  # read, never modified
    if command[0] == "status":
        assert "round  time" in res.stdout and "no rounds recorded" not in res.output


def test_example_merge_and_select_again(tmp_path):
    assert invoke(["select", "--example", "--budget", "10", "--model", "hashing", "-q"], tmp_path).exit_code == 0
    queue = pd.read_csv(tmp_path / "queue.csv", dtype=str, keep_default_na=False)
    pd.DataFrame({"id": queue["id"], "label": queue["predicted_label"]}).to_csv(tmp_path / "labels.csv", index=False)
    res = invoke(["merge", "--example", "labels.csv", "--in-place"], tmp_path)
    assert res.exit_code == 0, res.output
    merged = pd.read_csv(tmp_path / "banking77_sample.csv", dtype=str, keep_default_na=False)
    assert (merged["label"] != "").sum() == 385 + 10
    res = invoke(["select", "--example", "--budget", "10", "--model", "hashing", "-q"], tmp_path)
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "queue.round.json").read_text())["round"] == 2
    # The copy holds the merged labels: --example never overwrites it.
    assert (pd.read_csv(tmp_path / "banking77_sample.csv", dtype=str, keep_default_na=False)["label"] != "").sum() == 395


def test_example_and_data_together_is_an_error(tmp_path):
    res = invoke(["validate", "x.csv", "--example"], tmp_path)
    assert res.exit_code == 1 and "not both" in res.stderr
    res = invoke(["validate"], tmp_path)
    assert res.exit_code == 1 and "--example" in res.stderr


# ------------------------------------------------------------------ 5. pointers a user can follow

def test_config_error_points_to_an_installed_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("bogus_key: 1\n")
    res = invoke(["select", "--example", "--config", str(cfg), "-q"], tmp_path)
    assert res.exit_code == 1
    assert str(default_config_path()) in res.stderr and default_config_path().is_file()
    assert (REPO / "configs" / "default.yaml").read_bytes() == default_config_path().read_bytes()


def test_readme_points_only_to_files_a_clone_has():
    readme = (REPO / "README.md").read_text()
    assert "../shared" not in readme and "chat_defects.jsonl" not in readme
    for target in re.findall(r"\]\(([^)#]+)[^)]*\)", readme):
        if not target.startswith(("http://", "https://", "mailto:")):
            assert (REPO / target).exists(), f"README links to {target}, which a clone does not have"
    for path in re.findall(r"`((?:tests|scripts|docs|configs|selector)/[\w./-]+\.\w+)`", readme):
        assert (REPO / path).exists(), f"README names {path}, which a clone does not have"


# ------------------------------------------------------------------ 6. export, queue columns, score, .gitignore

def test_label_studio_export_takes_the_rounds_labels_or_says_it_has_none(tmp_path):
    assert invoke(["select", "--example", "--budget", "10", "--model", "hashing", "-q"], tmp_path).exit_code == 0
    res = invoke(["export", "queue.csv", "--format", "label-studio", "-o", "tasks.json"], tmp_path)
    assert res.exit_code == 0, res.output
    assert (tmp_path / "tasks.label_config.xml").is_file() and "label set: the 77 labels" in res.stderr
    (tmp_path / "banking77_sample.csv").unlink()  # the round's data is gone: nothing to take labels from
    res = invoke(["export", "queue.csv", "--format", "label-studio", "-o", "t2.json"], tmp_path)
    assert res.exit_code == 0, res.output
    assert not (tmp_path / "t2.label_config.xml").exists()
    assert "no labeling config was written" in res.stderr


@pytest.mark.parametrize("strategy", ["typiclust", "auto", "kmeans", "badge", "cluster_margin", "margin"])
def test_queue_score_falls_with_rank_for_every_strategy(tmp_path, strategy):
    res = invoke(["select", "--example", "--budget", "30", "--model", "hashing", "-q", "--strategy", strategy,
                  "--no-suspects"], tmp_path)
    assert res.exit_code == 0, res.output
    queue = pd.read_csv(tmp_path / "queue.csv", keep_default_na=False)
    assert (np.diff(queue["score"]) < 0).all()
    assert queue["score"].iloc[0] == 1.0 and "strategy_score" in queue.columns


def test_readme_lists_every_queue_column(tmp_path):
    assert invoke(["select", "--example", "--budget", "10", "--model", "hashing", "-q"], tmp_path).exit_code == 0
    columns = pd.read_csv(tmp_path / "queue.csv", nrows=1).columns
    readme = (REPO / "README.md").read_text()
    for col in columns:
        assert f"`{col}`" in readme, f"the README does not name the queue column {col!r}"


def test_gitignore_covers_every_file_the_worked_round_writes():
    ignored = (REPO / ".gitignore").read_text().splitlines()
    for name in ("/queue.csv", "/queue.round.json", "/queue.suspects.csv", "/banking77_sample.csv", "/site/",
                 "/banking77_sample.csv.bak", "/labeled.csv", "/tasks.json", "/tasks.label_config.xml",
                 "/chat_queue.csv", "/chat_queue.round.json", "/chat_queue.suspects.csv"):
        assert name in ignored


# ------------------------------------------------------------------ 7. one conflict per id

def test_merge_reports_one_conflict_per_id(tmp_path):
    data = tmp_path / "data.csv"
    df = write_data(data, n=30, n_labeled=10)
    export = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["r0020", "r0020", "r0021", "r0021", "r0022", "r0022"],
                  "label": ["sports", "weather", "sports", "finance", "weather", "finance"],
                  "annotator": ["a", "b", "a", "b", "a", "b"]}).to_csv(export, index=False)
    res = runner.invoke(app, ["merge", str(data), str(export), "-o", str(tmp_path / "m.csv")])
    assert res.exit_code == 1
    assert "3 conflict(s), nothing written" in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("conflict:")]
    assert len(lines) == 3 and len({ln.split("'")[1] for ln in lines}) == 3
    assert df is not None


# ------------------------------------------------------------------ 8. hashing rounds vs real-model rounds

def test_status_shows_the_model_and_compares_only_like_with_like():
    from selector.loop.status import build_status, format_status

    ids = np.array([f"r{i}" for i in range(4)])
    labels = np.array(["a", "b", None, None], dtype=object)

    def record(n, model, preds):
        return {"round": n, "model_fingerprint": model, "counts": {"n_labeled": 2}, "queue": {"ids": []},
                "cv": {"accuracy": 0.5, "macro_f1": 0.5}, "stop_set": {"ids": list(ids), "predictions": preds}}

    real = "st-all-MiniLM-L6-v2-3dda474395b99075"
    records = [record(1, "hashing-v1-256", ["a", "a", "a", "a"]), record(2, real, ["b", "b", "b", "b"]),
               record(3, real, ["b", "b", "b", "a"])]
    report = build_status(records, ids, labels)
    assert list(report.rounds["model"]) == ["hashing-v1-256", "all-MiniLM-L6-v2", "all-MiniLM-L6-v2"]
    changed = list(report.rounds["changed_vs_prev"])
    assert changed[1] is None or np.isnan(changed[1])  # not compared with the hashing round
    assert changed[2] == pytest.approx(0.25)
    text = format_status(report)
    assert "model" in text.splitlines()[3] and "hashing" in text


# ------------------------------------------------------------------ 9. serve edits: the latest wins

def test_latest_edit_per_annotator_wins_in_merge(tmp_path):
    data = tmp_path / "data.csv"
    df = write_data(data, n=20, n_labeled=0)
    log = tmp_path / "serve-labels.jsonl"
    lines = [{"id": "r0001", "label": "top_up_limits", "annotator": "1", "source": "label-studio ANNOTATION_CREATED"},
             {"id": "r0001", "label": "card_arrival", "annotator": "1", "source": "label-studio ANNOTATION_UPDATED"},
             {"id": "r0002", "label": "sports", "annotator": "1"}]
    log.write_text("".join(json.dumps(x) + "\n" for x in lines))
    res = runner.invoke(app, ["merge", str(data), str(log), "-o", str(tmp_path / "m.csv")])
    assert res.exit_code == 0, res.output
    merged = pd.read_csv(tmp_path / "m.csv", dtype=str, keep_default_na=False).set_index("id")
    assert merged.loc["r0001", "label"] == "card_arrival" and merged.loc["r0002", "label"] == "sports"
    # Two different annotators still disagree.
    two = pd.DataFrame({"id": ["r0001", "r0001"], "label": ["x", "y"], "annotator": ["1", "2"]})
    with pytest.raises(Exception, match="annotators disagree"):
        merge_labels(df, two)


# ------------------------------------------------------------------ 10. Label Studio serves the queue's order

def test_label_studio_prediction_score_follows_queue_rank_for_every_strategy():
    n = 8
    queue = pd.DataFrame({"rank": range(1, n + 1), "id": [f"r{i}" for i in range(n)], "text": list("abcdefgh"),
                          "score": np.linspace(1, 0.125, n), "strategy": "auto",
                          # probabilities in no particular order: auto mixes typical and uncertain rows
                          "predicted_label": "x", "predicted_proba": [0.9, 0.2, 0.7, 0.4, 0.95, 0.3, 0.6, 0.5]})
    tasks = export_records(queue, "label-studio", labels=["x", "y"])
    scores = [t["predictions"][0]["score"] for t in tasks]
    # Label Studio's uncertainty sampling serves the lowest prediction score first.
    served = [t["data"]["rank"] for t in sorted(tasks, key=lambda t: t["predictions"][0]["score"])]
    assert served == list(range(1, n + 1)) and all(0 < s < 1 for s in scores)
    # The class probability is kept, on the choice and in the task data.
    assert [t["predictions"][0]["result"][0]["score"] for t in tasks] == list(queue["predicted_proba"])
    assert [t["data"]["predicted_proba"] for t in tasks] == list(queue["predicted_proba"])
    cold = export_records(queue.assign(predicted_label=None, predicted_proba=np.nan), "label-studio")
    assert [t["predictions"][0]["result"] for t in cold] == [[]] * n
    assert [t["predictions"][0]["score"] for t in cold] == scores


class _Recorder(BaseHTTPRequestHandler):
    """Label Studio's API as serve calls it (answers recorded from Label Studio 1.23.2): the project's ML
    backend connections, the project, and the PATCH of its model version."""

    calls: list = []
    project = {"id": 3, "model_version": "selector-r1-auto"}

    def _send(self, obj) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(obj).encode())

    def do_GET(self):  # noqa: N802 (http.server's naming)
        _Recorder.calls.append(("GET", self.path, self.headers["Authorization"], None))
        if self.path.startswith("/api/ml"):
            self._send([{"id": 1, "title": "selector", "url": "http://127.0.0.1:9090", "model_version": "x"}])
        else:
            self._send(_Recorder.project)

    def do_PATCH(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Recorder.calls.append(("PATCH", self.path, self.headers["Authorization"], body))
        _Recorder.project = {**_Recorder.project, **body}
        self._send(_Recorder.project)

    def log_message(self, *args):
        pass


def test_serve_refit_sets_the_projects_model_version(tmp_path):
    from selector.config import SelectConfig
    from selector.loop.serve import BackendState
    from selector.models import HashingEmbedder

    data = tmp_path / "data.csv"
    df = write_data(data, n=40, n_labeled=12)
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        state = BackendState(data, SelectConfig(model="hashing"), embedder=HashingEmbedder(64))
        config = ('<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
                  '<Choice value="sports"/><Choice value="weather"/><Choice value="finance"/></Choices></View>')
        state.setup(config, hostname=f"http://127.0.0.1:{server.server_port}", access_token="tok", project="3.1700000")
        task = {"id": 1, "data": {"selector_id": "r0020", "text": df.text[20]}}
        payload = {"action": "ANNOTATION_CREATED", "task": task,
                   "annotation": label_studio_export([task], {"r0020": df.gold[20]})[0]["annotations"][0]}
        from fastapi.testclient import TestClient

        from selector.loop.serve import make_app

        with TestClient(make_app(state)) as client:  # the app announces after answering the webhook
            out = client.post("/webhook", json=payload).json()
        assert state.announce_version() == "selector"
    finally:
        server.shutdown()
    # A refit's version has no predictions in Label Studio yet (a PATCH with it is a 400 there), so the
    # project is pointed at the backend as a live model: its connection's title.
    assert out["status"] == "refitted"
    patches = [c for c in _Recorder.calls if c[0] == "PATCH"]
    assert patches == [("PATCH", "/api/projects/3", "Token tok", {"model_version": "selector"})]
    assert len([c for c in _Recorder.calls if c[0] == "PATCH"]) == 1  # the second call found it already so


# ------------------------------------------------------------------ 11-13. the round-trip scripts and the set-up text

def test_label_studio_roundtrip_runs_offline_with_a_legacy_token():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ls_roundtrip", REPO / "scripts" / "ls_roundtrip.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    env = module.label_studio_env()
    assert env["LATEST_VERSION_CHECK"] == "false" and env["SENTRY_DSN"] == "" and env["FRONTEND_SENTRY_DSN"] == ""
    source = (REPO / "scripts" / "ls_roundtrip.py").read_text()
    assert '"--enable-legacy-api-token"' in source and '"--user-token"' in source
    assert module.FIXTURE.is_file()  # runs on a fresh clone
    guide = (REPO / "docs" / "tutorials" / "labeling-tools.md").read_text()
    for needle in ("--enable-legacy-api-token", "LATEST_VERSION_CHECK=false", "SENTRY_DSN="):
        assert needle in guide


def test_doccano_roundtrip_binds_loopback_only():
    source = (REPO / "scripts" / "doccano_roundtrip.py").read_text()
    assert '"webserver"' not in source  # doccano's own webserver listens on 0.0.0.0
    assert "127.0.0.1" in source and "0.0.0.0" not in source.replace("not 0.0.0.0", "")


def test_readme_is_honest_about_the_torch_build():
    readme = (REPO / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    assert "installs the CPU build" not in setup
    assert "stock machine" in setup or "default build" in setup


def test_readme_is_a_guide_of_at_most_20_kb():
    assert len((REPO / "README.md").read_bytes()) <= 20 * 1024
