"""Machine annotators (an LLM pre-labeler beside the humans): consensus, agreement and review."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector import agreement, consensus, review
from selector.cli.app import app
from selector.errors import DataError
from selector.models import HashingEmbedder
from selector.quality.machine import machine_accuracy

from conftest import make_table

runner = CliRunner()
TOPICS = ["finance", "sports", "weather"]


def crowd_with_a_machine(seed: int = 0):
    """Three humans (mostly right) on every item, and a machine that calls every 'weather' item 'sports'."""
    df = make_table(90, labeled_frac=1.0, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for _, r in df.iterrows():
        truth = r["label"]
        for a in ("ann", "bob", "cy"):
            rows.append((r["id"], a, truth if rng.random() < 0.85 else str(rng.choice(TOPICS)), r["text"]))
        rows.append((r["id"], "llm", "sports" if truth == "weather" else truth, r["text"]))
    return df, pd.DataFrame(rows, columns=["item_id", "annotator", "label", "text"])


def test_machine_accuracy_per_class():
    machines = pd.DataFrame({"item_id": ["1", "2", "3", "4"], "annotator": "llm", "label": ["a", "a", "b", "a"]})
    report = machine_accuracy(machines, pd.Series({"1": "a", "2": "b", "3": "b"}))
    rows = {r.label: (r.n_items, r.n_agree) for r in report.itertuples()}
    assert rows == {"(all)": (3, 2), "a": (1, 1), "b": (2, 1)}


def test_consensus_reports_the_machine_against_the_humans():
    _, ann = crowd_with_a_machine()
    res = consensus(ann, embedder=HashingEmbedder(64), machine_annotators=["llm"])
    rep = res.machine_report.set_index("label")
    assert rep.loc["(all)", "annotator"] == "llm"
    # Its one systematic error shows where it is: weather items.
    assert rep.loc["weather", "accuracy"] < 0.2 < 0.9 < rep.loc["finance", "accuracy"]
    frame = res.annotator_frame().set_index("annotator")
    assert bool(frame.loc["llm", "machine"]) and not bool(frame.loc["ann", "machine"])
    assert "machine annotators vs the human consensus" in res.summary()


def test_agreement_leaves_machines_out_of_the_human_figures():
    _, ann = crowd_with_a_machine()
    humans = agreement(ann[ann["annotator"] != "llm"])
    with_machine = agreement(ann, machine_annotators=["llm"])
    assert with_machine.n_annotators == 3
    assert with_machine.krippendorff_alpha == pytest.approx(humans.krippendorff_alpha)
    assert with_machine.machine_annotators == ["llm"]
    assert "machine annotator(s) llm left out" in with_machine.to_text()


def test_an_unknown_machine_annotator_is_named():
    _, ann = crowd_with_a_machine()
    with pytest.raises(DataError, match="did you mean 'llm'"):
        agreement(ann, machine_annotators=["llm2"])


def test_review_puts_machine_disagreements_first():
    df, ann = crowd_with_a_machine()
    q = review(df, annotations=ann, budget=40, embedder=HashingEmbedder(64), machine_annotators=["llm"]).queue
    top = q.head(10)
    assert top["sources"].str.contains("machine").all()
    assert top["reasons"].str.contains("machine: llm says").all()
    assert not q["reasons"].str.contains("'nan'").any()
    # Without the flag the machine is one more human voter and nothing is sourced 'machine'.
    plain = review(df, annotations=ann, budget=40, embedder=HashingEmbedder(64)).queue
    assert not plain["sources"].str.contains("machine").any()


def test_consensus_cli_writes_the_machine_report(tmp_path):
    _, ann = crowd_with_a_machine()
    path = tmp_path / "votes.csv"
    ann.to_csv(path, index=False)
    out = tmp_path / "consensus.csv"
    r = runner.invoke(app, ["consensus", str(path), "--out", str(out), "--model", "hashing", "--cache-dir",
                            str(tmp_path / "cache"), "--machine-annotators", "llm"])
    assert r.exit_code == 0, r.output
    report = pd.read_csv(tmp_path / "consensus.machines.csv")
    assert set(report["annotator"]) == {"llm"} and "(all)" in set(report["label"])
