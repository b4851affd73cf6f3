"""Golden set: Wilson intervals, the per-annotator report, drift, and gold injection into a queue."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.quality.annotations import prepare_annotations
from selector.cli.app import app
from selector.errors import ConfigError, DataError
from selector.quality.gold import (
    ALL_ANNOTATORS,
    format_drift_report,
    format_gold_report,
    gold_drift,
    gold_report,
    inject_gold,
    prepare_gold,
    split_gold,
)
from selector.quality.stats import wilson_interval

runner = CliRunner()
DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
CLASSES = ("cat", "dog", "fox")


def make_gold(n: int = 60) -> pd.DataFrame:
    return prepare_gold(pd.DataFrame({"item_id": [f"g{i:03d}" for i in range(n)],
                                      "gold_label": [CLASSES[i % 3] for i in range(n)]}))


def make_ratings(gold: pd.DataFrame, accuracy: dict[str, float], seed: int = 0) -> pd.DataFrame:
    """Each annotator rates every gold item; wrong answers always say the next class (a fixed confusion)."""
    rng = np.random.default_rng(seed)
    rows = []
    for ann, acc in accuracy.items():
        n_right = int(round(acc * len(gold)))
        right = np.zeros(len(gold), dtype=bool)
        right[rng.choice(len(gold), size=n_right, replace=False)] = True
        for (item, g), ok in zip(gold[["item_id", "gold_label"]].itertuples(index=False), right):
            rows.append({"item_id": item, "annotator": ann, "label": g if ok else CLASSES[(CLASSES.index(g) + 1) % 3]})
    return pd.DataFrame(rows)


def test_wilson_interval_known_values():
    lo, hi = wilson_interval(8, 10)
    assert (float(lo), float(hi)) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    lo, hi = wilson_interval(np.array([0, 10, 0]), np.array([10, 10, 0]))
    assert lo[0] == 0.0 and hi[1] == 1.0 and hi[0] == pytest.approx(0.2775, abs=1e-4)
    assert np.isnan(lo[2]) and np.isnan(hi[2])


def test_prepare_gold_validates():
    with pytest.raises(DataError, match="no column 'gold_label'.*--gold-col"):
        prepare_gold(pd.DataFrame({"item_id": ["a"], "label": ["x"]}), source="g.csv")
    with pytest.raises(DataError, match="data row 2 has an empty 'gold_label'"):
        prepare_gold(pd.DataFrame({"item_id": ["a", "b"], "gold_label": ["x", " "]}))
    with pytest.raises(DataError, match="item 'a' has 2 different gold labels"):
        prepare_gold(pd.DataFrame({"item_id": ["a", "a"], "gold_label": ["x", "y"]}))
    long = prepare_gold(pd.DataFrame({"item_id": ["a", "a", 3.0], "gold_label": ["x", "x", "y"], "text": ["t", "t", "u"]}))
    assert long["item_id"].tolist() == ["a", "3"] and long["text"].tolist() == ["t", "u"]


def test_report_accuracy_interval_flags_and_evidence():
    gold = make_gold(60)
    ann = prepare_annotations(make_ratings(gold, {"good": 0.9, "fair": 0.75, "poor": 0.5}))
    rep = gold_report(ann, gold, min_accuracy=0.7)
    t = rep.annotators.set_index("annotator")
    assert t.loc["good", "n_correct"] == 54 and t.loc["good", "accuracy"] == pytest.approx(0.9)
    assert t.loc["poor", "accuracy"] == pytest.approx(0.5) and t.loc["good", "n_gold_seen"] == 60
    lo, hi = wilson_interval(30, 60)
    assert t.loc["poor", "ci_low"] == pytest.approx(lo, abs=1e-4) and t.loc["poor", "ci_high"] == pytest.approx(hi, abs=1e-4)
    assert rep.flagged["annotator"].tolist() == ["poor"]
    assert rep.annotators["annotator"].tolist() == ["poor", "fair", "good"]  # lowest accuracy first
    evidence = t.loc["poor", "evidence"]
    assert "accuracy 0.50" in evidence and "30 right" in evidence and "whole 95% interval below 0.7" in evidence
    assert "most confused:" in evidence and "->" in evidence
    assert (rep.n_gold_items, rep.n_gold_rated) == (60, 60)
    text = format_gold_report(rep)
    assert "1 annotator(s) flagged below 0.7" in text and "FLAG" in text


def test_per_class_precision_recall_and_confusions_are_exact():
    gold = prepare_gold(pd.DataFrame({"item_id": list("abcdef"), "gold_label": ["cat", "cat", "cat", "dog", "dog", "fox"]}))
    ann = prepare_annotations(pd.DataFrame({"item_id": list("abcdef"), "annotator": "x",
                                            "label": ["cat", "dog", "dog", "dog", "cat", "fox"]}))
    rep = gold_report(ann, gold)
    pc = rep.per_class.set_index("class")
    assert pc.loc["cat", "recall"] == pytest.approx(1 / 3) and pc.loc["cat", "precision"] == pytest.approx(0.5)
    assert pc.loc["dog", "recall"] == pytest.approx(0.5) and pc.loc["dog", "precision"] == pytest.approx(1 / 3)
    assert pc.loc["fox", "precision"] == 1.0 and pc.loc["fox", "support"] == 1
    top = rep.confusions.iloc[0]
    assert (top["gold_label"], top["given_label"], top["count"]) == ("cat", "dog", 2)
    assert rep.annotators.loc[0, "top_confusion"] == "cat -> dog (2)"


def test_unsure_ratings_are_seen_not_scored():
    gold = make_gold(6)
    ann = prepare_annotations(pd.DataFrame({"item_id": gold["item_id"], "annotator": "u",
                                            "label": ["unsure", "needs_review", *gold["gold_label"].iloc[2:5], "dog"]}))
    row = gold_report(ann, gold).annotators.iloc[0]
    assert (row["n_gold_seen"], row["n_unsure"], row["n_scored"], row["n_correct"]) == (6, 2, 4, 3)
    only_unsure = prepare_annotations(pd.DataFrame({"item_id": ["g000", "other"], "annotator": ["v", "w"],
                                                    "label": ["unsure", "cat"]}))
    rep = gold_report(only_unsure, gold)
    t = rep.annotators.set_index("annotator")
    assert np.isnan(t.loc["v", "accuracy"]) and not t.loc["v", "flagged"] and "all unsure" in t.loc["v", "evidence"]
    assert t.loc["w", "n_gold_seen"] == 0 and "not checked" in t.loc["w", "evidence"] and rep.n_unchecked == 1


def test_report_refuses_disjoint_ids_and_bad_threshold():
    gold = make_gold(5)
    ann = prepare_annotations(pd.DataFrame({"item_id": ["zz"], "annotator": "a", "label": ["cat"]}))
    with pytest.raises(DataError, match="same item ids"):
        gold_report(ann, gold)
    with pytest.raises(ConfigError, match="min_accuracy"):
        gold_report(ann, gold, min_accuracy=70)


def timed_ratings(flip_from: str | None, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two good annotators rate gold items over 6 weeks; ``drifter`` answers the next class from ``flip_from``."""
    gold = make_gold(240)
    rng = np.random.default_rng(seed)
    rows = []
    for ann in ("steady", "drifter"):
        for item, g in gold[["item_id", "gold_label"]].itertuples(index=False):
            ts = pd.Timestamp("2024-03-04") + pd.Timedelta(seconds=int(rng.integers(0, 6 * 7 * 86400)))
            label = g if rng.random() < 0.9 else CLASSES[(CLASSES.index(g) + 1) % 3]
            if ann == "drifter" and flip_from is not None and ts >= pd.Timestamp(flip_from) and g == "cat":
                label = "fox"  # reads the new guideline as "cat means fox"
            rows.append({"item_id": item, "annotator": ann, "label": label, "timestamp": ts.isoformat(),
                         "guideline_version": "v2" if ts < pd.Timestamp("2024-03-25") else "v10"})
    return prepare_annotations(pd.DataFrame(rows)), gold


