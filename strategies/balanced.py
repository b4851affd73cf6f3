"""A wrapper that keeps any predicted class from flooding the batch and gives rare classes a floor."""

from __future__ import annotations

import math

import numpy as np
from selector.strategies.base import Selection, SelectionContext, Strategy
from selector.strategies.diversity import _positive_int
from selector.strategies.hybrid import top_by_score
from selector.strategies.registry import make_strategy, register

from selector.neighbors import nearest_in
from selector.scoring import margin

__all__ = ["ClassBalancedStrategy", "explore_rare_classes", "labeled_class_counts"]


def labeled_class_counts(context: SelectionContext) -> np.ndarray:
    """Labeled rows per class, in the column order of ``context.proba_pool``.

    Returns
    -------
    ndarray of int64, shape (k,)
    """
    lab = np.asarray(context.y_labeled).astype(str)
    return np.array([int((lab == name).sum()) for name in np.asarray(context.classes).astype(str)], dtype=np.int64)


def explore_rare_classes(context: SelectionContext, quota: dict[int, int], limit: int,
                         exclude: set[int] = frozenset()) -> list[tuple[int, int, float, float]]:
    """Pool rows that look for under-represented classes around their few labeled rows.

    For class ``c`` a row scores (max cosine similarity to the labeled rows of ``c``, over their
    nearest pool neighbours) + P(c) one-vs-rest, whatever the argmax; so a rare class the model
    predicts nowhere in the pool is still looked for where its examples are. Classes are served in
    the order of ``quota`` (put the fewest-labeled first), each with its quota of rows.

    Parameters
    ----------
    context : SelectionContext
        With a fitted model (``proba_pool`` and ``classes`` set).
    quota : dict of int to int
        Column of ``proba_pool`` -> rows wanted for that class.
    limit : int
        Most rows returned in all.
    exclude : set of int
        Pool positions already taken.

    Returns
    -------
    list of (position, class column, similarity, probability)
    """
    lab = np.asarray(context.y_labeled).astype(str)
    names = np.asarray(context.classes).astype(str)
    out: list[tuple[int, int, float, float]] = []
    seen = set(exclude)
    for c, want in quota.items():
        if len(out) >= limit:
            break
        sim = np.zeros(context.n_pool, dtype=np.float64)
        rows = np.flatnonzero(lab == names[c])
        if rows.size:
            kk = min(context.n_pool, max(10, 4 * want))
            idx, s = nearest_in(context.X_pool, context.X_labeled[rows], kk)
            np.maximum.at(sim, idx.ravel(), s.ravel().astype(np.float64))
        score = sim + context.proba_pool[:, c]
        need = want
        # Only the best want + |seen| rows can be picked: no full sort of a large pool per class.
        for pos in top_by_score(score, want + len(seen)).tolist():
            if need == 0 or len(out) >= limit:
                break
            if pos not in seen:
                seen.add(pos)
                out.append((int(pos), int(c), float(sim[pos]), float(context.proba_pool[pos, c])))
                need -= 1
    return out


