"""Mislabel suspects: labeled rows whose label is probably wrong, and what it should be.

Evidence per labeled row comes from two independent views of the data:

* **out-of-fold probabilities** ``P`` (n, k): a classifier trained on the other folds of a seeded
  stratified K-fold scores each row, so a row never grades its own label;
* **neighbour votes** ``V`` (n, k): the similarity-weighted label shares of the row's
  ``n_neighbors`` nearest *other* labeled rows in embedding space.

Both are blended before the probability signals are computed: ``Q = (1 - a) * P + a * V`` with
``a = knn_weight`` (:data:`DEFAULT_KNN_WEIGHT`; ``a = 0`` gives the plain out-of-fold signals, the
same as cleanlab's on the same ``P``). Signals (each available alone; every one oriented higher =
more suspect):

``self_confidence``      ``1 - Q[i, y_i]``.
``normalized_margin``    ``(max_{j != y_i} Q[i, j] - Q[i, y_i] + 1) / 2`` (cleanlab's margin, flipped).
``confident_learning``   per-class thresholds ``t_j`` = mean ``Q[:, j]`` over rows labeled ``j``
                         (Northcutt et al. 2021); score ``max_{j != y_i} (Q[i, j] - t_j) -
                         (Q[i, y_i] - t_{y_i})`` rescaled to [0, 1]. The row *fails the test*
                         (``.cl_flag``) when the most probable class among those at or above their
                         threshold is not its given label.
``knn``                  ``(max_{j != y_i} V[i, j] - V[i, y_i] + 1) / 2``: neighbours voting for
                         another label (neighbours only, no model).

**Rank ensemble**: each chosen signal is turned into its percentile rank over the rows (ties get
their average rank) and the ranks are averaged with the given weights, so signals on different
scales count by their weight only. ``suspect_score`` is that average, in (0, 1]. The default
(:data:`DEFAULT_SIGNALS` on :data:`DEFAULT_KNN_WEIGHT`) is the combination
``scripts/bench_suspects.py`` picked: the best mean average precision over 11 noisy settings among
candidates never more than 0.01 below cleanlab's best ranking in any setting.

**Suggested label and kind** use the evidence ``E = (1 - b) * P + b * V`` with ``b =
suggest_knn_weight`` (0.1; the benchmark found larger shares help ranking but not suggestions):
the suggestion is the label other than the given one with the most evidence. ``kind`` is

``likely_wrong``   the suggested label holds at least ``dominance`` (2) times the evidence of every
                   other label, the given one included: the evidence points to one other label;
``ok``             the given label holds that dominance: the evidence agrees with the label;
``ambiguous``      neither: the evidence is split between labels;
``contradiction``  the row's normalised text (:func:`selector.textnorm.normalise_text`) is
                   identical to another labeled row's but the labels differ. Always reported,
                   whatever the model thinks; the suggestion is the group's majority label.

**Probability and the default list.** ``suspect_score`` is a *rank* (0.995 = "in the top 0.5%",
not "99.5% sure"). ``p_mislabeled`` is a probability: the blend ``Q`` goes through an explicit
noise model (:mod:`selector.round.noise`: temperature calibration, the confident joint of
Northcutt et al. 2021, deconvolution of the noisy-label distribution, a per-row Bayes posterior),
and is then made monotone in ``suspect_score`` by isotonic regression, which keeps its sum, so a
row ranked higher is never shown as less likely wrong. Its mean is the estimated error rate. The
default list (``flagged``) is the cut that estimate implies: of the ``round(sum p_mislabeled)``
rows with the highest ``suspect_score``, those with ``p_mislabeled >=`` :data:`LIST_MIN_P` (0.4,
the F1-optimal threshold of a calibrated probability when the best F1 is about 0.8); plus every
contradiction.

**Too few labels, or a model that cannot tell.** A class with fewer than :data:`MIN_CLASS_LABELS`
labeled rows cannot be judged by a model trained on the others. Rows of such classes are listed
only with strong evidence (``likely_wrong``, and both the model and the nearest neighbours favour
the suggestion); when at least half of the labeled rows are in such classes, ``too_few_labels`` is
set and the summary says what would make the check reliable. The same holds when the out-of-fold
model is no better than always guessing the largest class (skill below :data:`MIN_MODEL_SKILL`,
e.g. sentence embeddings on textual entailment): its disagreement with a label is then no evidence.

**Several annotators.** :func:`add_votes` folds long-format votes into the evidence of the rows
that have them (the consensus posterior of votes x the out-of-fold model).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.isotonic import IsotonicRegression

from selector.config import SelectConfig
from selector.errors import ConfigError, DataError
from selector.io import table_sibling
from selector.labels import unsure_mask
from selector.models.classifiers import make_classifier
from selector.neighbors import EXACT_MAX, nearest_neighbors
from selector.quality.agreement import encode_ratings, votes_text
from selector.quality.annotations import prepare_annotations
from selector.quality.consensus import columns_in_order, consensus_from_codes
from selector.round.embed import embed_pool
from selector.round.model import check_enough_labels, out_of_fold
from selector.round.noise import (
    NoiseModel,
    confident_labels,
    error_rate_interval,
    estimate_noise,
    mislabel_posterior,
)
from selector.round.pool import prepare_pool
from selector.textnorm import normalise_text

__all__ = ["find_suspects", "suspects", "suspects_frame", "select_suspects", "check_list_size", "pool_suspects",
           "suspects_path_for", "rank_ensemble",
           "signal_scores", "knn_label_votes", "contradiction_groups", "SuspectResult",
           "suspect_result_for_pool", "add_votes", "SIGNALS", "DEFAULT_SIGNALS", "DEFAULT_KNN_WEIGHT", "KINDS",
           "SUSPECT_COLUMNS", "MIN_CLASS_LABELS", "MIN_MODEL_SKILL", "LIST_MIN_P"]

SIGNALS = ("self_confidence", "normalized_margin", "confident_learning", "knn")
#: Chosen by ``scripts/bench_suspects.py`` (see README, "Mislabel suspects").
DEFAULT_SIGNALS: Mapping[str, float] = {"normalized_margin": 2 / 3, "self_confidence": 1 / 3}
#: Share of neighbour votes blended into the out-of-fold probabilities before the signals.
DEFAULT_KNN_WEIGHT = 0.3
KINDS = ("likely_wrong", "ambiguous", "contradiction", "ok")
SUSPECT_COLUMNS = ["id", "text", "given_label", "suggested_label", "suggested_proba", "p_mislabeled",
                   "suspect_score", "kind", "reasons", "corrected_label"]
#: Labeled rows a class needs before the model's view of its rows counts as evidence.
MIN_CLASS_LABELS = 10
#: Below this out-of-fold skill (accuracy gain over always guessing the largest class, as a share
#: of the possible gain) the model cannot judge the labels: only strong evidence is listed.
MIN_MODEL_SKILL = 0.1
#: Lowest p_mislabeled on the default list. For a calibrated probability the F1-optimal threshold
#: is half the best achievable F1 (Lipton et al. 2014); suspect lists reach F1 ~0.8 on the
#: benchmark's clear-cut settings, hence 0.4.
LIST_MIN_P = 0.4


@dataclass
class SuspectResult:
    """Suspect scores, suggestions and kinds for labeled rows (all arrays aligned with ``y``).

    Attributes
    ----------
    score : ndarray of float64, shape (n,)
        Rank-ensemble suspect score in (0, 1]; higher = more suspect.
    suggested : ndarray of object, shape (n,)
        The most likely label other than the given one (for contradictions: the group's majority).
    suggested_proba : ndarray of float64, shape (n,)
        Evidence for ``suggested`` (blend of out-of-fold probability and neighbour vote).
    kind : ndarray of object, shape (n,)
        One of :data:`KINDS`.
    flagged : ndarray of bool, shape (n,)
        Rows reported by default: of the ``round(p_mislabeled.sum())`` highest scores, those with
        ``p_mislabeled >=`` :data:`LIST_MIN_P` (strong evidence only for rows of classes under
        :data:`MIN_CLASS_LABELS`), plus contradictions.
    p_mislabeled : ndarray of float64, shape (n,)
        Probability that the given label is wrong (noise-model posterior, monotone in ``score``).
    signals : dict of str -> ndarray, shape (n,)
        Every signal of :data:`SIGNALS` (higher = more suspect), on the blend of ``proba`` and
        ``knn_votes`` with share ``knn_weight``.
    cl_flag : ndarray of bool, shape (n,)
        The confident-learning threshold test failed.
    proba : ndarray of float64, shape (n, k)
        Out-of-fold probabilities, columns in ``classes`` order.
    knn_votes : ndarray of float64, shape (n, k)
        Similarity-weighted label shares of the nearest labeled neighbours.
    evidence : ndarray of float64, shape (n, k)
        The blend behind ``suggested`` and ``kind``.
    classes : ndarray, shape (k,)
    given : ndarray of object, shape (n,)
    contradiction_group : ndarray of int64, shape (n,)
        Group number of rows in a contradiction, -1 elsewhere.
    weights : dict of str -> float
        The signal combination behind ``score``.
    noise : NoiseModel or None
        The fitted noise model.
    error_rate : tuple of float
        ``(rate, low, high)``: estimated share of wrong labels and its 95% interval.
    thin_classes : ndarray of object
        Classes with fewer than ``min_class_labels`` labeled rows.
    too_few_labels : bool
        At least half of the labeled rows are in thin classes: the estimate is not reliable.
    votes_text : ndarray of object, shape (n,), or None
        Annotators' votes per row ("a:3 b:1"; "" for rows without votes), after :func:`add_votes`.
    n_with_votes : int
        Rows whose evidence includes annotators' votes.
    model_skill : float
        Out-of-fold accuracy gain over always guessing the largest class, as a share of the
        possible gain (1 = perfect, 0 = no better than the guess).
    uninformative_model : bool
        ``model_skill`` is below :data:`MIN_MODEL_SKILL`: treated like too few labels.
    """

    score: np.ndarray
    suggested: np.ndarray
    suggested_proba: np.ndarray
    kind: np.ndarray
    flagged: np.ndarray
    signals: dict
    cl_flag: np.ndarray
    proba: np.ndarray
    knn_votes: np.ndarray
    evidence: np.ndarray
    classes: np.ndarray
    given: np.ndarray
    contradiction_group: np.ndarray
    weights: dict = field(default_factory=dict)
    n_neighbors: int = 0
    knn_weight: float = 0.0
    p_mislabeled: np.ndarray | None = None
    noise: NoiseModel | None = None
    error_rate: tuple = (0.0, 0.0, 0.0)
    thin_classes: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    too_few_labels: bool = False
    min_class_labels: int = MIN_CLASS_LABELS
    votes_text: np.ndarray | None = None
    n_with_votes: int = 0
    model_skill: float = 1.0
    uninformative_model: bool = False

    def __len__(self) -> int:
        return int(self.score.shape[0])

    def summary(self, n_listed: int | None = None) -> str:
        """One line for the user: the estimated error rate with its interval, what is listed and why.

        Parameters
        ----------
        n_listed : int, optional
            Rows in the list written (default: the flagged rows).
        """
        n = len(self)
        listed = int(self.flagged.sum()) if n_listed is None else int(n_listed)
        n_contra = int((self.contradiction_group >= 0).sum())
        if self.uninformative_model and self.n_with_votes == 0:
            return (f"the model cannot judge these labels (out-of-fold skill {self.model_skill:.2f} over always guessing "
                    f"the largest class): listing {listed} rows ({n_contra} contradictions, the rest with strong "
                    f"model + neighbour evidence) of {n} labeled rows; the task may need more labels, a stronger "
                    "embedding model (--model), or several annotators' votes (--annotations)")
        if self.too_few_labels and self.n_with_votes == 0:
            counts = np.unique(self.given, return_counts=True)[1]
            return (f"too few labels per class for the model to judge ({int(np.median(counts))} per class on median "
                    f"over {counts.size} classes; {self.thin_classes.size} classes have fewer than "
                    f"{self.min_class_labels}): listing {listed} rows ({n_contra} contradictions, the rest with "
                    f"strong model + neighbour evidence) of {n} labeled rows; label at least {self.min_class_labels} "
                    "rows per class to make this check reliable")
        rate, low, high = self.error_rate
        line = (f"~{rate:.1%} of labels look wrong ({100 * low:.1f}-{high:.1%}): {listed} listed of {n} labeled rows"
                + (f" ({n_contra} contradictions)" if n_contra else ""))
        if self.thin_classes.size:
            line += (f"; {self.thin_classes.size} classes with fewer than {self.min_class_labels} labels are "
                     "judged on strong evidence only")
        return line

    def reasons_for(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """One human-readable reason string per row position in ``rows``."""
        return [self._reason(int(i)) for i in rows]

    @cached_property
    def reasons(self) -> np.ndarray:
        """Reason strings for every row, shape (n,) (built on first access)."""
        return np.array(self.reasons_for(range(len(self))), dtype=object)

    def _reason(self, i: int) -> str:
        cls = self.classes
        col = {c: j for j, c in enumerate(cls)}
        g = col[self.given[i]]
        p = self.proba[i]
        parts = []
        if self.contradiction_group[i] >= 0:
            same = np.flatnonzero(self.contradiction_group == self.contradiction_group[i])
            labels, counts = np.unique(self.given[same].astype(str), return_counts=True)
            tally = ", ".join(f"{c} x{n}" for c, n in zip(labels, counts))
            parts.append(f"same text as {same.size - 1} other row(s) with different labels ({tally})")
        if self.p_mislabeled is not None:
            parts.append(f"P(label wrong) {self.p_mislabeled[i]:.2f}")
        if self.votes_text is not None and self.votes_text[i]:
            parts.append(f"annotators {self.votes_text[i]}")
        best_other = int(np.argmax(np.where(np.arange(cls.size) == g, -np.inf, p)))
        parts.append(f"model gives the label {p[g]:.2f}, {cls[best_other]!s} {p[best_other]:.2f}")
        if self.n_neighbors:
            v = self.knn_votes[i]
            top = int(np.argmax(v))
            parts.append(f"{v[g]:.0%} of {self.n_neighbors} nearest labeled rows agree"
                         + ("" if top == g else f", {v[top]:.0%} say {cls[top]!s}"))
        if self.cl_flag[i]:
            parts.append("fails the confident-learning threshold test")
        return "; ".join(parts)


def rank_ensemble(signals: Mapping[str, np.ndarray], weights: Mapping[str, float]) -> np.ndarray:
    """Weighted mean of the signals' percentile ranks (ties share their average rank).

    Parameters
    ----------
    signals : dict of str -> ndarray, shape (n,)
        Higher = more suspect.
    weights : dict of str -> float
        Non-negative, positive sum; keys must be in ``signals``.

    Returns
    -------
    ndarray of float64, shape (n,)
        In (0, 1]; higher = more suspect.
    """
    total = float(sum(weights.values()))
    n = next(iter(signals.values())).shape[0]
    score = np.zeros(n)
    for name, w in weights.items():
        score += w * rankdata(signals[name], method="average") / n
    return score / total


def _check_weights(signals) -> dict[str, float]:
    if signals is None:
        return dict(DEFAULT_SIGNALS)
    if isinstance(signals, str):
        signals = [signals]
    weights = dict(signals) if isinstance(signals, Mapping) else {s: 1.0 for s in signals}
    unknown = [s for s in weights if s not in SIGNALS]
    if unknown:
        raise ConfigError(f"unknown suspect signal(s) {', '.join(map(repr, unknown))}; "
                          f"choose from {', '.join(SIGNALS)}")
    if not weights or any(not np.isfinite(w) or w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ConfigError(f"signal weights must be non-negative with a positive sum, got {weights}")
    return {k: float(v) for k, v in weights.items()}


def _other_max(M: np.ndarray, y_idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column and value of each row's largest entry outside its given column."""
    masked = M.copy()
    masked[np.arange(M.shape[0]), y_idx] = -np.inf
    j = masked.argmax(axis=1)
    return j, masked[np.arange(M.shape[0]), j]


def signal_scores(proba: np.ndarray, y_idx: np.ndarray, knn_votes: np.ndarray | None) -> tuple[dict, np.ndarray]:
    """Every signal of :data:`SIGNALS` (higher = more suspect) and the confident-learning flag.

    Parameters
    ----------
    proba : ndarray, shape (n, k)
        Out-of-fold probabilities.
    y_idx : ndarray of int, shape (n,)
        Given label as a column of ``proba``.
    knn_votes : ndarray, shape (n, k), or None

    Returns
    -------
    signals : dict of str -> ndarray, shape (n,)
    cl_flag : ndarray of bool, shape (n,)
    """
    n = proba.shape[0]
    rows = np.arange(n)
    p_given = proba[rows, y_idx]
    _, p_other = _other_max(proba, y_idx)
    # Per-class thresholds: the mean self-confidence of each class (cleanlab's t_j).
    thresholds, has_confident, confident_class = confident_labels(proba, y_idx)
    above = proba - thresholds[None, :]
    _, above_other = _other_max(above, y_idx)
    cl_flag = has_confident & (confident_class != y_idx)
    out = {
        "self_confidence": 1.0 - p_given,
        "normalized_margin": (p_other - p_given + 1.0) / 2.0,
        "confident_learning": (above_other - above[rows, y_idx] + 2.0) / 4.0,
    }
    if knn_votes is not None:
        _, v_other = _other_max(knn_votes, y_idx)
        out["knn"] = (v_other - knn_votes[rows, y_idx] + 1.0) / 2.0
    return out, cl_flag


def knn_label_votes(X: np.ndarray, y_idx: np.ndarray, n_classes: int, n_neighbors: int, *,
                    random_state: int | None = None, exact_max: int = EXACT_MAX) -> np.ndarray:
    """Similarity-weighted label shares of each row's nearest other rows.

    Returns
    -------
    ndarray of float64, shape (n, n_classes)
        Rows sum to 1.
    """
    idx, sim = nearest_neighbors(X, n_neighbors, random_state=random_state, exact_max=exact_max)
    # Weights: cosine similarity floored at a small positive value so that far-but-only
    # neighbours still vote instead of dividing by zero.
    w = np.maximum(sim.astype(np.float64), 1e-3)
    votes = np.zeros((X.shape[0], n_classes))
    rows = np.repeat(np.arange(X.shape[0]), n_neighbors)
    np.add.at(votes, (rows, y_idx[idx].ravel()), w.ravel())
    return votes / votes.sum(axis=1, keepdims=True)


def contradiction_groups(texts: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """Group number for rows whose normalised text recurs with different labels, -1 elsewhere.

    Returns
    -------
    ndarray of int64, shape (n,)
    """
    keys = [normalise_text(str(t)) for t in texts]
    by_key: dict[str, list[int]] = {}
    for i, key in enumerate(keys):
        by_key.setdefault(key, []).append(i)
    group = np.full(len(keys), -1, dtype=np.int64)
    g = 0
    for members in by_key.values():
        if len(members) > 1 and len({labels[i] for i in members}) > 1:
            group[members] = g
            g += 1
    return group


def find_suspects(X, y, *, classifier=None, random_state: int | None = None, signals=None,
                  n_splits: int = 5, n_neighbors: int = 10, knn_weight: float = DEFAULT_KNN_WEIGHT,
                  suggest_knn_weight: float = 0.1, dominance: float = 2.0,
                  exact_neighbors_max: int = EXACT_MAX, texts: Sequence[str] | None = None,
                  oof_proba: np.ndarray | None = None, min_class_labels: int = MIN_CLASS_LABELS) -> SuspectResult:
    """Score every labeled row for being mislabeled and suggest its label.

    Parameters
    ----------
    X : array-like, shape (n, d)
        Embeddings of the labeled rows (L2-normalised, as the embedders return them).
    y : array-like, shape (n,)
        Given labels (any hashable; compared as text).
    classifier : scikit-learn estimator with predict_proba, optional
        Unfitted template for the out-of-fold fits; default logistic regression.
    random_state : int or None
        Seeds the folds, the classifier and the neighbour index.
    signals : str, sequence of str or dict of str -> float, optional
        Signals of :data:`SIGNALS` to combine (dict: with weights); default :data:`DEFAULT_SIGNALS`.
    n_splits : int
        Folds for the out-of-fold probabilities (classes smaller than that: a warning).
    n_neighbors : int
        Labeled neighbours that vote (clipped to n - 1).
    knn_weight : float in [0, 1]
        Share of the neighbour votes blended into the probabilities the signals are computed on
        (0: plain out-of-fold signals).
    suggest_knn_weight : float in [0, 1]
        Share of the neighbour votes in the evidence behind the suggestion and the kind.
    dominance : float >= 1
        How many times the evidence of every other label a label needs to be "the" answer.
    exact_neighbors_max : int
        Exact neighbour search up to this many rows; above it an approximate inverted-file
        search (:func:`selector.neighbors.nearest_neighbors`).
    texts : sequence of str, optional
        The rows' texts; enables contradiction detection.
    oof_proba : ndarray, shape (n, k), optional
        Precomputed out-of-fold probabilities with columns in ``np.unique(y)`` order (skips the
        fits; the benchmark uses it to give every detector the same probabilities).
    min_class_labels : int
        Classes with fewer labeled rows are judged on strong evidence only (module docstring).

    Returns
    -------
    SuspectResult

    Raises
    ------
    DataError
        Shapes disagree, non-finite embeddings, fewer than two classes or three rows.
    ConfigError
        Unknown signal or invalid parameter.
    """
    weights = _check_weights(signals)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y).astype(str).astype(object)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise DataError(f"X must be (n, d) with one row per label; got X {X.shape} and y {y.shape}")
    if not np.isfinite(X).all():
        raise DataError(f"X row {int(np.flatnonzero(~np.isfinite(X).all(axis=1))[0]) + 1} has NaN or "
                        "infinite values")
    classes, y_idx = np.unique(y, return_inverse=True)
    n, k = y.shape[0], classes.size
    if k < 2:
        raise DataError(f"suspects need labels of at least two classes; got {k} ({', '.join(classes[:1])})")
    if n < 3:
        raise DataError(f"suspects need at least 3 labeled rows, got {n}")
    for name, value in (("knn_weight", knn_weight), ("suggest_knn_weight", suggest_knn_weight)):
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"{name} must be in [0, 1], got {value}")
    if dominance < 1.0:
        raise ConfigError(f"dominance must be >= 1, got {dominance}")
    if isinstance(n_neighbors, bool) or not isinstance(n_neighbors, (int, np.integer)) or n_neighbors < 1:
        raise ConfigError(f"n_neighbors must be a positive integer, got {n_neighbors!r}")
    if texts is not None and len(texts) != n:
        raise DataError(f"texts has {len(texts)} entries but y has {n}")

    if oof_proba is None:
        template = classifier if classifier is not None else make_classifier(random_state=random_state)
        # Classes too small for n_splits folds get a warning, not an error.
        proba = out_of_fold(template, X, y, n_splits=n_splits, random_state=random_state).proba
    else:
        proba = np.asarray(oof_proba, dtype=np.float64)
        if proba.shape != (n, k):
            raise DataError(f"oof_proba must have shape (n, k) = ({n}, {k}), got {proba.shape}")

    n_nb = int(min(n_neighbors, n - 1))
    votes = knn_label_votes(X, y_idx, k, n_nb, random_state=random_state, exact_max=exact_neighbors_max)
    blend = (1.0 - knn_weight) * proba + knn_weight * votes
    sig, cl_flag = signal_scores(blend, y_idx, votes)
    score = rank_ensemble(sig, weights)

    evidence = (1.0 - suggest_knn_weight) * proba + suggest_knn_weight * votes
    rows = np.arange(n)
    sugg_idx, sugg_ev = _other_max(evidence, y_idx)
    ev_given = evidence[rows, y_idx]
    # Runner-up to the suggestion, the given label included: the given label itself, or the best
    # label that is neither given nor suggested.
    rest = evidence.copy()
    rest[rows, sugg_idx] = -np.inf
    runner_up = rest.max(axis=1)
    rest[rows, y_idx] = -np.inf
    third = rest.max(axis=1) if k > 2 else np.zeros(n)
    kind = np.full(n, "ambiguous", dtype=object)
    kind[sugg_ev >= dominance * runner_up] = "likely_wrong"
    kind[ev_given >= dominance * np.maximum(sugg_ev, third)] = "ok"
    suggested = classes[sugg_idx].astype(object)
    suggested_proba = sugg_ev.copy()

    group = np.full(n, -1, dtype=np.int64)
    if texts is not None:
        group = contradiction_groups(texts, y)
        for g in np.unique(group[group >= 0]):
            members = np.flatnonzero(group == g)
            # Majority label of the group; ties broken by the members' summed evidence.
            tally = np.bincount(y_idx[members], minlength=k).astype(np.float64)
            tally += 1e-6 * evidence[members].sum(axis=0)
            best = int(np.argmax(tally))
            suggested[members] = classes[best]
            suggested_proba[members] = evidence[members, best]
            kind[members] = "contradiction"

    # The probability the label is wrong, and the list size it implies (module docstring).
    noise = estimate_noise(blend, y_idx)
    p_raw, _ = mislabel_posterior(blend, y_idx, noise)
    p_wrong = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True,
                                 out_of_bounds="clip").fit_transform(score, p_raw)
    class_counts = np.bincount(y_idx, minlength=k)
    thin = class_counts < min_class_labels
    too_few = bool(thin[y_idx].mean() >= 0.5)
    # Skill of the out-of-fold model over always guessing the largest class: near 0, the model
    # cannot tell the classes apart and its disagreement with a label is no evidence.
    base = class_counts.max() / n
    skill = float((np.mean(proba.argmax(axis=1) == y_idx) - base) / max(1.0 - base, 1e-12))
    uninformative = skill < MIN_MODEL_SKILL
    too_few = too_few or uninformative
    strong = (kind == "likely_wrong") & (proba.argmax(axis=1) == sugg_idx) & (votes.argmax(axis=1) == sugg_idx)
    flagged = _default_flags(score, p_wrong, thin[y_idx], strong, group, too_few)
    return SuspectResult(score=score, suggested=suggested, suggested_proba=suggested_proba, kind=kind,
                         flagged=flagged, signals=sig, cl_flag=cl_flag, proba=proba, knn_votes=votes,
                         evidence=evidence, classes=classes, given=y, contradiction_group=group,
                         weights=weights, n_neighbors=n_nb, knn_weight=float(knn_weight),
                         p_mislabeled=p_wrong, noise=noise, error_rate=error_rate_interval(p_wrong),
                         thin_classes=classes[thin].astype(object), too_few_labels=too_few,
                         model_skill=skill, uninformative_model=bool(uninformative),
                         min_class_labels=int(min_class_labels))


