"""Command-line conventions: --version, `-` for stdin/stdout, more table formats, progress that suits
a log file, each warning once."""

from __future__ import annotations

import gzip
import io
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from conftest import make_table
from selector.cli import app
from selector.cli.app import handle_errors
from selector.errors import DataError
from selector.io import read_table, sniff_extension, table_sibling, write_table
from selector.models.progress import Progress
from selector.round.record import record_path_for
from selector.round.suspects import suspects_path_for

runner = CliRunner()


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0 and res.stdout.startswith("selector ")


@pytest.mark.parametrize("name", ["t.tsv", "t.json", "t.csv.gz", "t.jsonl.gz", "t.tsv.gz", "t.json.gz"])
def test_table_formats_round_trip(tmp_path, name):
    df = pd.DataFrame({"id": ["007", "b"], "text": ["a, \"quoted\"\ttab", "=SUM(A1)"], "label": ["x", ""]})
    path = write_table(df, tmp_path / name)
    back = read_table(path)
    assert back["id"].tolist() == ["007", "b"] and back["text"].tolist() == df["text"].tolist()
    assert back["label"].fillna("").tolist() == ["x", ""]
    if name.endswith(".gz"):
        gzip.decompress(path.read_bytes())  # really gzipped
        assert write_table(df, tmp_path / ("again-" + name)).read_bytes() == path.read_bytes()  # deterministic


def test_bad_formats_are_one_clear_error(tmp_path):
    (tmp_path / "a.json").write_text('{"not": "an array"}')
    with pytest.raises(DataError, match="array of objects"):
        read_table(tmp_path / "a.json")
    (tmp_path / "b.csv.gz").write_bytes(b"plain text, not gzip")
    with pytest.raises(DataError, match="not a readable gzip file"):
        read_table(tmp_path / "b.csv.gz")
    with pytest.raises(DataError, match=r"unknown file format '\.xlsx'.*\.csv.*also as \.gz"):
        read_table(tmp_path / "c.xlsx")


def test_sibling_names_keep_the_compound_extension():
    assert suspects_path_for("q.csv.gz") == Path("q.suspects.csv.gz")
    assert record_path_for("q.csv.gz") == Path("q.round.json") and record_path_for("q.tsv") == Path("q.round.json")
    assert table_sibling("a/b.c.jsonl", "key") == Path("a/b.c.key.jsonl")
    assert [sniff_extension(b) for b in (b'{"a": 1}\n', b"[{}]", b"id\ttext\n", b"id,text\n")] == \
        [".jsonl", ".json", ".tsv", ".csv"]


def test_select_reads_gzipped_csv_and_writes_tsv(tmp_path):
    data = tmp_path / "data.csv.gz"
    data.write_bytes(gzip.compress(make_table().to_csv(index=False).encode()))
    out = tmp_path / "queue.tsv"
    res = runner.invoke(app, ["select", str(data), "--budget", "5", "--model", "hashing", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert len(pd.read_csv(out, sep="\t")) == 5 and (tmp_path / "queue.round.json").exists()
    assert (tmp_path / "queue.suspects.tsv").exists() and (tmp_path / ".selector" / "data.csv.gz.rounds.jsonl").exists()


def test_stdin_data_and_stdout_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv = make_table().to_csv(index=False)
    res = runner.invoke(app, ["validate", "-", "--model", "hashing", "--out", "-", "--blockers", ""], input=csv)
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("check,severity,row_id,group")  # only the findings table on stdout
    assert "rows," in res.stderr and "PASS" in res.stderr
    assert (tmp_path / ".selector").is_dir()  # the cache of piped data lives in ./.selector
    res = runner.invoke(app, ["suspects", "-", "--model", "hashing", "-o", "-"], input=csv)
    assert res.exit_code == 0, res.output
    assert {"id", "given_label", "p_mislabeled"} <= set(pd.read_csv(io.StringIO(res.stdout)).columns)
    res = runner.invoke(app, ["select", "-", "--model", "hashing"], input=csv)
    assert res.exit_code == 1 and "needs a file" in res.stderr
    res = runner.invoke(app, ["validate", "-", "--no-embed"], input="")
    assert res.exit_code == 1 and "standard input is empty" in res.stderr


def test_progress_writes_plain_lines_to_a_log_and_a_bar_only_on_a_terminal(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr("selector.models.progress.LINE_EVERY_S", 0.0)
    with Progress(300, "embedding", unit="text", stream=log) as p:
        for _ in range(3):
            p.update(100)
    text = log.getvalue()
    assert "\r" not in text and text.splitlines()[0].startswith("embedding: 100/300 texts (33%)")
    quiet = io.StringIO()
    with Progress(300, "embedding", unit="text", enabled=False, stream=quiet) as p:
        p.update(300)
    assert quiet.getvalue() == ""


def test_each_warning_is_shown_once(capsys):
    @handle_errors
    def noisy():
        for _ in range(12):
            warnings.warn("the same sklearn complaint", UserWarning)
        warnings.warn("another one", UserWarning)

    noisy()
    err = capsys.readouterr().err
    assert err.count("warning: the same sklearn complaint") == 1 and err.count("warning: another one") == 1


def test_json_array_data_works_with_select(tmp_path):
    data = tmp_path / "data.json"
    data.write_text(json.dumps(make_table().to_dict("records")))
    res = runner.invoke(app, ["select", str(data), "--budget", "3", "--model", "hashing", "-o", str(tmp_path / "q.json")])
    assert res.exit_code == 0, res.output
    assert [r["rank"] for r in json.loads((tmp_path / "q.json").read_text())] == [1, 2, 3]
    assert np.isfinite([r["score"] for r in json.loads((tmp_path / "q.json").read_text())]).all()
