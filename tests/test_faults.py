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

    def full_disk(df, file, fmt_of=None):
        calls.append(file)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real(df, file, fmt_of)

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
