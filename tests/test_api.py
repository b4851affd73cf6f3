"""The Python API: select() on DataFrames and select_batch() on arrays."""

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

import selector
from selector import ConfigError, DataError, EmptyPoolError, select, select_batch

from conftest import make_table


def blobs(n_lab=30, n_pool=200, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, d)) * 3
    y = rng.integers(0, 3, n_lab)
    X_lab = centres[y] + rng.normal(size=(n_lab, d))
    X_pool = centres[rng.integers(0, 3, n_pool)] + rng.normal(size=(n_pool, d))
    return X_lab.astype(np.float32), np.array([f"c{v}" for v in y]), X_pool.astype(np.float32)


def test_public_api_exports():
    for name in selector.__all__:
        assert hasattr(selector, name), name


def test_select_batch_indices_and_scores():
    X_lab, y, X_pool = blobs()
    sel = select_batch(X_lab, y, X_pool, 25, strategy="margin", random_state=0)
    assert sel.indices.shape == (25,) and sel.scores.shape == (25,)
    assert np.unique(sel.indices).size == 25 and sel.indices.max() < 200
    assert np.all(np.diff(sel.scores) <= 1e-12)


def test_select_batch_picks_the_boundary():
    X_lab, y, X_pool = blobs()
    sel = select_batch(X_lab, y, X_pool, 20, strategy="margin", random_state=0)
    from selector.round.compute import build_context
    from selector.scoring import margin

    ctx = build_context(X_lab, y, X_pool, random_state=0)
    m = margin(ctx.proba_pool)
    assert m[sel.indices].mean() > np.median(m)


def test_select_batch_with_any_predict_proba_estimator():
    X_lab, y, X_pool = blobs()
    sel = select_batch(X_lab, y, X_pool, 10, strategy="entropy", classifier=KNeighborsClassifier(5),
                       random_state=0)
    assert len(sel) == 10


def test_select_batch_refuses_estimator_without_predict_proba():
    from sklearn.svm import LinearSVC

    X_lab, y, X_pool = blobs()
    with pytest.raises(ConfigError, match="predict_proba"):
        select_batch(X_lab, y, X_pool, 10, classifier=LinearSVC())


def test_select_batch_cold_start_warns_and_falls_back():
    _, _, X_pool = blobs()
    with pytest.warns(UserWarning, match="cold start"):
        sel = select_batch(np.zeros((0, 8), np.float32), np.array([]), X_pool, 10, strategy="entropy",
                           random_state=1)
    assert len(sel) == 10 and all("cold start" in r for r in sel.reasons)


def test_select_batch_budget_larger_than_pool():
    X_lab, y, X_pool = blobs(n_pool=5)
    with pytest.raises(EmptyPoolError, match="larger than the pool"):
        select_batch(X_lab, y, X_pool, 6)


def test_select_batch_shape_mismatch():
    X_lab, y, X_pool = blobs()
    with pytest.raises(DataError, match="rows"):
        select_batch(X_lab, y[:-1], X_pool, 5)


def test_select_on_dataframe_with_hashing_embedder(hashing):
    df = make_table()
    before = df.copy()
    queue = select(df, 12, embedder=hashing, random_state=0)
    assert len(queue) == 12 and queue["id"].is_unique
    assert set(queue["id"]) <= set(df.loc[df["label"] == "", "id"])
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is not modified
    again = select(df, 12, embedder=hashing, random_state=0)
    pd.testing.assert_frame_equal(queue, again)


def test_select_with_precomputed_embeddings_and_custom_classifier():
    df = make_table()
    X = np.random.default_rng(0).normal(size=(len(df), 12)).astype(np.float32)
    queue = select(df, 5, embeddings=X, classifier=KNeighborsClassifier(3), strategy="least_confidence")
    assert len(queue) == 5


def test_select_generates_stable_ids_without_id_column(hashing):
    df = make_table(with_id=False)
    q1 = select(df, 5, embedder=hashing, random_state=0)
    q2 = select(df, 5, embedder=hashing, random_state=0)
    assert q1["id"].tolist() == q2["id"].tolist()
    assert q1["id"].str.fullmatch(r"[0-9a-f]{12}-\d+").all()


def test_nan_labels_mean_unlabeled(hashing):
    df = make_table()
    df["label"] = df["label"].replace("", np.nan)
    queue = select(df, 5, embedder=hashing)
    assert set(queue["id"]) <= set(df.loc[df["label"].isna(), "id"])


def test_select_rejects_non_dataframe():
    with pytest.raises(DataError, match="DataFrame"):
        select([{"text": "a"}], 1)