def _default_flags(score: np.ndarray, p_wrong: np.ndarray, in_thin: np.ndarray, strong: np.ndarray,
                   group: np.ndarray, too_few: bool) -> np.ndarray:
    """The default list (module docstring): of the round(sum p) highest scores outside thin classes,
    those with p >= :data:`LIST_MIN_P`; strong-evidence rows of thin classes; every contradiction.
    Shape (n,) bool."""
    flagged = np.zeros(score.size, dtype=bool)
    if not too_few:
        order = np.argsort(-score, kind="stable")
        flagged[order[:int(round(float(p_wrong.sum())))]] = True
        flagged &= ~in_thin & (p_wrong >= LIST_MIN_P)
    flagged |= in_thin & strong
    flagged |= group >= 0
    return flagged


def add_votes(result: SuspectResult, ids: np.ndarray, codes, *, dominance: float = 2.0,
              random_state: int | None = 0) -> SuspectResult:
    """Fold several annotators' votes into the suspect evidence, in place.

    For labeled rows that have votes, the probability the given label is wrong becomes ``1 -``
    the consensus posterior of the given label (:func:`selector.quality.consensus.consensus_from_codes`,
    method ``model`` with the suspects' own out-of-fold probabilities as the item prior, times the
    annotators' confusions), the suggestion is the posterior's
    best other label, and ``kind`` follows the posterior. Their ``score`` becomes the percentile
    rank of the new ``p_mislabeled`` (which weighs the model's evidence against the votes, so a row
    whose votes split but whose model evidence is clear is ranked by both); ``flagged`` is
    recomputed.

    Parameters
    ----------
    result : SuspectResult
        For the labeled rows.
    ids : ndarray of str, shape (n,)
        The labeled rows' ids (matched to the annotations' item ids).
    codes : RatingCodes
        Encoded annotations (:func:`selector.quality.agreement.encode_ratings`).

    Returns
    -------
    SuspectResult
        ``result``, with ``n_with_votes`` set.
    """
    pos = {str(v): i for i, v in enumerate(ids)}
    keep = np.array([str(it) in pos for it in codes.items[codes.item]])
    if not keep.any():
        raise DataError("none of the annotations' item ids is a labeled row's id; check --item-col and --id-col")
    sub = pd.DataFrame({"item_id": codes.items[codes.item][keep], "annotator": codes.annotators[codes.annotator][keep],
                        "label": codes.labels[codes.label][keep]})
    sub_codes = encode_ratings(sub)
    rows = np.array([pos[str(it)] for it in sub_codes.items])
    # The suspects' own out-of-fold model (trained on the data's labels) is the item prior.
    model_proba = columns_in_order(result.proba[rows], result.classes, sub_codes.labels)
    cons = consensus_from_codes(sub_codes, method="model", model_proba=model_proba, random_state=random_state)
    # Back to the data's classes; a vote label the data never uses cannot be the given label.
    post = columns_in_order(cons.posterior, sub_codes.labels, result.classes, floor=0.0)
    col = {c: j for j, c in enumerate(result.classes)}
    g = np.array([col[v] for v in result.given[rows]])
    r = np.arange(rows.size)
    other = post.copy()
    other[r, g] = -np.inf
    sugg = other.argmax(axis=1)
    p_given, p_sugg = post[r, g], post[r, sugg]
    result.p_mislabeled[rows] = 1.0 - p_given
    keep_contra = result.contradiction_group[rows] >= 0
    result.suggested[rows[~keep_contra]] = result.classes[sugg[~keep_contra]]
    result.suggested_proba[rows[~keep_contra]] = p_sugg[~keep_contra]
    kind = np.where(p_sugg >= dominance * p_given, "likely_wrong",
                    np.where(p_given >= dominance * np.sort(other, axis=1)[:, -1], "ok", "ambiguous"))
    result.kind[rows[~keep_contra]] = kind[~keep_contra]
    result.votes_text = np.full(len(result), "", dtype=object)
    result.votes_text[rows] = votes_text(sub_codes.counts, sub_codes.labels)
    p = result.p_mislabeled
    # The posterior already weighs the model against the votes, so annotated rows rank by it alone.
    result.score = result.score.copy()
    result.score[rows] = (rankdata(p, method="average") / p.size)[rows]
    result.error_rate = error_rate_interval(p)
    # Votes are evidence of their own: annotated rows compete for the list even where the model
    # alone could not judge (thin classes, an uninformative model); the others keep that rule.
    has_votes = np.zeros(len(result), dtype=bool)
    has_votes[rows] = True
    in_thin = np.isin(result.given, result.thin_classes) & ~has_votes
    strong = result.kind == "likely_wrong"
    flagged = _default_flags(result.score, p, in_thin, strong, result.contradiction_group, too_few=False)
    if result.too_few_labels:
        flagged &= has_votes | strong | (result.contradiction_group >= 0)
    result.flagged = flagged
    result.n_with_votes = int(rows.size)
    return result


