"""The stopping hint as an object for training scripts: feed it each round's model, ask whether to stop.

The rule is the one ``selector status`` prints (:func:`selector.loop.status.stopping_hint`): the share
of predictions on a fixed held-aside sample that changed between successive models (stabilizing
predictions, after Bloodgood & Vijay-Shanker 2009), averaged over the last ``window`` comparisons, at
most ``change_threshold`` (or at most ``change_ceiling`` and no longer falling), and the change of
cross-validated macro-F1 at most ``f1_tolerance``. The interface follows small-text's stopping criteria
(``criterion.stop(predictions=...)`` returns True once labeling may stop), so a loop written for one
reads the same with the other.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from selector.loop.status import (
    CHANGE_CEILING,
    CHANGE_FALL,
    CHANGE_THRESHOLD,
    F1_TOLERANCE,
    WINDOW,
    MeasurePoint,
    changed_share,
    kappa,
    stopping_hint,
)

__all__ = ["StoppingHint"]


class StoppingHint:
    """Stabilizing predictions + flattened cross-validated macro-F1, round by round.

    Parameters
    ----------
    change_threshold : float
        Mean share of held-aside predictions that changed between successive models (last
        ``window`` comparisons) at or below which predictions count as stable.
    change_ceiling : float
        Above ``change_threshold``, a mean share at or below this that has stopped falling also
        counts as stable.
    change_fall : float
        Largest relative fall from the ``window`` comparisons before that still counts as no longer
        falling (0: no lower than before).
    f1_tolerance : float or None
        Largest rise of cross-validated macro-F1 between the last two rounds that counts as flat;
        None judges by stability alone.
    window : int
        Comparisons averaged; ``2 x window`` are needed before the hint can fire.

    Examples
    --------
    >>> hint = StoppingHint()
    >>> for round_no in range(rounds):                             # doctest: +SKIP
    ...     model = fit(X[labeled], y[labeled])
    ...     if hint.stop(predictions=model.predict(X[stop_set]),
    ...                  macro_f1=cv_macro_f1, n_labeled=labeled.sum()):
    ...         break
    >>> hint.reason                                                # doctest: +SKIP
    'gains have flattened: 1.6% of stop-set predictions changed per round ...'
    """

    def __init__(self, change_threshold: float = CHANGE_THRESHOLD, change_ceiling: float = CHANGE_CEILING,
                 change_fall: float = CHANGE_FALL, f1_tolerance: float | None = F1_TOLERANCE,
                 window: int = WINDOW) -> None:
        for name, value in (("change_threshold", change_threshold), ("change_ceiling", change_ceiling),
                            ("change_fall", change_fall)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if f1_tolerance is not None and (isinstance(f1_tolerance, bool) or not isinstance(f1_tolerance, (int, float))
                                         or f1_tolerance < 0):
            raise ValueError(f"f1_tolerance must be a number >= 0 or None, got {f1_tolerance!r}")
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        self.change_threshold = float(change_threshold)
        self.change_ceiling = float(change_ceiling)
        self.change_fall = float(change_fall)
        self.f1_tolerance = None if f1_tolerance is None else float(f1_tolerance)
        self.window = window
        self.points: list[MeasurePoint] = []
        self.reason = "keep labeling: no round seen yet"
        self.numbers: dict[str, Any] = {}
        self._n_stop: int | None = None

    def stop(self, active_learner: Any = None, predictions: Any = None, proba: Any = None,
             indices_stopping: Any = None, *, macro_f1: float | None = None, n_labeled: int | None = None) -> bool:
        """Record one round's model and say whether labeling may stop.

        Parameters
        ----------
        active_learner, proba, indices_stopping
            Accepted for small-text's ``StoppingCriterion.stop`` signature; not used.
        predictions : array-like, shape (m,)
            This round's predicted labels for the same ``m`` held-aside rows every round.
        macro_f1 : float, optional
            This round's cross-validated macro-F1 on the labels so far. Without it the F1 half of
            the rule cannot be judged and the hint does not fire (unless ``f1_tolerance`` is None).
        n_labeled : int, optional
            Labels so far (kept in :attr:`points`).

        Returns
        -------
        bool
            True when predictions have stabilised and macro-F1 has flattened.
        """
        if predictions is None:
            raise ValueError("stop() needs predictions: this round's labels for the fixed held-aside rows")
        pred = np.asarray(predictions, dtype=object).astype(str)
        if pred.ndim != 1:
            raise ValueError(f"predictions must be 1-D (one label per held-aside row), got shape {pred.shape}")
        if self._n_stop is not None and pred.size != self._n_stop:
            raise ValueError(f"predictions has {pred.size} rows; earlier rounds had {self._n_stop}: "
                             "predict the same held-aside rows every round")
        self._n_stop = pred.size
        current = dict(zip(map(str, range(pred.size)), pred.tolist()))
        point = MeasurePoint(name=f"round {len(self.points) + 1}", n_labeled=int(n_labeled or 0),
                             cv=None if macro_f1 is None else {"macro_f1": float(macro_f1)}, predictions=current)
        if self.points:
            point.kappa_prev, _ = kappa(self.points[-1].predictions, current)
            point.changed_prev, _ = changed_share(self.points[-1].predictions, current)
        self.points.append(point)
        flattened, self.reason, self.numbers = stopping_hint(
            self.points, change_threshold=self.change_threshold, change_ceiling=self.change_ceiling,
            change_fall=self.change_fall, f1_tolerance=self.f1_tolerance, window=self.window)
        return flattened
