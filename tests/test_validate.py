"""The release-gate checks of selector.quality.validate and the ``selector validate`` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.cli.app import app
from selector.errors import ConfigError, DataError
from selector.models import HashingEmbedder
from selector.quality.validate import near_duplicate_pairs, validate

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def _table():
    rows = [
        ("r1", "Where is my card?", "card_arrival"),
        ("r2", "where is my CARD", "card_arrival"),          # exact duplicate of r1 (normalised)
        ("r3", "I want a refund now", "refund"),
        ("r4", "I want a refund, now!", "card_arrival"),     # contradiction with r3
        ("r5", "How do I top up by card", "top_up"),
        ("r6", "what is the weather", "chitchat"),           # not in the allowed set
        ("r7", "?!", "refund"),                               # near-empty text
        ("r8", "Transfer money to a friend abroad", "transfer"),
        ("r9", "please transfer money to friend abroad", "top_up"),
        ("r10", "card still not here", "Card_Arrival"),      # label variant
        ("r11", "unlabeled text waiting", ""),
    ]
    rows += [(f"x{i}", f"top up number {i} with my visa", "top_up") for i in range(40)]
    return pd.DataFrame(rows, columns=["id", "text", "label"])


def _embeddings(df):
    X = HashingEmbedder(64).encode(df["text"].tolist())
    # r9 is a reworded r8: make them near-identical so the near-duplicate check must find them.
    X[8] = X[7] + 0.01 * X[8]
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def test_every_check_finds_its_rows():
    df = _table()
    allowed = ["card_arrival", "refund", "top_up", "transfer", "Card_Arrival"]
    report = validate(df, labels=allowed, embeddings=_embeddings(df))
    f = {x.check: x for x in report.findings}
    assert set(f["contradiction"].row_ids) == {"r3", "r4"}
    assert f["contradiction"].severity == "blocker"
    assert f["contradiction"].details["groups"][0]["labels"] == ["card_arrival", "refund"]
    assert set(f["exact_duplicate"].row_ids) == {"r1", "r2"}
    assert f["invalid_label"].row_ids == ["r6"]
    assert f["empty_text"].row_ids == ["r7"]
    assert set(f["near_duplicate"].row_ids) == {"r8", "r9"}
    assert f["near_duplicate"].details["groups"][0]["similarity"] >= 0.95
    assert set(f["label_variant"].row_ids) >= {"r10", "r1", "r2"}
    small = set(f["class_imbalance"].details["small_classes"])
    assert {"chitchat", "transfer", "Card_Arrival"} <= small and "top_up" not in small
    assert "missing_negatives" in f
    assert not report.passed
    assert [x.severity for x in report.findings][:2] == ["blocker", "blocker"]
    rows = report.rows()
    assert set(rows.columns) == {"check", "severity", "row_id", "group"}
    json.dumps(report.to_dict())


def test_clean_table_passes_and_negatives_are_recognised():
    df = pd.DataFrame({"id": ["a", "b", "c", "d"], "text": ["open an account", "close my account",
                                                             "tell me a joke", "open a savings account"],
                       "label": ["open", "close", "Out of Scope", "open"]})
    report = validate(df, near_duplicates=False, imbalance_ratio=0.0)
    assert report.passed and report.findings == []
    binary = df.assign(label=["hate", "not_hate", "hate", "not_hate"])
    assert validate(binary, near_duplicates=False).finding("missing_negatives") is None
    # Three intents and no negative: fires. Two classes (positive/negative, ham/spam) carry their own negative.
    assert validate(df.assign(label=["a", "b", "c", "b"]), near_duplicates=False).finding("missing_negatives")
    for pair in (["positive", "negative"], ["ham", "spam"]):
        assert validate(df.assign(label=pair * 2), near_duplicates=False).finding("missing_negatives") is None


def test_blockers_are_configurable_and_checked():
    df = _table()
    report = validate(df, blockers=(), near_duplicates=False)
    assert report.passed and report.finding("contradiction").severity == "warning"
    with pytest.raises(ConfigError, match="unknown check"):
        validate(df, blockers=("contradictions",), near_duplicates=False)
    with pytest.raises(DataError, match="pass --label-col"):
        validate(df.rename(columns={"label": "y"}), near_duplicates=False)


def test_near_duplicate_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 8)).astype(np.float32)
    X[150:] = X[:150] + 0.05 * rng.normal(size=(150, 8)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    pairs, sim = near_duplicate_pairs(X, 0.9)
    S = X @ X.T
    i, j = np.nonzero(np.triu(S >= 0.9, k=1))
    assert set(map(tuple, pairs.tolist())) == set(zip(i.tolist(), j.tolist()))
    np.testing.assert_allclose(sim, S[pairs[:, 0], pairs[:, 1]], rtol=1e-5)


def test_emotion_contradictions():
    path = DATASETS / "emotion" / "data.csv"
    if not path.exists():
        pytest.skip("emotion not available")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    report = validate(df, near_duplicates=False)
    c = report.finding("contradiction")
    # SOURCE.md: 51 texts occur with 2 different labels (52 duplicate rows).
    assert len(c.details["groups"]) >= 51
    assert all(len(g["labels"]) >= 2 for g in c.details["groups"])
    assert not report.passed


def test_cli_validate(tmp_path):
    df = _table()
    src = tmp_path / "data.csv"
    df.to_csv(src, index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["validate", str(src), "--model", "hashing", "--cache-dir", str(tmp_path / "c"),
                              "--labels", "card_arrival,refund,top_up,transfer", "--out", str(tmp_path / "f.csv")])
    assert res.exit_code == 1, res.output
    assert "[BLOCKER] contradiction" in res.stdout and "validation failed" in res.stderr
    assert (tmp_path / "f.csv").exists()
    res = runner.invoke(app, ["validate", str(src), "--no-embed", "--blockers", "", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["passed"] is True
    # The allowed label set can come from the config file; "unsure" rows count as unlabeled.
    (tmp_path / "cfg.yaml").write_text("labels: [card_arrival, refund, top_up, transfer, Card_Arrival, chitchat]\n")
    df.loc[len(df)] = ["r99", "no idea what this is", "UNSURE"]
    df.to_csv(src, index=False)
    res = runner.invoke(app, ["validate", str(src), "--no-embed", "--config", str(tmp_path / "cfg.yaml"),
                              "--blockers", "invalid_label", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["settings"]["labels"][0] == "Card_Arrival"
    res = runner.invoke(app, ["validate", str(src), "--no-embed", "--labels", "refund", "--blockers", "invalid_label"])
    assert res.exit_code == 1 and "[BLOCKER] invalid_label" in res.stdout and "UNSURE" not in res.stdout
    res = runner.invoke(app, ["validate", str(tmp_path / "missing.csv")])
    assert res.exit_code == 1 and "file not found" in res.stderr
