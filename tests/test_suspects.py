"""Mislabel suspects: signals, ensemble, kinds, contradictions, table API, CLI and select wiring."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.cli.app import app
from selector.errors import ConfigError, DataError
from selector.neighbors import nearest_neighbors
from selector.round.suspects import (
    DEFAULT_SIGNALS,
    SIGNALS,
    SUSPECT_COLUMNS,
    find_suspects,
    rank_ensemble,
    select_suspects,
    signal_scores,
    suspects,
)
from selector.textnorm import normalise_text

from conftest import trec_sample  # noqa: E402


def blobs(n=600, k=4, d=16, noise=0.1, seed=0, spread=0.35):
    """Separable clusters on the unit sphere with ``noise`` share of labels flipped."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, d))
    y_true = rng.integers(k, size=n)
    X = centers[y_true] + spread * rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = y_true.copy()
    flip = rng.choice(n, size=int(noise * n), replace=False)
    y[flip] = (y[flip] + rng.integers(1, k, size=flip.size)) % k
    names = np.array([f"c{i}" for i in range(k)])
    return X.astype(np.float32), names[y], names[y_true], np.isin(np.arange(n), flip)


# ---------------------------------------------------------------- text normalisation

def test_normalise_text_folds_case_space_punctuation():
    assert normalise_text("  Where's   my CARD?! ") == "wheres my card"
    assert normalise_text("wheres my card") == normalise_text("WHERE'S MY CARD.")
    assert normalise_text("5+3") == normalise_text("5 + 3")
    assert normalise_text("Ｃａｒｄ\tlost…") == "card lost"  # full-width letters, tab, ellipsis
    assert normalise_text("card lost") != normalise_text("card found")
    assert normalise_text("?!...") == ""
    with pytest.raises(TypeError):
        normalise_text(3)


# ---------------------------------------------------------------- signals and ensemble

def test_signals_oriented_higher_is_more_suspect():
    # Rows 0-2 labeled 0: row 0 agrees, row 1 disagrees strongly, row 2 is in between.
    proba = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.4, 0.35, 0.25], [0.1, 0.7, 0.2], [0.1, 0.2, 0.7]])
    y_idx = np.array([0, 0, 0, 1, 2])
    sig, cl_flag = signal_scores(proba, y_idx, knn_votes=np.eye(3)[[0, 1, 0, 1, 2]])
    assert set(sig) == set(SIGNALS)
    for name, s in sig.items():
        assert s[1] > s[0], name
        assert np.all((s >= 0) & (s <= 1)), name
    assert sig["self_confidence"][2] > sig["self_confidence"][0]
    assert cl_flag.tolist() == [False, True, False, False, False]


def test_rank_ensemble_is_mean_percentile_rank():
    a = np.array([0.1, 0.5, 0.9])
    b = np.array([3.0, 2.0, 1.0])
    np.testing.assert_allclose(rank_ensemble({"a": a, "b": b}, {"a": 1.0, "b": 1.0}), [2 / 3, 2 / 3, 2 / 3])
    np.testing.assert_allclose(rank_ensemble({"a": a, "b": b}, {"a": 1.0, "b": 0.0}), [1 / 3, 2 / 3, 1.0])


def test_find_suspects_ranks_flipped_rows_first_and_suggests_true_label():
    X, y, y_true, flipped = blobs()
    res = find_suspects(X, y, random_state=0)
    n = y.size
    for field in ("score", "suggested", "kind", "suggested_proba", "flagged"):
        assert getattr(res, field).shape == (n,)
    top = np.argsort(-res.score)[: flipped.sum()]
    assert flipped[top].mean() > 0.8  # precision at k = #errors on separable blobs
    assert (res.suggested[flipped] == y_true[flipped]).mean() > 0.9
    assert np.all(res.suggested != res.given)  # the suggestion is always another label
    assert set(np.unique(res.kind)) <= {"likely_wrong", "ambiguous", "ok"}
    assert (res.kind[flipped] == "likely_wrong").mean() > 0.7
    assert (res.kind[~flipped] == "ok").mean() > 0.7
    assert res.weights == dict(DEFAULT_SIGNALS)


