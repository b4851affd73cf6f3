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


# --------------------------------------------------------------------------- the label no annotator gave

def three_annotator_crowd(n_items=60, k=4, seed=0):
    """Three careful annotators on every item (they agree ~90%), split three ways on item 0."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n_items) % k
    rows = []
    for i in range(n_items):
        for j, a in enumerate(("ann", "bob", "cyd")):
            lab = truth[i] if rng.random() < 0.95 else (truth[i] + 1) % k
            if i == 0:  # the one item they split three ways
                lab = j
            rows.append((f"i{i:03d}", a, f"c{lab}"))
    return encode_ratings(prepare_annotations(pd.DataFrame(rows, columns=["item_id", "annotator", "label"]))), truth


def confident_model(codes, truth, *, wrong_on: int, wrong_label: int, accuracy: float, seed=0):
    """Model probabilities (n_items, k): right on ``accuracy`` of the items, and certain of
    ``wrong_label`` on item ``wrong_on``."""
    rng = np.random.default_rng(seed)
    k = codes.labels.size
    pred = np.where(rng.random(truth.size) < accuracy, truth, (truth + 2) % k)
    pred[wrong_on] = wrong_label
    proba = np.full((truth.size, k), 0.02)
    proba[np.arange(truth.size), pred] = 0.94
    proba[wrong_on] = 1e-4
    proba[wrong_on, wrong_label] = 1.0
    return proba / proba.sum(axis=1, keepdims=True)


def test_a_label_no_annotator_gave_loses_to_careful_annotators():
    # The hand-made case: three annotators, and a model no better than them that is sure of
    # a label none of the three gave. The consensus stays with the votes and says why.
    codes, truth = three_annotator_crowd()
    voted = codes.counts[0] > 0
    unvoted_label = int(np.flatnonzero(~voted)[0])
    proba = confident_model(codes, truth, wrong_on=0, wrong_label=unvoted_label, accuracy=0.85)
    result = consensus_from_codes(codes, method="model", model_proba=proba)
    assert result.posterior[0].argmax() == unvoted_label  # what the product alone would have said
    assert result.counts[0, result.label_index[0]] > 0
    assert "not more reliable" in result.reasons[0] and str(codes.labels[unvoted_label]) in result.reasons[0]
    # The quality is the posterior of the label that was kept, not of the model's favourite.
    assert result.quality[0] == pytest.approx(result.posterior[0, result.label_index[0]])
    assert result.quality[0] < 0.8
    frame = result.frame()
    assert list(frame.columns) == CONSENSUS_COLUMNS
    row = frame[frame["item_id"] == codes.items[0]].iloc[0]
    assert row["consensus_label"] != codes.labels[unvoted_label] and "model prefers" in row["reason"]


def test_a_label_no_annotator_gave_wins_when_the_model_is_the_more_reliable_source():
    # Careless annotators (they agree with each other ~30% of the time) and a model that agrees
    # with most votes: where the model is sure of an unvoted label, it wins, and the row says so.
    rng = np.random.default_rng(1)
    n_items, k = 300, 4
    truth = np.arange(n_items) % k
    rows = []
    for i in range(n_items):
        for a in rng.choice(40, size=2, replace=False):
            lab = truth[i] if rng.random() < 0.55 else rng.integers(k)
            rows.append((f"i{i:03d}", f"a{a:02d}", f"c{lab}"))
    codes = encode_ratings(prepare_annotations(pd.DataFrame(rows, columns=["item_id", "annotator", "label"])))
    proba = np.full((n_items, k), 0.01)
    proba[np.arange(n_items), truth] = 0.97
    result = consensus_from_codes(codes, method="model", model_proba=proba)
    unvoted = result.counts[np.arange(n_items), result.label_index] == 0
    assert unvoted.any()
    assert all(r.startswith("no annotator gave it") for r in result.reasons[unvoted])
    assert (result.label_index == truth).mean() > 0.9
    assert result.model_agreement > result.crowd_agreement


def test_single_votes_only_never_give_an_unvoted_label():
    # No item has two votes: nothing shows the model is more reliable than the annotators.
    codes = encode_ratings(prepare_annotations(pd.DataFrame(
        [(f"i{i}", f"a{i % 5}", f"c{i % 3}") for i in range(30)], columns=["item_id", "annotator", "label"])))
    proba = np.full((30, 3), 0.01)
    proba[:, 0] = 0.98
    result = consensus_from_codes(codes, method="model", model_proba=proba / proba.sum(axis=1, keepdims=True))
    assert (result.counts[np.arange(30), result.label_index] > 0).all()
    assert np.isnan(result.crowd_agreement)


def test_model_and_vote_weights_never_sharpen_beyond_their_sources():
    ann, X, truth = sparse_crowd(seed=3, n_items=300)
    codes = encode_ratings(prepare_annotations(ann))
    result = consensus_from_codes(codes, method="model", X=X[np.searchsorted(truth.index, codes.items)])
    assert 0 < result.model_weight <= 1 and 0 < result.vote_weight <= 1
    assert set(result.reasons) <= {"majority", "tie broken", "minority vote"} | {
        r for r in result.reasons if r.startswith("no annotator gave it") or "model prefers" in r}
    assert "labels no annotator gave" in result.summary()


def test_dawid_skene_that_does_not_converge_falls_back_to_the_majority_vote(monkeypatch):
    import selector.quality.consensus as consensus_module

    ann, _, _ = sparse_crowd(seed=4, n_items=200)
    codes = encode_ratings(prepare_annotations(ann))
    monkeypatch.setattr(consensus_module, "DAWID_SKENE_MAX_ITER", 1)
    result = consensus_from_codes(codes, method="dawid_skene", max_iter=1)
    majority = consensus_from_codes(codes, method="majority")
    assert not result.converged and result.method == "dawid_skene"
    np.testing.assert_array_equal(result.posterior, majority.posterior)
    assert all("Dawid-Skene did not converge" in r for r in result.reasons)
    assert "majority vote is used instead" in result.summary()


def test_a_machine_annotator_gets_its_own_weight():
    """With no machine named the fit is the people-only one; a machine gets a weight of its own in (0, 1]."""
    from selector.quality.agreement import encode_ratings
    from selector.quality.weighted_votes import weighted_vote_em

    rng = np.random.default_rng(3)
    n, k = 200, 3
    truth = rng.integers(k, size=n)
    rows = []
    for i in range(n):
        for a in rng.choice(6, size=2, replace=False):
            rows.append((f"i{i:03d}", f"p{a}", str(truth[i] if rng.random() < 0.75 else rng.integers(k))))
        rows.append((f"i{i:03d}", "llm", str(truth[i] if rng.random() < 0.9 else (truth[i] + 1) % k)))
    codes = encode_ratings(pd.DataFrame(rows, columns=["item_id", "annotator", "label"]))
    proba = np.full((n, k), 1.0 / k)
    plain = weighted_vote_em(codes, proba)
    none = weighted_vote_em(codes, proba, machine=np.zeros(codes.annotators.size, bool))
    np.testing.assert_allclose(plain.posterior, none.posterior)
    fit = weighted_vote_em(codes, proba, machine=codes.annotators == "llm")
    assert set(fit.machine_weights) == {"llm"} and 0.0 < fit.machine_weights["llm"] <= 1.0
    right = (fit.posterior.argmax(axis=1) == truth[np.array([int(i[1:]) for i in codes.items])]).mean()
    assert right >= 0.85
