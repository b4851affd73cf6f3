import json
from pathlib import Path

import pandas as pd
import pytest
from loop_helpers import label_studio_export, make_texts
from typer.testing import CliRunner

from selector.cli.app import app
from selector.errors import DataError
from selector.loop.ledger import ledger_path, read_ledger
from selector.loop.merge import MergeConflictError, merge_labels, read_labels

runner = CliRunner()


@pytest.fixture
def data_file(tmp_path):
    df = make_texts(12)
    df["label"] = ""
    df.loc[0, "label"] = df.loc[0, "gold"]
    path = tmp_path / "data.csv"
    df.to_csv(path, index=False)
    return path, df


def _read(path):
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_csv_export_merges_into_new_file_with_round_annotator_and_guideline(tmp_path, data_file):
    path, df = data_file
    export = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["r0001", "r0002", "r0000"], "label": [df.gold[1], df.gold[2], df.gold[0]],
                  "annotator": ["ann1", "ann2", "ann1"], "guideline_version": ["v2", "v2", "v2"]}).to_csv(export, index=False)
    before = path.read_bytes()
    out = tmp_path / "merged.csv"
    res = runner.invoke(app, ["merge", str(path), str(export), "--round", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "merged 2 new label(s)" in res.output and "1 already present" in res.output
    assert path.read_bytes() == before  # input untouched
    merged = _read(out)
    assert merged.loc[1, "label"] == df.gold[1] and merged.loc[2, "label"] == df.gold[2]
    assert merged.loc[1, "label_round"] == "3" and merged.loc[1, "annotator"] == "ann1"
    assert merged.loc[2, "guideline_version"] == "v2"
    assert merged.loc[3, "label"] == "" and merged.loc[0, "label_round"] == ""  # untouched rows


def test_conflicts_are_reported_and_nothing_is_written(tmp_path, data_file):
    path, df = data_file
    wrong = next(c for c in ("sports", "weather", "finance") if c != df.gold[0])
    export = tmp_path / "labels.jsonl"
    rows = [{"id": "r0000", "label": wrong}, {"id": "nope", "label": "sports"}, {"id": "r0003", "label": df.gold[3]},
            {"id": "r0004", "label": "sports"}, {"id": "r0004", "label": "weather"}]
    export.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = path.read_bytes()
    res = runner.invoke(app, ["merge", str(path), str(export), "--in-place"])
    assert res.exit_code == 1
    # One line per id left out: the overwrite, the unknown id, and the disagreement (once, both votes named).
    assert "3 conflict(s), nothing written" in res.output
    assert res.output.count("annotators disagree") == 1
    assert f"the data already has {df.gold[0]!r}; the export says {wrong!r}" in res.output and "unknown id" in res.output
    assert "annotators disagree: the export says 'sports', the export says 'weather'" in res.output
    assert path.read_bytes() == before and not (tmp_path / "data.csv.bak").exists()


def test_in_place_writes_backup_first(tmp_path, data_file):
    path, df = data_file
    export = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["r0005"], "label": [df.gold[5]]}).to_csv(export, index=False)
    before = path.read_bytes()
    res = runner.invoke(app, ["merge", str(path), str(export), "--in-place"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "data.csv.bak").read_bytes() == before
    assert _read(path).loc[5, "label"] == df.gold[5]


def test_needs_a_destination(tmp_path, data_file):
    path, _ = data_file
    export = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["r0005"], "label": ["x"]}).to_csv(export, index=False)
    res = runner.invoke(app, ["merge", str(path), str(export)])
    assert res.exit_code == 1 and "--out FILE" in res.output


def test_label_studio_export_with_cancelled_annotation(tmp_path):
    tasks = [{"data": {"text": "a", "selector_id": "r0001"}}, {"data": {"text": "b", "selector_id": "r0002"}}]
    exported = label_studio_export(tasks, {"r0001": "sports", "r0002": "finance"}, annotator=3)
    exported[1]["annotations"][0]["was_cancelled"] = True
    exported[0]["annotations"][0]["completed_by"] = {"id": 3, "email": "ann@example.com"}
    f = tmp_path / "ls.json"
    f.write_text(json.dumps(exported))
    labels, skipped, kind = read_labels(f)
    assert kind == "label-studio" and skipped == 1
    assert labels[["id", "label", "annotator"]].values.tolist() == [["r0001", "sports", "ann@example.com"]]


