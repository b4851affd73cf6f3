"""The bad-input and fault matrix of the spine issue: every user-caused failure is one ``error:`` line.

Each case runs the real CLI and asserts: exit code 1, exactly one stderr line starting with
``error:``, no new file anywhere under the working folder, and every input's sha256 unchanged.
Cases that need a folder the process cannot write run the CLI as an unprivileged user (root
writes through permission bits), and are skipped where that user does not exist.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import selector.io
from selector.cli import app
from selector.io import read_table
from selector.loop.ledger import ledger_path, read_ledger

from conftest import make_table

runner = CliRunner()
HASHING = ["--model", "hashing", "--quiet"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (dot-folders and temps included) with its sha256."""
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    df.to_csv(path, index=False)
    return path


def annotations_table() -> pd.DataFrame:
    rows = []
    for i in range(12):
        for a in ("ann1", "ann2"):
            label = ["pos", "neg"][(i + (a == "ann2" and i % 4 == 0)) % 2]
            rows.append({"item_id": f"i{i}", "annotator": a, "label": label, "text": f"item text {i}"})
    return pd.DataFrame(rows)


@pytest.fixture
def work(tmp_path, monkeypatch):
    """A working folder with a data table, annotations, decisions, gold and a queue."""
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "base.csv", make_table(120))
    write_csv(tmp_path / "new.csv", pd.DataFrame({"text": [f"brand new text about rain {i}" for i in range(5)]}))
    write_csv(tmp_path / "ann.csv", annotations_table())
    write_csv(tmp_path / "decisions.csv", pd.DataFrame({"item_id": ["i0"], "final_label": ["pos"], "reviewer": ["r"]}))
    write_csv(tmp_path / "g.csv", pd.DataFrame({"item_id": ["i0", "i1"], "gold_label": ["neg", "pos"],
                                               "text": ["gold one", "gold two"]}))
    write_csv(tmp_path / "labels.csv", pd.DataFrame({"id": ["r0005"], "label": ["sports"]}))
    pd.DataFrame({"rank": [1, 2], "id": ["r0005", "r0006"], "text": ["a", "b"]}).to_json(
        tmp_path / "q.jsonl", orient="records", lines=True)
    return tmp_path


def assert_one_error_line(result_code: int, stderr: str, *needles: str) -> str:
    assert result_code == 1, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def check_case(work: Path, args: list[str], *needles: str, prepare=None) -> str:
    if prepare is not None:
        prepare(work)
    before = snapshot(work)
    result = runner.invoke(app, args)
    line = assert_one_error_line(result.exit_code, result.stderr, *needles)
    assert snapshot(work) == before, "files were created, changed or removed"
    return line


def _suspects_as_input(work: Path) -> None:
    write_csv(work / "q.suspects.csv", make_table(60))


def _bad_ledger(work: Path) -> None:
    (work / ".selector").mkdir()
    (work / ".selector" / "rounds.jsonl").write_text('{"round": 1}\nnot json at all\n{"round": 2}\n')


def _cache_is_a_file(work: Path) -> None:
    (work / ".selector").mkdir()
    (work / ".selector" / "embeddings").write_text("I am a file")


def _classifier_config(work: Path) -> None:
    (work / "c.yaml").write_text("classifier_params: {C: -1}\n")


def _string_embeddings(work: Path) -> None:
    np.save(work / "e.npy", np.array([["a"] * 4] * 120))


def _ls_string_result(work: Path) -> None:
    (work / "ls.json").write_text(json.dumps([{"id": 1, "data": {"selector_id": "r0005", "text": "x"},
                                                "annotations": [{"result": "sports"}]}]))


def _symlink_to_input(work: Path) -> None:
    os.symlink(work / "base.csv", work / "link.csv")


def _hardlink_to_input(work: Path) -> None:
    os.link(work / "base.csv", work / "hard.csv")


def _out_folder(work: Path) -> None:
    (work / "outdir").mkdir()


def _yaml_config(name: str, text: str = "seed: 1\n"):
    return lambda work: (work / name).write_text(text)


def _labels_file(name: str):
    return lambda work: (work / name).write_text("sports\nweather\nfinance\n")


def _label_config(name: str):
    return lambda work: (work / name).write_text(
        '<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
        '<Choice value="sports"/></Choices></View>')


def _write_bytes(name: str, data: bytes):
    return lambda work: (work / name).write_bytes(data)


def _json_file(name: str, obj):
    return lambda work: (work / name).write_text(json.dumps(obj))


def _ledger_lines(*lines: str):
    def prepare(work: Path) -> None:
        (work / ".selector").mkdir(exist_ok=True)
        (work / ".selector" / "base.csv.rounds.jsonl").write_text("".join(line + "\n" for line in lines))
    return prepare


def _a_round(work: Path) -> None:
    assert runner.invoke(app, ["select", "base.csv", "--budget", "5", "-o", "first.csv", *HASHING]).exit_code == 0


def _bad_zip(work: Path) -> None:
    import zipfile

    with zipfile.ZipFile(work / "dc.zip", "w") as z:
        z.writestr("alice.jsonl", b'{"id": 1, "text": "\xff\xfe", "selector_id": "r0005", "label": ["sports"]}\n')


