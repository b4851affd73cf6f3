"""Registry-wide contract: every registered strategy obeys the same rules (ARCHITECTURE.md)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from selector.errors import ConfigError, EmptyPoolError, SelectorError
from selector.labelsets import LabelSpace
from selector.round.compute import build_context
from selector.round.multilabel import build_multilabel_context
from selector.strategies import SelectionContext, available_strategies, get_strategy_class, make_strategy

STRATEGIES = sorted(available_strategies())
BUDGET = 25


def _blobs(n: int, seed: int = 0, k: int = 4, d: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d))
    y = rng.integers(0, k, n)
    X = centres[y] + 0.7 * rng.normal(size=(n, d))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), np.array([f"c{v}" for v in y], dtype=object)


@pytest.fixture(scope="module")
def warm_context() -> SelectionContext:
    X, y = _blobs(600)
    return build_context(X[:80], y[:80], X[80:], random_state=0)


@pytest.fixture(scope="module")
def cold_context() -> SelectionContext:
    X, _ = _blobs(400, seed=1)
    return build_context(X[:0], np.array([], dtype=object), X, random_state=0)


def _as_task(name, context: SelectionContext) -> SelectionContext:
    """``context`` as a multi-label one (the class as one label, plus a second label on every third
    row) when strategy ``name`` serves multi-label tasks only; else unchanged."""
    if "single_label" in get_strategy_class(name).tasks or context.multi_label:
        return context
    y = np.asarray(context.y_labeled).astype(str)
    names = sorted({f"c{i}" for i in range(4)} | set(y.tolist()))
    space = LabelSpace(tuple(names) + ("extra",))
    Y = space.indicator([(v, "extra") if i % 3 == 0 else (v,) for i, v in enumerate(y)])
    if not context.has_model:  # keep a cold context cold: no labels, or too few to fit
        Y = Y[:context.n_labeled]
    return build_multilabel_context(context.X_labeled, Y, context.X_pool, space, random_state=0)


def _select(name, context, budget=BUDGET, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the cold-start fallback warning is tested in test_strategies.py
        return make_strategy(name).select(_as_task(name, context), budget, random_state=seed)


def test_registry_has_the_issue_strategies():
    for name in ("random", "entropy", "margin", "kmeans", "typiclust", "coreset", "cluster_margin", "badge",
                 "margin_kmeans", "class_balanced", "auto"):
        assert name in STRATEGIES


@pytest.mark.parametrize("name", STRATEGIES)
def test_exact_budget_unique_in_range(name, warm_context):
    sel = _select(name, warm_context)
    assert sel.indices.shape == (BUDGET,)
    assert sel.indices.dtype.kind == "i"
    assert np.unique(sel.indices).size == BUDGET
    assert sel.indices.min() >= 0 and sel.indices.max() < warm_context.n_pool
    assert sel.scores.shape == (BUDGET,) and np.isfinite(sel.scores).all()
    assert len(sel.reasons) == BUDGET and all(isinstance(r, str) and r for r in sel.reasons)
    if "cluster" in sel.info:
        assert len(sel.info["cluster"]) == BUDGET


@pytest.mark.parametrize("name", STRATEGIES)
def test_picks_only_unlabeled_rows(name):
    # Labeled rows are exact copies of pool rows' neighbours: a strategy that looked at labeled
    # rows as candidates would return positions >= n_pool or the wrong rows; the pool positions
    # must map back to pool rows only.
    X, y = _blobs(300, seed=3)
    pool_ids = np.arange(60, 300)
    context = build_context(X[:60], y[:60], X[pool_ids], random_state=0)
    sel = _select(name, context, budget=30)
    assert set(pool_ids[sel.indices]).isdisjoint(range(60))
    assert sel.indices.max() < context.n_pool


@pytest.mark.parametrize("name", STRATEGIES)
def test_same_seed_same_output(name, warm_context):
    a = _select(name, warm_context, seed=7)
    b = _select(name, warm_context, seed=7)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_array_equal(a.scores, b.scores)
    assert list(a.reasons) == list(b.reasons)


@pytest.mark.parametrize("name", STRATEGIES)
def test_inputs_not_mutated(name):
    X, y = _blobs(300, seed=4)
    context = _as_task(name, build_context(X[:50], y[:50], X[50:], random_state=0))
    before = {k: np.array(getattr(context, k), copy=True) for k in ("X_pool", "X_labeled", "y_labeled", "proba_pool")}
    for k in ("X_pool", "X_labeled", "proba_pool"):
        getattr(context, k).setflags(write=False)  # an in-place write raises instead of passing silently
    _select(name, context, budget=20)
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(context, k), v)


@pytest.mark.parametrize("name", STRATEGIES)
def test_budget_larger_than_pool_is_a_clear_error(name, warm_context):
    with pytest.raises(EmptyPoolError, match="larger than the pool"):
        make_strategy(name).select(_as_task(name, warm_context), warm_context.n_pool + 1, random_state=0)


@pytest.mark.parametrize("name", STRATEGIES)
def test_bad_budget_is_a_config_error(name, warm_context):
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError):
            make_strategy(name).select(_as_task(name, warm_context), bad, random_state=0)


@pytest.mark.parametrize("name", STRATEGIES)
def test_whole_pool_budget(name):
    X, y = _blobs(120, seed=5)
    context = build_context(X[:40], y[:40], X[40:], random_state=0)
    sel = _select(name, context, budget=context.n_pool)
    assert sorted(sel.indices.tolist()) == list(range(context.n_pool))


@pytest.mark.parametrize("name", STRATEGIES)
def test_cold_start_zero_labels(name, cold_context):
    try:
        sel = _select(name, cold_context)
    except SelectorError as exc:  # refusing is allowed, but only with a clear message
        assert "label" in str(exc) or "classifier" in str(exc)
        return
    assert sel.indices.shape == (BUDGET,) and np.unique(sel.indices).size == BUDGET
    assert sel.indices.max() < cold_context.n_pool


@pytest.mark.parametrize("name", STRATEGIES)
def test_single_class_labeled_is_cold_start(name):
    X, _ = _blobs(200, seed=6)
    context = build_context(X[:10], np.array(["a"] * 10, dtype=object), X[10:], random_state=0)
    if "single_label" not in get_strategy_class(name).tasks:  # one label on every row: nothing to learn
        space = LabelSpace(("a", "b"))
        context = build_multilabel_context(X[:10], space.indicator([("a",)] * 10), X[10:], space, random_state=0)
    assert not context.has_model
    sel = _select(name, context, budget=15)
    assert np.unique(sel.indices).size == 15
