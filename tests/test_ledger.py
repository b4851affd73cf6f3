import json
import threading

import numpy as np
import pandas as pd
import pytest
from loop_helpers import write_data
from typer.testing import CliRunner

from selector.cli.app import app
from selector.errors import DataError
from selector.io import file_sha256
from selector.loop.ledger import (
    append_record,
    ledger_path,
    next_round_number,
    read_ledger,
    round_records,
    stop_set_ids,
)
from selector.round.model import cv_metrics

runner = CliRunner()


def test_append_and_read_round_trip(tmp_path):
    path = tmp_path / ".selector" / "rounds.jsonl"
    assert read_ledger(path) == []
    for r in (1, 2):
        append_record(path, {"round": r, "value": np.float32(0.5), "n": np.int64(3)})
    records = read_ledger(path)
    assert [r["round"] for r in records] == [1, 2]
    assert records[0]["value"] == 0.5 and records[0]["n"] == 3
    assert next_round_number(records) == 3


def test_torn_last_line_is_skipped_with_warning_and_next_append_parses(tmp_path):
    path = tmp_path / "rounds.jsonl"
    append_record(path, {"round": 1})
    with open(path, "ab") as fh:
        fh.write(b'{"round": 2, "que')  # a crash mid-write
    with pytest.warns(UserWarning, match="incomplete record"):
        assert [r["round"] for r in read_ledger(path)] == [1]
    append_record(path, {"round": 2})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"round": 1}, {"round": 2}]


def test_corrupt_middle_line_is_an_error(tmp_path):
    path = tmp_path / "rounds.jsonl"
    path.write_text('{"round": 1}\nnot json\n{"round": 2}\n')
    with pytest.raises(DataError, match="line 2"):
        read_ledger(path)


def test_concurrent_appends_never_interleave(tmp_path):
    path = tmp_path / "rounds.jsonl"
    big = "x" * 20000  # larger than a pipe buffer, so interleaving would show

    def worker(k):
        for j in range(15):
            append_record(path, {"round": k * 100 + j, "pad": big})

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = read_ledger(path)
    assert len(records) == 90
    assert sorted(r["round"] for r in records) == sorted(k * 100 + j for k in range(6) for j in range(15))


def test_stop_set_is_fixed_once_recorded():
    ids = np.array([f"id{i}" for i in range(1000)], dtype=object)
    first = stop_set_ids(ids, [], size=50)
    assert first.size == 50 and np.unique(first).size == 50
    # Same ids in another order give the same set (chosen by id hash, not position).
    assert set(stop_set_ids(ids[::-1], [], size=50)) == set(first)
    records = [{"round": 1, "stop_set": {"ids": list(first), "predictions": None}}]
    grown = np.concatenate([ids, np.array([f"new{i}" for i in range(500)], dtype=object)])
    assert list(stop_set_ids(grown, records)) == list(first)
    shrunk = np.array([i for i in ids if i != first[0]], dtype=object)
    assert list(stop_set_ids(shrunk, records)) == list(first[1:])


def test_cv_metrics_on_separable_and_degenerate_data():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b", "c"], 30)
    centers = {"a": [5, 0], "b": [0, 5], "c": [-5, -5]}
    X = np.array([centers[c] for c in y]) + rng.normal(0, 0.3, size=(90, 2))
    m = cv_metrics(X, y, random_state=0)
    assert m["accuracy"] == pytest.approx(1.0) and m["macro_f1"] == pytest.approx(1.0) and m["n"] == 90
    y_noisy = rng.permutation(y)
    assert cv_metrics(X, y_noisy, random_state=0)["accuracy"] < 0.7
    assert cv_metrics(X, np.full(90, "a"), random_state=0) is None
    assert cv_metrics(X[:3], y[:3]) is None


def test_select_appends_a_ledger_record_per_round(tmp_path):
    data = tmp_path / "data.csv"
    write_data(data, n=120, n_labeled=30)
    for r in (1, 2):
        res = runner.invoke(app, ["select", str(data), "--budget", "10", "--model", "hashing",
                                  "--out", str(tmp_path / f"q{r}.csv"), "--seed", str(r), "-q"])
        assert res.exit_code == 0, res.output
    records = read_ledger(ledger_path(data))
    assert [r["round"] for r in records] == [1, 2]
    rec = records[1]
    queue = pd.read_csv(tmp_path / "q2.csv", dtype=str)
    assert rec["queue"]["ids"] == queue["id"].tolist()
    assert rec["queue"]["path"] == str((tmp_path / "q2.csv").resolve())
    assert rec["data"]["sha256"] == file_sha256(data)
    assert rec["seed"] == 2 and rec["config"]["budget"] == 10 and rec["strategy"] == "auto"
    assert rec["model_fingerprint"] == "hashing-v1-256"
    assert rec["counts"]["n_labeled"] == 30 and rec["counts"]["n_selected"] == 10
    assert rec["class_counts"] == {"finance": 10, "sports": 10, "weather": 10}
    assert 0.0 <= rec["cv"]["accuracy"] <= 1.0 and 0.0 <= rec["cv"]["macro_f1"] <= 1.0
    assert len(rec["stop_set"]["ids"]) == 120 and len(rec["stop_set"]["predictions"]) == 120
    assert records[0]["stop_set"]["ids"] == rec["stop_set"]["ids"]


def test_corrections_entries_are_not_rounds():
    from selector.loop.ledger import next_round_number, round_records

    records = [{"round": 1, "queue": {"ids": ["a"]}}, {"kind": "corrections", "corrections": []},
               {"round": 2, "kind": "round"}]
    assert [r.get("round") for r in round_records(records)] == [1, 2]
    assert next_round_number(records) == 3


def test_one_ledger_per_data_file_and_folder_ledger_migration(tmp_path):
    """Two data files in one folder are two loops; a folder ledger of earlier versions is split per file."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    for f in (a, b):
        f.write_text("id,text,label\n1,x,\n")
    legacy = tmp_path / ".selector" / "rounds.jsonl"
    legacy.parent.mkdir()
    rounds = [{"round": 1, "data": {"path": str(a.resolve())}}, {"round": 2, "data": {"path": str(b.resolve())}},
              {"round": 3, "data": {"path": str(a.resolve())}},
              {"kind": "corrections", "round": None, "data": str(a.resolve()), "corrections": []}]
    legacy.write_text("".join(json.dumps(r) + "\n" for r in rounds))
    assert ledger_path(a).name == "a.csv.rounds.jsonl" and ledger_path(b) != ledger_path(a)
    assert [r.get("round") for r in read_ledger(ledger_path(a))] == [1, 3, None]
    assert [r["round"] for r in read_ledger(ledger_path(b))] == [2]
    assert next_round_number(round_records(read_ledger(ledger_path(b)))) == 3  # b's numbering continues from its own
    # Migration happens once: a later change to the folder ledger does not leak into a file's ledger.
    legacy.write_text(legacy.read_text() + json.dumps({"round": 9, "data": {"path": str(a.resolve())}}) + "\n")
    assert [r.get("round") for r in read_ledger(ledger_path(a))] == [1, 3, None]
    c = tmp_path / "c.csv"
    assert not ledger_path(c).exists()  # no rounds of c anywhere: nothing written
