import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loop_helpers import label_studio_export, write_data
from selector.cli.app import app
from selector.loop.ledger import ledger_path, read_ledger
from selector.loop.status import MeasurePoint, build_status, changed_share, format_status, kappa, stopping_hint

runner = CliRunner()


def test_kappa_matches_definition():
    a = {"1": "x", "2": "x", "3": "y", "4": "y"}
    b = {"1": "x", "2": "y", "3": "y", "4": "y", "5": "x"}
    k, n = kappa(a, b)
    # p_o = 3/4; p_e = (2/4 * 1/4) + (2/4 * 3/4) = 1/2 -> kappa = 0.5
    assert n == 4 and k == pytest.approx(0.5)
    assert kappa(a, a) == (1.0, 4)
    assert kappa({"1": "x"}, {"2": "x"}) == (None, 0)
    assert kappa({"1": "x", "2": "x"}, {"1": "x", "2": "x"})[0] == 1.0  # constant and equal


def test_changed_share_counts_differing_common_ids():
    a = {"1": "x", "2": "x", "3": "y", "4": "y"}
    b = {"1": "x", "2": "y", "3": "y", "4": "x", "5": "x"}
    assert changed_share(a, b) == (0.5, 4)  # ids 2 and 4 of the 4 common ones changed; 5 is not shared
    assert changed_share(a, a) == (0.0, 4)
    assert changed_share({"1": "x"}, {"2": "x"}) == (None, 0)


def _points(changes, f1s):
    pts = [MeasurePoint(f"round {i + 1}", 10 * i, {"accuracy": f, "macro_f1": f}, {}) for i, f in enumerate(f1s)]
    for p, c in zip(pts[1:], changes):
        p.changed_prev = c
    return pts


def test_stopping_hint_says_flattened_only_with_stable_predictions_and_flat_f1():
    # At or below the threshold (mean of the last 2 of 4 comparisons) with flat CV macro-F1.
    flat, hint, nums = stopping_hint(_points([0.08, 0.04, 0.02, 0.01], [0.7, 0.8, 0.85, 0.851, 0.852]))
    assert flat and hint.startswith("gains have flattened: 1.5% of stop-set predictions changed per round")
    assert "<= 2.0%" in hint and "(+0.001)" in hint
    assert nums["changed_n"] == 2 and nums["changed_mean_before"] == pytest.approx(0.06)
    # Above the threshold, within the ceiling and no longer falling: the plateau branch.
    flat, hint, _ = stopping_hint(_points([0.04, 0.03, 0.035, 0.04], [0.6, 0.7, 0.75, 0.75, 0.749]))
    assert flat and "3.8% of stop-set predictions changed per round (mean of last 2) <= 5.0%" in hint
    assert "no longer falling (3.5% -> 3.8%)" in hint
    # Within the ceiling but still falling.
    flat, hint, _ = stopping_hint(_points([0.06, 0.05, 0.04, 0.03], [0.6, 0.7, 0.75, 0.75, 0.75]))
    assert not flat and "predictions still settling (3.5% of stop-set predictions" in hint and "down from 5.5%" in hint
    # change_fall lets a small relative fall count as levelled off: 3.5% is 36% below 5.5%.
    assert stopping_hint(_points([0.06, 0.05, 0.04, 0.03], [0.6, 0.7, 0.75, 0.75, 0.75]), change_fall=0.4)[0]
    flat, hint, _ = stopping_hint(_points([0.2, 0.1, 0.08, 0.07], [0.6, 0.7, 0.75, 0.8, 0.85]))
    assert not flat and "keep labeling: predictions still changing (7.5% of stop-set" in hint and "(+0.050)" in hint
    flat, hint, _ = stopping_hint(_points([0.01, 0.005, 0.004, 0.001], [0.6, 0.7, 0.75, 0.8, 0.85]))
    assert not flat and "predictions stable" in hint and "still rising" in hint
    # F1 ignored (None): stability alone decides.
    assert stopping_hint(_points([0.01, 0.005, 0.004, 0.001], [0.6, 0.7, 0.75, 0.8, 0.85]), f1_tolerance=None)[0]
    flat, hint, _ = stopping_hint(_points([0.0], [0.8, 0.8]))
    assert not flat and "1 of the 4 model-to-model comparisons the rule needs" in hint
    flat, hint, _ = stopping_hint(_points([], [0.8]))
    assert not flat and "too early" in hint


