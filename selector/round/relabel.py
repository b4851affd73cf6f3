"""One budget for new rows and second opinions: the ``relabel`` queue.

A vote on a row is worth what it is expected to fix. For any row whose true label we believe to be
``t`` with probability ``P(t)``, one more vote from an annotator of the crowd's accuracy ``a``
(wrong answers drawn from the crowd's error matrix ``Q``) raises the chance that the row's label
is right by

    gain = sum_v max_t P(t) L(v | t)  -  max_t P(t),      L(v | t) = a [v = t] + (1 - a) Q[t, v]

(the expected accuracy of the best label after the vote, minus before). The same figure ranks both
kinds of row:

* a labeled row's ``P`` is its consensus posterior (the votes weighed with the out-of-fold model,
  :mod:`selector.quality.weighted_votes`), or, with one label per row, the suspect list's
  probability that the label is right (:attr:`~selector.round.suspects.SuspectResult.p_mislabeled`)
  with the rest spread as the out-of-fold evidence says;
* an unlabeled row's ``P`` is the model's probability, temperature-scaled so that the out-of-fold
  probabilities of the labeled rows are calibrated to their current labels: a pseudo-label the
  vote replaces. It is also a new training row, worth :data:`NEW_ROW_WEIGHT`
  times its gain (chosen leave-one-setting-out in ``scripts/bench_relabel.py``).

The strategy still chooses which unlabeled rows are candidates (diversity and cold start stay its
job); the budget then goes to the highest gains among those candidates and the labeled rows. The
anchor is ActiveLab (Goh & Mueller 2023), which ranks both kinds by a consensus-quality score; a
gain in expected correct labels is on one scale by construction.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from selector.errors import ConfigError, DataError
from selector.labels import DATA_ANNOTATOR, unsure_mask
from selector.quality.agreement import RatingCodes, encode_ratings, votes_text
from selector.quality.consensus import columns_in_order
from selector.round.compute import queue_priority
from selector.round.pool import LabeledPool

__all__ = ["NEW_ROW_WEIGHT", "RELABEL_COLUMNS", "PoolVotes", "votes_for_pool", "LabelEvidence", "vote_gain",
           "inverse_temperature", "pseudo_label_prior", "evidence_from_consensus", "evidence_from_suspects",
           "relabel_gains", "choose_mix", "relabel_queue"]

#: A new row's gain is multiplied by this: its vote also adds a training row (see the module docstring).
NEW_ROW_WEIGHT = 1.0
#: Columns a relabel queue adds to the queue's own.
RELABEL_COLUMNS = ["kind", "current_label", "votes", "labeled_by", "gain"]
# Rows of (chunk, k, k) floats held at once by vote_gain: about 32 MB.
_GAIN_CELLS = 4_000_000


@dataclass
class LabelEvidence:
    """What each labeled row's label is worth, and the crowd a new vote would come from.

    Attributes
    ----------
    classes : ndarray of object (str), shape (k,)
    posterior : ndarray of float64, shape (n_labeled, k)
        P(true label) per labeled row (columns in ``classes`` order).
    current : ndarray of object, shape (n_labeled,)
        The row's current label (its consensus with votes).
    votes : ndarray of object, shape (n_labeled,)
        The votes so far as text (``"a:2 b:1"``).
    labeled_by : ndarray of object, shape (n_labeled,)
        Who gave them, ``;``-joined ("" when the table does not say).
    accuracy : float
        The accuracy of an average vote.
    error_matrix : ndarray of float64, shape (k, k)
        ``Q[t, v]``: what a wrong vote on a ``t`` row says; zero diagonal, rows sum to 1.
    model_weight : float
        The exponent on the model's probabilities in a pseudo-label: the inverse temperature that
        calibrates the out-of-fold probabilities to the current labels (:func:`inverse_temperature`).
    """

    classes: np.ndarray
    posterior: np.ndarray
    current: np.ndarray
    votes: np.ndarray
    labeled_by: np.ndarray
    accuracy: float
    error_matrix: np.ndarray
    model_weight: float = 1.0

    def take(self, rows: np.ndarray) -> "LabelEvidence":
        """The evidence of ``rows`` only (positions into the labeled rows), in that order; the crowd's
        figures unchanged."""
        return dataclasses.replace(self, posterior=self.posterior[rows], current=self.current[rows],
                                   votes=self.votes[rows], labeled_by=self.labeled_by[rows])


@dataclass
class PoolVotes:
    """Annotators' votes on pool rows.

    Attributes
    ----------
    codes : RatingCodes
        Every vote (a DATA label on a row without votes counts as one, by :data:`DATA_ANNOTATOR`).
    positions : ndarray of int64, shape (n_items,)
        Pool position of each of ``codes.items``.
    labeled_by : ndarray of object, shape (n_items,)
        The item's annotators, ``;``-joined.
    n_unsure : int
        Unsure votes left out.
    """

    codes: RatingCodes
    positions: np.ndarray
    labeled_by: np.ndarray
    n_unsure: int = 0


def votes_for_pool(pool: LabeledPool, annotations: pd.DataFrame, *, unsure_labels=None,
                   source: str = "--annotations") -> tuple[LabeledPool, PoolVotes]:
    """The pool with every voted row labeled (majority label until the consensus replaces it) and the votes.

    Parameters
    ----------
    pool : LabeledPool
    annotations : DataFrame
        Prepared long format (:func:`selector.quality.annotations.prepare_annotations`).
    unsure_labels : iterable of str, optional
        Votes with these values are left out (a missing vote, not a label).
    source : str
        Names the annotations in messages.

    Raises
    ------
    DataError
        A vote on an item id the table does not have (named), or no votes left.
    """
    ann = annotations[~unsure_mask(annotations["label"], unsure_labels)][["item_id", "annotator", "label"]]
    n_unsure = len(annotations) - len(ann)
    at = {str(i): p for p, i in enumerate(pool.ids)}
    unknown = sorted(set(ann["item_id"].astype(str)) - set(at))
    if unknown:
        raise DataError(f"{source}: {len(unknown)} item id(s) are not ids of {pool.source}, e.g. {unknown[0]!r}; "
                        "votes must name rows of the data (its id column)")
    voted = set(ann["item_id"].astype(str))
    extra = [(str(pool.ids[p]), DATA_ANNOTATOR, str(pool.labels[p])) for p in pool.labeled_positions
             if str(pool.ids[p]) not in voted]
    if extra:
        ann = pd.concat([ann, pd.DataFrame(extra, columns=["item_id", "annotator", "label"])], ignore_index=True)
    if ann.empty:
        raise DataError(f"{source}: no votes left once unsure values are set aside")
    codes = encode_ratings(ann)
    positions = np.array([at[str(i)] for i in codes.items], dtype=np.int64)
    labels = pool.labels.copy()
    labeled = pool.labeled.copy()
    labels[positions] = codes.labels[codes.counts.argmax(axis=1)]
    labeled[positions] = True
    who = ann.groupby("item_id")["annotator"].agg(lambda a: ";".join(sorted(map(str, a))))
    labeled_by = who.reindex(codes.items.astype(str)).fillna("").to_numpy(dtype=object)
    return (dataclasses.replace(pool, labels=labels, labeled=labeled),
            PoolVotes(codes=codes, positions=positions, labeled_by=labeled_by, n_unsure=n_unsure))


def _vote_likelihood(accuracy: float, error_matrix: np.ndarray) -> np.ndarray:
    """``L[t, v] = a [v = t] + (1 - a) Q[t, v]``: shape (k, k), rows sum to 1."""
    k = error_matrix.shape[0]
    a = float(np.clip(accuracy, 1.0 / k, 1.0 - 1e-6))
    return a * np.eye(k) + (1.0 - a) * error_matrix


def vote_gain(prior: np.ndarray, accuracy: float, error_matrix: np.ndarray) -> np.ndarray:
    """Expected rise in P(the row's best label is right) from one more vote (module docstring).

    Parameters
    ----------
    prior : ndarray, shape (n, k)
        P(true label) per row; rows sum to 1.
    accuracy : float
        The voter's accuracy.
    error_matrix : ndarray, shape (k, k)
        ``Q[t, v]``; zero diagonal, rows sum to 1.

    Returns
    -------
    ndarray of float64, shape (n,)
        In [0, 1 - max prior]; 0 when no vote could change the best label.
    """
    prior = np.asarray(prior, dtype=np.float64)
    like = _vote_likelihood(accuracy, error_matrix)
    k = like.shape[0]
    out = np.empty(prior.shape[0])
    step = max(1, _GAIN_CELLS // max(k * k, 1))
    for start in range(0, prior.shape[0], step):
        p = prior[start:start + step]
        # joint[i, t, v] = P(t) L(v | t); after seeing v the best label's chance is max_t joint / P(v).
        out[start:start + step] = (p[:, :, None] * like[None]).max(axis=1).sum(axis=1) - p.max(axis=1)
    return np.clip(out, 0.0, None)


def inverse_temperature(proba: np.ndarray, label_index: np.ndarray) -> float:
    """The exponent ``w`` for which ``proba ** w`` (rows renormalised) best predicts the labels.

    Temperature scaling (Guo et al. 2017) fitted on out-of-fold probabilities against the current
    labels: < 1 flattens an overconfident model, > 1 sharpens a timid one. Bounded to [0.05, 5].

    Parameters
    ----------
    proba : ndarray, shape (n, k)
    label_index : ndarray of int, shape (n,)
    """
    logp = np.log(np.clip(np.asarray(proba, dtype=np.float64), 1e-12, None))
    rows = np.arange(logp.shape[0])

    def nll(w: float) -> float:
        z = w * logp
        return float(-(z[rows, label_index] - logsumexp(z, axis=1)).mean())

    return float(minimize_scalar(nll, bounds=(0.05, 5.0), method="bounded").x)


def pseudo_label_prior(proba: np.ndarray, model_weight: float) -> np.ndarray:
    """``proba ** model_weight``, rows renormalised: shape (n, k)."""
    logp = model_weight * np.log(np.clip(proba, 1e-12, None))
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def evidence_from_consensus(result, labeled_by: np.ndarray | None = None) -> LabelEvidence:
    """Evidence of labeled items from a ``model`` consensus (:class:`~selector.quality.consensus.ConsensusResult`)."""
    if result.error_matrix is None:
        raise ConfigError("a relabel queue needs the 'model' consensus (its error matrix and model weight), "
                          f"not {result.method!r}")
    n = result.items.size
    return LabelEvidence(classes=np.asarray(result.labels, dtype=object).astype(str), posterior=result.posterior,
                         current=np.asarray(result.label, dtype=object), votes=votes_text(result.counts, result.labels),
                         labeled_by=labeled_by if labeled_by is not None else np.full(n, "", dtype=object),
                         accuracy=result.vote_accuracy, error_matrix=result.error_matrix,
                         model_weight=inverse_temperature(result.model_proba, result.label_index))


def evidence_from_suspects(found, labeled_by: np.ndarray | None = None) -> LabelEvidence:
    """Evidence of single-label rows from the suspect list (:class:`~selector.round.suspects.SuspectResult`).

    The given label keeps ``1 - p_mislabeled``; the rest goes to the other classes as the out-of-fold
    evidence says. A row of a class with fewer labels than the suspect list needs to judge it
    (``thin_classes``) keeps its label with certainty unless the list flags it. The crowd's accuracy is one minus the estimated error rate; its error matrix
    counts, for each row, the classes its label would be an error for (one pseudo-error per pair).
    """
    classes = np.asarray(found.classes, dtype=object).astype(str)
    k, n = classes.size, found.given.shape[0]
    col = {c: j for j, c in enumerate(classes)}
    g = np.array([col[str(v)] for v in found.given])
    rows = np.arange(n)
    other = np.clip(np.asarray(found.evidence, dtype=np.float64), 1e-9, None)
    other[rows, g] = 0.0
    other /= other.sum(axis=1, keepdims=True)
    p_wrong = np.clip(np.asarray(found.p_mislabeled, dtype=np.float64), 0.0, 1.0)
    post = other * p_wrong[:, None]
    post[rows, g] = 1.0 - p_wrong
    # A class with too few labels for the model to judge (the suspect list's own guard): its rows are
    # offered for a second opinion only on the list's strong evidence, never on a thin model's say-so.
    unjudged = np.isin(np.asarray(found.given, dtype=object).astype(str), np.asarray(found.thin_classes).astype(str))
    unjudged &= ~np.asarray(found.flagged, dtype=bool)
    post[unjudged] = 0.0
    post[rows[unjudged], g[unjudged]] = 1.0
    off = 1.0 - np.eye(k)
    # Q[t, v]: of the rows labeled v, how much belief says the truth is t (a wrong v given for a t).
    wrong = np.zeros((k, k))
    for v in range(k):
        wrong[:, v] = post[g == v].sum(axis=0)
    error_matrix = wrong * off + off / max(k - 1, 1)
    error_matrix /= error_matrix.sum(axis=1, keepdims=True)
    accuracy = 1.0 - float(found.error_rate[0])
    return LabelEvidence(classes=classes, posterior=post, current=np.asarray(found.given, dtype=object),
                         votes=np.array([f"{v}:1" for v in found.given], dtype=object),
                         labeled_by=labeled_by if labeled_by is not None else np.full(n, "", dtype=object),
                         accuracy=accuracy, error_matrix=error_matrix,
                         model_weight=inverse_temperature(found.proba, g))


def relabel_gains(new_proba: np.ndarray | None, new_classes: np.ndarray | None, evidence: LabelEvidence, *,
                  n_new: int, new_row_weight: float = NEW_ROW_WEIGHT) -> tuple[np.ndarray, np.ndarray]:
    """The gains of new candidates and of second opinions on labeled rows, on one scale.

    Parameters
    ----------
    new_proba : ndarray, shape (n_new, n_classes), or None
        The model's probabilities of the new candidates; None at cold start (every new row gains 1,
        above any second opinion: there is no model to weigh a label against).
    new_classes : ndarray, shape (n_classes,), or None
    evidence : LabelEvidence
    n_new : int
    new_row_weight : float

    Returns
    -------
    new_gain : ndarray of float64, shape (n_new,)
    relabel_gain : ndarray of float64, shape (n_labeled,)
    """
    if new_proba is None:
        new_gain = np.ones(n_new)
    else:
        prior = pseudo_label_prior(columns_in_order(new_proba, new_classes, evidence.classes, floor=1e-9),
                                   evidence.model_weight)
        new_gain = new_row_weight * vote_gain(prior, evidence.accuracy, evidence.error_matrix)
    if evidence.classes.size < 2:
        return new_gain, np.zeros(evidence.posterior.shape[0])
    return new_gain, vote_gain(evidence.posterior, evidence.accuracy, evidence.error_matrix)


def choose_mix(new_gain: np.ndarray, relabel_gain: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``budget`` highest gains among new candidates and labeled rows.

    Parameters
    ----------
    new_gain : ndarray, shape (n_new,)
        Weighted gains of the strategy's candidates, in the strategy's order.
    relabel_gain : ndarray, shape (n_labeled,)
    budget : int

    Returns
    -------
    new_taken : ndarray of int
        Positions in the candidates, sorted (ties go to new rows, then to the strategy's earlier pick).
    relabel_taken : ndarray of int
        Positions in the labeled rows.
    """
    gains = np.concatenate([new_gain, relabel_gain])
    # Ties: new rows first, then the strategy's order / the labeled rows' order (a stable sort).
    order = np.argsort(-gains, kind="stable")[:budget]
    n_new = new_gain.size
    return np.sort(order[order < n_new]), np.sort(order[order >= n_new] - n_new)