def test_prodigy_choice_and_binary_answers(tmp_path):
    lines = [
        {"text": "a", "selector_id": "r1", "options": [{"id": "x", "text": "x"}, {"id": "y", "text": "y"}],
         "accept": ["y"], "answer": "accept", "_input_hash": 1, "_task_hash": 2, "_annotator_id": "s-ann"},
        {"text": "b", "meta": {"selector_id": "r2"}, "label": "x", "answer": "accept", "_input_hash": 3},
        {"text": "c", "selector_id": "r3", "label": "x", "answer": "reject", "_input_hash": 4},
        {"text": "d", "selector_id": "r4", "options": [{"id": "x", "text": "x"}], "accept": [], "answer": "ignore",
         "_input_hash": 5},
    ]
    f = tmp_path / "prodigy.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    labels, skipped, kind = read_labels(f)
    assert kind == "prodigy" and skipped == 2
    assert labels[["id", "label", "annotator"]].values.tolist() == [["r1", "y", "s-ann"], ["r2", "x", None]]


def test_doccano_export_uses_selector_id_not_doccano_id(tmp_path):
    lines = [{"id": 17, "text": "a", "selector_id": "r1", "label": ["sports"], "Comments": []},
             {"id": 18, "text": "b", "selector_id": "r2", "label": [], "Comments": []}]
    f = tmp_path / "doccano.jsonl"
    f.write_text("".join(json.dumps(x) + "\n" for x in lines))
    labels, skipped, kind = read_labels(f)
    assert kind == "doccano" and skipped == 1
    assert labels[["id", "label"]].values.tolist() == [["r1", "sports"]]
    f.write_text(json.dumps({"id": 1, "text": "a", "selector_id": "r1", "label": ["a", "b"]}) + "\n")
    with pytest.raises(DataError, match="single-label"):
        read_labels(f)


def test_argilla_records_nested_and_flattened(tmp_path):
    nested = [{"id": "r1", "fields": {"text": "a"}, "status": "completed",
               "responses": {"label": [{"value": "sports", "user_id": "u1", "status": "submitted"},
                                       {"value": "finance", "user_id": "u2", "status": "draft"}]}},
              {"id": "r2", "fields": {"text": "b"}, "responses": {"label": []}}]
    f = tmp_path / "argilla.json"
    f.write_text(json.dumps(nested))
    labels, skipped, kind = read_labels(f)
    assert kind == "argilla" and skipped == 1
    assert labels[["id", "label", "annotator"]].values.tolist() == [["r1", "sports", "u1"]]
    flat = [{"id": "r3", "text": "c", "label.responses": ["weather"], "label.responses.users": ["u9"],
             "label.responses.status": ["submitted"]}]
    f2 = tmp_path / "argilla_flat.jsonl"
    f2.write_text(json.dumps(flat[0]) + "\n")
    labels, _, kind = read_labels(f2)
    assert kind == "argilla" and labels[["id", "label", "annotator"]].values.tolist() == [["r3", "weather", "u9"]]


def test_argilla_sdk_exports_count_only_submitted_responses():
    """Records built with the real SDK: its flattened export keeps each response's status and only the
    submitted answer becomes a label; its nested export (Record.to_dict) drops the status and is refused."""
    rg = pytest.importorskip("argilla")
    import uuid

    from argilla.records._io._generic import (
        GenericIO,  # what records.to_list(flatten=True) calls per record
    )

    user = uuid.uuid4()
    rec = rg.Record(id="r7", fields={"text": "x"}, responses=[
        rg.Response("label", "sports", user_id=user, status="submitted"),
        rg.Response("label", "finance", user_id=uuid.uuid4(), status="draft"),
        rg.Response("label", "weather", user_id=uuid.uuid4(), status="discarded")])
    labels, _, _ = read_labels_from_items([GenericIO._record_to_dict(rec, flatten=True)])
    assert labels[["id", "label", "annotator"]].values.tolist() == [["r7", "sports", str(user)]]
    with pytest.raises(DataError, match=r"record 'r7' has an Argilla response without a 'status'.*to_list\(flatten=True\)"):
        read_labels_from_items([rec.to_dict()])
    draft_only = rg.Record(id="r8", fields={"text": "y"},
                           responses=[rg.Response("label", "sports", user_id=user, status="draft")])
    labels, skipped, _ = read_labels_from_items([GenericIO._record_to_dict(draft_only, flatten=True)])
    assert labels.empty and skipped == 1


