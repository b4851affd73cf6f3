"""selector strategies as modAL query strategies, in a real modAL ActiveLearner loop on trec."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_split
from selector.errors import UnknownStrategyError
from selector.models import HashingEmbedder

modal = pytest.importorskip("modAL")
from modAL.models import ActiveLearner  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import selector.modal as bridge  # noqa: E402

@pytest.fixture(scope="module")
def trec():
    train, test = shared_split("trec", "train", 1200), shared_split("trec", "test")
    emb = HashingEmbedder(256)
    return (emb.encode(train["text"].tolist()), train["label"].to_numpy(),
            emb.encode(test["text"].tolist()), test["label"].to_numpy())


def _loop(trec, name, rounds=4, batch=30):
    X, y, Xt, yt = trec
    seed = np.arange(15)
    learner = ActiveLearner(estimator=LogisticRegression(max_iter=1000), query_strategy=bridge.query_strategy(name),
                            X_training=X[seed], y_training=y[seed])
    start = learner.score(Xt, yt)
    pool = np.setdiff1d(np.arange(len(y)), seed)
    picked = []
    for _ in range(rounds):
        idx, rows = learner.query(X[pool], n_instances=batch)
        assert len(idx) == batch and len(set(idx.tolist())) == batch and np.array_equal(rows, X[pool[idx]])
        picked.extend(pool[idx].tolist())
        bridge.teach(learner, X[pool[idx]], y[pool[idx]])
        pool = np.delete(pool, idx)
    return learner, start, picked


@pytest.mark.parametrize("name", ["auto", "margin", "typiclust"])
def test_selector_strategies_drive_a_real_modal_learner(trec, name):
    learner, start, picked = _loop(trec, name)
    assert len(set(picked)) == len(picked) == 120 and not set(picked) & set(range(15))
    assert len(learner.y_training) == 135 and learner.score(trec[2], trec[3]) > start
    again, _, picked_again = _loop(trec, name)
    assert picked_again == picked  # same seed, same picks


def test_modal_teach_fails_on_this_scikit_learn_and_the_bridge_does_not(trec):
    X, y, _, _ = trec
    learner = ActiveLearner(estimator=LogisticRegression(max_iter=1000), X_training=X[:10], y_training=y[:10])
    try:
        learner.teach(X[10:12], y[10:12])
    except TypeError as exc:  # scikit-learn >= 1.8 removed check_X_y's force_all_finite
        assert "force_all_finite" in str(exc)
    bridge.teach(learner, X[12:14], y[12:14])
    assert len(learner.y_training) in (12, 14) and hasattr(learner.estimator, "classes_")


def test_cold_start_learner_and_errors(trec):
    X, _, _, _ = trec
    learner = ActiveLearner(estimator=LogisticRegression(), query_strategy=bridge.query_strategy("auto"))
    idx, _ = learner.query(X[:300], n_instances=10)
    assert len(set(idx.tolist())) == 10  # no model yet: selector's model-free cold start
    with pytest.raises(UnknownStrategyError):
        bridge.query_strategy("margn")


def test_declared_labels_reach_auto_through_the_bridge(trec):
    """With ``labels=`` the bridge tells auto the task's label set: declared labels no training row has
    take 40% of the query (far from every label), which changes the picks; declaring only labels the
    learner has already seen changes nothing."""
    X, y, _, _ = trec
    seed = np.flatnonzero(np.isin(y, ["DESC", "ENTY"]))[:30]
    pool = np.setdiff1d(np.arange(len(y)), seed)
    picks = {}
    for labels in (sorted(set(y.tolist())), ["DESC", "ENTY"], None):
        query = bridge.query_strategy("auto", labels=labels, switch_per_class=5)
        learner = ActiveLearner(estimator=LogisticRegression(max_iter=1000), query_strategy=query,
                                X_training=X[seed], y_training=y[seed])
        idx, _ = learner.query(X[pool], n_instances=30)
        picks[len(labels or ())] = idx.tolist()
        assert len(set(idx.tolist())) == 30
    assert picks[2] == picks[0]
    assert len(set(picks[6]) - set(picks[0])) >= 10