def test_planted_drift_is_found_with_annotator_class_and_week():
    ann, gold = timed_ratings("2024-03-25")  # Monday of ISO week 13
    rep = gold_drift(ann, gold, by="week", min_items=5)
    assert rep.periods == [f"2024-W{w:02d}" for w in range(10, 16)]
    hits = rep.drifts[rep.drifts["annotator"] == "drifter"]
    assert len(hits) == 1
    hit = hits.iloc[0]
    assert hit["to_period"] == "2024-W13" and hit["change"] < 0 and hit["classes"] == "cat"
    assert "drifter" in hit["detail"] and "week 2024-W13" in hit["detail"] and "cat recall" in hit["detail"]
    assert "steady" not in set(rep.drifts["annotator"])
    assert set(rep.windows["annotator"]) == {"steady", "drifter", ALL_ANNOTATORS}
    w = rep.windows.set_index(["annotator", "period"])
    assert w.loc[(ALL_ANNOTATORS, "2024-W10"), "n_scored"] == (
        w.loc[("steady", "2024-W10"), "n_scored"] + w.loc[("drifter", "2024-W10"), "n_scored"])
    assert "DRIFT drifter" in format_drift_report(rep)


def test_no_drift_without_a_change_and_by_month_or_version():
    ann, gold = timed_ratings(None)
    rep = gold_drift(ann, gold, by="week")
    assert rep.drifts.empty and "no drift found" in format_drift_report(rep)
    assert gold_drift(ann, gold, by="month").periods == ["2024-03", "2024-04"]
    planted, gold = timed_ratings("2024-03-25")
    by_version = gold_drift(planted, gold, by="guideline_version")
    assert by_version.periods == ["v2", "v10"]  # natural order, not string order
    hit = by_version.drifts.set_index("annotator").loc["drifter"]
    assert (hit["from_period"], hit["to_period"], hit["classes"]) == ("v2", "v10", "cat")
    assert "guideline version v10" in hit["detail"]