def check_list_size(top: int | None, threshold: float | None) -> None:
    """Refuse a ``top`` / ``threshold`` pair that cannot size a suspect list (checked before any work).

    Raises
    ------
    ConfigError
        Both given, ``top`` not a positive whole number, or ``threshold`` outside [0, 1].
    """
    if top is not None and threshold is not None:
        raise ConfigError("give --top or --threshold, not both")
    if top is not None and (isinstance(top, bool) or int(top) != top or top < 1):
        raise ConfigError(f"top must be a positive integer, got {top!r}")
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ConfigError(f"threshold must be in [0, 1] (suspect scores are rank averages), got {threshold}")


def select_suspects(result: SuspectResult, *, top: int | None = None,
                    threshold: float | None = None) -> np.ndarray:
    """Row positions to report, most suspect first; contradictions are always included.

    Parameters
    ----------
    top : int, optional
        The ``top`` highest scores.
    threshold : float, optional
        Every row with ``score >= threshold`` (a rank: 0.99 = the top 1%).
        Neither given: the flagged rows (``result.flagged``: as many as the estimated number of
        wrong labels).

    Returns
    -------
    ndarray of int64
    """
    check_list_size(top, threshold)
    order = np.argsort(-result.score, kind="stable")
    if top is not None:
        chosen = np.zeros(len(result), dtype=bool)
        chosen[order[:int(top)]] = True
    elif threshold is not None:
        chosen = result.score >= threshold
    else:
        chosen = result.flagged.copy()
    chosen |= result.contradiction_group >= 0
    return order[chosen[order]]


