"""Consensus labels from several annotators' votes, optionally with a model in the loop.

Three methods, one result shape (:class:`ConsensusResult`):

``majority``     plurality vote; quality = the top label's vote share (ties: split evenly).
``dawid_skene``  Dawid & Skene (1979) EM with per-annotator confusion matrices, shrunk towards the
                 pooled crowd for sparse data (:func:`selector.quality.agreement.dawid_skene`).
``model``        (default) votes and an out-of-fold model together
                 (:mod:`selector.quality.weighted_votes`). The model is trained on the other items'
                 consensus labels (stratified K-fold on the items' embeddings, so an item's own
                 votes never train the model that scores it; the first round trains on the majority
                 vote). ``P(true | votes, x) ∝ p_model(true | x)^alpha * prod_a P(vote_a | true)^beta``
                 with one-coin annotators (an accuracy each, shrunk toward the crowd's; errors
                 follow the crowd's pooled confusions), and ``alpha``, ``beta`` in (0, 1] chosen by
                 how well they predict each vote from the rest (CROWDLAB, Goh et al. 2022, weighs the
                 model by its accuracy against the annotators too). A label no annotator gave wins
                 only where the model agrees with the votes more often than the item's own
                 annotators do; otherwise the best voted label is kept. Each row's ``reason`` says
                 which case it is.

``consensus_quality`` is the posterior probability of the consensus label (for ``majority``: the
vote share), so it reads as "probability the consensus is right". Annotator quality is the
estimated accuracy (``model``: the one-coin accuracy; ``dawid_skene``: ``sum_t prior_t *
confusion[a, t, t]``; ``majority``: agreement with the leave-one-out majority) next to the plain
share of the annotator's ratings that match the consensus.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from selector.config import SelectConfig
from selector.errors import ConfigError, DataError
from selector.labels import unsure_mask
from selector.models.classifiers import make_classifier
from selector.quality.agreement import (
    RatingCodes,
    dawid_skene,
    encode_ratings,
    loo_majority_agreement,
    votes_text,
)
from selector.quality.annotations import prepare_annotations
from selector.quality.machine import check_machine_annotators, machine_accuracy, split_machine
from selector.quality.weighted_votes import voter_reliability, weighted_vote_em
from selector.round.embed import embed_pool
from selector.round.model import out_of_fold
from selector.round.pool import prepare_pool

__all__ = ["ConsensusResult", "consensus", "consensus_from_codes", "columns_in_order", "vote_reasons", "METHODS", "CONSENSUS_COLUMNS", "ANNOTATOR_COLUMNS",
           "prepare_consensus_input"]

METHODS = ("model", "dawid_skene", "majority")
CONSENSUS_COLUMNS = ["item_id", "consensus_label", "consensus_quality", "n_ratings", "votes", "method", "reason"]
#: ``dawid_skene``: EM iterations before it is declared not converged (and the majority vote is used).
DAWID_SKENE_MAX_ITER = 300
ANNOTATOR_COLUMNS = ["annotator", "n_ratings", "quality", "agrees_with_consensus"]


@dataclass
class ConsensusResult:
    """Consensus per item and quality per annotator.

    Attributes
    ----------
    items : ndarray of object, shape (n_items,)
    labels : ndarray of object, shape (k,)
    posterior : ndarray of float64, shape (n_items, k)
        P(true label | evidence) per item.
    counts : ndarray of int64, shape (n_items, k)
        Votes per label.
    annotators : ndarray of object, shape (n_annotators,)
    annotator_quality : ndarray of float64, shape (n_annotators,)
        Estimated accuracy (``majority``: agreement with the leave-one-out majority).
    annotator_agreement : ndarray of float64, shape (n_annotators,)
        Share of the annotator's ratings equal to the consensus label.
    annotator_n : ndarray of int64, shape (n_annotators,)
    method : str
    n_iter : int
    converged : bool
    model_accuracy : float or None
        Out-of-fold accuracy of the model against the consensus it was trained on (``model`` only).
    n_unsure : int
        Unsure votes left out (missing ratings, not a class).
    choice : ndarray of int, shape (n_items,), optional
        Column of the consensus label per item, where it is not the posterior's argmax (``model``: a
        label no annotator gave is replaced by the best voted one unless the model is the more
        reliable source); default the argmax.
    reason : ndarray of object, shape (n_items,), optional
        Why each item got its label (one short phrase).
    model_weight, vote_weight : float or None
        ``model``: the fitted weights of the model's log-probabilities and of the votes.
    model_agreement, crowd_agreement : float or None
        ``model``: share of votes equal to the model's label; share of pairs of votes on one item that agree.
    error_matrix : ndarray of float64, shape (k, k), optional
        ``model``: ``Q[t, l]``, what annotators say when they are wrong about a ``t`` item (zero diagonal).
    model_proba : ndarray of float64, shape (n_items, k), optional
        ``model``: the out-of-fold model probabilities the votes were weighed against (``labels`` order).
    machine_annotators : tuple of str
        Annotators that are models (:mod:`selector.quality.machine`); ``model`` weighs each on its own.
    machine_report : DataFrame or None
        Their accuracy against the consensus of the human votes alone, per class
        (:data:`~selector.quality.machine.MACHINE_REPORT_COLUMNS`).
    """

    items: np.ndarray
    labels: np.ndarray
    posterior: np.ndarray
    counts: np.ndarray
    annotators: np.ndarray
    annotator_quality: np.ndarray
    annotator_agreement: np.ndarray
    annotator_n: np.ndarray
    method: str
    n_iter: int = 0
    converged: bool = True
    model_accuracy: float | None = None
    n_unsure: int = 0
    choice: np.ndarray | None = None
    reason: np.ndarray | None = None
    model_weight: float | None = None
    vote_weight: float | None = None
    model_agreement: float | None = None
    crowd_agreement: float | None = None
    error_matrix: np.ndarray | None = None
    model_proba: np.ndarray | None = None
    machine_annotators: tuple = ()
    machine_report: pd.DataFrame | None = None

    @property
    def vote_accuracy(self) -> float:
        """The accuracy of an average vote: annotators' quality weighted by how many votes each gave."""
        return float(np.average(self.annotator_quality, weights=np.maximum(self.annotator_n, 1e-12)))

    @property
    def label_index(self) -> np.ndarray:
        """Column of the consensus label per item, ndarray of int, shape (n_items,)."""
        return self.posterior.argmax(axis=1) if self.choice is None else self.choice

    @property
    def label(self) -> np.ndarray:
        """Consensus label per item, ndarray of object, shape (n_items,)."""
        return self.labels[self.label_index]

    @property
    def quality(self) -> np.ndarray:
        """Probability that the consensus label is right (its posterior), shape (n_items,)."""
        return self.posterior[np.arange(self.posterior.shape[0]), self.label_index]

    @property
    def reasons(self) -> np.ndarray:
        """``reason`` per item, or the default phrase of the vote counts (shape (n_items,))."""
        if self.reason is not None:
            return self.reason
        return vote_reasons(self.counts, self.label_index)

    def frame(self) -> pd.DataFrame:
        """One row per item: :data:`CONSENSUS_COLUMNS`, lowest quality first."""
        out = pd.DataFrame({"item_id": self.items, "consensus_label": self.label,
                            "consensus_quality": np.round(self.quality, 6), "n_ratings": self.counts.sum(axis=1),
                            "votes": votes_text(self.counts, self.labels), "method": self.method,
                            "reason": self.reasons},
                           columns=CONSENSUS_COLUMNS)
        return out.sort_values(["consensus_quality", "item_id"], kind="stable").reset_index(drop=True)

    def annotator_frame(self) -> pd.DataFrame:
        """One row per annotator: :data:`ANNOTATOR_COLUMNS`, lowest quality first."""
        out = pd.DataFrame({"annotator": self.annotators, "n_ratings": self.annotator_n,
                            "quality": np.round(self.annotator_quality, 6),
                            "agrees_with_consensus": np.round(self.annotator_agreement, 6)}, columns=ANNOTATOR_COLUMNS)
        if self.machine_annotators:
            out["machine"] = out["annotator"].astype(str).isin(set(self.machine_annotators))
        return out.sort_values(["quality", "annotator"], kind="stable").reset_index(drop=True)

    def summary(self) -> str:
        """One line: items, method, how many consensus labels are weak."""
        weak = int((self.quality < 0.8).sum())
        line = (f"consensus ({self.method}) for {self.items.size} items from {int(self.counts.sum())} ratings by "
                f"{self.annotators.size} annotators; {weak} items below 0.8 consensus quality")
        if self.model_accuracy is not None:
            line += (f"; the out-of-fold model agrees with the consensus it was trained on for {self.model_accuracy:.1%} "
                     "of items")
        if self.model_agreement is not None:
            unvoted = int((self.counts[np.arange(self.counts.shape[0]), self.label_index] == 0).sum())
            line += (f", and with {self.model_agreement:.1%} of the votes (votes on one item agree "
                     + ("n/a" if self.crowd_agreement is None or np.isnan(self.crowd_agreement)
                        else f"{self.crowd_agreement:.1%}") + f"); {unvoted} labels no annotator gave")
        if self.machine_report is not None:
            overall = self.machine_report[self.machine_report["label"] == "(all)"]
            line += "; machine annotators vs the human consensus: " + ", ".join(
                f"{a} {acc:.1%} of {n}" for a, acc, n in zip(overall["annotator"], overall["accuracy"], overall["n_items"]))
        if self.n_unsure:
            line += f"; {self.n_unsure} unsure votes left out as missing ratings"
        if not self.converged:
            line += (f"; EM not converged after {self.n_iter} iterations"
                     + ("; the majority vote is used instead" if self.method == "dawid_skene" else ""))
        return line


