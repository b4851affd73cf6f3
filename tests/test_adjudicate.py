"""Adjudication: final labels for contested items, the votes kept, and the rework rate."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.quality.adjudicate import adjudicate, format_adjudication, prepare_decisions
from selector.quality.annotations import prepare_annotations
from selector.cli.app import app
from selector.errors import DataError

runner = CliRunner()


def votes() -> pd.DataFrame:
    rows = [
        # item, annotator, label, timestamp
        ("a", "ann", "pos", "2024-01-02T10:00"), ("a", "bob", "neg", "2024-01-01T09:00"),  # bob first by time
        ("b", "ann", "pos", "2024-01-01T08:00"), ("b", "bob", "pos", "2024-01-03T08:00"),  # agreed
        ("c", "ann", "unsure", "2024-01-01T07:00"), ("c", "cat", "neg", "2024-01-02T07:00"),
        ("c", "bob", "pos", "2024-01-03T07:00"),  # first real label: cat's neg
        ("d", "ann", "pos", "2024-01-05T00:00"), ("d", "cat", "neg", "2024-01-06T00:00"),  # contested, undecided
        ("e", "ann", "unsure", "2024-01-01T00:00"), ("e", "bob", "needs_review", "2024-01-02T00:00"),
        ("f", "cat", "pos", "2024-01-01T00:00"), ("f", "ann", "neg", "2024-01-02T00:00"),
    ]
    return prepare_annotations(pd.DataFrame(rows, columns=["item_id", "annotator", "label", "timestamp"]))


def decisions() -> pd.DataFrame:
    return prepare_decisions(pd.DataFrame({
        "item_id": ["a", "c", "e", "f"], "final_label": ["pos", "neg", "neg", "pos"],
        "reviewer": ["rev1", "rev1", "rev2", "rev2"], "note": ["hypothesis is entailed", "", None, "clear"]}))


def test_prepare_decisions_validates():
    with pytest.raises(DataError, match="no column 'reviewer'"):
        prepare_decisions(pd.DataFrame({"item_id": ["a"], "final_label": ["x"]}), source="d.csv")
    with pytest.raises(DataError, match="data row 2 has an empty 'final_label'"):
        prepare_decisions(pd.DataFrame({"item_id": ["a", "b"], "final_label": ["x", ""], "reviewer": ["r", "r"]}))
    with pytest.raises(DataError, match="an unsure value"):
        prepare_decisions(pd.DataFrame({"item_id": ["a"], "final_label": ["Unsure"], "reviewer": ["r"]}))
    with pytest.raises(DataError, match="item 'a' has 2 different final labels"):
        prepare_decisions(pd.DataFrame({"item_id": ["a", "a"], "final_label": ["x", "y"], "reviewer": ["r", "s"]}))
    ok = prepare_decisions(pd.DataFrame({"item_id": ["a", "a"], "final_label": ["x", "x"], "reviewer": ["r", "r"]}))
    assert ok.to_dict(orient="records") == [{"item_id": "a", "final_label": "x", "reviewer": "r", "note": ""}]


def test_resolved_set_keeps_votes_and_statuses():
    result = adjudicate(votes(), decisions())
    r = result.resolved.set_index("item_id")
    assert list(result.resolved["item_id"]) == ["a", "b", "c", "d", "e", "f"]  # file order of first appearance
    assert r["status"].to_dict() == {"a": "adjudicated", "b": "agreed", "c": "adjudicated", "d": "unresolved",
                                     "e": "adjudicated", "f": "adjudicated"}
    assert r.loc["a", "label"] == "pos" and r.loc["b", "label"] == "pos" and pd.isna(r.loc["d", "label"])
    assert r.loc["a", "reviewer"] == "rev1" and r.loc["a", "note"] == "hypothesis is entailed"
    # votes in the order given (timestamp), unsure ones included
    assert r.loc["a", "votes"] == "bob=neg; ann=pos"
    assert r.loc["c", "votes"] == "ann=unsure; cat=neg; bob=pos" and r.loc["c", "n_unsure"] == 1
    assert (r.loc["a", "first_label"], r.loc["a", "first_annotator"]) == ("neg", "bob")
    assert (r.loc["c", "first_label"], r.loc["c", "first_annotator"]) == ("neg", "cat")
    assert r["changed"].to_dict() == {"a": True, "b": False, "c": False, "d": False, "e": False, "f": False}


def test_rework_rate_and_by_annotator():
    result = adjudicate(votes(), decisions())
    # adjudicated: a (neg -> pos, changed), c (neg -> neg), e (only unsure: excluded), f (pos -> pos)
    assert (result.n_adjudicated, result.n_changed, result.n_no_first_label) == (4, 1, 1)
    assert result.rework_rate == pytest.approx(1 / 3)
    by = result.rework_by_annotator.set_index("annotator")
    assert by.loc["bob", "n_overturned"] == 1 and by.loc["bob", "overturn_rate"] == 1.0
    assert by.loc["cat", "n_first"] == 2 and by.loc["cat", "n_overturned"] == 0
    text = format_adjudication(result)
    assert "rework rate: 0.333 (1 of 3" in text and "only unsure votes" in text


def test_first_label_is_file_order_without_timestamps():
    result = adjudicate(votes().drop(columns="timestamp"), decisions())
    r = result.resolved.set_index("item_id")
    assert r.loc["a", "first_label"] == "pos" and not r.loc["a", "changed"]
    assert r.loc["f", "first_label"] == "pos"
    assert result.n_changed == 0 and result.rework_rate == 0.0


def test_decision_for_unknown_item_warns_and_bad_timestamp_fails():
    extra = pd.concat([decisions(), pd.DataFrame([{"item_id": "zz", "final_label": "pos", "reviewer": "r", "note": ""}])])
    with pytest.warns(UserWarning, match="1 decision\\(s\\) are for items with no annotation"):
        result = adjudicate(votes(), extra)
    assert result.resolved.iloc[-1]["item_id"] == "zz" and result.resolved.iloc[-1]["n_votes"] == 0
    bad = votes()
    bad.loc[0, "timestamp"] = "soon"
    with pytest.raises(DataError, match="unreadable 'timestamp'.*soon"):
        adjudicate(bad, decisions())


def test_inputs_are_not_modified():
    v, d = votes(), decisions()
    v0, d0 = v.copy(), d.copy()
    adjudicate(v, d)
    pd.testing.assert_frame_equal(v, v0)
    pd.testing.assert_frame_equal(d, d0)


def test_cli_adjudicate(tmp_path):
    ann, dec, out, rework = tmp_path / "ann.csv", tmp_path / "dec.csv", tmp_path / "resolved.csv", tmp_path / "rw.csv"
    votes().to_csv(ann, index=False)
    decisions().to_csv(dec, index=False)
    before = ann.read_bytes()
    res = runner.invoke(app, ["adjudicate", str(ann), str(dec), "--out", str(out), "--rework-out", str(rework)])
    assert res.exit_code == 0, res.output
    assert "rework rate: 0.333" in res.stdout and "4 adjudicated, 1 agreed, 1 unresolved" in res.stdout
    resolved = pd.read_csv(out, keep_default_na=False)
    assert len(resolved) == 6 and "votes" in resolved.columns
    assert set(pd.read_csv(rework)["annotator"]) == {"bob", "cat"}
    assert ann.read_bytes() == before
    same = runner.invoke(app, ["adjudicate", str(ann), str(dec), "--out", str(ann)])
    assert same.exit_code == 1 and "is an input file" in same.stderr
    dec.write_text("item_id,final_label\na,pos\n")
    bad = runner.invoke(app, ["adjudicate", str(ann), str(dec), "--out", str(out)])
    assert bad.exit_code == 1 and "no column 'reviewer'" in bad.stderr and str(dec) in bad.stderr