def read_labels_from_items(items, tmp=None):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "x.json"
        f.write_text(json.dumps(items, default=str))
        return read_labels(f)


def test_same_label_twice_and_existing_same_label_are_not_conflicts():
    data = pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": ["pos", ""]})
    labels = pd.DataFrame({"id": ["a", "b", "b"], "label": ["pos", "neg", "neg"], "annotator": ["u1", "u1", "u2"],
                           "guideline_version": [None] * 3, "round": [None] * 3})
    res = merge_labels(data, labels, round_of_id={"b": 2})
    assert res.n_new == 1 and res.n_unchanged == 1 and res.rounds == {2: 1}
    assert res.data.loc[1, "label"] == "neg" and res.data.loc[1, "annotator"] == "u1;u2"
    assert data.loc[1, "label"] == ""  # input not modified
    labels.loc[2, "label"] = "pos"
    with pytest.raises(MergeConflictError) as err:
        merge_labels(data, labels)
    assert err.value.conflicts["id"].tolist() == ["b"]  # one row per id, both votes named
    assert err.value.conflicts["problem"].iloc[0] == "annotators disagree: u1 says 'neg', u2 says 'pos'"


def test_export_without_ids_is_refused(tmp_path):
    f = tmp_path / "labels.csv"
    pd.DataFrame({"text": ["a"], "label": ["x"]}).to_csv(f, index=False)
    with pytest.raises(DataError, match="no id column"):
        read_labels(f)


def test_gold_answers_in_a_queue_are_set_aside_not_merged(tmp_path):
    from loop_helpers import write_data

    from selector.loop.ledger import ledger_path, read_ledger

    data = tmp_path / "data.csv"
    df = write_data(data, n=60, n_labeled=15)
    gold = tmp_path / "gold.csv"
    pd.DataFrame({"item_id": ["g1", "g2", "g3"], "gold_label": ["sports", "finance", "weather"],
                  "text": ["goal team coach", "bank loan stock", "rain storm wind"]}).to_csv(gold, index=False)
    q = tmp_path / "q.csv"
    res = runner.invoke(app, ["select", str(data), "--budget", "20", "--gold", str(gold), "--gold-rate", "0.15",
                              "--model", "hashing", "--out", str(q), "-q"])
    assert res.exit_code == 0, res.output
    (rec,) = read_ledger(ledger_path(data))
    queue = pd.read_csv(q, dtype=str)
    assert rec["gold_ids"] and set(rec["gold_ids"]) <= set(queue["id"])
    assert set(rec["queue"]["ids"]) == set(queue["id"]) - set(rec["gold_ids"])
    truth = dict(zip(df["id"], df["gold"])) | {"g1": "sports", "g2": "finance", "g3": "weather"}
    export = tmp_path / "labels.csv"
    pd.DataFrame({"id": queue["id"], "label": queue["id"].map(truth)}).to_csv(export, index=False)
    res = runner.invoke(app, ["merge", str(data), str(export), "--out", str(tmp_path / "m.csv")])
    assert res.exit_code == 0, res.output
    assert f"set aside {len(rec['gold_ids'])} answer(s) to gold items" in res.output
    merged = _read(tmp_path / "m.csv")
    assert (merged["label"] != "").sum() == 15 + len(rec["queue"]["ids"])


