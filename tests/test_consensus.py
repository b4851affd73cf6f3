"""Consensus from several annotators: majority, Dawid-Skene (sparse-safe) and votes x model."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector import consensus
from selector.cli.app import app
from selector.errors import ConfigError, DataError
from selector.quality.agreement import ConvergenceWarning, dawid_skene, encode_ratings
from selector.quality.annotations import prepare_annotations
from selector.quality.consensus import CONSENSUS_COLUMNS, consensus_from_codes

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def sparse_crowd(seed=0, n_items=600, k=8, n_annotators=30, d=16):
    """Items in k separable clusters; 1-3 votes each from annotators right 60% of the time."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d))
    truth = rng.integers(k, size=n_items)
    X = centers[truth] + 0.6 * rng.normal(size=(n_items, d))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    rows = []
    for i in range(n_items):
        for a in rng.choice(n_annotators, size=int(rng.integers(1, 4)), replace=False):
            lab = truth[i] if rng.random() < 0.6 else rng.integers(k)
            rows.append((f"i{i:04d}", f"a{a:02d}", f"c{lab}"))
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    items = np.array([f"i{i:04d}" for i in range(n_items)])
    return ann, X, pd.Series(np.array([f"c{t}" for t in truth]), index=items)


def test_model_consensus_beats_votes_alone_on_a_sparse_crowd():
    ann, X, truth = sparse_crowd()
    codes = encode_ratings(prepare_annotations(ann))
    gold = truth.reindex(codes.items).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mv = consensus_from_codes(codes, method="majority")
        ds = consensus_from_codes(codes, method="dawid_skene")
    model = consensus_from_codes(codes, method="model", X=X[np.searchsorted(truth.index, codes.items)])
    acc = {name: float((r.label == gold).mean()) for name, r in (("mv", mv), ("ds", ds), ("model", model))}
    assert acc["model"] >= acc["mv"] + 0.1, acc
    assert acc["ds"] >= acc["mv"] - 0.02, acc  # the sparse-safe EM does not collapse below the vote
    q = model.quality
    assert np.all((q > 0) & (q <= 1))
    frame = model.frame()
    assert list(frame.columns) == CONSENSUS_COLUMNS and frame["consensus_quality"].is_monotonic_increasing
    ann_q = model.annotator_frame()
    assert len(ann_q) == codes.annotators.size and ann_q["quality"].between(0, 1).all()


def test_dawid_skene_reports_non_convergence():
    ann, _, _ = sparse_crowd(n_items=200)
    with pytest.warns(ConvergenceWarning, match="did not converge in 2 EM iterations"):
        ds = dawid_skene(prepare_annotations(ann), max_iter=2)
    assert not ds.converged and ds.n_iter == 2


def test_snow2008_dense_consensus_against_gold():
    path = DATASETS / "snow2008_rte" / "data.csv"
    if not path.exists():
        pytest.skip(f"{path} not available")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    codes = encode_ratings(prepare_annotations(df))
    gold = df.drop_duplicates("item_id").set_index("item_id")["gold_label"].reindex(codes.items).to_numpy()
    ds = consensus_from_codes(codes, method="dawid_skene")
    # Snow et al. (2008) and crowd-kit's DawidSkene reach 0.927 on these 800 items.
    assert (ds.label == gold).mean() >= 0.925


def test_api_needs_texts_for_the_model_and_names_the_missing_item():
    ann, _, _ = sparse_crowd(n_items=50)
    with pytest.raises(DataError, match="needs the items' texts"):
        consensus(ann)
    data = pd.DataFrame({"id": [f"i{i:04d}" for i in range(49)], "text": ["x"] * 49})
    with pytest.raises(DataError, match="item 'i0049' has no text in --data"):
        consensus(ann, data=data)
    with pytest.raises(ConfigError, match="unknown consensus method"):
        consensus(ann, method="vote")
    assert len(consensus(ann, method="majority").frame()) == 50


def test_cli_consensus_writes_items_and_annotators(tmp_path):
    ann, X, _ = sparse_crowd(n_items=120)
    ann["label"] = ann["label"].where(ann.index % 17 != 0, "unsure")  # unsure votes are left out
    src = tmp_path / "ann.csv"
    ann.to_csv(src, index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["consensus", str(src), "--method", "dawid_skene", "--out", str(tmp_path / "c.csv")])
    assert res.exit_code == 0, res.output
    out = pd.read_csv(tmp_path / "c.csv")
    assert list(out.columns) == CONSENSUS_COLUMNS and "unsure" not in set(out["consensus_label"])
    assert set(pd.read_csv(tmp_path / "c.annotators.csv").columns) >= {"annotator", "quality"}
    assert "consensus (dawid_skene) for" in res.stderr and "unsure votes left out" in res.stderr
    res = runner.invoke(app, ["consensus", str(src), "--out", str(tmp_path / "m.csv")])
    assert res.exit_code == 1 and "needs the items' texts" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and not (tmp_path / "m.csv").exists()
