"""``auto``: the default strategy — typical/diverse picks while labels are few, then uncertainty × diversity."""

from __future__ import annotations

import numpy as np
from selector.strategies.base import (
    Selection,
    SelectionContext,
    Strategy,
    UncertaintyStrategy,
)
from selector.strategies.registry import make_strategy, register

from selector.kmeans import subsample

__all__ = ["AutoStrategy"]


@register
class AutoStrategy(Strategy):
    """The default: a low-budget diversity strategy first, uncertainty × diversity once labels suffice.

    Following Hacohen, Dekel & Weinshall (2022), "Active Learning on a Budget: Opposite Strategies
    Suit High and Low Budgets" (ICML): with few labels the most *typical*, diverse rows help most
    (``cold``, TypiClust by default), and once the classifier is informative the most uncertain,
    diverse rows do (``hybrid``, margin + k-means by default; Zhdanov 2019). The switch: the
    diversity branch runs while no classifier can be fitted (zero labels, one class) or while the
    labeled rows per labeled class are fewer than ``switch_per_class``; after that the hybrid
    branch fills the batch, except an ``explore`` share that still goes to ``cold`` picks among
    the remaining rows (so regions the classifier is confidently wrong about keep being sampled).
    The defaults were chosen on ``scripts/bench_selection.py`` (see the README). Every row's
    reason starts with ``auto[<branch>]``.

    Parameters
    ----------
    switch_per_class : float
        Labeled rows per labeled class below which the diversity branch is used.
    explore : float
        Share of the batch given to ``cold`` in the hybrid branch, in [0, 1).
    cold : str
        Registered diversity strategy (no classifier needed).
    hybrid : str
        Registered strategy used once the classifier is informative.
    """

    name = "auto"
    description = "default: typical/diverse picks while labels are few, then uncertainty x diversity"
    uses_model = True

    def __init__(self, switch_per_class: float = 3.0, explore: float = 0.0, cold: str = "typiclust",
                 hybrid: str = "margin_kmeans") -> None:
        if isinstance(switch_per_class, bool) or not isinstance(switch_per_class, (int, float)) or switch_per_class < 0:
            raise ValueError(f"switch_per_class must be a number >= 0, got {switch_per_class!r}")
        if isinstance(explore, bool) or not isinstance(explore, (int, float)) or not 0 <= explore < 1:
            raise ValueError(f"explore must be in [0, 1), got {explore!r}")
        if isinstance(make_strategy(cold), UncertaintyStrategy) or make_strategy(cold).uses_model:
            raise ValueError(f"cold strategy {cold!r} needs a classifier; choose e.g. 'typiclust' or 'kmeans'")
        if hybrid in (self.name,):
            raise ValueError("auto cannot use itself as its hybrid branch")
        make_strategy(hybrid)
        self.switch_per_class = float(switch_per_class)
        self.explore = float(explore)
        self.cold = cold
        self.hybrid = hybrid

    def branch(self, context: SelectionContext) -> tuple[str, str]:
        """Which branch a context gets, and why in words: ``("cold" | "hybrid", why)``."""
        if not context.has_model:
            return "cold", context.cold_start_reason or "no classifier"
        n_classes = max(1, len(set(np.asarray(context.y_labeled).astype(str).tolist())))
        per_class = context.n_labeled / n_classes
        if per_class < self.switch_per_class:
            return "cold", f"{per_class:.1f} labels per class < {self.switch_per_class:g}"
        return "hybrid", f"{per_class:.1f} labels per class >= {self.switch_per_class:g}"

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        which, why = self.branch(context)
        if which == "cold":
            picked = make_strategy(self.cold).select(context, budget, random_state=random_state)
            reasons = np.array([f"auto[diverse: {why}] {r}" for r in picked.reasons], dtype=object)
            return Selection(picked.indices, picked.scores, reasons, dict(picked.info, branch="diverse", why=why))
        n_explore = int(round(self.explore * budget)) if budget > 1 else 0
        main = make_strategy(self.hybrid).select(context, budget - n_explore, random_state=random_state)
        reasons = [f"auto[uncertain+diverse: {why}] {r}" for r in main.reasons]
        indices, scores = [main.indices], [main.scores]
        cluster = main.info.get("cluster")
        clusters = [np.asarray(cluster, dtype=np.int64)] if cluster is not None else None
        if n_explore:
            rng = np.random.default_rng(random_state)
            rest = np.setdiff1d(np.arange(context.n_pool), main.indices)
            # A seeded sample of the remaining rows keeps the exploration step cheap on huge pools.
            rest = rest[subsample(rest.size, 200_000, rng)]
            sub = SelectionContext(context.X_pool[rest], context.X_labeled, context.y_labeled,
                                   cold_start_reason="exploration")
            extra = make_strategy(self.cold).select(sub, n_explore, random_state=random_state)
            indices.append(rest[extra.indices])
            scores.append(extra.scores)
            reasons += [f"auto[explore: {self.explore:.0%} of the batch] {r}" for r in extra.reasons]
            if clusters is not None:
                # Exploration clusters come from another clustering: mark them apart (-1).
                clusters.append(np.full(n_explore, -1, dtype=np.int64))
        info = {"branch": "uncertain+diverse", "why": why, "n_explore": n_explore}
        if clusters is not None:
            info["cluster"] = np.concatenate(clusters)
        return Selection(np.concatenate(indices).astype(np.int64), np.concatenate(scores).astype(np.float64),
                         np.array(reasons, dtype=object), info)