def columns_in_order(proba: np.ndarray, classes, labels, *, floor: float = 1e-6) -> np.ndarray:
    """``proba`` (n, len(classes)) with its columns in ``labels`` order, rows renormalised.

    A label the model never saw (no item won it, or the data never uses it) gets ``floor``: with the
    default, some mass, so votes for it can still win. A row with no mass left stays all zero.

    Returns
    -------
    ndarray of float64, shape (n, len(labels))
    """
    col = {str(c): j for j, c in enumerate(classes)}
    out = np.full((proba.shape[0], len(labels)), floor)
    for j, lab in enumerate(labels):
        if str(lab) in col:
            out[:, j] = proba[:, col[str(lab)]]
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-300)


def _annotator_agreement(codes: RatingCodes, label_code: np.ndarray) -> np.ndarray:
    n = np.bincount(codes.annotator, minlength=codes.annotators.size)
    hit = np.bincount(codes.annotator, weights=label_code[codes.item] == codes.label, minlength=codes.annotators.size)
    return hit / np.maximum(n, 1)


def _majority(codes: RatingCodes) -> ConsensusResult:
    counts = codes.counts.astype(np.float64)
    share = counts / counts.sum(axis=1, keepdims=True)
    # Agreement with the leave-one-out majority: a rater is not credited for agreeing with themself.
    n_valid, n_agree = loo_majority_agreement(codes)
    quality = np.where(n_valid > 0, n_agree / np.maximum(n_valid, 1), np.nan)
    n_ann = codes.annotators.size
    return ConsensusResult(items=codes.items, labels=codes.labels, posterior=share, counts=codes.counts,
                           annotators=codes.annotators, annotator_quality=quality,
                           annotator_agreement=_annotator_agreement(codes, share.argmax(axis=1)),
                           annotator_n=np.bincount(codes.annotator, minlength=n_ann), method="majority")