def test_build_status_counts_queues_and_classes():
    records = [
        {"round": 1, "time": "2026-01-01T00:00:00+00:00", "strategy": "random", "counts": {"n_labeled": 0},
         "cv": None, "queue": {"ids": ["a", "b"]}, "stop_set": {"ids": ["a", "b", "c", "d"], "predictions": None}},
        {"round": 2, "time": "2026-01-02T00:00:00+00:00", "strategy": "margin", "counts": {"n_labeled": 2},
         "cv": {"accuracy": 0.5, "macro_f1": 0.4}, "queue": {"ids": ["c", "d"]},
         "stop_set": {"ids": ["a", "b", "c", "d"], "predictions": ["x", "x", "y", "y"]}},
    ]
    ids = np.array(["a", "b", "c", "d", "e"], dtype=object)
    labels = np.array(["x", None, "y", None, None], dtype=object)
    now = MeasurePoint("now", 2, {"accuracy": 0.6, "macro_f1": 0.55}, {"a": "x", "b": "y", "c": "y", "d": "y"})
    rep = build_status(records, ids, labels, now=now)
    assert rep.rounds["queue_labeled"].tolist() == [1, 1]
    assert rep.still_unlabeled_earlier == 1 and rep.still_unlabeled_latest == 1
    assert rep.class_counts == {"x": 1, "y": 1} and rep.labels_per_round == {"1": 1, "2": 1}
    assert rep.points[-1].kappa_prev == pytest.approx(0.5)
    assert rep.points[-1].changed_prev == pytest.approx(0.25)  # b: x -> y, of the 4 stop-set rows
    text = format_status(rep)
    assert "now" in text and "0.550" in text and "stopping hint: keep labeling" in text
    assert next(line for line in text.splitlines() if line.startswith("now")).split()[-2:] == ["0.500", "25.0%"]


def test_cli_loop_status_after_each_round(tmp_path):
    data = tmp_path / "data.csv"
    df = write_data(data, n=240, n_labeled=0)
    gold = dict(zip(df["id"], df["gold"]))
    res = runner.invoke(app, ["status", str(data)])
    assert res.exit_code == 1 and "no rounds recorded yet" in res.output
    outputs = []
    for r in (1, 2, 3):
        q = tmp_path / f"q{r}.csv"
        res = runner.invoke(app, ["select", str(data), "--budget", "30", "--model", "hashing", "--out", str(q), "-q"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["export", str(q), "--format", "label-studio", "--out", str(tmp_path / f"t{r}.json")])
        assert res.exit_code == 0, res.output
        tasks = json.loads((tmp_path / f"t{r}.json").read_text())
        (tmp_path / f"ls{r}.json").write_text(json.dumps(label_studio_export(tasks, gold)))
        res = runner.invoke(app, ["merge", str(data), str(tmp_path / f"ls{r}.json"), "--in-place"])
        assert res.exit_code == 0, res.output
        res = runner.invoke(app, ["status", str(data)])
        assert res.exit_code == 0, res.output
        outputs.append(res.stdout)
    records = read_ledger(ledger_path(data))
    assert [r["round"] for r in records] == [1, 2, 3]
    merged = pd.read_csv(data, dtype=str, keep_default_na=False)
    assert (merged["label"] != "").sum() == 90
    assert merged["label_round"].value_counts().to_dict() == {"": 150, "1": 30, "2": 30, "3": 30}
    last = outputs[-1]
    assert "data: " in last and "(90 of 240 rows labeled)" in last and "3 round(s)" in last
    assert "labels per round: 1: 30, 2: 30, 3: 30" in last
    assert "queued but still unlabeled: 0 from earlier rounds, 0 from the latest round" in last
    now_line = next(line for line in last.splitlines() if line.startswith("now"))
    assert "90" in now_line and now_line.split()[-1] != "-"  # share changed vs round 3's model
    assert "stopping hint: keep labeling" in last
    assert records[2]["cv"]["n"] == 60 and records[1]["stop_set"]["predictions"] is not None


def test_two_data_files_in_one_folder_are_two_loops(tmp_path):
    """status and round numbers of a.csv never include rounds run on b.csv in the same folder."""
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_data(a, n=120, n_labeled=30, seed=0)
    write_data(b, n=120, n_labeled=30, seed=1)
    for data, n in ((a, 2), (b, 1)):
        for r in range(n):
            res = runner.invoke(app, ["select", str(data), "--budget", "5", "--model", "hashing",
                                      "-o", str(tmp_path / f"{data.stem}_q{r}.csv")])
            assert res.exit_code == 0, res.output
    assert [r["round"] for r in read_ledger(ledger_path(a))] == [1, 2]
    assert [r["round"] for r in read_ledger(ledger_path(b))] == [1]
    res = runner.invoke(app, ["status", str(b), "--no-live"])
    assert res.exit_code == 0, res.output
    assert "(1 round(s))" in res.stdout and "b.csv.rounds.jsonl" in res.stdout