def test_accept_corrections_overwrites_deliberately_and_records_old_and_new(tmp_path, data_file):
    data_file, df = data_file
    df.loc[1, "label"] = df.loc[1, "gold"]
    df.to_csv(data_file, index=False)
    labeled = df[df["label"] != ""].astype(str)
    a, b = labeled["id"].iloc[0], labeled["id"].iloc[1]
    old_a = labeled["label"].iloc[0]
    fixes = pd.DataFrame({"id": [a, b], "given_label": [old_a, labeled["label"].iloc[1]],
                          "suggested_label": ["x", "y"], "corrected_label": ["weather_fixed", ""]})
    fixes_path = tmp_path / "reviewed.csv"
    fixes.to_csv(fixes_path, index=False)
    before = data_file.read_bytes()
    runner = CliRunner()
    res = runner.invoke(app, ["merge", str(data_file), "--accept-corrections", str(fixes_path),
                              "--out", str(tmp_path / "fixed.csv")])
    assert res.exit_code == 0, res.output
    assert "applied 1 reviewed correction(s)" in res.stderr and "1 kept as labeled" in res.stderr
    assert data_file.read_bytes() == before  # the input is never modified
    out = _read(tmp_path / "fixed.csv").set_index("id")
    assert out.loc[a, "label"] == "weather_fixed" and out.loc[b, "label"] == labeled["label"].iloc[1]
    ledger = read_ledger(ledger_path(data_file))
    rec = ledger[-1]
    assert rec["kind"] == "corrections" and rec["corrections"] == [{"id": a, "old": old_a, "new": "weather_fixed"}]
    # Reviewed against a label the data no longer has: refused, nothing written.
    res = runner.invoke(app, ["merge", str(tmp_path / "fixed.csv"), "--accept-corrections", str(fixes_path),
                              "--out", str(tmp_path / "again.csv")])
    assert res.exit_code == 1 and "label has changed since" in res.stderr
    assert not (tmp_path / "again.csv").exists()
    # Without the flag an export that differs stays a conflict.
    export = tmp_path / "export.csv"
    pd.DataFrame({"id": [a], "label": ["weather_fixed"]}).to_csv(export, index=False)
    res = runner.invoke(app, ["merge", str(data_file), str(export), "--out", str(tmp_path / "c.csv")])
    assert res.exit_code == 1 and "the data already has" in res.stderr


def test_partial_merges_clean_labels_and_lists_conflicts(tmp_path, data_file):
    path, df = data_file
    wrong = next(c for c in ("sports", "weather", "finance") if c != df.gold[0])
    export = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["r0000", "r0003", "r0004", "r0004", "nope"],
                  "label": [wrong, df.gold[3], "sports", "weather", "sports"],
                  "annotator": ["ann", "ann", "ann", "bob", "ann"]}).to_csv(export, index=False)
    out = tmp_path / "merged.csv"
    res = runner.invoke(app, ["merge", str(path), str(export), "--out", str(out), "--partial"])
    assert res.exit_code == 0, res.output
    merged = _read(out)
    assert merged.loc[3, "label"] == df.gold[3]                      # the clean label went in
    assert merged.loc[0, "label"] == _read(path).loc[0, "label"]     # the overwrite did not
    assert merged.loc[4, "label"] == _read(path).loc[4, "label"]     # nor the disputed id
    conflicts = pd.read_csv(tmp_path / "merged.conflicts.csv", keep_default_na=False)
    assert sorted(conflicts["id"]) == ["nope", "r0000", "r0004"]  # one row per id
    assert conflicts.set_index("id").loc["r0004", "label"] == "sports;weather"
    assert "annotators disagree: ann says 'sports', bob says 'weather'" in set(conflicts["problem"])
    assert "3 conflict(s) left out" in res.stderr


def test_unsure_rows_take_the_returned_label():
    data = pd.DataFrame({"id": ["a", "b", "c"], "text": ["x", "y", "z"], "label": ["unsure", "pos", "NEEDS_REVIEW"]})
    labels = pd.DataFrame({"id": ["a", "c"], "label": ["neg", "pos"]})
    res = merge_labels(data, labels)
    assert res.data["label"].tolist() == ["neg", "pos", "pos"] and res.n_new == 2
    assert res.from_unsure == [{"id": "a", "was": "unsure", "label": "neg"},
                               {"id": "c", "was": "NEEDS_REVIEW", "label": "pos"}]
    with pytest.raises(MergeConflictError):  # with the unsure path switched off it is an overwrite again
        merge_labels(data, labels, unsure_labels=())