@register
class ClassBalancedStrategy(Strategy):
    """Class-balanced wrapper: cap each predicted class's share, guarantee rare classes a minimum.

    Imbalanced pools make uncertainty sampling pile a batch onto one or two confusable classes
    while rare classes go unseen; balancing the batch over predicted classes is the remedy of
    Aggarwal et al. (2020), "Active Learning for Imbalanced Datasets" (WACV), and of Kothawade et
    al. (2021), "SIMILAR" (NeurIPS) for rare classes. The ``base`` strategy ranks
    ``pool_factor × budget`` rows; first every class with fewer labels than the median class gets
    ``min_per_class`` rows (fewest labels first, at most half the batch), found around its labeled
    rows: nearest pool neighbours of those rows plus the rows the model gives the class most
    probability, so a rare class the model does not predict anywhere is still looked for (with
    ``explore=False``: every class the model predicts gets them, from its predicted rows). Then the
    ranking fills the batch while no predicted class exceeds
    ``max(ceil(max_share × budget), ceil(budget / n_classes))`` rows; only if that cannot fill the
    batch is the cap lifted. At cold start there are no predictions and the base strategy runs
    unchanged.

    Parameters
    ----------
    base : str
        Registered strategy that ranks the rows.
    max_share : float
        Largest share of the batch any one predicted class may take, in (0, 1].
    min_per_class : int
        Rows guaranteed to every predicted class (budget permitting), 0 to disable.
    pool_factor : int
        How many rows per batch slot the base strategy ranks.
    explore : bool
        True (default): the minimum goes to classes with fewer labels than the median class and is
        found around their labeled rows (nearest neighbours + one-vs-rest probability), so a rare
        class the model never predicts is still looked for. False: the minimum goes to every class
        the model predicts somewhere in the pool, from those predictions (the earlier behaviour).
    """

    name = "class_balanced"
    description = "wrapper: caps any predicted class's share of the batch, guarantees rare classes a minimum"
    uses_model = True

    def __init__(self, base: str = "margin", max_share: float = 0.5, min_per_class: int = 1,
                 pool_factor: int = 3, explore: bool = True) -> None:
        if base == self.name:
            raise ValueError("class_balanced cannot wrap itself")
        make_strategy(base)  # unknown names fail here, with suggestions
        if isinstance(max_share, bool) or not isinstance(max_share, (int, float)) or not 0 < max_share <= 1:
            raise ValueError(f"max_share must be in (0, 1], got {max_share!r}")
        if isinstance(min_per_class, bool) or not isinstance(min_per_class, int) or min_per_class < 0:
            raise ValueError(f"min_per_class must be a non-negative integer, got {min_per_class!r}")
        self.base = base
        self.max_share = float(max_share)
        self.min_per_class = min_per_class
        self.pool_factor = _positive_int("pool_factor", pool_factor)
        if not isinstance(explore, bool):
            raise ValueError(f"explore must be true or false, got {explore!r}")
        self.explore = explore

    def _reserve_rare(self, context: SelectionContext, budget: int, labeled_counts: np.ndarray, taken: dict,
                      take) -> None:
        """Reserve ``min_per_class`` rows for each class with fewer labels than the median class
        (fewest labels first, at most half the batch), explored around its labeled rows
        (:func:`explore_rare_classes`)."""
        k = labeled_counts.size
        median = float(np.median(labeled_counts))
        rare = [int(c) for c in np.lexsort((np.arange(k), labeled_counts)) if labeled_counts[c] < median]
        limit = max(1, budget // 2)
        names = np.asarray(context.classes).astype(str)
        quota = {c: self.min_per_class for c in rare}
        for pos, c, sim, p in explore_rare_classes(context, quota, limit - len(taken), exclude=set(taken)):
            take(pos, f"class_balanced: explores around rare class {names[c]} ({labeled_counts[c]} labeled): "
                      f"similarity to its labeled rows {sim:.2f}, P({names[c]}) {p:.2f}")

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        base = make_strategy(self.base)
        if not context.has_model:
            picked = base.select(context, budget, random_state=random_state)
            reasons = np.array([f"{r}; class_balanced: no classifier yet, nothing to balance"
                                for r in picked.reasons], dtype=object)
            return Selection(picked.indices, picked.scores, reasons, dict(picked.info, balanced=False))
        ranked = base.select(context, min(context.n_pool, self.pool_factor * budget), random_state=random_state)
        pred = context.proba_pool.argmax(axis=1)
        k = context.proba_pool.shape[1]
        cap = max(math.ceil(self.max_share * budget), math.ceil(budget / k))
        counts = np.zeros(k, dtype=np.int64)
        taken: dict[int, str] = {}  # pool position -> why (insertion order = pick order)

        def take(pos: int, why: str) -> None:
            taken[pos] = why
            counts[pred[pos]] += 1

        base_reason = dict(zip(ranked.indices.tolist(), ranked.reasons))
        base_rank = {int(p): r for r, p in enumerate(ranked.indices)}
        present = np.bincount(pred, minlength=k)
        if self.min_per_class:
            labeled_counts = labeled_class_counts(context)
            if self.explore:
                self._reserve_rare(context, budget, labeled_counts, taken, take)
            else:
                unc = margin(context.proba_pool)
                for c in np.lexsort((np.arange(k), labeled_counts)):
                    if present[c] == 0:
                        continue
                    need = min(self.min_per_class, int(present[c]))
                    in_ranking = [int(p) for p in ranked.indices if pred[p] == c]
                    members = np.flatnonzero(pred == c)
                    extra = members[np.lexsort((members, -unc[members]))].tolist()
                    for pos in in_ranking + extra:
                        if need == 0 or len(taken) == budget:
                            break
                        if pos not in taken:
                            why = base_reason.get(pos, f"lowest margin among rows predicted {context.classes[c]}")
                            take(pos, f"{why}; class_balanced: minimum for rare class {context.classes[c]} "
                                      f"({labeled_counts[c]} labeled)")
                            need -= 1
        for pos in ranked.indices.tolist():
            if len(taken) == budget:
                break
            if pos not in taken and counts[pred[pos]] < cap:
                take(pos, f"{base_reason[pos]}; class_balanced: within the {cap}-row cap of class "
                          f"{context.classes[pred[pos]]}")
        if len(taken) < budget:  # the cap cannot be met from the ranking: fill, over the cap
            rest = [int(p) for p in ranked.indices if int(p) not in taken]
            if len(rest) < budget - len(taken):
                seen = set(taken) | set(rest)
                rest += [p for p in range(context.n_pool) if p not in seen][: budget - len(taken) - len(rest)]
            for pos in rest[: budget - len(taken)]:
                take(pos, f"{base_reason.get(pos, 'filler')}; class_balanced: over the cap (nothing else ranked)")
        order = sorted(taken, key=lambda p: base_rank.get(p, len(base_rank) + p))
        idx = np.asarray(order, dtype=np.int64)
        score_of = dict(zip(ranked.indices.tolist(), ranked.scores.tolist()))
        scores = np.array([score_of.get(p, 0.0) for p in order], dtype=np.float64)
        reasons = np.array([taken[p] for p in order], dtype=object)
        info = {"balanced": True, "cap": int(cap), "base": self.base,
                "per_class": {str(context.classes[c]): int(counts[c]) for c in range(k) if counts[c]}}
        if "cluster" in ranked.info:
            cl = dict(zip(ranked.indices.tolist(), np.asarray(ranked.info["cluster"]).tolist()))
            info["cluster"] = np.array([cl.get(p, -1) for p in order], dtype=np.int64)
        return Selection(idx, scores, reasons, info)
