"""`selector select` and `selector strategies` through the real CLI (hashing embedder for speed)."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.cli.app import app
from selector.round.compute import QUEUE_COLUMNS

from conftest import make_table

runner = CliRunner()


def select(csv_file, tmp_path, *extra, out_name="queue.csv"):
    out = tmp_path / out_name
    result = runner.invoke(app, ["select", str(csv_file), "--budget", "10", "--out", str(out), "--model", "hashing",
                                 "--cache-dir", str(tmp_path / "cache"), "--quiet", *map(str, extra)])
    assert result.exit_code == 0, result.output
    return out, result


def test_default_strategy_is_auto_and_says_why(tmp_path, csv_file, table):
    out, _ = select(csv_file, tmp_path)
    queue = pd.read_csv(out, keep_default_na=False)
    assert len(queue) == 10 and queue["id"].is_unique
    assert (queue["strategy"] == "auto").all()
    assert set(queue["id"]) <= set(table.loc[table["label"] == "", "id"])
    assert (queue["reason"].str.len() > 0).all()


def test_queue_has_columns_and_exact_budget(tmp_path, csv_file, table):
    out, _ = select(csv_file, tmp_path, "--strategy", "margin")
    queue = pd.read_csv(out, keep_default_na=False)
    assert list(queue.columns[: len(QUEUE_COLUMNS)]) == QUEUE_COLUMNS
    assert len(queue) == 10 and queue["id"].is_unique
    assert queue["rank"].tolist() == list(range(1, 11))
    unlabeled_ids = set(table.loc[table["label"] == "", "id"])
    assert set(queue["id"]) <= unlabeled_ids
    assert (queue["strategy"] == "margin").all()
    assert queue["score"].is_monotonic_decreasing
    assert set(queue["predicted_label"]) <= {"sports", "finance", "weather"}
    assert ((queue["predicted_proba"] > 0) & (queue["predicted_proba"] <= 1)).all()


def test_round_record_beside_queue(tmp_path, csv_file):
    out, _ = select(csv_file, tmp_path)
    record = json.loads((tmp_path / "queue.round.json").read_text())
    assert record["config"]["budget"] == 10 and record["seed"] == 0
    assert record["model_fingerprint"].startswith("hashing")
    assert len(record["data"]["sha256"]) == 64
    assert record["counts"]["n_selected"] == 10
    assert record["counts"]["n_rows"] == 120
    assert {"embed", "fit", "select", "total"} <= set(record["timings_seconds"])
    assert record["versions"]["numpy"] == np.__version__
    assert record["outputs"]["queue"] == str(out)


def test_same_seed_same_queue_different_seed_differs(tmp_path, csv_file):
    a, _ = select(csv_file, tmp_path, "--strategy", "random", "--seed", "3", out_name="a.csv")
    b, _ = select(csv_file, tmp_path, "--strategy", "random", "--seed", "3", out_name="b.csv")
    c, _ = select(csv_file, tmp_path, "--strategy", "random", "--seed", "4", out_name="c.csv")
    assert pd.read_csv(a).equals(pd.read_csv(b))
    assert not pd.read_csv(a)["id"].equals(pd.read_csv(c)["id"])


def test_input_file_is_not_modified(tmp_path, csv_file):
    before = csv_file.read_bytes()
    select(csv_file, tmp_path)
    assert csv_file.read_bytes() == before


@pytest.mark.parametrize("ext", ["parquet", "jsonl"])
def test_other_input_and_output_formats(tmp_path, table, ext):
    path = tmp_path / f"data.{ext}"
    if ext == "parquet":
        table.to_parquet(path, index=False)
    else:
        table.to_json(path, orient="records", lines=True)
    out, _ = select(path, tmp_path, out_name=f"queue.{ext}")
    queue = pd.read_parquet(out) if ext == "parquet" else pd.read_json(out, lines=True)
    assert len(queue) == 10


def test_budget_larger_than_pool_queues_whole_pool_with_warning(tmp_path):
    path = tmp_path / "data.csv"
    df = make_table(30, labeled_frac=0.8)
    df.to_csv(path, index=False)
    n_pool = int((df["label"] == "").sum())
    out = tmp_path / "q.csv"
    result = runner.invoke(app, ["select", str(path), "--budget", "500", "--out", str(out), "--model", "hashing",
                                 "--cache-dir", str(tmp_path / "c"), "--quiet"])
    assert result.exit_code == 0
    assert "larger than the pool" in result.stderr
    assert len(pd.read_csv(out)) == n_pool


def test_config_file_and_flag_precedence(tmp_path, csv_file):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("budget: 4\nstrategy: entropy\n")
    out, _ = select(csv_file, tmp_path, "--config", cfg, "--strategy", "least_confidence")
    queue = pd.read_csv(out)
    # --budget 10 on the command line beats the file's 4; the flag's strategy beats the file's.
    assert len(queue) == 10 and (queue["strategy"] == "least_confidence").all()


def test_declared_labels_no_row_has_yet_get_a_share_of_the_queue(tmp_path, csv_file):
    """``--labels`` (or ``labels:`` in the config) declares the label set; auto spends its ``unseen_share``
    on rows far from every label for a declared label nobody has found, and says which."""
    out, _ = select(csv_file, tmp_path, "--labels", "sports,finance,weather,politics")
    reasons = pd.read_csv(out, keep_default_na=False)["reason"]
    unseen = reasons[reasons.str.startswith("auto[unseen class: 1 declared label(s) with no labeled row yet: politics]")]
    assert 0 < len(unseen) < len(reasons)
    plain, _ = select(csv_file, tmp_path, out_name="plain.csv")
    assert not pd.read_csv(plain, keep_default_na=False)["reason"].str.contains("unseen class").any()
    # Without --quiet the run says how many queued rows look for them; a labeled row whose label is
    # not declared is a warning naming the label.
    out = tmp_path / "told.csv"
    told = runner.invoke(app, ["select", str(csv_file), "--budget", "10", "--out", str(out), "--model", "hashing",
                               "--cache-dir", str(tmp_path / "cache"), "--labels", "sports,finance,politics"])
    assert told.exit_code == 0, told.output
    assert "warning: " in told.output and "1 label(s) outside the declared labels: weather" in told.output
    unseen = (pd.read_csv(out, keep_default_na=False)["reason"].str.startswith("auto[unseen class")).sum()
    assert f"auto: {unseen} of 10 queued rows look for declared labels that no row has yet" in told.output


def test_default_config_documents_every_key():
    import dataclasses
    from pathlib import Path

    from selector.config import SelectConfig, load_config

    path = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    assert load_config(path) == SelectConfig()
    import yaml

    assert set(yaml.safe_load(path.read_text())) == {f.name for f in dataclasses.fields(SelectConfig)}


def test_user_supplied_embeddings_skip_the_model(tmp_path, csv_file, table):
    emb = tmp_path / "emb.npy"
    np.save(emb, np.random.default_rng(0).normal(size=(len(table), 16)).astype(np.float32))
    out, _ = select(csv_file, tmp_path, "--embeddings", emb)
    record = json.loads((tmp_path / "queue.round.json").read_text())
    assert record["model_fingerprint"] == "user-supplied"
    assert len(pd.read_csv(out)) == 10


def test_summary_line_reports_cache_use(tmp_path, csv_file):
    out = tmp_path / "q.csv"
    args = ["select", str(csv_file), "--budget", "5", "--out", str(out), "--model", "hashing",
            "--cache-dir", str(tmp_path / "c")]
    first = runner.invoke(app, args)
    second = runner.invoke(app, args)
    assert "embedded 120 new texts, 0 from cache" in first.stderr
    assert "embedded 0 new texts, 120 from cache" in second.stderr


def test_strategies_lists_descriptions():
    result = runner.invoke(app, ["strategies"])
    assert result.exit_code == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"random", "entropy", "margin", "least_confidence"} <= set(names)
    assert all(len(line.split(None, 1)) == 2 for line in result.stdout.splitlines())


def test_example_flag_needs_no_data_and_refuses_both(tmp_path, csv_file):
    result = runner.invoke(app, ["select", str(csv_file), "--example", "--out", str(tmp_path / "q.csv")])
    assert result.exit_code == 1 and "or --example, not both" in result.stderr
