"""Votes and a model weighed by how well each predicts the annotators: the default consensus's engine.

The model (:func:`selector.quality.consensus.consensus_from_codes`, method ``model``) is

    log P(true = t | votes, x)  =  alpha * log p_model(t | x)  +  beta * sum_a log P(vote_a | true = t)  + const

with, for each annotator, a *one-coin* confusion: they give the true label with probability
``p_a`` and otherwise a label drawn from the crowd's pooled error distribution ``Q[t, :]`` (what
annotators say when they are wrong about a ``t`` item). A sparse crowd, where most annotators
label a handful of items, cannot estimate a k x k matrix per annotator; one accuracy each, shrunk
toward the crowd's with ``ACCURACY_PSEUDO_VOTES`` pseudo-votes, and one shared error matrix can be.

``alpha`` (the model's weight) and ``beta`` (the votes') are chosen, at every EM step, by how well
they predict each vote from the rest of the evidence (leave-one-vote-out likelihood): a model that
predicts what annotators say gets weight, one that does not gets little (on an entailment task an
embedding model has no skill and ``alpha`` falls to about 0.1). Both are capped at 1: the posterior
is never sharper than the model's own out-of-fold probabilities or the independent-votes product,
since neither is judged against a truth here, only against votes that share the model's confusions.

The label no annotator gave: :func:`voter_reliability` compares the model's agreement with the
votes to each annotator's agreement with the other votes on their items; the same comparison
(under symmetric noise, agreement with a random vote ranks sources by accuracy). An unvoted label
wins only on an item where the model agrees with the votes more often than the best of the
item's own annotators does; elsewhere the consensus is the best label that someone gave.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, logsumexp

from selector.quality.agreement import RatingCodes

__all__ = ["ACCURACY_PSEUDO_VOTES", "WEIGHT_CAP", "WeightedVotes", "one_coin_terms", "weighted_vote_em",
           "voter_reliability"]

#: Pseudo-votes at the crowd's accuracy added to each annotator's (and each agreement rate's) count.
ACCURACY_PSEUDO_VOTES = 5.0
#: Largest weight of the model's log-probabilities and of the votes' log-likelihood (see the module).
WEIGHT_CAP = 1.0


@dataclass
class WeightedVotes:
    """The fitted model of :func:`weighted_vote_em`.

    Attributes
    ----------
    posterior : ndarray of float64, shape (n_items, k)
    accuracy : ndarray of float64, shape (n_annotators,)
        Each annotator's one-coin accuracy ``p_a`` (shrunk toward the crowd's).
    error_matrix : ndarray of float64, shape (k, k)
        ``Q[t, l]``: P(an annotator says l | true t, they are wrong); zero diagonal.
    model_weight, vote_weight : float
        ``alpha`` and ``beta`` (the people's votes).
    machine_weights : dict of str -> float, optional
        Each machine annotator's own weight.
    n_iter : int
    converged : bool
    """

    posterior: np.ndarray
    accuracy: np.ndarray
    error_matrix: np.ndarray
    model_weight: float
    vote_weight: float
    n_iter: int
    converged: bool
    machine_weights: dict | None = None


def one_coin_terms(codes: RatingCodes, post: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-vote log-likelihoods under the one-coin model, fitted to the soft labels ``post``.

    Parameters
    ----------
    codes : RatingCodes
    post : ndarray, shape (n_items, k)
        Current P(true label) per item.

    Returns
    -------
    terms : ndarray, shape (n_ratings, k)
        ``log P(vote r | true = t, its annotator)``.
    accuracy : ndarray, shape (n_annotators,)
    error_matrix : ndarray, shape (k, k)
    """
    item, annot, lab = codes.item, codes.annotator, codes.label
    k = codes.counts.shape[1]
    n_ann = codes.annotators.size
    w = post[item]
    hit = w[np.arange(item.size), lab]
    crowd = float(hit.mean())
    n_a = np.bincount(annot, minlength=n_ann)
    accuracy = (np.bincount(annot, weights=hit, minlength=n_ann) + ACCURACY_PSEUDO_VOTES * crowd) / (
        n_a + ACCURACY_PSEUDO_VOTES)
    accuracy = np.clip(accuracy, 1e-3, 1 - 1e-3)
    wrong = np.empty((k, k))
    for t in range(k):  # expected count of "said l when the truth was t", summed by bincount
        wrong[t] = np.bincount(lab, weights=w[:, t], minlength=k)
    off = 1.0 - np.eye(k)
    # One pseudo-error per true class spread evenly, so an error never seen is not impossible.
    error_matrix = wrong * off + off / max(k - 1, 1)
    error_matrix /= np.maximum(error_matrix.sum(axis=1, keepdims=True), 1e-300)
    log_q = np.log(np.where(off > 0, error_matrix, 1.0))
    terms = np.log1p(-accuracy)[annot][:, None] + log_q[:, lab].T
    terms[np.arange(item.size), lab] = np.log(accuracy)[annot]
    return terms, accuracy, error_matrix


def _per_item(codes: RatingCodes, terms: np.ndarray) -> np.ndarray:
    """Sum of ``terms`` (n_ratings, k) over each item's ratings: shape (n_items, k)."""
    n_items, k = codes.counts.shape
    out = np.empty((n_items, k))
    for t in range(k):
        out[:, t] = np.bincount(codes.item, weights=terms[:, t], minlength=n_items)
    return out


def _fit_weights(codes: RatingCodes, log_model: np.ndarray, terms: np.ndarray, groups: list[np.ndarray],
                 start: np.ndarray) -> np.ndarray:
    """(log alpha, log beta per group of voters) maximising the likelihood of each vote given the rest.

    ``groups`` are boolean masks over the ratings (the people; each machine annotator); a vote's own
    term is left out of its group's evidence.
    """
    item = codes.item
    rests = []
    for g in groups:
        per_item = _per_item(codes, np.where(g[:, None], terms, 0.0))
        rests.append(per_item[item] - np.where(g[:, None], terms, 0.0))
    model = log_model[item]

    def negative(theta: np.ndarray) -> float:
        w = np.exp(theta)
        z = w[0] * model
        for weight, rest in zip(w[1:], rests):
            z = z + weight * rest
        return -float(logsumexp(log_softmax(z, axis=1) + terms, axis=1).sum())

    bound = (np.log(0.01), np.log(WEIGHT_CAP))
    return minimize(negative, x0=np.clip(start, *bound), method="L-BFGS-B", bounds=[bound] * (1 + len(groups))).x


def weighted_vote_em(codes: RatingCodes, model_proba: np.ndarray, *, start: np.ndarray | None = None,
                     max_iter: int = 100, tol: float = 1e-5, machine: np.ndarray | None = None) -> WeightedVotes:
    """EM for the posterior ``softmax(alpha log p_model + beta log P(votes | t))`` (see the module).

    Parameters
    ----------
    codes : RatingCodes
    model_proba : ndarray, shape (n_items, k)
        Out-of-fold model probabilities, columns in ``codes.labels`` order.
    start : ndarray, shape (n_items, k), optional
        Initial soft labels (default: the majority vote, ties shared).
    max_iter : int
    tol : float
        Stop when no posterior entry moves by more than this.
    machine : ndarray of bool, shape (n_annotators,), optional
        Machine annotators: each gets a weight of its own, fitted like the model's (a model's labels
        are one source however many items it labels, and its errors are not a person's).
    """
    counts = codes.counts.astype(np.float64)
    if start is None:
        top = counts == counts.max(axis=1, keepdims=True)
        start = top / top.sum(axis=1, keepdims=True)
    post = start
    log_model = np.log(np.clip(model_proba, 1e-12, None))
    is_machine = np.zeros(codes.annotators.size, bool) if machine is None else np.asarray(machine, bool)
    people = ~is_machine[codes.annotator]
    groups = ([people] if people.any() else []) + [codes.annotator == a for a in np.flatnonzero(is_machine)]
    theta = np.zeros(1 + len(groups))
    converged = False
    it = 0
    for it in range(1, max_iter + 1):
        terms, accuracy, error_matrix = one_coin_terms(codes, post)
        theta = _fit_weights(codes, log_model, terms, groups, theta)
        w = np.exp(theta)
        rating_weight = np.zeros(codes.item.size)
        for weight, g in zip(w[1:], groups):
            rating_weight[g] = weight
        new = np.exp(log_softmax(w[0] * log_model + _per_item(codes, rating_weight[:, None] * terms), axis=1))
        moved = float(np.abs(new - post).max())
        post = new
        if moved < tol:
            converged = True
            break
    beta = float(w[1]) if people.any() else float("nan")
    machine_weights = {str(codes.annotators[a]): float(x) for a, x in zip(np.flatnonzero(is_machine), w[1 + people.any():])}
    return WeightedVotes(posterior=post, accuracy=accuracy, error_matrix=error_matrix, model_weight=float(w[0]),
                         vote_weight=beta, n_iter=it, converged=converged, machine_weights=machine_weights)


def voter_reliability(codes: RatingCodes, model_label: np.ndarray) -> tuple[float, np.ndarray, float]:
    """How often the model, and each annotator, agrees with the other votes on an item.

    Parameters
    ----------
    codes : RatingCodes
    model_label : ndarray of int, shape (n_items,)
        The model's most probable label per item (column index).

    Returns
    -------
    model_agreement : float
        Share of all votes equal to the model's label for their item.
    annotator_agreement : ndarray, shape (n_annotators,)
        Share of the other votes on an annotator's items equal to theirs, shrunk toward the crowd's
        vote-vote agreement with ``ACCURACY_PSEUDO_VOTES`` pseudo-pairs (an annotator who never
        shares an item gets the crowd's; NaN for everyone when no item has two votes).
    crowd_agreement : float
        Share of pairs of votes on one item that agree (NaN with no item voted twice).
    """
    counts = codes.counts.astype(np.float64)
    per_item = counts.sum(axis=1)
    pairs = float((per_item * (per_item - 1)).sum())
    crowd = float((counts * (counts - 1)).sum() / pairs) if pairs else float("nan")
    others = per_item[codes.item] - 1
    same = counts[codes.item, codes.label] - 1
    n_ann = codes.annotators.size
    # With no item voted twice nothing says how reliable an annotator is: NaN, never outranked.
    prior = crowd if pairs else float("nan")
    agreement = (np.bincount(codes.annotator, weights=same, minlength=n_ann) + ACCURACY_PSEUDO_VOTES * prior) / (
        np.bincount(codes.annotator, weights=others, minlength=n_ann) + ACCURACY_PSEUDO_VOTES)
    model = float((model_label[codes.item] == codes.label).mean())
    return model, agreement, crowd