def _numeric_source_parquet(work: Path) -> None:
    pd.DataFrame({"id": ["a", "b"], "text": ["x y", "z w"], "label": ["p", ""],
                  "source": [1, 2]}).to_parquet(work / "d.parquet")
    pd.DataFrame({"text": ["a new thing", "another one"]}).to_parquet(work / "n.parquet")


def _fully_labeled(work: Path) -> None:
    write_csv(work / "all.csv", make_table(120).assign(label="sports"))


def _parquet_lists(work: Path) -> None:
    pd.DataFrame({"id": ["a", "b", "c"], "text": [["x"], ["y", "z"], ["w"]],
                  "label": ["p", "", "n"]}).to_parquet(work / "lists.parquet")


CASES = {
    # An output that is an input (the same path, a derived sibling, a link) or another output.
    "ingest --dropped is DATA": (["ingest", "base.csv", "new.csv", "--source", "p", "--out", "grown.csv",
                                  "--dropped", "base.csv", *HASHING], ("--dropped", "input file"), None),
    "gold --out is the annotations": (["gold", "g.csv", "ann.csv", "--out", "ann.csv"], ("--out", "input file"), None),
    "unsure --items-out is the annotations": (["unsure", "ann.csv", "--items-out", "ann.csv"],
                                              ("--items-out", "input file"), None),
    "adjudicate --rework-out is the decisions": (["adjudicate", "ann.csv", "decisions.csv", "--out", "r.csv",
                                                  "--rework-out", "decisions.csv"], ("--rework-out", "input file"), None),
    "adjudicate two outputs one file": (["adjudicate", "ann.csv", "decisions.csv", "--out", "r.csv",
                                         "--rework-out", "r.csv"], ("same file",), None),
    "merge --out is the labels": (["merge", "base.csv", "labels.csv", "--out", "labels.csv"], ("--out", "input file"), None),
    "export --out is the queue": (["export", "q.jsonl", "--format", "prodigy", "--out", "q.jsonl"],
                                  ("--out", "input file"), None),
    "select suspects sibling is DATA": (["select", "q.suspects.csv", "--out", "q.csv", *HASHING],
                                        ("suspect list", "input file"), _suspects_as_input),
    "select --out is --gold": (["select", "base.csv", "--gold", "g.csv", "--out", "g.csv", *HASHING],
                               ("--out", "input file"), None),
    "select --out is a symlink to DATA": (["select", "base.csv", "--out", "link.csv", *HASHING],
                                          ("--out", "input file"), _symlink_to_input),
    "select --out is a hard link of DATA": (["select", "base.csv", "--out", "hard.csv", *HASHING],
                                            ("--out", "input file"), _hardlink_to_input),
    # Checked in the plan, before any embedding.
    "select --out is a folder": (["select", "base.csv", "--out", "outdir", *HASHING], ("folder",), _out_folder),
    "select unknown --out extension": (["select", "base.csv", "--out", "q.xlsx", *HASHING],
                                       ("q.xlsx", "unknown file format"), None),
    "select --bucket-priority out of range": (["select", "base.csv", "--bucket-priority", "1.5", *HASHING],
                                              ("--bucket-priority",), None),
    "select bad ledger line": (["select", "base.csv", *HASHING], ("rounds.jsonl", "line 2"), _bad_ledger),
    "select cache embeddings is a file": (["select", "base.csv", *HASHING], ("embeddings", "is a file"),
                                          _cache_is_a_file),
    "select classifier C=-1": (["select", "base.csv", "--config", "c.yaml", *HASHING],
                               ("invalid classifier parameter", "C"), _classifier_config),
    "select string embeddings": (["select", "base.csv", "--embeddings", "e.npy", "--quiet"],
                                 ("e.npy", "numbers"), _string_embeddings),
    "merge Label Studio result is a string": (["merge", "base.csv", "ls.json", "--out", "m.csv"],
                                              ("ls.json", "result"), _ls_string_result),
    # Issue 31. Every input a command reads is in its plan: an output may be none of them.
    "select --out is the --labels file": (["select", "base.csv", "--labels", "labels.csv", "-o", "labels.csv",
                                           *HASHING], ("--out", "input file", "--labels"), None),
    "select --out is the --config file": (["select", "base.csv", "--config", "cfg.csv", "-o", "cfg.csv", *HASHING],
                                          ("--out", "input file", "--config"), _yaml_config("cfg.csv")),
    "suspects --out is the --config file": (["suspects", "base.csv", "--config", "c.jsonl", "-o", "c.jsonl",
                                             *HASHING], ("--out", "input file", "--config"), _yaml_config("c.jsonl")),
    "card's JSON sibling is the --labels file": (["card", "base.csv", "--labels", "l.json", "-o", "l.md", *HASHING],
                                                 ("l.json", "input file", "--labels"), _labels_file("l.json")),
    "validate --out is the --labels file": (["validate", "base.csv", "--labels", "labels.csv", "-o", "labels.csv",
                                             *HASHING], ("--out", "input file", "--labels"), None),
    "select's round record is the --config file": (["select", "base.csv", "--config", "q.round.json", "-o", "q.csv",
                                                    *HASHING], ("round record", "input file", "--config"),
                                                   _yaml_config("q.round.json", '{"budget": 5}')),
    "select's suspect list is the --labels file": (["select", "base.csv", "--labels", "q.suspects.csv", "-o", "q.csv",
                                                    *HASHING], ("suspect list", "input file", "--labels"),
                                                   _labels_file("q.suspects.csv")),
    "export's label config sibling is --label-config": (
        ["export", "q.jsonl", "--format", "label-studio", "-o", "t.json", "--label-config", "t.label_config.xml"],
        ("t.label_config.xml", "input file"), _label_config("t.label_config.xml")),
    # The loop's ledger is never an output.
    "merge -o the ledger": (["merge", "base.csv", "labels.csv", "-o", ".selector/base.csv.rounds.jsonl"],
                            ("never an output",), _a_round),
    "suspects -o the ledger": (["suspects", "base.csv", "-o", ".selector/base.csv.rounds.jsonl", *HASHING],
                               ("never an output",), _a_round),
    "validate -o the ledger": (["validate", "base.csv", "-o", ".selector/base.csv.rounds.jsonl", *HASHING],
                               ("never an output",), _a_round),
    "ingest -o the ledger": (["ingest", "base.csv", "new.csv", "--source", "p", "-o", ".selector/base.csv.rounds.jsonl",
                              *HASHING], ("never an output",), _a_round),
    # Every reader validates shape before use.
    "binary config": (["select", "base.csv", "--config", "bin.yaml", *HASHING], ("bin.yaml", "not UTF-8"),
                      _write_bytes("bin.yaml", b"\xff\xfe\x00\x01budget: 3")),
    "deeply nested YAML config": (["select", "base.csv", "--config", "deep.yaml", *HASHING], ("deep.yaml", "nested"),
                                  _write_bytes("deep.yaml", b"[" * 100_000)),
    "ledger round is a string": (["select", "base.csv", *HASHING], ("rounds.jsonl", "line 1", "'round'"),
                                 _ledger_lines('{"round": "1"}')),
    "ledger round is null": (["status", "base.csv"], ("rounds.jsonl", "line 1", "'round'"),
                             _ledger_lines('{"round": null}')),
    "ledger queue.ids is not a list": (["status", "base.csv"], ("rounds.jsonl", "line 1", "queue.ids"),
                                       _ledger_lines('{"round": 1, "queue": {"ids": "r0001"}}')),
    "merge Argilla response is a string": (["merge", "base.csv", "arg.json", "-o", "m.csv"], ("arg.json", "responses"),
                                           _json_file("arg.json", [{"id": "r0005", "text": "x", "responses": "sports",
                                                                    "status": "submitted"}])),
    "merge doccano label is an int": (["merge", "base.csv", "dc.jsonl", "-o", "m.csv"], ("dc.jsonl", "line 1", "int"),
                                      _write_bytes("dc.jsonl", b'{"id": 1, "text": "x", "selector_id": "r0005", '
                                                               b'"label": [5]}\n')),
    "merge doccano export is not UTF-8": (["merge", "base.csv", "dc.json", "-o", "m.csv"], ("dc.json", "UTF-8"),
                                          _write_bytes("dc.json", b'[{"id": 1, "text": "\xff\xfe", "selector_id": '
                                                                  b'"r0005", "label": ["sports"]}]')),
    "merge doccano zip member is not UTF-8": (["merge", "base.csv", "dc.zip", "-o", "m.csv"], ("dc.zip", "UTF-8"),
                                              _bad_zip),
    "merge Label Studio data is a string": (["merge", "base.csv", "ls2.json", "-o", "m.csv"], ("ls2.json", "'data'"),
                                            _json_file("ls2.json", [{"id": 1, "data": "r0005",
                                                                     "annotations": [{"result": []}]}])),
    "merge Prodigy accept is a string": (["merge", "base.csv", "pr.jsonl", "-o", "m.csv"], ("pr.jsonl", "'accept'"),
                                         _write_bytes("pr.jsonl", b'{"text": "x", "selector_id": "r0005", "answer": '
                                                                  b'"accept", "accept": "sports", "options": '
                                                                  b'[{"id": "sports", "text": "sports"}]}\n')),
    # Accepted silently before.
    "duplicate column names": (["validate", "dup.csv", *HASHING], ("dup.csv", "'label' more than once"),
                               _write_bytes("dup.csv", b"id,text,label,label\n1,goal match,sports,weather\n"
                                                       b"2,rain storm,,\n")),
    "a Parquet text column of lists": (["select", "lists.parquet", *HASHING], ("lists.parquet", "row 1", "a list"),
                                       _parquet_lists),
    "--device bogus": (["select", "base.csv", "--device", "bogus", *HASHING], ("device must be",), None),
    "--labels with an empty entry": (["select", "base.csv", "--labels", "sports,,weather", *HASHING],
                                     ("empty entry",), None),
    # Refused before anything is embedded (no cache entry is written: the snapshot covers .selector/).
    "review: annotations without a label column": (["review", "base.csv", "--annotations", "badann.csv", "--budget",
                                                    "5", "-o", "r.csv", *HASHING], ("badann.csv", "'label'"),
                                                   _write_bytes("badann.csv", b"item_id,annotator\nr0001,a\n")),
    "card: annotations without a label column": (["card", "base.csv", "--annotations", "badann.csv", "-o", "c.md",
                                                  *HASHING], ("badann.csv", "'label'"),
                                                 _write_bytes("badann.csv", b"item_id,annotator\nr0001,a\n")),
    "suspects: annotations without a label column": (["suspects", "base.csv", "--annotations", "badann.csv", "-o",
                                                      "s.csv", *HASHING], ("badann.csv", "'label'"),
                                                     _write_bytes("badann.csv", b"item_id,annotator\nr0001,a\n")),
    "suspects --top 0": (["suspects", "base.csv", "--top", "0", "-o", "s.csv", *HASHING], ("top",), None),
    "suspects --threshold 2": (["suspects", "base.csv", "--threshold", "2", "-o", "s.csv", *HASHING],
                               ("threshold",), None),
    "simulate asks for more labels than the pool has": (["simulate", "all.csv", "--out", "sim", *HASHING],
                                                        ("training pool has only",), _fully_labeled),
    "ingest: a Parquet source column of numbers": (["ingest", "d.parquet", "n.parquet", "--source", "prod", "-o",
                                                    "g.parquet", *HASHING], ("d.parquet", "'source'", "int64"),
                                                   _numeric_source_parquet),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fault_matrix(work, name):
    args, needles, prepare = CASES[name]
    check_case(work, args, *needles, prepare=prepare)


def test_device_cuda_without_cuda(work):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    check_case(work, ["select", "base.csv", "--device", "cuda", "--quiet"], "--device cuda", "no CUDA")


def test_disk_full_while_committing_leaves_nothing(work, monkeypatch):
    """ENOSPC on the second output of the round: no queue, record or ledger line appears."""
    real = selector.io.dump_table
    calls = []

    def full_disk(df, file, fmt_of=None, **kwargs):
        calls.append(file)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real(df, file, fmt_of, **kwargs)

    monkeypatch.setattr(selector.io, "dump_table", full_disk)
    monkeypatch.setattr("selector.outputs.dump_table", full_disk)
    before = {k: v for k, v in snapshot(work).items()}
    result = runner.invoke(app, ["select", "base.csv", "--out", "q.csv", "--budget", "5", *HASHING])
    line = assert_one_error_line(result.exit_code, result.stderr, "No space left on device", "free some disk space")
    assert "q" in line
    after = {k: v for k, v in snapshot(work).items() if not k.startswith(".selector/embeddings")}
    assert after == before
    assert read_ledger(ledger_path(work / "base.csv")) == []


@contextlib.contextmanager
def read_only(folder: Path):
    """Make ``folder`` read-only for this process: a read-only bind mount as root (root ignores
    permission bits), plain permission bits otherwise. Skips where neither is possible."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        try:
            yield
        finally:
            os.chmod(folder, 0o755)
        return
    if shutil.which("mount") is None:
        pytest.skip("mount is not available")
    bind = subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True)
    if bind.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {bind.stderr.decode().strip()}")
    try:
        ro = subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], capture_output=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only here: {ro.stderr.decode().strip()}")
        yield
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("case", ["data folder read-only (ledger)", "--out folder read-only", "--cache-dir read-only"])
def test_unwritable_folders(tmp_path, monkeypatch, case):
    work = tmp_path / "w"
    work.mkdir()
    write_csv(work / "base.csv", make_table(120))
    writable = tmp_path / "out"
    writable.mkdir()
    ro = {"data folder read-only (ledger)": work, "--out folder read-only": tmp_path / "ro_out",
          "--cache-dir read-only": tmp_path / "ro_cache"}[case]
    ro.mkdir(exist_ok=True)
    args = {
        "data folder read-only (ledger)": ["select", "base.csv", "--out", str(writable / "q.csv"),
                                           "--cache-dir", str(writable / "cache"), *HASHING],
        "--out folder read-only": ["select", "base.csv", "--out", str(ro / "q.csv"), "--cache-dir",
                                   str(writable / "cache"), *HASHING],
        "--cache-dir read-only": ["select", "base.csv", "--out", str(writable / "q.csv"), "--cache-dir", str(ro),
                                  *HASHING],
    }[case]
    needles = {"data folder read-only (ledger)": ("round ledger", "not writable"),
               "--out folder read-only": ("--out", "not writable"),
               "--cache-dir read-only": ("--cache-dir", "not writable")}[case]
    monkeypatch.chdir(work)
    before = snapshot(tmp_path)
    with read_only(ro):
        result = runner.invoke(app, args)
    assert_one_error_line(result.exit_code, result.stderr, *needles)
    assert snapshot(tmp_path) == before


def test_concurrent_rounds_take_distinct_numbers(work):
    """Rounds that commit at the same time each read the ledger under its lock: 1..n, no repeats."""
    from selector.config import SelectConfig
    from selector.models import HashingEmbedder
    from selector.round.run import commit_round, compute_round, plan_round

    plans = [plan_round(work / "base.csv", SelectConfig(budget=5, seed=k), out=work / f"q{k}.csv",
                        embedder=HashingEmbedder(32)) for k in range(4)]
    computed = [compute_round(p) for p in plans]
    barrier = threading.Barrier(len(plans))
    errors = []

    def commit(k):
        barrier.wait()
        try:
            commit_round(plans[k], computed[k])
        except Exception as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=commit, args=(k,)) for k in range(len(plans))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    rounds = sorted(r["round"] for r in read_ledger(ledger_path(work / "base.csv")))
    assert rounds == [1, 2, 3, 4]
    for k in range(4):
        record = json.loads((work / f"q{k}.round.json").read_text())
        assert record["round"] in rounds


def test_stale_temps_of_a_dead_run_are_removed(work):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = work / f".q.csv.{proc.pid}.0123456789ab.tmp"
    stale.write_text("half a queue")
    live = work / f".q.csv.{os.getpid()}.0123456789ab.tmp"
    live.write_text("another run's queue in progress")
    result = runner.invoke(app, ["select", "base.csv", "--out", "q.csv", "--budget", "5", *HASHING])
    assert result.exit_code == 0, result.output
    assert not stale.exists() and live.exists()
    assert not [p for p in work.glob(".*.tmp") if p != live]


def test_zero_byte_cache_shard_heals_in_a_real_round(work):
    result = runner.invoke(app, ["select", "base.csv", "--out", "q.csv", "--budget", "5", *HASHING])
    assert result.exit_code == 0, result.output
    (vecs,) = (work / ".selector" / "embeddings").rglob("*.vecs.npy")
    vecs.write_bytes(b"")
    result = runner.invoke(app, ["select", "base.csv", "--out", "q2.csv", "--budget", "5", *HASHING])
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "corrupt" in warnings[0]
    pd.testing.assert_frame_equal(read_table(work / "q.csv"), read_table(work / "q2.csv"))


def test_inputs_untouched_and_outputs_complete_on_success(work):
    before = sha(work / "base.csv")
    result = runner.invoke(app, ["select", "base.csv", "--out", "q.csv", "--budget", "5", *HASHING])
    assert result.exit_code == 0, result.output
    assert sha(work / "base.csv") == before
    record = json.loads((work / "q.round.json").read_text())
    ledger = read_ledger(ledger_path(work / "base.csv"))
    assert [r["round"] for r in ledger] == [1] and record["round"] == 1
    assert {k: v for k, v in ledger[0].items() if k != "time"} == {k: v for k, v in record.items() if k != "time"}
    assert (work / "q.suspects.csv").exists()


def test_ledger_append_failure_takes_the_round_back(work, monkeypatch):
    """The ledger line is the last step: if it fails, the queue files of this round disappear again
    and a queue that was there before is restored byte for byte."""
    from selector.loop.ledger import LockedLedger

    (work / "q.csv").write_text("rank,id\n1,previous\n")
    before = snapshot(work)

    def full_disk(self, record):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(LockedLedger, "append", full_disk)
    result = runner.invoke(app, ["select", "base.csv", "--out", "q.csv", "--budget", "5", *HASHING])
    assert_one_error_line(result.exit_code, result.stderr, "rounds.jsonl", "No space left on device")
    after = {k: v for k, v in snapshot(work).items() if not k.startswith(".selector/embeddings")}
    assert after == before


def test_concurrent_select_processes_take_distinct_round_numbers(work):
    """The issue's reproduction: several `selector select` processes on one folder at once."""
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    procs = [subprocess.Popen([sys.executable, "-m", "selector", "select", "base.csv", "--out", f"p{k}.csv",
                               "--budget", "5", "--seed", str(k), *HASHING], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(3)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    records = read_ledger(ledger_path(work / "base.csv"))
    assert sorted(r["round"] for r in records) == [1, 2, 3]
    on_disk = sorted(json.loads((work / f"p{k}.round.json").read_text())["round"] for k in range(3))
    assert on_disk == [1, 2, 3]


# ---------------------------------------------------------------- issue 31: a first few cases

@pytest.mark.parametrize("command", ["merge", "suspects", "validate"])
def test_the_round_ledger_is_never_an_output(tmp_path, command):
    from loop_helpers import write_data

    data = tmp_path / "data.csv"
    write_data(data, n=60, n_labeled=30)
    assert runner.invoke(app, ["select", str(data), "--budget", "5", "--model", "hashing", "-q",
                               "-o", str(tmp_path / "q.csv")]).exit_code == 0
    ledger = tmp_path / ".selector" / "data.csv.rounds.jsonl"
    before = ledger.read_bytes()
    labels = tmp_path / "labels.csv"
    labels.write_text("id,label\nr0040,sports\n")
    args = {"merge": ["merge", str(data), str(labels)], "suspects": ["suspects", str(data), "--model", "hashing"],
            "validate": ["validate", str(data), "--model", "hashing"]}[command]
    res = runner.invoke(app, [*args, "-o", str(ledger)])
    assert res.exit_code != 0 and "never an output" in res.stderr
    assert ledger.read_bytes() == before


def test_duplicate_column_names_are_refused(tmp_path):
    data = tmp_path / "dup.csv"
    data.write_text("id,text,label,label\n1,goal match,sports,weather\n2,rain storm,,\n")
    before = data.read_bytes()
    res = runner.invoke(app, ["validate", str(data), "--model", "hashing"])
    assert res.exit_code == 1 and "'label' more than once" in res.stderr
    assert data.read_bytes() == before


@pytest.mark.parametrize("args, needle", [
    (["--device", "bogus"], "device must be"),
    (["--min-chars", "-5"], "--min-chars"),
])
def test_bad_parameters_are_refused(tmp_path, args, needle):
    from loop_helpers import write_data

    data = tmp_path / "d.csv"
    write_data(data, n=30, n_labeled=15)
    res = runner.invoke(app, ["validate", str(data), "--model", "hashing", *args])
    assert res.exit_code != 0 and needle in res.output


def test_card_markdown_neutralises_links_and_code_spans(tmp_path):
    data = tmp_path / "evil`<img src=x onerror=alert(1)>.csv"
    rows = ["id,text,label"] + [f"{i},goal match team {i},sports" for i in range(12)] + \
        [f"{i + 12},rain storm cloud {i},[click](javascript:alert(1))" for i in range(12)]
    data.write_text("\n".join(rows) + "\n")
    out = tmp_path / "card.md"
    res = runner.invoke(app, ["card", str(data), "--model", "hashing", "--name", "a`<svg onload=alert(1)>`b",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    md = out.read_text()
    import re

    assert not re.search(r"(?<!\\)\]\(javascript:", md) and "\\[click\\]" in md  # no live link from a label
    # Raw HTML only inside code spans that the backticks in it cannot close (a longer fence).
    for line in md.splitlines():
        if "<img" in line or "<svg" in line:
            spans = re.findall(r"(`{2,}) (.*?) \1", line)
            assert any("<img" in body or "<svg" in body for _, body in spans), line
            assert all(len(fence) > max((len(r) for r in re.findall(r"`+", body)), default=0) for fence, body in spans)
            outside = re.sub(r"(`{2,}) .*? \1", "", line)
            assert "<img" not in outside and "<svg" not in outside, line


# ---------------------------------------------------------------- issue 31: in-place edits, commits, values

def _cli() -> list[str]:
    exe = Path(sys.executable).with_name("selector")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "selector"]


def _env() -> dict:
    return dict(os.environ, HF_HUB_OFFLINE="1")


def test_merge_in_place_through_a_symlink_writes_the_target(work):
    real = work / "real"
    real.mkdir()
    shutil.move(work / "base.csv", real / "base.csv")
    os.symlink(real / "base.csv", work / "base.csv")
    res = runner.invoke(app, ["merge", "base.csv", "labels.csv", "--in-place"])
    assert res.exit_code == 0, res.output
    assert (work / "base.csv").is_symlink()                      # the link stays a link
    merged = read_table(real / "base.csv")                        # and its target has the label
    assert merged.set_index("id").loc["r0005", "label"] == "sports"


@pytest.mark.parametrize("command", ["merge", "ingest"])
def test_concurrent_in_place_edits_lose_no_update(work, command):
    """Four real processes edit one DATA in place at once: every update is there afterwards."""
    procs = []
    unlabeled = read_table(work / "base.csv").query("label == ''")["id"].tolist()[:20]
    words = "amber birch coral delta ember fjord grove heron iris jade kelp lotus".split()
    for k in range(4):
        if command == "merge":
            export = work / f"labels{k}.csv"
            write_csv(export, pd.DataFrame({"id": unlabeled[5 * k:5 * k + 5], "label": ["sports"] * 5}))
            args = ["merge", "base.csv", str(export), "--in-place"]
        else:
            rows = work / f"new{k}.csv"
            write_csv(rows, pd.DataFrame({"text": [f"{words[3 * k + j]} {words[(5 * k + j) % 12]} arrives "
                                                   f"from {words[(k + 7 * j) % 12]}" for j in range(3)]}))
            args = ["ingest", "base.csv", str(rows), "--source", f"p{k}", "--in-place", "--threshold", "1.0",
                    *HASHING]
        procs.append(subprocess.Popen([*_cli(), *args], cwd=work, env=_env(), stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    final = read_table(work / "base.csv")
    if command == "merge":
        labeled = final.set_index("id")["label"]
        assert len(unlabeled) == 20 and all(labeled[i] == "sports" for i in unlabeled)
    else:
        assert len(final) == 120 + 12
        assert sorted(set(final["source"]) - {""}) == ["p0", "p1", "p2", "p3"]


def test_merge_keeps_untouched_cells_and_round_trips_its_guard(work):
    df = make_table(40)
    df["score"] = ["-0.5"] * 20 + ["+1"] * 20             # numbers: never guarded
    df["note"] = ["'=not a formula"] * 20 + ["=SUM(A1)"] * 20  # a user's text, as they wrote it
    write_csv(work / "cells.csv", df)
    raw_before = (work / "cells.csv").read_text().splitlines()
    free = df.index[df["label"] == ""][:2].tolist()
    ids = df.loc[free, "id"].tolist()
    write_csv(work / "lab.csv", pd.DataFrame({"id": ids, "label": ["=evil()", "sports"]}))
    res = runner.invoke(app, ["merge", "cells.csv", "lab.csv", "-o", "out.csv"])
    assert res.exit_code == 0, res.output
    raw_after = (work / "out.csv").read_text().splitlines()
    changed = [i for i, (a, b) in enumerate(zip(raw_before, raw_after)) if a != b]
    assert changed == [k + 1 for k in free]  # the header is line 0: only the rows whose label the merge wrote
    assert ",-0.5," in raw_after[1] and "'=not a formula" in raw_after[1] and "''=" not in raw_after[1]
    assert "=SUM(A1)" in raw_after[-1] and "'=SUM" not in raw_after[-1]  # the user's cell, untouched
    assert "'=evil()" in raw_after[free[0] + 1]             # the cell we wrote from text is guarded
    back = read_table(work / "out.csv").set_index("id")
    assert back.loc[ids[0], "label"] == "=evil()"           # and reads back as the text it was
    from selector.io import guard_cell, unguard_cell

    for text in ["=x", "'=x", "''=x", "-0.5", "'-0.5", "@me", "plain", "'quoted", "+1", "-", "'"]:
        assert unguard_cell(guard_cell(text)) == text


def test_disk_full_during_the_ledger_append_leaves_no_torn_line(tmp_path):
    """A real full disk (a tmpfs mounted small): every size either succeeds with whole lines or fails
    with one error line and leaves the ledger's lines whole."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    seen_error = False
    for kib in (24, 28, 32, 36, 40, 48):
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(mnt)],
                          capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here")
        try:
            write_csv(mnt / "d.csv", make_table(60))
            for _ in range(3):
                res = subprocess.run([*_cli(), "select", "d.csv", "--budget", "5", "-o", "q.csv", "--no-suspects",
                                      "--cache-dir", str(tmp_path / "cache"), *HASHING], cwd=mnt, env=_env(),
                                     capture_output=True, text=True, timeout=300)
                ledger = mnt / ".selector" / "d.csv.rounds.jsonl"
                text = ledger.read_text() if ledger.exists() else ""
                assert text == "" or text.endswith("\n"), f"{kib} KiB: torn ledger line"
                for line in text.splitlines():
                    json.loads(line)
                if res.returncode:
                    seen_error = True
                    lines = [x for x in res.stderr.splitlines() if x.strip()]
                    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
                    assert "Traceback" not in res.stderr
        finally:
            subprocess.run(["umount", str(mnt)], capture_output=True)
    assert seen_error, "no size filled the disk; the test measured nothing"


_KILL_AT_RENAME = r"""
import os, signal, sys
import selector.outputs as outputs
n = int(sys.argv[1])
real = os.replace
count = [0]
def replace(src, dst):
    # Only the commit's renames count: the journal's own (atomic) write comes first.
    if os.path.basename(str(dst)).startswith(".selector-commit."):
        return real(src, dst)
    if count[0] == n:
        os.kill(os.getpid(), signal.SIGKILL)
    count[0] += 1
    return real(src, dst)
outputs.os.replace = replace
if n == 99:  # after every rename, before the ledger append
    import selector.loop.ledger as ledger
    ledger.LockedLedger.append = lambda self, record: os.kill(os.getpid(), signal.SIGKILL)
from selector.cli.app import main
sys.argv = ["selector"] + sys.argv[2:]
main()
"""


@pytest.mark.parametrize("kill_at", [0, 1, 2, 99])
def test_sigkill_inside_a_commit_is_finished_by_the_next_run(work, kill_at):
    """SIGKILL between the renames of select's commit (or before its ledger line): the next run finishes
    the commit and says so; the outputs and the ledger then describe the same round."""
    first = runner.invoke(app, ["select", "base.csv", "--budget", "5", "--seed", "1", "-o", "q.csv", *HASHING])
    assert first.exit_code == 0, first.output
    killed = subprocess.run([sys.executable, "-c", _KILL_AT_RENAME, str(kill_at), "select", "base.csv", "--budget",
                             "9", "--seed", "2", "-o", "q.csv", *HASHING], cwd=work, env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    assert list((work / ".selector").glob(".selector-commit.*.json")), "no journal left by the killed commit"
    res = runner.invoke(app, ["status", "base.csv"])
    assert res.exit_code == 0, res.output
    assert "finished a commit that process" in res.stderr
    assert not list((work / ".selector").glob(".selector-commit.*.json"))
    ledger = read_ledger(ledger_path(work / "base.csv"))
    record = json.loads((work / "q.round.json").read_text())
    queue = read_table(work / "q.csv")
    assert [r["round"] for r in ledger] == [1, 2] and record["round"] == 2
    assert ledger[-1]["queue"]["ids"] == record["queue"]["ids"] == queue["id"].tolist()
    assert len(queue) == 9
    suspects = work / "q.suspects.csv"
    assert suspects.stat().st_mtime >= (work / "q.csv").stat().st_mtime - 60
    assert not [p for p in work.iterdir() if p.name.endswith(".tmp")]


def test_ctrl_c_while_starting_is_one_line():
    import signal
    import time

    proc = subprocess.Popen([*_cli(), "strategies"], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    time.sleep(0.3)  # inside the imports: they take over a second here
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    if proc.returncode != 130:
        pytest.skip(f"the imports finished before the signal arrived (exit {proc.returncode})")
    assert err.strip().splitlines() == ["error: interrupted while starting; nothing was read or written"]


# ---------------------------------------------------------------- issue 31: `selector serve` through real uvicorn

def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _served(work: Path, *extra: str):
    """`selector serve base.csv` in a real process on 127.0.0.1 (hashing embedder); yields (base URL, process)."""
    import time

    import httpx

    port = _free_port()
    proc = subprocess.Popen([*_cli(), "serve", "base.csv", "--port", str(port), *HASHING, *extra], cwd=work,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"serve exited: {proc.communicate()[1]}")
            try:
                httpx.get(f"{url}/health", timeout=2, headers={"Authorization": "Bearer sekrit"})
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield url, proc
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        assert "Traceback" not in err, err


SERVE_CONFIG = ('<View><Text name="text" value="$text"/><Choices name="label" toName="text">'
                '<Choice value="finance"/><Choice value="sports"/><Choice value="weather"/></Choices></View>')

SERVE_BAD_REQUESTS = {
    "predict: malformed JSON": ("/predict", b'{"tasks": [', 400),
    "predict: an array body": ("/predict", b"[1, 2]", 400),
    "predict: tasks is a string": ("/predict", json.dumps({"tasks": "abc"}).encode(), 400),
    "predict: tasks is a list of ints": ("/predict", json.dumps({"tasks": [1, 2]}).encode(), 400),
    "setup: schema is a number": ("/setup", json.dumps({"schema": 5}).encode(), 400),
    "webhook: malformed JSON": ("/webhook", b"{nope", 400),
    "webhook: task is a string": ("/webhook", json.dumps({"action": "ANNOTATION_CREATED", "task": "r0005",
                                                          "annotation": {"result": []}}).encode(), 400),
    "train: annotations are strings": ("/train", json.dumps({"annotations": ["sports"]}).encode(), 400),
    "a 100k-deep body": ("/predict", b"[" * 100_000 + b"]" * 100_000, 400),
}


def test_serve_answers_bad_requests_with_a_4xx_json_error(work):
    import httpx

    (work / "rec").mkdir()
    with _served(work, "--record", "rec") as (url, _):
        for name, (path, body, status) in SERVE_BAD_REQUESTS.items():
            res = httpx.post(url + path, content=body, headers={"Content-Type": "application/json"}, timeout=30)
            assert res.status_code == status, (name, res.status_code, res.text)
            assert set(res.json()) == {"error"}, name
        ok = httpx.post(url + "/predict", json={"tasks": [{"id": 1, "data": {"text": "goal match team"}}],
                                                "label_config": SERVE_CONFIG}, timeout=30)
        assert ok.status_code == 200 and ok.json()["results"][0]["result"]


def test_serve_refuses_a_label_outside_the_label_config(work):
    import httpx

    with _served(work) as (url, _):
        assert httpx.post(url + "/setup", json={"schema": SERVE_CONFIG, "project": "1"}, timeout=30).status_code == 200
        webhook = {"action": "ANNOTATION_CREATED", "task": {"id": 9, "data": {"selector_id": "r0005", "text": "x"}},
                   "annotation": {"id": 3, "completed_by": 1, "result": [
                       {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": ["evil"]}}]}}
        res = httpx.post(url + "/webhook", json=webhook, timeout=30)
        assert res.status_code == 400 and "not one of the project's choices" in res.json()["error"]
    assert not (work / ".selector" / "base.csv.serve-labels.jsonl").exists()
    assert not (work / ".selector" / "base.csv.rounds.jsonl").exists()


def test_serve_token_is_required_when_given(work):
    import base64

    import httpx

    with _served(work, "--token", "sekrit") as (url, _):
        assert httpx.get(url + "/health", timeout=30).status_code == 401
        assert httpx.get(url + "/health", headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        assert httpx.get(url + "/health", headers={"Authorization": "Bearer sekrit"}, timeout=30).status_code == 200
        basic = base64.b64encode(b"selector:sekrit").decode()
        assert httpx.get(url + "/health", headers={"Authorization": f"Basic {basic}"}, timeout=30).status_code == 200


@pytest.mark.parametrize("port_of", ["out of range", "in use"])
def test_serve_bad_port_is_one_error_line(work, port_of):
    import socket

    holder = None
    if port_of == "in use":
        holder = socket.socket()
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        port = str(holder.getsockname()[1])
    else:
        port = "70000"
    try:
        res = subprocess.run([*_cli(), "serve", "base.csv", "--port", port, *HASHING], cwd=work, env=_env(),
                             capture_output=True, text=True, timeout=120)
    finally:
        if holder is not None:
            holder.close()
    assert res.returncode in (1, 2) and "Traceback" not in res.stderr
    lines = [x for x in res.stderr.splitlines() if x.strip()]
    assert any(x.startswith(("error:", "Error:", "│", "╭", "Usage:")) or "Invalid value" in x for x in lines)
    if port_of == "in use":
        assert lines == [lines[0]] and lines[0].startswith("error: --port") and "cannot listen" in lines[0]


def test_device_cuda_with_the_hashing_embedder_says_it_is_ignored(work):
    res = runner.invoke(app, ["select", "base.csv", "--budget", "5", "--device", "cuda", "--model", "hashing"])
    assert res.exit_code == 0, res.output
    assert "warning: device 'cuda' is ignored: the hashing embedder" in res.stderr


def test_reading_a_csv_undoes_our_guard_only_where_a_cell_has_it(tmp_path):
    from selector.io import read_table

    path = tmp_path / "t.csv"
    path.write_text("id,text,label\n1,'=SUM(A1),a\n2,plain text,\n3,'just a quote,b\n", encoding="utf-8")
    df = read_table(path)
    assert df["text"].tolist() == ["=SUM(A1)", "plain text", "'just a quote"]  # only the guard is removed
    assert df["label"].tolist() == ["a", "", "b"] and df["id"].tolist() == ["1", "2", "3"]
    assert read_table(path, raw=True)["text"].tolist()[0] == "'=SUM(A1)"