def suspects_frame(result: SuspectResult, rows: np.ndarray, *, ids: np.ndarray,
                   texts: np.ndarray) -> pd.DataFrame:
    """The suspect table (columns :data:`SUSPECT_COLUMNS`) for row positions ``rows``.

    ``ids`` and ``texts`` are aligned with the result's rows.
    """
    rows = np.asarray(rows, dtype=np.int64)
    return pd.DataFrame({
        "id": np.asarray(ids, dtype=object)[rows],
        "text": np.asarray(texts, dtype=object)[rows],
        "given_label": result.given[rows],
        "suggested_label": result.suggested[rows],
        "suggested_proba": np.round(result.suggested_proba[rows], 6),
        "p_mislabeled": np.round(result.p_mislabeled[rows], 6),
        "suspect_score": np.round(result.score[rows], 6),
        "kind": result.kind[rows],
        "reasons": result.reasons_for(rows),
        # For the reviewer: the right label, when it is not the given one (`selector merge
        # --accept-corrections` applies the filled-in rows); empty keeps the given label.
        "corrected_label": "",
    }, columns=SUSPECT_COLUMNS)


def suspects(df: pd.DataFrame, *, text_col: str = "text", label_col: str = "label", id_col: str = "id",
             top: int | None = None, threshold: float | None = None, random_state: int | None = 0,
             signals=None, classifier=None, embeddings: np.ndarray | None = None, embedder=None,
             model: str | None = None, cache_dir=None, show_progress: bool = False,
             **options) -> pd.DataFrame:
    """Labeled rows of ``df`` that are probably mislabeled, most suspect first.

    Parameters
    ----------
    df : DataFrame
        One row per text; rows with an empty label are ignored. Not modified.
    text_col, label_col, id_col : str
    top, threshold : optional
        Report the ``top`` most suspect rows, or those scoring at least ``threshold``; neither: the
        rows whose evidence favours another label. Contradictions are always reported.
    random_state : int or None
    signals : optional
        See :func:`find_suspects`.
    classifier : scikit-learn estimator with predict_proba, optional
    embeddings : ndarray of shape (len(df), d), optional
        Precomputed embeddings aligned with the rows; skips the model.
    embedder : object with ``encode`` and ``fingerprint``, optional
    model : str, optional
        Local sentence-transformers folder.
    cache_dir : path, optional
        Embedding cache folder.
    **options
        Passed to :func:`find_suspects` (``n_splits``, ``n_neighbors``, ...).

    Returns
    -------
    DataFrame
        Columns :data:`SUSPECT_COLUMNS`.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"suspects() needs a pandas DataFrame, got {type(df).__name__}")
    config = SelectConfig(seed=random_state, text_col=text_col, label_col=label_col, id_col=id_col, model=model)
    pool = prepare_pool(df, text_col=text_col, label_col=label_col, id_col=id_col)
    check_enough_labels(pool.labels[pool.labeled], "<DataFrame>", label_col)
    X, _ = embed_pool(pool, config, embedder=embedder, embeddings=embeddings, cache_dir=cache_dir,
                      show_progress=show_progress)
    return pool_suspects(pool, X, top=top, threshold=threshold, random_state=random_state,
                         signals=signals, classifier=classifier, **options)


def pool_suspects(pool, X: np.ndarray, *, top: int | None = None, threshold: float | None = None,
                  random_state: int | None = 0, classifier=None, n_splits: int = 5, **options) -> pd.DataFrame:
    """Suspect table for the labeled rows of a :class:`~selector.round.pool.LabeledPool`.

    Parameters
    ----------
    X : ndarray, shape (pool.n, d)
        Embeddings of every pool row (labeled and not).
    classifier : unfitted scikit-learn estimator, optional
        The out-of-fold template (default logistic regression); one out-of-fold pass.
    """
    result = suspect_result_for_pool(pool, X, random_state=random_state, classifier=classifier, n_splits=n_splits,
                                     **options)
    lab = pool.labeled_positions
    rows = select_suspects(result, top=top, threshold=threshold)
    return suspects_frame(result, rows, ids=pool.ids[lab], texts=pool.texts[lab])


def suspect_result_for_pool(pool, X: np.ndarray, *, random_state: int | None = 0, classifier=None,
                            n_splits: int = 5, annotations: pd.DataFrame | None = None,
                            annotation_columns: Mapping[str, str] | None = None, unsure_labels=None,
                            source: str = "<DataFrame>", **options) -> SuspectResult:
    """:func:`find_suspects` on the labeled rows of a pool (one out-of-fold pass).

    Parameters
    ----------
    X : ndarray, shape (pool.n, d)
        Embeddings of every pool row; the result is aligned with ``pool.labeled_positions``.
    annotations : DataFrame, optional
        Long-format votes whose item ids are the pool's ids: folded in by :func:`add_votes`.
    annotation_columns : dict, optional
        ``item_col``, ``annotator_col``, ``label_col`` of the annotations.
    unsure_labels : iterable of str, optional
        Vote values that mean "no rating" (left out).
    """
    lab = pool.labeled_positions
    y = pool.labels[lab].astype(str)
    template = classifier if classifier is not None else make_classifier(random_state=random_state)
    oof = out_of_fold(template, X[lab], y, n_splits=n_splits, random_state=random_state)
    result = find_suspects(X[lab], y, random_state=random_state, texts=pool.texts[lab], oof_proba=oof.proba,
                           **options)
    if annotations is not None:
        ann = prepare_annotations(annotations, source=f"{source} (annotations)", keep=(), **(annotation_columns or {}))
        ann = ann[~unsure_mask(ann["label"], unsure_labels)]
        if ann.empty:
            raise DataError(f"{source} (annotations): every vote is an unsure value")
        add_votes(result, pool.ids[lab].astype(str), encode_ratings(ann), random_state=random_state)
    return result


def suspects_path_for(queue: str | Path) -> Path:
    """``queue.csv`` -> ``queue.suspects.csv``, ``q.csv.gz`` -> ``q.suspects.csv.gz`` (beside the queue, same format)."""
    return table_sibling(queue, "suspects")
