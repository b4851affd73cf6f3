"""The strategy contract: context in, ranked selection out.

A strategy turns pool embeddings (and, when a classifier could be fitted, its pool probabilities)
into ``budget`` distinct pool positions ranked best first. Positions index ``context.X_pool``,
which holds only unlabeled rows, so a strategy can never pick a labeled row.
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from selector.errors import ConfigError, EmptyPoolError

__all__ = ["SelectionContext", "Selection", "Strategy", "UncertaintyStrategy"]


@dataclass(frozen=True)
class SelectionContext:
    """Everything a strategy may look at. Arrays are never modified by strategies.

    Attributes
    ----------
    X_pool : ndarray of float32, shape (n_pool, d)
        L2-normalised embeddings of the unlabeled pool.
    X_labeled : ndarray of float32, shape (n_labeled, d)
        Embeddings of the labeled rows (``n_labeled`` may be 0).
    y_labeled : ndarray, shape (n_labeled,)
        Labels of the labeled rows.
    proba_pool : ndarray of float64, shape (n_pool, k), or None
        The fitted classifier's class probabilities for the pool; None when no classifier could
        be fitted (cold start: zero labeled rows, or a single class).
    classes : ndarray, shape (k,), or None
        Class labels in the column order of ``proba_pool``.
    classifier : fitted scikit-learn estimator or None
    cold_start_reason : str or None
        Why ``proba_pool`` is None, in words (shown in the queue's ``reason`` column).
    label_set : tuple of str or None
        Every label the task allows, when the user declared them (``labels:`` in the config); a
        declared label with no labeled row yet is a class nobody has found (``auto`` looks for it).
    multi_label : bool
        A multi-label task: ``y_labeled`` is an indicator matrix of shape (n_labeled, L),
        ``proba_pool`` holds one independent probability per label (shape (n_pool, L); rows need not
        sum to 1) and ``classes`` the L label names.
    """

    X_pool: np.ndarray
    X_labeled: np.ndarray
    y_labeled: np.ndarray
    proba_pool: np.ndarray | None = None
    classes: np.ndarray | None = None
    classifier: Any = None
    cold_start_reason: str | None = None
    label_set: tuple[str, ...] | None = None
    multi_label: bool = False

    @property
    def task(self) -> str:
        """``"multi_label"`` or ``"single_label"``."""
        return "multi_label" if self.multi_label else "single_label"

    @property
    def n_pool(self) -> int:
        return int(self.X_pool.shape[0])

    @property
    def n_labeled(self) -> int:
        return int(self.X_labeled.shape[0])

    @property
    def has_model(self) -> bool:
        return self.proba_pool is not None

    def unseen_labels(self) -> list[str]:
        """Declared labels (``label_set``) with no labeled row yet, in declared order; [] when none are declared."""
        if not self.label_set:
            return []
        if self.multi_label:
            found = np.asarray(self.y_labeled).sum(axis=0) > 0 if self.n_labeled else np.zeros(len(self.classes), bool)
            seen = {str(c) for c, f in zip(self.classes, found) if f}
            return [c for c in self.label_set if c not in seen]
        seen = set(np.asarray(self.y_labeled).astype(str).tolist())
        return [c for c in self.label_set if c not in seen]


@dataclass(frozen=True)
class Selection:
    """A ranked selection of pool positions.

    Attributes
    ----------
    indices : ndarray of int64, shape (m,)
        Distinct positions in ``context.X_pool``, best first.
    scores : ndarray of float64, shape (m,)
        The score each pick was ranked by (higher = picked earlier within its branch).
    reasons : ndarray of object (str), shape (m,)
        Why each row was picked, in words.
    info : dict
        Strategy-specific diagnostics (for the round record).
    """

    indices: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.indices.shape[0])


class Strategy:
    """Base class of every query strategy.

    Subclasses set ``name`` and ``description`` (one line), take their parameters as keyword
    arguments of ``__init__`` (validated there), and implement :meth:`_select`.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    #: True when the strategy can use a fitted classifier's probabilities.
    uses_model: ClassVar[bool] = False
    #: Task types the strategy serves (``"single_label"``, ``"multi_label"``); a strategy that looks
    #: only at the embeddings serves both.
    tasks: ClassVar[tuple[str, ...]] = ("single_label",)

    def check_task(self, context: SelectionContext) -> None:
        """Refuse a context of a task type this strategy does not serve, naming the ones that do.

        Raises
        ------
        ConfigError
        """
        if context.task in self.tasks:
            return
        from selector.strategies.registry import strategies_for

        kind = "multi-label" if context.multi_label else "single-label"
        raise ConfigError(f"strategy {self.name!r} does not serve {kind} tasks; choose one of: "
                          f"{', '.join(strategies_for(context.task))}")

    def params(self) -> dict[str, Any]:
        """The strategy's parameters as passed to ``__init__`` (for the round record)."""
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self" and hasattr(self, p)}

    def select(
        self, context: SelectionContext, budget: int, *, random_state: int | None = None
    ) -> Selection:
        """Pick ``budget`` distinct pool positions, best first.

        Parameters
        ----------
        context : SelectionContext
        budget : int
            Number of rows to pick; 1 <= budget <= ``context.n_pool``.
        random_state : int or None
            Seed for every random step; the same seed gives the same selection.

        Returns
        -------
        Selection

        Raises
        ------
        EmptyPoolError
            When the pool is empty or smaller than ``budget``.
        ConfigError
            When ``budget`` is not a positive integer.
        """
        if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
            raise ConfigError(f"budget must be a positive integer, got {budget!r}")
        self.check_task(context)
        if context.n_pool == 0:
            raise EmptyPoolError("the pool is empty: there are no unlabeled rows to select from")
        if budget > context.n_pool:
            raise EmptyPoolError(
                f"budget {budget} is larger than the pool ({context.n_pool} unlabeled rows); "
                f"lower the budget to at most {context.n_pool}"
            )
        selection = self._select(context, int(budget), random_state=random_state)
        _check_selection(selection, budget, context.n_pool, self.name)
        return selection

    def _select(
        self, context: SelectionContext, budget: int, *, random_state: int | None
    ) -> Selection:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class UncertaintyStrategy(Strategy):
    """A strategy that needs the classifier; falls back to another strategy at cold start.

    Parameters
    ----------
    cold_start : str
        Registered name of the strategy used when no classifier could be fitted (zero labeled
        rows, or a single class). It must not itself need a classifier.
    """

    uses_model = True

    def __init__(self, cold_start: str = "random") -> None:
        self.cold_start = cold_start

    def select(
        self, context: SelectionContext, budget: int, *, random_state: int | None = None
    ) -> Selection:
        self.check_task(context)
        if context.has_model:
            return super().select(context, budget, random_state=random_state)
        from selector.strategies.registry import make_strategy

        fallback = make_strategy(self.cold_start)
        if isinstance(fallback, UncertaintyStrategy):
            raise ConfigError(
                f"cold_start strategy {self.cold_start!r} needs a classifier itself; "
                "choose a diversity strategy such as 'random'"
            )
        why = context.cold_start_reason or "no classifier could be fitted"
        warnings.warn(
            f"cold start ({why}): strategy {self.name!r} needs a classifier, "
            f"so this round uses {self.cold_start!r} instead",
            stacklevel=2,
        )
        picked = fallback.select(context, budget, random_state=random_state)
        reasons = np.array(
            [f"cold start ({why}): {self.cold_start} instead of {self.name}; {r}" for r in picked.reasons],
            dtype=object,
        )
        info = dict(picked.info, cold_start=True, fallback=self.cold_start)
        return Selection(picked.indices, picked.scores, reasons, info)


def _number(name: str, value, ok, expected: str) -> float:
    """``value`` as a float when it is a real number (not a bool) for which ``ok(value)`` holds; else a
    ValueError saying ``<name> must be <expected>``. Strategies' parameter checks."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ValueError(f"{name} must be {expected}, got {value!r}")
    return float(value)


def _check_selection(selection: Selection, budget: int, n_pool: int, name: str) -> None:
    """Guard against strategy bugs: exact size, distinct, in range, aligned fields."""
    idx = selection.indices
    if idx.shape != (budget,) or selection.scores.shape != (budget,) or len(selection.reasons) != budget:
        raise RuntimeError(f"strategy {name!r} returned {idx.shape[0]} rows for budget {budget}")
    if idx.size and (idx.min() < 0 or idx.max() >= n_pool):
        raise RuntimeError(f"strategy {name!r} returned a position outside the pool")
    if np.unique(idx).size != idx.size:
        raise RuntimeError(f"strategy {name!r} returned duplicate positions")