def test_drift_input_errors():
    ann, gold = timed_ratings(None)
    bad = ann.copy()
    bad.loc[3, "timestamp"] = "last tuesday"
    with pytest.raises(DataError, match="unreadable 'timestamp'.*last tuesday"):
        gold_drift(bad, gold, by="week")
    with pytest.raises(DataError, match="no 'timestamp' column"):
        gold_drift(ann.drop(columns="timestamp"), gold, by="month")
    with pytest.raises(DataError, match="no 'guideline_version' column"):
        gold_drift(ann.drop(columns="guideline_version"), gold, by="guideline_version")
    with pytest.raises(ConfigError, match="by must be one of"):
        gold_drift(ann, gold, by="day")
    with pytest.raises(ConfigError, match="min_items"):
        gold_drift(ann, gold, min_items=0)


def queue_of(n: int) -> pd.DataFrame:
    return pd.DataFrame({"rank": np.arange(1, n + 1), "id": [f"q{i}" for i in range(n)], "text": [f"t{i}" for i in range(n)],
                         "score": np.linspace(1, 0, n), "strategy": "margin", "reason": "uncertain",
                         "predicted_label": "cat", "predicted_proba": 0.5})


def gold_items(n: int) -> pd.DataFrame:
    return pd.DataFrame({"item_id": [f"g{i}" for i in range(n)], "gold_label": "dog", "text": [f"gold {i}" for i in range(n)]})


def test_inject_gold_keeps_length_blinds_queue_and_is_seeded():
    q = queue_of(100)
    mixed = inject_gold(q, gold_items(30), 0.1, random_state=3)
    assert len(mixed.queue) == 100 and list(mixed.queue.columns) == ["rank", "id", "text"]
    assert mixed.queue["rank"].tolist() == list(range(1, 101)) and mixed.queue["id"].is_unique
    assert len(mixed.gold_ids) == 10 and set(mixed.gold_ids) <= {f"g{i}" for i in range(30)}
    key = mixed.key
    assert key["gold"].sum() == 10 and set(key.loc[key["gold"], "id"]) == set(mixed.gold_ids)
    assert (key.loc[key["gold"], "gold_label"] == "dog").all()
    # the 90 best picks survive in order; the 10 lowest-ranked make room
    assert key.loc[~key["gold"], "id"].tolist() == [f"q{i}" for i in range(90)]
    assert not set(key.loc[key["gold"], "rank"]) <= set(range(91, 101))  # mixed in, not appended
    again = inject_gold(q, gold_items(30), 0.1, random_state=3)
    assert again.queue.equals(mixed.queue)
    other = inject_gold(q, gold_items(30), 0.1, random_state=4)
    assert not other.queue["id"].equals(mixed.queue["id"])


