"""Baseline strategies: random sampling and top-k uncertainty sampling.

Top-k uncertainty sampling ranks the pool by one uncertainty score of the fitted classifier and
takes the highest ``budget`` (Lewis & Gale 1994, "A sequential algorithm for training text
classifiers"; margin: Scheffer et al. 2001; overview in Settles 2009, "Active Learning Literature
Survey"). It is the classic baseline; on text it often picks near-duplicate batches.
"""

from __future__ import annotations

import numpy as np
from selector.strategies.base import (
    Selection,
    SelectionContext,
    Strategy,
    UncertaintyStrategy,
)
from selector.strategies.registry import register

from selector.scoring import entropy, least_confidence, margin

__all__ = ["TopKUncertainty", "RandomStrategy", "EntropyStrategy", "MarginStrategy", "LeastConfidenceStrategy"]


@register
class RandomStrategy(Strategy):
    """Uniform random sample of the pool (the baseline every strategy must beat)."""

    name = "random"
    tasks = ("single_label", "multi_label")
    description = "uniform random sample of the pool (baseline; no model needed)"

    def __init__(self) -> None:
        pass

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        rng = np.random.default_rng(random_state)
        idx = rng.choice(context.n_pool, size=budget, replace=False).astype(np.int64)
        reasons = np.full(budget, "random sample", dtype=object)
        return Selection(idx, np.zeros(budget), reasons, {})


class TopKUncertainty(UncertaintyStrategy):
    """The ``budget`` rows with the highest uncertainty score, ties broken by a seeded permutation."""

    score_name = ""

    def _score(self, proba: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _context_scores(self, context: SelectionContext) -> np.ndarray:
        """Scores of the pool rows, shape (n_pool,), higher = pick first (default: from ``proba_pool``)."""
        return self._score(context.proba_pool)

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        scores = self._context_scores(context)
        # Ties are broken by a seeded random permutation so equal scores do not favour file order.
        rng = np.random.default_rng(random_state)
        tiebreak = rng.permutation(context.n_pool)
        if budget < context.n_pool:
            cand = np.argpartition(-scores, budget - 1)[:budget]
            # Every row scoring equal to the cut-off competes on the tiebreak, not just those argpartition kept.
            cutoff = scores[cand].min()
            cand = np.union1d(np.flatnonzero(scores > cutoff), np.flatnonzero(scores == cutoff))
        else:
            cand = np.arange(context.n_pool)
        order = np.lexsort((tiebreak[cand], -scores[cand]))[:budget]
        idx = cand[order].astype(np.int64)
        picked = scores[idx]
        reasons = np.array([f"top {self.score_name} uncertainty ({s:.3f})" for s in picked], dtype=object)
        return Selection(idx, picked.astype(np.float64), reasons, {"score": self.score_name})


@register
class EntropyStrategy(TopKUncertainty):
    """Top-k by normalised predictive entropy."""

    name = "entropy"
    description = "top-k by predictive entropy of the classifier"
    score_name = "entropy"

    def _score(self, proba: np.ndarray) -> np.ndarray:
        return entropy(proba)


@register
class MarginStrategy(TopKUncertainty):
    """Top-k by smallest gap between the two most probable classes."""

    name = "margin"
    description = "top-k by smallest margin between the two most probable classes"
    score_name = "margin"

    def _score(self, proba: np.ndarray) -> np.ndarray:
        return margin(proba)


@register
class LeastConfidenceStrategy(TopKUncertainty):
    """Top-k by lowest top-class probability."""

    name = "least_confidence"
    description = "top-k by lowest probability of the predicted class"
    score_name = "least_confidence"

    def _score(self, proba: np.ndarray) -> np.ndarray:
        return least_confidence(proba)
