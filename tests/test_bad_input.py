"""Every bad input named in the foundation issue: one clear line, exit code 1, nothing written."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.cli.app import app

from conftest import make_table

runner = CliRunner()


def run(args, tmp_path):
    out = tmp_path / "queue.csv"
    result = runner.invoke(app, ["select", *map(str, args), "--out", str(out), "--model", "hashing",
                                 "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    return result, out


def assert_one_line_error(result, out: Path, *needles: str):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()
    assert not out.with_name("queue.round.json").exists()


def test_missing_file(tmp_path):
    result, out = run([tmp_path / "nope.csv", "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "nope.csv", "not found")


def test_unknown_format(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    result, out = run([path, "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "data.xlsx", "unknown file format", ".csv")


def test_missing_text_column_lists_columns(tmp_path):
    path = tmp_path / "data.csv"
    make_table().rename(columns={"text": "body"}).to_csv(path, index=False)
    result, out = run([path, "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "'text'", "columns found: id, body, label", "--text-col")


def test_missing_label_column_lists_columns(tmp_path):
    path = tmp_path / "data.csv"
    make_table().drop(columns="label").to_csv(path, index=False)
    result, out = run([path, "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "'label'", "columns found: id, text", "--label-col")


def test_missing_named_id_column_lists_columns(tmp_path):
    path = tmp_path / "data.csv"
    make_table().to_csv(path, index=False)
    result, out = run([path, "--budget", 5, "--id-col", "row_id"], tmp_path)
    assert_one_line_error(result, out, "'row_id'", "columns found: id, text, label", "--id-col")


def test_missing_default_id_column_generates_ids(tmp_path):
    path = tmp_path / "data.csv"
    make_table(with_id=False).to_csv(path, index=False)
    result, out = run([path, "--budget", 5], tmp_path)
    assert result.exit_code == 0, result.output
    ids = pd.read_csv(out)["id"]
    assert ids.str.fullmatch(r"[0-9a-f]{12}-\d+").all()


def test_missing_text_column_via_flag_lists_columns(tmp_path):
    path = tmp_path / "data.csv"
    make_table().to_csv(path, index=False)
    result, out = run([path, "--budget", 5, "--text-col", "txt"], tmp_path)
    assert_one_line_error(result, out, "'txt'", "columns found: id, text, label")


def test_duplicate_ids(tmp_path):
    path = tmp_path / "data.csv"
    df = make_table()
    df.loc[5, "id"] = df.loc[9, "id"]
    df.to_csv(path, index=False)
    result, out = run([path, "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "duplicate id", repr(df.loc[9, "id"]), "rows 6, 10")


def test_empty_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("")
    result, out = run([path, "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "empty")


def test_header_only_file(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("id,text,label\n")
    result, out = run([path, "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "no data rows")


def test_no_unlabeled_rows(tmp_path):
    path = tmp_path / "data.csv"
    df = make_table()
    df["label"] = "sports"
    df.to_csv(path, index=False)
    result, out = run([path, "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "every row is labeled", "nothing to select")


@pytest.mark.parametrize("budget", [0, -3])
def test_budget_below_one(tmp_path, csv_file, budget):
    result, out = run([csv_file, "--budget", budget], tmp_path)
    assert_one_line_error(result, out, "budget must be a positive integer")


def test_non_utf8_bytes_name_the_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"id,text,label\n1,hello,a\n2,caf\xe9 au lait,\n3,bye,b\n")
    result, out = run([path, "--budget", 1], tmp_path)
    assert_one_line_error(result, out, "line 3", "not valid UTF-8", "UTF-8")


def test_empty_text_names_the_row(tmp_path):
    path = tmp_path / "data.csv"
    df = make_table()
    df.loc[7, "text"] = "   "
    df.to_csv(path, index=False)
    result, out = run([path, "--budget", 5], tmp_path)
    assert_one_line_error(result, out, "empty text", "data rows 8")


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"id": "1", "text": "a", "label": "x"}\n{"id": 2, "text": \n')
    result, out = run([path, "--budget", 1], tmp_path)
    assert_one_line_error(result, out, "line 2", "not valid JSON")


def test_unknown_strategy_suggests(tmp_path, csv_file):
    result, out = run([csv_file, "--budget", 5, "--strategy", "entropi"], tmp_path)
    assert_one_line_error(result, out, "unknown strategy", "'entropy'")


def test_all_empty_label_column_falls_back_and_says_so(tmp_path):
    path = tmp_path / "data.csv"
    df = make_table()
    df["label"] = ""
    df.to_csv(path, index=False)
    result, out = run([path, "--budget", 7, "--strategy", "margin"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "cold start" in result.stderr and "0 labeled rows" in result.stderr
    queue = pd.read_csv(out)
    assert len(queue) == 7
    assert queue["reason"].str.contains("cold start").all()


def test_single_class_falls_back(tmp_path):
    path = tmp_path / "data.csv"
    df = make_table()
    df.loc[df["label"] != "", "label"] = "sports"
    df.to_csv(path, index=False)
    result, out = run([path, "--budget", 4, "--strategy", "margin"], tmp_path)
    assert result.exit_code == 0, result.output
    assert "only one class labeled" in result.stderr
    assert pd.read_csv(out)["reason"].str.contains("cold start").all()


def test_out_equal_to_input_is_refused(tmp_path, csv_file):
    before = csv_file.read_bytes()
    result = runner.invoke(app, ["select", str(csv_file), "--budget", "3", "--out", str(csv_file),
                                 "--model", "hashing", "--cache-dir", str(tmp_path / "c")])
    assert result.exit_code == 1 and "input file" in result.stderr
    assert csv_file.read_bytes() == before


def test_bad_embeddings_file_shape(tmp_path, csv_file):
    import numpy as np

    emb = tmp_path / "emb.npy"
    np.save(emb, np.zeros((3, 8), dtype=np.float32))
    result, out = run([csv_file, "--budget", 3, "--embeddings", emb], tmp_path)
    assert_one_line_error(result, out, "emb.npy", "shape (3, 8)", "120 rows")


def test_unknown_config_key(tmp_path, csv_file):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("budgett: 4\n")
    result, out = run([csv_file, "--config", cfg], tmp_path)
    assert_one_line_error(result, out, "budgett", "did you mean 'budget'")


def test_usage_error_exits_2(tmp_path, csv_file):
    result = runner.invoke(app, ["select", str(csv_file), "--budget", "many"])
    assert result.exit_code == 2