def test_each_signal_alone_and_weights():
    X, y, _, flipped = blobs(n=300)
    proba = None
    for name in SIGNALS:
        res = find_suspects(X, y, random_state=1, signals=name, oof_proba=proba)
        proba = res.proba  # same probabilities for the next signal: no refit
        np.testing.assert_allclose(res.score, rank_ensemble({name: res.signals[name]}, {name: 1.0}))
        assert res.score[flipped].mean() > res.score[~flipped].mean()
    res = find_suspects(X, y, random_state=1, signals={"self_confidence": 2, "knn": 1}, oof_proba=proba)
    assert res.weights == {"self_confidence": 2.0, "knn": 1.0}
    with pytest.raises(ConfigError, match="unknown suspect signal"):
        find_suspects(X, y, signals=["loss"])
    with pytest.raises(ConfigError):
        find_suspects(X, y, signals={"knn": -1.0})


def test_deterministic_and_inputs_untouched():
    X, y, _, _ = blobs(n=200)
    X0, y0 = X.copy(), y.copy()
    a = find_suspects(X, y, random_state=3)
    b = find_suspects(X, y, random_state=3)
    np.testing.assert_array_equal(a.score, b.score)
    np.testing.assert_array_equal(a.suggested, b.suggested)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)


def test_kind_rule_likely_wrong_vs_ambiguous():
    # Given oof probabilities directly: row 0 points to one other label, row 1 splits two others.
    X, y, _, _ = blobs(n=60, k=3)
    proba = np.tile([1.0, 0.0, 0.0], (60, 1))
    y = np.array(["c0"] * 60, dtype=object)
    y[:20], y[20:40] = "c1", "c2"  # keep 3 classes
    proba[:20] = [0.0, 1.0, 0.0]
    proba[20:40] = [0.0, 0.0, 1.0]
    proba[40] = [0.02, 0.96, 0.02]   # labeled c0, evidence says c1
    proba[41] = [0.04, 0.48, 0.48]   # labeled c0, evidence split c1 / c2
    res = find_suspects(X, y, oof_proba=proba, suggest_knn_weight=0.0, random_state=0)
    assert res.kind[40] == "likely_wrong" and res.suggested[40] == "c1"
    assert res.kind[41] == "ambiguous"
    assert res.kind[0] == "ok"


def test_small_class_warns_not_crashes():
    X, y, _, _ = blobs(n=200, k=3)
    y = y.copy()
    y[:2] = "rare"
    with pytest.warns(UserWarning, match="fewer than"):
        res = find_suspects(X, y, random_state=0)
    assert np.isfinite(res.score).all()


def test_bad_inputs_raise_clear_errors():
    X, y, _, _ = blobs(n=50)
    with pytest.raises(DataError, match="two classes"):
        find_suspects(X, np.array(["a"] * 50))
    with pytest.raises(DataError, match="one row per label"):
        find_suspects(X, y[:-1])
    bad = X.copy()
    bad[3, 0] = np.nan
    with pytest.raises(DataError, match="row 4"):
        find_suspects(bad, y)
    with pytest.raises(DataError, match="oof_proba"):
        find_suspects(X, y, oof_proba=np.ones((50, 2)))


# ---------------------------------------------------------------- contradictions

def test_contradictions_always_reported_with_majority_suggestion():
    X, y, _, _ = blobs(n=120, k=3)
    texts = [f"text number {i}" for i in range(120)]
    texts[5], texts[6], texts[7] = "Card LOST!", "card   lost", "card lost."
    y = y.copy()
    y[5], y[6], y[7] = "c0", "c0", "c1"
    res = find_suspects(X, y, texts=texts, random_state=0)
    assert res.kind[[5, 6, 7]].tolist() == ["contradiction"] * 3
    assert res.suggested[7] == "c0"  # the group's majority
    assert (res.kind == "contradiction").sum() == 3
    rows = select_suspects(res, top=1)
    assert {5, 6, 7} <= set(rows.tolist())  # included whatever the score
    assert "same text as 2 other row(s)" in res.reasons_for([7])[0]


# ---------------------------------------------------------------- neighbours

def test_inverted_file_neighbours_close_to_exact():
    X, _, _, _ = blobs(n=3000, k=8, d=24, spread=0.3)
    exact_idx, exact_sim = nearest_neighbors(X, 5, exact_max=len(X))
    ivf_idx, ivf_sim = nearest_neighbors(X, 5, exact_max=0, random_state=0)
    assert not (exact_idx == np.arange(len(X))[:, None]).any()
    assert not (ivf_idx == np.arange(len(X))[:, None]).any()
    assert np.all(np.diff(exact_sim, axis=1) <= 1e-6)
    recall = np.mean([np.isin(exact_idx[i], ivf_idx[i]).mean() for i in range(len(X))])
    assert recall > 0.9


