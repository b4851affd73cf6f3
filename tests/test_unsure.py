"""The unsure path: unsure values are "no label yet", their rates, and the review list."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.quality.annotations import prepare_annotations
from selector.cli.app import app
from selector.config import SelectConfig, load_config
from selector.round.pool import prepare_pool
from selector.errors import ConfigError, DataError
from selector.models import HashingEmbedder
from selector.round.run import run_round
from selector.labels import DEFAULT_UNSURE_LABELS, normalise_unsure_labels, unsure_mask
from selector.quality.unsure import UNSURE_PRIORITY, unsure_items, unsure_report

runner = CliRunner()


def ratings() -> pd.DataFrame:
    rows = [
        # item, annotator, label, version
        ("i1", "ann", "pos", "v1"), ("i1", "bob", "pos", "v1"), ("i1", "cat", "unsure", "v1"),
        ("i2", "ann", "neg", "v1"), ("i2", "bob", "Needs_Review", "v2"), ("i2", "cat", "neg", "v2"),
        ("i3", "ann", "pos", "v2"), ("i3", "bob", "unsure", "v2"), ("i3", "cat", "unsure", "v2"),
        ("i4", "ann", "neg", "v2"), ("i4", "bob", "neg", "v2"), ("i4", "cat", "pos", "v2"),
        ("i5", "ann", "unsure", "v10"), ("i5", "bob", "unsure", "v10"),
    ]
    df = pd.DataFrame(rows, columns=["item_id", "annotator", "label", "guideline_version"])
    df["text"] = df["item_id"].map(lambda i: f"text of {i}")
    return prepare_annotations(df)


def test_unsure_values_default_parse_and_reject():
    assert normalise_unsure_labels(None) == frozenset(DEFAULT_UNSURE_LABELS)
    assert normalise_unsure_labels("Unsure, skip") == frozenset({"unsure", "skip"})
    assert normalise_unsure_labels(()) == frozenset()
    with pytest.raises(ConfigError, match="non-empty"):
        normalise_unsure_labels(["unsure", " "])


def test_mask_is_case_insensitive_and_ignores_empty_cells():
    mask = unsure_mask(np.array(["UNSURE", "needs_review", "pos", None, "unsure "], dtype=object))
    assert mask.tolist() == [True, True, False, False, True]
    assert not unsure_mask(["unsure"], ()).any()


def test_prepare_pool_counts_unsure_as_unlabeled():
    df = pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["w x", "y z", "p q", "r s"],
                       "label": ["pos", "unsure", "Needs_Review", ""]})
    pool = prepare_pool(df)
    assert pool.labeled.tolist() == [True, False, False, False]
    assert pool.labels[1] is None and pool.labels[2] is None
    kept = prepare_pool(df, unsure_labels=())
    assert kept.labeled.tolist() == [True, True, True, False]
    assert kept.labels[1] == "unsure"


def test_config_unsure_labels_default_file_and_invalid(tmp_path):
    assert SelectConfig().unsure_labels == DEFAULT_UNSURE_LABELS
    path = tmp_path / "c.yaml"
    path.write_text("unsure_labels: [skip, dunno]\n")
    assert load_config(path).unsure_labels == ("skip", "dunno")
    path.write_text("unsure_labels: skip\n")
    with pytest.raises(ConfigError, match="unsure_labels"):
        load_config(path)
    # the shipped default config documents the key with its default value
    from pathlib import Path

    shipped = Path(__file__).resolve().parents[1] / "configs" / "default.yaml"
    assert load_config(shipped).unsure_labels == DEFAULT_UNSURE_LABELS


def test_round_neither_trains_on_unsure_nor_excludes_it_from_selection():
    rng = np.random.default_rng(0)
    words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "sad"]}
    rows = []
    for i in range(60):
        cls = "pos" if i % 2 else "neg"
        label = cls if i < 20 else ("unsure" if i < 30 else "")
        rows.append({"id": f"r{i}", "text": " ".join(rng.choice(words[cls], 5)) + f" {i}", "label": label})
    df = pd.DataFrame(rows)
    result = run_round(df, SelectConfig(budget=40, model="hashing"), embedder=HashingEmbedder(32))
    assert set(result.context.classes) == {"pos", "neg"}
    assert result.stats["n_labeled"] == 20 and result.stats["n_unlabeled"] == 40
    assert {f"r{i}" for i in range(20, 30)} <= set(result.queue["id"])
    # switched off, "unsure" becomes a trained class and those rows leave the pool
    off = run_round(df, SelectConfig(budget=30, model="hashing", unsure_labels=()), embedder=HashingEmbedder(32))
    assert "unsure" in set(off.context.classes)
    assert not {f"r{i}" for i in range(20, 30)} & set(off.queue["id"])


def test_unsure_report_rates_per_annotator_class_and_version():
    rep = unsure_report(ratings(), max_rate=0.4)
    assert (rep.n_ratings, rep.n_unsure) == (14, 6)
    by_ann = rep.by_annotator.set_index("annotator")
    assert by_ann.loc["bob", "n_unsure"] == 3 and by_ann.loc["bob", "n_ratings"] == 5
    assert by_ann.loc["bob", "unsure_rate"] == pytest.approx(0.6)
    assert by_ann.loc["ann", "unsure_rate"] == pytest.approx(0.2)
    assert bool(by_ann.loc["bob", "too_high"]) and not bool(by_ann.loc["ann", "too_high"])
    assert rep.by_annotator["annotator"].iloc[0] == "bob"  # highest rate first
    assert (rep.by_annotator["ci_low"] <= rep.by_annotator["unsure_rate"]).all()
    # class = majority of sure votes: i1 pos, i2 neg, i3 pos, i4 neg, i5 none
    by_cls = rep.by_class.set_index("class")
    assert by_cls.loc["pos", "n_ratings"] == 6 and by_cls.loc["pos", "n_unsure"] == 3
    assert by_cls.loc["neg", "n_unsure"] == 1
    assert by_cls.loc["(no label)", "unsure_rate"] == 1.0
    by_ver = rep.by_guideline_version.set_index("guideline_version")
    assert by_ver.loc["v1", "n_unsure"] == 1 and by_ver.loc["v2", "n_unsure"] == 3 and by_ver.loc["v10", "n_unsure"] == 2


def test_unsure_report_class_from_gold_and_no_version_column():
    ann = ratings().drop(columns="guideline_version")
    gold = pd.DataFrame({"item_id": ["i3", "i5"], "gold_label": ["neg", "neg"]})
    rep = unsure_report(ann, gold=gold)
    assert rep.by_guideline_version is None
    by_cls = rep.by_class.set_index("class")
    assert by_cls.loc["neg", "n_unsure"] == 1 + 2 + 2  # i2 + i3 (gold neg) + i5 (gold neg)
    with pytest.raises(ConfigError):
        unsure_report(ann, max_rate=1.5)
    with pytest.raises(DataError, match="prepare_annotations"):
        unsure_report(ann.drop(columns="annotator"))


def test_unsure_items_for_review_at_top_priority():
    items = unsure_items(ratings())
    assert set(items["item_id"]) == {"i1", "i2", "i3", "i5"}
    assert (items["priority"] >= UNSURE_PRIORITY).all()
    assert items["priority"].is_monotonic_decreasing
    assert items["item_id"].iloc[0] == "i5"  # every rating unsure
    row = items.set_index("item_id").loc["i3"]
    assert row["n_unsure"] == 2 and row["n_ratings"] == 3 and row["unsure_by"] == "bob, cat"
    assert row["votes"] == "ann=pos; bob=unsure; cat=unsure" and row["text"] == "text of i3"
    assert "2 of 3" in row["reason"]
    none = unsure_items(ratings(), ["nothing-like-this"])
    assert none.empty and "priority" in none.columns


def test_cli_unsure(tmp_path):
    src = tmp_path / "ann.csv"
    ratings().to_csv(src, index=False)
    out = tmp_path / "items.csv"
    res = runner.invoke(app, ["unsure", str(src), "--max-rate", "0.4", "--items-out", str(out)])
    assert res.exit_code == 0, res.output
    assert "6 of 14 ratings unsure" in res.stdout
    assert "per guideline version" in res.stdout and "TOO HIGH" in res.stdout
    assert len(pd.read_csv(out)) == 4
    bad = runner.invoke(app, ["unsure", str(src), "--label-col", "nope"])
    assert bad.exit_code == 1 and "no column 'nope'" in bad.stderr
