"""Property tests of the uncertainty scores: bounds, class-permutation invariance, one-hot least uncertain."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from selector.scoring import UNCERTAINTY_SCORES, entropy, label_loss, least_confidence, margin


@st.composite
def proba_matrices(draw):
    n = draw(st.integers(1, 8))
    k = draw(st.integers(2, 6))
    raw = draw(arrays(np.float64, (n, k), elements=st.floats(0.0, 1.0, allow_nan=False)))
    raw = raw + 1e-9
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", sorted(UNCERTAINTY_SCORES))
@given(p=proba_matrices())
@settings(max_examples=60, deadline=None)
def test_scores_bounded_in_unit_interval(name, p):
    s = UNCERTAINTY_SCORES[name](p)
    assert s.shape == (p.shape[0],)
    assert np.all(s >= 0.0) and np.all(s <= 1.0)


@pytest.mark.parametrize("name", sorted(UNCERTAINTY_SCORES))
@given(p=proba_matrices(), seed=st.integers(0, 1000))
@settings(max_examples=60, deadline=None)
def test_scores_invariant_to_class_order(name, p, seed):
    perm = np.random.default_rng(seed).permutation(p.shape[1])
    np.testing.assert_allclose(UNCERTAINTY_SCORES[name](p), UNCERTAINTY_SCORES[name](p[:, perm]), atol=1e-12)


@pytest.mark.parametrize("name", sorted(UNCERTAINTY_SCORES))
@given(p=proba_matrices())
@settings(max_examples=60, deadline=None)
def test_one_hot_rows_are_least_uncertain(name, p):
    k = p.shape[1]
    one_hot = np.eye(k)[[0]]
    s_hot = UNCERTAINTY_SCORES[name](one_hot)[0]
    assert s_hot == pytest.approx(0.0, abs=1e-9)
    assert np.all(UNCERTAINTY_SCORES[name](p) >= s_hot - 1e-12)


@pytest.mark.parametrize("name", sorted(UNCERTAINTY_SCORES))
def test_uniform_row_is_most_uncertain(name):
    p = np.full((1, 4), 0.25)
    assert UNCERTAINTY_SCORES[name](p)[0] == pytest.approx(1.0)


def test_margin_orders_close_calls_first():
    p = np.array([[0.5, 0.45, 0.05], [0.9, 0.05, 0.05]])
    assert margin(p)[0] > margin(p)[1]
    assert entropy(p)[0] > entropy(p)[1]
    assert least_confidence(p)[0] > least_confidence(p)[1]


def test_label_loss_is_high_for_unlikely_given_label():
    p = np.array([[0.9, 0.1], [0.9, 0.1]])
    loss = label_loss(p, np.array([0, 1]))
    assert loss[1] > loss[0]
    assert loss[0] == pytest.approx(-np.log(0.9))


def test_scores_reject_non_matrix():
    with pytest.raises(ValueError):
        entropy(np.array([0.5, 0.5]))