def test_inject_gold_edge_cases():
    q = queue_of(20)
    with pytest.raises(ConfigError, match="between 0 and 1"):
        inject_gold(q, gold_items(5), 1.5)
    with pytest.warns(UserWarning, match="only 2 are available"):
        mixed = inject_gold(q, gold_items(2), 0.5, random_state=0)
    assert len(mixed.gold_ids) == 2 and len(mixed.queue) == 20
    with pytest.warns(UserWarning, match="rounds to 0"):
        assert inject_gold(queue_of(5), gold_items(5), 0.05).gold_ids == []
    already = gold_items(3).assign(item_id=["q0", "g1", "g2"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "q0" not in inject_gold(q, already, 0.1, random_state=0).gold_ids


def test_split_gold_keeps_gold_answers_out_of_training_labels():
    returned = pd.DataFrame({"id": ["q1", "g2", "q3", 7.0], "label": ["cat", "dog", "fox", "cat"]})
    new, answers = split_gold(returned, ["g2", "7"])
    assert new["id"].tolist() == ["q1", "q3"] and answers["id"].tolist() == ["g2", 7.0]
    with pytest.raises(DataError, match="no 'item_id' column"):
        split_gold(returned, ["g2"], id_col="item_id")


def test_cli_gold_report_drift_and_json(tmp_path):
    ann, gold = timed_ratings("2024-03-25")
    ann_path, gold_path, out = tmp_path / "ann.csv", tmp_path / "gold.csv", tmp_path / "report.json"
    ann.to_csv(ann_path, index=False)
    gold.to_csv(gold_path, index=False)
    res = runner.invoke(app, ["gold", str(gold_path), str(ann_path), "--min-accuracy", "0.85", "--by", "week",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "flag below accuracy 0.85" in res.stdout and "DRIFT drifter" in res.stdout
    data = json.loads(out.read_text())
    assert {r["annotator"] for r in data["annotators"]} == {"steady", "drifter"}
    assert "drifter" in {d["annotator"] for d in data["drift"]["week"]["drifts"]}
    # without --by, drift per guideline_version runs because the column is there
    res = runner.invoke(app, ["gold", str(gold_path), str(ann_path)])
    assert res.exit_code == 0 and "drift per guideline version" in res.stdout
    bad = runner.invoke(app, ["gold", str(gold_path), str(ann_path), "--by", "day"])
    assert bad.exit_code == 1 and "--by must be one of" in bad.stderr
    bad = runner.invoke(app, ["gold", str(gold_path), str(ann_path), "--gold-col", "expert"])
    assert bad.exit_code == 1 and "no column 'expert'" in bad.stderr and str(gold_path) in bad.stderr


def test_cli_select_mixes_gold_unmarked_and_records_ids(tmp_path):
    rng = np.random.default_rng(0)
    words = ["alpha", "beta", "gamma", "delta", "eps", "zeta"]
    df = pd.DataFrame({"id": [f"r{i}" for i in range(80)],
                       "text": [" ".join(rng.choice(words, 5)) + f" {i}" for i in range(80)],
                       "label": [("a" if i % 2 else "b") if i < 20 else "" for i in range(80)]})
    data, gold_path, out = tmp_path / "data.csv", tmp_path / "gold.csv", tmp_path / "queue.csv"
    df.to_csv(data, index=False)
    # gold items are labeled rows of the data (no text column: texts come from the data)
    pd.DataFrame({"item_id": [f"r{i}" for i in range(10)], "gold_label": ["x"] * 10}).to_csv(gold_path, index=False)
    args = ["select", str(data), "--budget", "20", "--out", str(out), "--model", "hashing",
            "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    res = runner.invoke(app, [*args, "--gold", str(gold_path), "--gold-rate", "0.1"])
    assert res.exit_code == 0, res.output
    queue = pd.read_csv(out)
    assert list(queue.columns) == ["rank", "id", "text"] and len(queue) == 20
    record = json.loads((tmp_path / "queue.round.json").read_text())
    assert len(record["gold_ids"]) == 2 and set(record["gold_ids"]) <= set(queue["id"])
    assert record["gold"]["rate"] == 0.1 and record["outputs"]["gold_key"].endswith("queue.key.csv")
    key = pd.read_csv(tmp_path / "queue.key.csv")
    gold_rows = key[key["gold"]]
    assert set(gold_rows["id"]) == set(record["gold_ids"])
    texts = dict(zip(df["id"], df["text"]))
    assert all(texts[i] == t for i, t in zip(gold_rows["id"], gold_rows["text"]))
    bad = runner.invoke(app, [*args, "--gold-rate", "0.1"])
    assert bad.exit_code == 1 and "--gold-rate needs --gold" in bad.stderr
    pd.DataFrame({"item_id": ["nowhere"], "gold_label": ["x"]}).to_csv(gold_path, index=False)
    bad = runner.invoke(app, [*args, "--gold", str(gold_path)])
    assert bad.exit_code == 1 and "'nowhere' has no text" in bad.stderr


@pytest.mark.skipif(not (DATASETS / "snow2008_rte" / "data.csv").is_file(), reason="shared datasets not present")
def test_snow2008_rte_gold_report_matches_direct_count():
    raw = pd.read_csv(DATASETS / "snow2008_rte" / "data.csv", dtype=str, keep_default_na=False,
                      usecols=["item_id", "annotator", "label", "gold_label"])
    items = raw.drop_duplicates("item_id")
    gold = prepare_gold(items.iloc[np.sort(np.random.default_rng(0).choice(len(items), 100, replace=False))])
    rep = gold_report(prepare_annotations(raw), gold, min_accuracy=0.7)
    assert rep.n_gold_items == 100 and rep.n_gold_rated == 100
    on_gold = raw[raw["item_id"].isin(set(gold["item_id"]))]
    assert rep.annotators["n_gold_seen"].sum() == len(on_gold) == 1000
    busiest = on_gold["annotator"].value_counts().index[0]
    sub = on_gold[on_gold["annotator"] == busiest]
    row = rep.annotators.set_index("annotator").loc[busiest]
    assert row["n_correct"] == int((sub["label"] == sub["gold_label"]).sum())
    # pooled accuracy agrees with the dataset card's mean worker accuracy (0.729 over all items)
    assert rep.annotators["n_correct"].sum() / 1000 == pytest.approx(0.73, abs=0.05)
