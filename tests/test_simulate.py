import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from loop_helpers import make_texts
from selector.cli.app import app
from selector.errors import ConfigError, UnknownStrategyError
from selector.loop.simulate import SimulationResult, held_out_split, simulate, verdicts

runner = CliRunner()


def blobs(n=300, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = np.array([f"c{i % k}" for i in range(n)], dtype=object)
    centers = rng.normal(0, 1, size=(k, 8)) * 3
    X = centers[[int(c[1:]) for c in y]] + rng.normal(0, 1.5, size=(n, 8))
    return X.astype(np.float32), y


def test_curves_have_one_row_per_strategy_seed_round_and_are_deterministic():
    X, y = blobs()
    kw = dict(strategies=["random", "margin", "entropy", "least_confidence"], batch=10, rounds=4, seeds=2)
    res = simulate(X, y, **kw)
    c = res.curves
    assert len(c) == 4 * 2 * 4
    assert c.groupby(["strategy", "seed"])["n_labels"].apply(list).map(lambda v: v == [10, 20, 30, 40]).all()
    assert c["accuracy"].between(0, 1).all() and c["macro_f1"].between(0, 1).all()
    assert res.n_train == 240 and res.n_test == 60
    assert 0.8 < res.full_accuracy <= 1.0
    # More labels help on well separated blobs: the final round beats the first on average.
    m = c.groupby("round")["accuracy"].mean()
    assert m[4] > m[1]
    pd.testing.assert_frame_equal(c, simulate(X, y, **kw).curves)


def test_split_column_is_used_when_it_has_test_rows():
    y = np.array(["a", "b"] * 10, dtype=object)
    split = np.array(["train"] * 15 + ["test"] * 5, dtype=object)
    train, test = held_out_split(y, split)
    assert test.tolist() == list(range(15, 20)) and train.tolist() == list(range(15))
    train, test = held_out_split(y, np.array(["train"] * 20, dtype=object), test_size=0.25, random_state=1)
    assert len(test) == 5 and set(y[test]) == {"a", "b"} and not set(train) & set(test)


def test_bad_arguments_fail_before_any_work():
    X, y = blobs(60)
    with pytest.raises(UnknownStrategyError, match="marginn"):
        simulate(X, y, strategies=["random", "marginn"], batch=5, rounds=2)
    with pytest.raises(ConfigError, match="training pool has only 48"):
        simulate(X, y, strategies=["random"], batch=25, rounds=2)
    with pytest.raises(ConfigError, match="seeds"):
        simulate(X, y, strategies=["random"], batch=5, rounds=2, seeds=0)


def test_verdict_counts_labels_saved_against_random():
    rows = []
    for s, accs in {"random": [0.5, 0.6, 0.7, 0.8], "margin": [0.6, 0.8, 0.85, 0.85], "slow": [0.4, 0.5, 0.55, 0.6]}.items():
        for r, a in enumerate(accs, start=1):
            rows.append({"strategy": s, "seed": 0, "round": r, "n_labels": 100 * r, "accuracy": a, "macro_f1": a})
    res = SimulationResult(curves=pd.DataFrame(rows), full_accuracy=0.9, full_macro_f1=0.9, n_train=1000, n_test=100)
    v = verdicts(res)
    assert v["random"] == "random: reaches 88.9% of full-data accuracy (0.800 vs 0.900) with 400 labels (baseline)"
    # margin crosses 0.8 at 200 labels: 200 fewer than random.
    assert v["margin"] == ("margin: reaches 88.9% of full-data accuracy (0.800) with 200 labels, 200 fewer than "
                           "random (400); at 400 labels: 0.850 (94.4%)")
    assert v["slow"].startswith("slow: does not reach random's best 88.9% of full-data accuracy (0.800) within 400")
    rows2 = [dict(r, strategy="margin", accuracy=r["accuracy"]) for r in rows if r["strategy"] == "margin"]
    rows2 += [{"strategy": "mid", "seed": 0, "round": r, "n_labels": 100 * r, "accuracy": a, "macro_f1": a}
              for r, a in enumerate([0.5, 0.7, 0.75, 0.8], start=1)]
    v2 = verdicts(SimulationResult(pd.DataFrame(rows2), 0.9, 0.9, 1000, 100))
    assert v2["margin"].startswith("margin: reaches 94.4% of full-data accuracy (0.850 vs 0.900) with 300 labels")
    half = [{"strategy": "random", "seed": 0, "round": r, "n_labels": 100 * r, "accuracy": a, "macro_f1": a}
            for r, a in enumerate([0.5, 0.6, 0.7, 0.8], start=1)]
    half += [{"strategy": "x", "seed": 0, "round": r, "n_labels": 100 * r, "accuracy": a, "macro_f1": a}
             for r, a in enumerate([0.5, 0.7, 0.9, 0.9], start=1)]
    # x crosses random's best (0.8) halfway between 200 (0.7) and 300 labels (0.9).
    assert "with 250 labels, 150 fewer than random (400)" in verdicts(SimulationResult(pd.DataFrame(half), 0.9, 0.9, 1, 1))["x"]


def test_cli_simulate_writes_csv_png_summary(tmp_path):
    df = make_texts(150).rename(columns={"gold": "label"})
    data = tmp_path / "full.csv"
    df.to_csv(data, index=False)
    out = tmp_path / "sim"
    res = runner.invoke(app, ["simulate", str(data), "--strategies", "random,margin", "--batch", "10", "--rounds", "3",
                              "--seeds", "1", "--out", str(out), "--model", "hashing", "-q"])
    assert res.exit_code == 0, res.output
    assert "random: reaches" in res.output and "\nmargin: " in res.output
    curves = pd.read_csv(out / "curves.csv")
    assert len(curves) == 6 and set(curves.columns) >= {"strategy", "seed", "round", "n_labels", "accuracy", "macro_f1"}
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_test"] == 30 and set(summary["verdicts"]) == {"random", "margin"}


def test_cli_simulate_refuses_unlabeled_rows(tmp_path):
    df = make_texts(30).rename(columns={"gold": "label"})
    df.loc[4, "label"] = ""
    data = tmp_path / "part.csv"
    df.to_csv(data, index=False)
    res = runner.invoke(app, ["simulate", str(data), "--out", str(tmp_path / "o"), "--model", "hashing"])
    assert res.exit_code == 1 and "needs every row labeled" in res.output and "data row 5" in res.output