def vote_reasons(counts: np.ndarray, choice: np.ndarray) -> np.ndarray:
    """Why each item's label won, from its vote counts alone: shape (n_items,) of str.

    ``majority`` (the most votes, alone), ``tie broken`` (one of the labels tied for most),
    ``minority vote`` (fewer votes than another label), ``no annotator gave it``.
    """
    rows = np.arange(counts.shape[0])
    mine = counts[rows, choice]
    top = counts.max(axis=1)
    n_top = (counts == top[:, None]).sum(axis=1)
    return np.select([mine == 0, mine < top, n_top > 1], ["no annotator gave it", "minority vote", "tie broken"],
                     default="majority").astype(object)


def _guard_unvoted(codes: RatingCodes, posterior: np.ndarray, model_proba: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The consensus column per item, a reason each, and the model's and the crowd's vote agreement.

    A label no annotator gave is kept only where the model agrees with the votes more often than
    the best of the item's annotators agrees with the other votes on their items
    (:func:`selector.quality.weighted_votes.voter_reliability`); elsewhere the voted label with the
    highest posterior is the consensus.
    """
    model_agree, annotator_agree, crowd = voter_reliability(codes, model_proba.argmax(axis=1))
    n_items = posterior.shape[0]
    best_voter = np.full(n_items, -np.inf)
    with np.errstate(invalid="ignore"):  # NaN agreement (no item voted twice) stays NaN: never outranked
        np.maximum.at(best_voter, codes.item, annotator_agree[codes.annotator])
    model_ahead = model_agree > best_voter  # NaN (nothing to judge annotators by) is never outranked
    top = posterior.argmax(axis=1)
    voted = np.where(codes.counts > 0, posterior, -1.0).argmax(axis=1)
    unvoted = codes.counts[np.arange(n_items), top] == 0
    choice = np.where(unvoted & ~model_ahead, voted, top)
    reason = vote_reasons(codes.counts, choice)
    kept = unvoted & model_ahead
    reason[kept] = [f"no annotator gave it: the model agrees with {model_agree:.0%} of votes, "
                    f"this item's annotators with at most {b:.0%} of others'" for b in best_voter[kept]]
    held = unvoted & ~model_ahead
    reason[held] = [f"{r}; the model prefers {codes.labels[t]!s} but is not more reliable than these annotators"
                    for r, t in zip(reason[held], top[held])]
    return choice, reason, model_agree, crowd


def _majority_start(codes: RatingCodes, tie_break: np.ndarray) -> np.ndarray:
    """The majority-vote label per item, ties broken by ``tie_break`` (n_items, k): column indices."""
    counts = codes.counts
    return np.where(counts == counts.max(axis=1, keepdims=True), tie_break + 2.0, tie_break).argmax(axis=1)


def consensus_from_codes(codes: RatingCodes, *, method: str = "model", X: np.ndarray | None = None,
                         random_state: int | None = 0, n_splits: int = 5, classifier=None,
                         max_iter: int = 100, n_rounds: int = 2,
                         model_proba: np.ndarray | None = None, machine: np.ndarray | None = None) -> ConsensusResult:
    """Consensus on integer-coded annotations (see the module docstring for the methods).

    Parameters
    ----------
    codes : RatingCodes
    method : {"model", "dawid_skene", "majority"}
    X : ndarray, shape (n_items, d), optional
        Embeddings of the items in ``codes.items`` order; required by ``model``.
    random_state : int or None
        Seeds the folds and the classifier.
    n_splits : int
        Folds of the out-of-fold model.
    classifier : unfitted scikit-learn estimator with predict_proba, optional
        Default logistic regression.
    max_iter : int
        ``model``: EM iterations at most per round (``dawid_skene`` allows :data:`DAWID_SKENE_MAX_ITER`).
    n_rounds : int
        ``model``: rounds of (train on the current consensus, recombine with the votes).
    model_proba : ndarray, shape (n_items, k), optional
        ``model``: out-of-fold probabilities already at hand (columns in ``codes.labels`` order),
        e.g. from a model trained on the data's own labels; used instead of training on the votes.
    machine : ndarray of bool, shape (n_annotators,), optional
        ``model``: machine annotators, each weighted on its own like the model
        (:func:`selector.quality.weighted_votes.weighted_vote_em`).
    """
    if method not in METHODS:
        raise ConfigError(f"unknown consensus method {method!r}; choose from {', '.join(METHODS)}")
    if model_proba is not None and method != "model":
        raise ConfigError(f"model_proba is used by the 'model' method only, not {method!r}")
    if method == "majority":
        return _majority(codes)
    n_ann = codes.annotators.size
    annotator_n = np.bincount(codes.annotator, minlength=n_ann)
    if method == "dawid_skene":
        ds = dawid_skene(codes, max_iter=max(max_iter, DAWID_SKENE_MAX_ITER), warn=False)
        if not ds.converged:
            # EM that wanders after hundreds of steps has not found a fixed point; its last iterate is
            # no estimate. The majority vote is, and the summary says which was used.
            fallback = _majority(codes)
            fallback.method, fallback.converged, fallback.n_iter = "dawid_skene", False, ds.n_iter
            fallback.reason = np.array([f"{r}; Dawid-Skene did not converge: majority vote"
                                        for r in fallback.reasons], dtype=object)
            return fallback
        return ConsensusResult(items=codes.items, labels=codes.labels, posterior=ds.posterior, counts=codes.counts,
                               annotators=codes.annotators, annotator_quality=ds.annotator_accuracy(),
                               annotator_agreement=_annotator_agreement(codes, ds.posterior.argmax(axis=1)),
                               annotator_n=annotator_n, method=method, n_iter=ds.n_iter, converged=True)
    model_acc = None
    if model_proba is not None:
        if model_proba.shape != codes.counts.shape:
            raise DataError(f"model_proba must have shape {codes.counts.shape}, got {model_proba.shape}")
        proba = model_proba
        fit = weighted_vote_em(codes, proba, max_iter=max_iter, machine=machine)
    else:
        if X is None:
            raise DataError("consensus method 'model' needs the items' texts (a text column in the annotations, "
                            "or --data with the texts); or choose --method dawid_skene")
        if X.shape[0] != codes.items.size:
            raise DataError(f"embeddings have {X.shape[0]} rows but there are {codes.items.size} items")
        template = classifier if classifier is not None else make_classifier(random_state=random_state)
        # The first round trains on the majority vote, ties broken by the votes-only Dawid-Skene:
        # EM on sparse votes alone can run its class prior away to one class.
        y_idx = _majority_start(codes, dawid_skene(codes, max_iter=max_iter, warn=False).posterior)
        for _ in range(n_rounds):
            if np.unique(y_idx).size < 2:
                raise DataError("every item has the same consensus label; the model needs two classes to learn from")
            oof = out_of_fold(template, X, codes.labels[y_idx].astype(str), n_splits=n_splits,
                              random_state=random_state)
            proba = columns_in_order(oof.proba, oof.classes, codes.labels)
            model_acc = float((proba.argmax(axis=1) == y_idx).mean())
            fit = weighted_vote_em(codes, proba, max_iter=max_iter, machine=machine)
            y_idx = fit.posterior.argmax(axis=1)
    choice, reason, model_agree, crowd = _guard_unvoted(codes, fit.posterior, proba)
    # Annotator quality: the one-coin accuracy, the share of their votes the fitted model expects right.
    return ConsensusResult(items=codes.items, labels=codes.labels, posterior=fit.posterior, counts=codes.counts,
                           annotators=codes.annotators, annotator_quality=fit.accuracy,
                           annotator_agreement=_annotator_agreement(codes, choice), annotator_n=annotator_n,
                           method=method, n_iter=fit.n_iter, converged=fit.converged, model_accuracy=model_acc,
                           choice=choice, reason=reason, model_weight=fit.model_weight, vote_weight=fit.vote_weight,
                           model_agreement=model_agree, crowd_agreement=crowd, error_matrix=fit.error_matrix,
                           model_proba=proba)


def prepare_consensus_input(annotations: pd.DataFrame, *, data: pd.DataFrame | None = None,
                            item_col: str = "item_id", annotator_col: str = "annotator", label_col: str = "label",
                            text_col: str = "text", id_col: str = "id", unsure_labels=None,
                            source: str = "<DataFrame>") -> tuple[RatingCodes, np.ndarray | None, int]:
    """Validated annotation codes, each item's text (or None), and the number of unsure ratings left out.

    The text comes from ``data`` (its ``id_col`` matched to the annotations' item ids) or from a
    ``text_col`` column in the annotations; an item with no text is an error naming it.
    """
    ann = prepare_annotations(annotations, item_col=item_col, annotator_col=annotator_col, label_col=label_col,
                              source=source, keep=(text_col,) if text_col in annotations.columns else ())
    unsure = unsure_mask(ann["label"], unsure_labels)
    ann = ann[~unsure].reset_index(drop=True)
    if ann.empty:
        raise DataError(f"{source}: every rating is an unsure value; nothing to build a consensus from")
    codes = encode_ratings(ann)
    texts = None
    if data is not None:
        for col in (id_col, text_col):
            if col not in data.columns:
                raise DataError(f"--data has no {col!r} column (columns found: {', '.join(map(str, data.columns[:30]))})")
        by_id = pd.Series(data[text_col].to_numpy(dtype=object), index=data[id_col].astype(str).str.strip())
        by_id = by_id[~by_id.index.duplicated()]
        texts = by_id.reindex(codes.items.astype(str)).to_numpy(dtype=object)
    elif text_col in ann.columns:
        texts = ann.drop_duplicates("item_id").set_index("item_id")[text_col].reindex(codes.items).to_numpy(dtype=object)
    if texts is not None:
        missing = np.array([t is None or (isinstance(t, float) and np.isnan(t)) or not str(t).strip() for t in texts])
        if missing.any():
            raise DataError(f"{source}: item {codes.items[int(missing.argmax())]!r} has no text"
                            + (" in --data" if data is not None else f" (column {text_col!r})")
                            + f" ({int(missing.sum())} items in all); give every item a text, or --method dawid_skene")
        texts = np.array([str(t) for t in texts], dtype=object)
    return codes, texts, int(unsure.sum())


def consensus(annotations: pd.DataFrame, *, data: pd.DataFrame | None = None, method: str = "model",
              item_col: str = "item_id", annotator_col: str = "annotator", label_col: str = "label",
              text_col: str = "text", id_col: str = "id", unsure_labels=None, random_state: int | None = 0,
              embeddings: np.ndarray | None = None, embedder=None, model: str | None = None, cache_dir=None,
              classifier=None, config=None, show_progress: bool = False,
              source: str = "<DataFrame>", machine_annotators=()) -> ConsensusResult:
    """Consensus label per item, its quality, and a quality score per annotator.

    Parameters
    ----------
    annotations : DataFrame
        Long format, one row per (item, annotator, label); unsure values are left out.
    data : DataFrame, optional
        Where the items' texts are (``id_col`` = the item id); default: ``text_col`` in ``annotations``.
    method : {"model", "dawid_skene", "majority"}
        See the module docstring; ``model`` needs texts.
    embeddings : ndarray, shape (n_items, d), optional
        Item embeddings in sorted item-id order (skips the embedding model).
    embedder, model, cache_dir, config
        As for :func:`selector.round.embed.embed_pool`.
    classifier : unfitted scikit-learn estimator with predict_proba, optional
    machine_annotators : iterable of str
        Annotators that are models (an LLM pre-labeler): ``model`` gives each a weight of its own,
        fitted like the model's (other methods count them as annotators), and ``machine_report`` gives
        their per-class accuracy against the consensus of the human votes alone.

    Returns
    -------
    ConsensusResult
    """
    codes, texts, n_unsure = prepare_consensus_input(annotations, data=data, item_col=item_col, annotator_col=annotator_col,
                                              label_col=label_col, text_col=text_col, id_col=id_col,
                                              unsure_labels=unsure_labels, source=source)
    X = None
    if method == "model":
        if embeddings is not None:
            X = np.asarray(embeddings, dtype=np.float32)
        elif texts is not None:
            config = config or SelectConfig(seed=random_state, model=model)
            pool = prepare_pool(pd.DataFrame({"id": codes.items, "text": texts}), source=source,
                                require_label_col=False)
            X, _ = embed_pool(pool, config, embedder=embedder, cache_dir=cache_dir, show_progress=show_progress)
    machines, is_machine = (), None
    if machine_annotators:
        votes = pd.DataFrame({"item_id": codes.items[codes.item], "annotator": codes.annotators[codes.annotator],
                              "label": codes.labels[codes.label]})
        machines = check_machine_annotators(votes, machine_annotators, source=source)
        is_machine = np.isin(codes.annotators.astype(str), machines)
    result = consensus_from_codes(codes, method=method, X=X, random_state=random_state, classifier=classifier,
                                  machine=is_machine if method == "model" else None)
    result.n_unsure = n_unsure
    if machines:
        result.machine_annotators = machines
        humans, machine_votes = split_machine(votes, machines)
        human_codes = encode_ratings(humans, labels=list(codes.labels))
        at = np.searchsorted(codes.items.astype(str), human_codes.items.astype(str))
        human = consensus_from_codes(human_codes, method=method, X=None if X is None else X[at],
                                     random_state=random_state, classifier=classifier)
        result.machine_report = machine_accuracy(machine_votes, pd.Series(human.label, index=human.items))
    return result