def test_doccano_zip_export_keeps_each_annotator(tmp_path):
    """doccano 1.8 exports a zip of <username>.jsonl (one per member; all.jsonl when collaborative)."""
    import zipfile

    rows = {"alice": [{"id": 7, "text": "a", "selector_id": "r1", "label": ["sports"], "Comments": []},
                      {"id": 8, "text": "b", "selector_id": "r2", "label": [], "Comments": []}],
            "bob": [{"id": 7, "text": "a", "selector_id": "r1", "label": ["sports"], "Comments": []},
                    {"id": 8, "text": "b", "selector_id": "r2", "label": ["weather"], "Comments": []}]}
    path = tmp_path / "doccano_export.zip"
    with zipfile.ZipFile(path, "w") as z:
        for user, items in rows.items():
            z.writestr(f"{user}.jsonl", "".join(json.dumps(x) + "\n" for x in items))
    labels, skipped, kind = read_labels(path)
    assert kind == "doccano" and skipped == 1
    assert labels[["id", "label", "annotator"]].values.tolist() == [
        ["r1", "sports", "alice"], ["r1", "sports", "bob"], ["r2", "weather", "bob"]]
    merged = merge_labels(pd.DataFrame({"id": ["r1", "r2"], "text": ["a", "b"], "label": ["", ""]}), labels)
    assert merged.data["annotator"].tolist() == ["alice;bob", "bob"]
    with zipfile.ZipFile(tmp_path / "all.zip", "w") as z:  # collaborative project: no user per file
        z.writestr("all.jsonl", json.dumps(rows["bob"][1]) + "\n")
    labels, _, _ = read_labels(tmp_path / "all.zip")
    assert labels["annotator"].tolist() == [None]
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable zip file"):
        read_labels(tmp_path / "bad.zip")


def test_real_doccano_export_zip_merges_with_annotators(tmp_path):
    """The zip a real doccano 1.8.4 exported (scripts/doccano_roundtrip.py): alice labeled 8 tasks,
    bob 6, 4 of them the same; the tasks were `selector export --format doccano` lines."""
    folder = Path(__file__).parent / "data" / "doccano"
    labels, skipped, kind = read_labels(folder / "doccano_export.zip")
    assert kind == "doccano" and len(labels) == 14 and skipped == 46  # 3 members x 20 tasks, 14 labeled
    per_row = labels.groupby("id")["annotator"].apply(lambda a: ";".join(sorted(a)))
    assert sorted(per_row.value_counts().items()) == [("alice", 4), ("alice;bob", 4), ("bob", 2)]
    exported = [json.loads(x) for x in (folder / "selector_export.jsonl").read_text().splitlines()]
    assert all(x["label"] == [] for x in exported)  # what doccano imported without "Column label not found"
    data = pd.DataFrame({"id": [x["selector_id"] for x in exported], "text": [x["text"] for x in exported],
                         "label": [""] * len(exported)})
    merged = merge_labels(data, labels).data.set_index("id")
    assert (merged["label"] != "").sum() == 10 and set(merged.loc[per_row.index, "annotator"]) == {"alice", "bob", "alice;bob"}


def test_cli_records_unsure_relabels_in_the_ledger(tmp_path):
    data = tmp_path / "data.csv"
    pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": ["unsure", ""]}).to_csv(data, index=False)
    export = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["a", "b"], "label": ["pos", "neg"]}).to_csv(export, index=False)
    res = runner.invoke(app, ["merge", str(data), str(export), "--out", str(tmp_path / "m.csv")])
    assert res.exit_code == 0, res.output
    assert "1 row(s) labeled unsure took their new label" in res.stderr
    (rec,) = read_ledger(ledger_path(data))
    assert rec["kind"] == "unsure_relabels" and rec["relabels"] == [{"id": "a", "was": "unsure", "label": "pos"}]