# ---------------------------------------------------------------- table API and CLI

def frame(n=150, seed=0):
    X, y, _, flipped = blobs(n=n, k=3, seed=seed)
    df = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [f"row {i}" for i in range(n)], "label": y})
    return df, X, flipped


def test_suspects_table_api():
    df, X, flipped = frame()
    df.loc[3, "label"] = ""  # unlabeled rows are ignored
    before = df.copy()
    out = suspects(df, embeddings=X, top=10)
    pd.testing.assert_frame_equal(df, before)
    assert list(out.columns) == SUSPECT_COLUMNS
    assert len(out) == 10 and "r3" not in set(out["id"])
    assert out["suspect_score"].is_monotonic_decreasing
    assert (out["given_label"] != out["suggested_label"]).all()
    thr = suspects(df, embeddings=X, threshold=0.99)
    assert (thr["suspect_score"] >= 0.99).all()
    default = suspects(df, embeddings=X)
    assert len(default) > 0 and default["kind"].isin(["likely_wrong", "ambiguous", "contradiction"]).all()
    with pytest.raises(DataError, match="at least 3 labeled rows of at least 2 classes"):
        suspects(df.assign(label="a"), embeddings=X)


def write_data(tmp_path, n=150):
    df, X, _ = frame(n)
    df.loc[df.index[-30:], "label"] = ""  # an unlabeled pool for `select`
    data = tmp_path / "data.csv"
    df.to_csv(data, index=False)
    emb = tmp_path / "emb.npy"
    np.save(emb, X)
    return data, emb