def relabel_queue(queue: pd.DataFrame, new_proba: np.ndarray | None, new_classes: np.ndarray | None,
                  evidence: LabelEvidence, labeled_ids: np.ndarray, labeled_texts: np.ndarray, budget: int, *,
                  new_row_weight: float = NEW_ROW_WEIGHT) -> pd.DataFrame:
    """Merge a new-row queue and second opinions on labeled rows into one queue of ``budget`` rows.

    Parameters
    ----------
    queue : DataFrame
        The strategy's queue of new rows, best first (``QUEUE_COLUMNS`` + extras).
    new_proba : ndarray, shape (len(queue), n_classes), or None
        The model's probabilities of the queued rows (None at cold start: new rows then keep their
        order and gain 1, above any relabel).
    new_classes : ndarray, shape (n_classes,), or None
    evidence : LabelEvidence
    labeled_ids, labeled_texts : ndarray, shape (n_labeled,)
        Aligned with ``evidence``'s rows.
    budget : int
    new_row_weight : float

    Returns
    -------
    DataFrame
        ``budget`` rows (fewer when there are not enough), highest gain first, with
        :data:`RELABEL_COLUMNS` added; ``rank`` and ``score`` renumbered.
    """
    new_gain, old_gain = relabel_gains(new_proba, new_classes, evidence, n_new=len(queue),
                                       new_row_weight=new_row_weight)
    new_taken, old_taken = choose_mix(new_gain, old_gain, budget)
    new_rows = queue.iloc[new_taken].copy()
    new_rows["kind"] = "new"
    new_rows["current_label"] = ""
    new_rows["votes"] = ""
    new_rows["labeled_by"] = ""
    new_rows["gain"] = new_gain[new_taken]
    post = evidence.posterior[old_taken]
    best = post.argmax(axis=1)
    current = evidence.current[old_taken].astype(str)
    cur_col = {c: j for j, c in enumerate(evidence.classes)}
    p_current = np.array([post[i, cur_col[c]] if c in cur_col else np.nan for i, c in enumerate(current)])
    reason = [f"second opinion: P('{c}' right)={p:.2f}" + (f", the evidence prefers '{evidence.classes[b]}'"
                                                            if evidence.classes[b] != c else "")
              for c, p, b in zip(current, p_current, best)]
    old_rows = pd.DataFrame({
        "id": labeled_ids[old_taken], "text": labeled_texts[old_taken], "strategy_score": np.round(old_gain[old_taken], 6),
        "strategy": "relabel", "reason": reason, "predicted_label": evidence.classes[best].astype(object),
        "predicted_proba": np.round(post[np.arange(post.shape[0]), best], 6), "kind": "relabel",
        "current_label": current.astype(object), "votes": evidence.votes[old_taken],
        "labeled_by": evidence.labeled_by[old_taken], "gain": old_gain[old_taken]})
    merged = pd.concat([new_rows, old_rows], ignore_index=True, sort=False)
    merged = merged.sort_values("gain", ascending=False, kind="stable").reset_index(drop=True)
    merged["gain"] = merged["gain"].round(6)
    merged["rank"] = np.arange(1, len(merged) + 1)
    merged["score"] = queue_priority(len(merged))
    first = [c for c in queue.columns if c in merged.columns]
    return merged[first + [c for c in RELABEL_COLUMNS if c not in first]
                  + [c for c in merged.columns if c not in first and c not in RELABEL_COLUMNS]]
