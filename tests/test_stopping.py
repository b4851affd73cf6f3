"""The stopping hint as an API object (small-text style), on a real labeling loop over trec."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_split
from selector.loop.status import MeasurePoint, stopping_hint
from selector.loop.stopping import StoppingHint
from selector.models import HashingEmbedder
from selector.round.compute import select_batch
from selector.round.model import cv_metrics

@pytest.fixture(scope="module")
def trec():
    df = shared_split("trec", "train", 2000)
    return HashingEmbedder(256).encode(df["text"].tolist()), df["label"].to_numpy().astype(str)


def test_stopping_hint_object_follows_a_real_loop_and_agrees_with_status(trec):
    """A margin loop of 100-row rounds: the object says keep labeling while the model still moves,
    and every answer equals ``stopping_hint`` on the same measurements (the rule ``selector status``
    prints)."""
    from sklearn.linear_model import LogisticRegression

    X, y = trec
    stop_rows, pool = np.arange(300), np.arange(300, len(y))
    hint = StoppingHint()
    chosen = np.zeros(len(pool), dtype=bool)
    answers, points = [], []
    for r in range(12):
        lab, unl = pool[chosen], np.flatnonzero(~chosen)
        sel = select_batch(X[lab], y[lab], X[pool[unl]], 100, strategy="margin", random_state=r)
        chosen[unl[sel.indices]] = True
        lab = pool[chosen]
        model = LogisticRegression(max_iter=1000).fit(X[lab], y[lab])
        f1 = cv_metrics(X[lab], y[lab])["macro_f1"]
        pred = model.predict(X[stop_rows])
        answers.append(hint.stop(predictions=pred, macro_f1=f1, n_labeled=lab.size))
        point = MeasurePoint(f"round {r + 1}", int(lab.size), {"macro_f1": f1}, dict(zip(map(str, stop_rows), pred)))
        if points:
            point.changed_prev = hint.points[-1].changed_prev
        points.append(point)
        assert answers[-1] == stopping_hint(points)[0]
        assert hint.reason == stopping_hint(points)[1]
    assert answers[0] is False and answers[1] is False  # too early to judge
    assert hint.points[-1].n_labeled == 1200
    assert all(p.kappa_prev is not None and p.changed_prev is not None for p in hint.points[1:])
    # Hashing features keep the model moving at 1,200 labels: fewer predictions change each round than at
    # the start, but the hint holds back, because predictions still change or CV macro-F1 still rises (which
    # of the two is near its limit moves with the machine's BLAS sums: 5.3% of the stop set changing per
    # round with F1 +0.057 on one 2-core machine).
    changed = [p.changed_prev for p in hint.points[1:]]
    assert not any(answers) and np.mean(changed[-2:]) < np.mean(changed[:2]) - 0.1
    assert hint.reason.startswith("keep labeling: ")
    assert any(why in hint.reason for why in ("still changing", "still settling", "still rising by more than"))


def test_stopping_hint_object_signature_and_errors():
    hint = StoppingHint(change_threshold=0.1, window=1)  # needs 2 x window = 2 comparisons
    # small-text's positional signature: stop(active_learner, predictions, proba, indices_stopping)
    assert hint.stop(None, ["a", "b", "a"], macro_f1=0.5) is False
    assert "too early" in hint.reason
    assert hint.stop(predictions=np.array(["a", "b", "a"]), macro_f1=0.5) is False  # 1 comparison of 2
    assert "1 of the 2 model-to-model comparisons" in hint.reason
    assert hint.stop(predictions=["a", "b", "a"], macro_f1=0.505) is True
    assert hint.reason.startswith("gains have flattened")
    assert hint.numbers["changed_mean"] == 0.0 and hint.points[-1].changed_prev == 0.0
    assert hint.points[-1].kappa_prev == 1.0
    with pytest.raises(ValueError, match="same held-aside rows"):
        hint.stop(predictions=["a", "b"])
    with pytest.raises(ValueError, match="needs predictions"):
        hint.stop()
    needs_f1 = StoppingHint(window=1)
    for _ in range(3):
        assert needs_f1.stop(predictions=["a"]) is False
    assert "too early" in needs_f1.reason  # the F1 half cannot be judged without macro_f1
    stability_only = StoppingHint(window=1, f1_tolerance=None)
    assert [stability_only.stop(predictions=["a", "b"]) for _ in range(3)] == [False, False, True]
    for bad in ({"change_threshold": 2}, {"f1_tolerance": -0.1}, {"window": 0}, {"change_ceiling": 1.5},
                {"change_fall": -1}, {"change_threshold": True}):
        with pytest.raises(ValueError):
            StoppingHint(**bad)