def test_cli_suspects_writes_table(tmp_path):
    data, emb = write_data(tmp_path)
    out = tmp_path / "sus.csv"
    runner = CliRunner()
    res = runner.invoke(app, ["suspects", str(data), "--embeddings", str(emb), "--top", "7", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    assert list(table.columns) == SUSPECT_COLUMNS and len(table) == 7
    assert "of labels look wrong" in res.stderr and "7 listed of 120 labeled rows" in res.stderr
    res = runner.invoke(app, ["suspects", str(data), "--embeddings", str(emb), "--top", "3", "--threshold", "0.5"])
    assert res.exit_code == 1 and "not both" in res.stderr
    res = runner.invoke(app, ["suspects", str(tmp_path / "missing.csv"), "--embeddings", str(emb)])
    assert res.exit_code == 1 and "file not found" in res.stderr
    res = runner.invoke(app, ["suspects", str(data), "--embeddings", str(emb), "--label-col", "nope"])
    assert res.exit_code == 1 and "--label-col" in res.stderr


def test_select_writes_suspects_beside_queue(tmp_path):
    data, emb = write_data(tmp_path)
    queue = tmp_path / "queue.csv"
    runner = CliRunner()
    res = runner.invoke(app, ["select", str(data), "--embeddings", str(emb), "--budget", "5", "--out", str(queue)])
    assert res.exit_code == 0, res.output
    sus = tmp_path / "queue.suspects.csv"
    assert sus.exists()
    assert list(pd.read_csv(sus).columns) == SUSPECT_COLUMNS
    record = json.loads((tmp_path / "queue.round.json").read_text())
    assert record["outputs"]["suspects"] == str(sus)
    sus.unlink()
    res = runner.invoke(app, ["select", str(data), "--embeddings", str(emb), "--budget", "5", "--out", str(queue),
                              "--no-suspects"])
    assert res.exit_code == 0 and not sus.exists()


def test_select_skips_suspects_with_one_class(tmp_path):
    df, X, _ = frame(60)
    df["label"] = ["a"] * 10 + [""] * 50
    data = tmp_path / "one.csv"
    df.to_csv(data, index=False)
    np.save(tmp_path / "e.npy", X)
    res = CliRunner().invoke(app, ["select", str(data), "--embeddings", str(tmp_path / "e.npy"), "--budget", "3",
                                   "--out", str(tmp_path / "q.csv")])
    assert res.exit_code == 0, res.output
    assert "suspect list skipped" in res.stderr
    assert not (tmp_path / "q.suspects.csv").exists()


@pytest.mark.slow
def test_real_model_finds_injected_flips_on_trec_slice(tmp_path):
    df = trec_sample()  # committed fixture: runs on a fresh clone
    rng = np.random.default_rng(0)
    classes = sorted(df["label"].unique())
    flip = rng.choice(len(df), size=30, replace=False)
    for i in flip:
        df.iloc[i, df.columns.get_loc("label")] = rng.choice([c for c in classes if c != df["label"].iloc[i]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = suspects(df, top=30, cache_dir=tmp_path / "cache")
    listed = set(out["text"])
    recall_at_30 = np.mean([df["text"].iloc[i] in listed for i in flip])
    assert recall_at_30 > 0.4  # a random list of 30 would catch 5%


# ---------------------------------------------------------------- the probability and the list

def _ece(p, e, bins=10):
    idx = np.clip((p * bins).astype(int), 0, bins - 1)
    return sum((idx == b).mean() * abs(p[idx == b].mean() - e[idx == b].mean()) for b in range(bins) if (idx == b).any())


def test_p_mislabeled_is_calibrated_and_sizes_the_list():
    X, y, y_true, flipped = blobs(n=1500, k=5, noise=0.1, spread=0.6, seed=3)
    r = find_suspects(X, y, random_state=0)
    p = r.p_mislabeled
    assert p.shape == (1500,) and np.all((p >= 0) & (p <= 1))
    # Monotone in the rank: a higher-ranked row is never shown as less likely wrong.
    order = np.argsort(r.score, kind="stable")
    assert np.all(np.diff(p[order]) >= -1e-12)
    assert _ece(p, flipped) <= 0.05
    rate, low, high = r.error_rate
    assert low <= rate <= high and abs(rate - flipped.mean()) <= 0.03
    # The list: never longer than the estimated count, every row more likely wrong than right.
    assert r.flagged.sum() <= round(p.sum()) and np.all(p[r.flagged] >= 0.4)
    assert flipped[r.flagged].mean() >= 0.8
    assert "of labels look wrong" in r.summary()


def test_clean_labels_flag_few_rows():
    X, y, _, _ = blobs(n=1000, k=4, noise=0.0, spread=0.5, seed=4)
    r = find_suspects(X, y, random_state=0)
    assert r.flagged.sum() <= 10 and r.error_rate[0] < 0.02


def test_too_few_labels_per_class_lists_only_strong_evidence():
    # 40 classes x 4 rows: no class has enough labels for the model to judge.
    X, y, _, flipped = blobs(n=160, k=40, noise=0.1, spread=0.3, seed=5)
    r = find_suspects(X, y, random_state=0)
    assert r.too_few_labels and r.thin_classes.size == 40
    assert np.all(r.kind[r.flagged] == "likely_wrong")
    assert r.flagged.sum() <= flipped.sum()
    assert "label at least 10 rows per class" in r.summary()


def test_a_model_without_skill_says_so():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 16)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = np.where(rng.random(600) < 0.5, "a", "b")  # labels unrelated to the embeddings
    r = find_suspects(X, y, random_state=0)
    assert r.uninformative_model and r.model_skill < 0.1
    assert r.flagged.sum() <= 5
    assert "the model cannot judge these labels" in r.summary()


def test_votes_fold_into_the_evidence():
    from selector.quality.agreement import encode_ratings
    from selector.round.suspects import add_votes

    X, y, y_true, flipped = blobs(n=400, k=3, noise=0.15, spread=3.0, seed=6)  # a weak model
    ids = np.array([f"r{i}" for i in range(400)])
    rng = np.random.default_rng(0)
    rows = []
    for i in range(400):  # three annotators who are right 85% of the time
        for a in ("p", "q", "s"):
            lab = y_true[i] if rng.random() < 0.85 else f"c{rng.integers(3)}"
            rows.append((ids[i], a, lab))
    codes = encode_ratings(pd.DataFrame(rows, columns=["item_id", "annotator", "label"]))
    before = find_suspects(X, y, random_state=0)
    after = add_votes(find_suspects(X, y, random_state=0), ids, codes)
    assert after.n_with_votes == 400 and after.votes_text[0]
    ap = __import__("sklearn.metrics", fromlist=["x"]).average_precision_score
    assert ap(flipped, after.p_mislabeled) > ap(flipped, before.p_mislabeled)
    assert "annotators " in after.reasons_for([0])[0]
