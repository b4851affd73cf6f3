"""Inter-annotator agreement and consensus labels from long-format annotations.

Input is the output of :func:`selector.quality.annotations.prepare_annotations` (columns ``item_id``,
``annotator``, ``label``; optional ``text``, ``guideline_version``). Everything is computed from
integer codes with ``numpy.bincount``: no Python loop runs over ratings, so 50k+ ratings take
milliseconds.

Public pieces
-------------
- :func:`agreement` — the full report (:class:`AgreementReport`).
- :func:`majority_vote` — consensus by plurality, ties reported (``tie`` / ``tied_labels``).
- :func:`dawid_skene` — consensus by Dawid & Skene (1979) EM, with per-annotator confusion matrices.
- :func:`pairwise_agreement`, :func:`fleiss_kappa`, :func:`krippendorff_alpha`,
  :func:`contested_items`, :func:`confused_label_pairs`, :func:`per_class_agreement`,
  :func:`annotator_agreement` — the single figures.

Definitions match scikit-learn's ``cohen_kappa_score``, statsmodels' ``fleiss_kappa`` and the
``krippendorff`` package (nominal) to 1e-9 (see ``tests/test_agreement.py``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.labels import normalise_label, normalise_unsure_labels, unsure_mask
from selector.quality.annotations import guideline_versions, prepare_annotations
from selector.quality.machine import check_machine_annotators, machine_accuracy, split_machine
from selector.tables import text_table

__all__ = [
    "AgreementReport", "ConvergenceWarning", "DawidSkeneResult", "FleissResult", "RatingCodes",
    "agreement", "annotator_agreement", "coincidence_matrix", "number_or_none", "confused_label_pairs", "consensus_table", "contested_items",
    "dawid_skene", "encode_ratings", "loo_majority_agreement", "votes_text", "fleiss_kappa", "krippendorff_alpha", "majority_vote",
    "pairwise_agreement", "per_class_agreement",
]


# --------------------------------------------------------------------------- encoding

@dataclass(frozen=True)
class RatingCodes:
    """Annotations as integer codes.

    Attributes
    ----------
    items, annotators, labels : ndarray of object (str), shapes (n_items,), (n_annotators,), (k,)
        Sorted distinct values; a code is a position in these arrays.
    item, annotator, label : ndarray of int64, shape (n_ratings,)
        Codes of each rating.
    counts : ndarray of int64, shape (n_items, k)
        How many annotators gave each label to each item.
    """

    items: np.ndarray
    annotators: np.ndarray
    labels: np.ndarray
    item: np.ndarray
    annotator: np.ndarray
    label: np.ndarray
    counts: np.ndarray

    @property
    def n_ratings_per_item(self) -> np.ndarray:
        """ndarray of int64, shape (n_items,)."""
        return self.counts.sum(axis=1)


def encode_ratings(ann: pd.DataFrame, labels: list[str] | None = None) -> RatingCodes:
    """Integer-code prepared annotations (see :func:`prepare_annotations`).

    Parameters
    ----------
    ann : DataFrame
        Columns ``item_id``, ``annotator``, ``label``, one row per rating.
    labels : list of str, optional
        The label set (column order of ``counts``); default: the sorted labels seen.
    """
    for col in ("item_id", "annotator", "label"):
        if col not in ann.columns:
            raise DataError(f"annotations need a {col!r} column; run them through prepare_annotations first")
    items, item = np.unique(ann["item_id"].to_numpy(dtype=str), return_inverse=True)
    annotators, annotator = np.unique(ann["annotator"].to_numpy(dtype=str), return_inverse=True)
    seen = ann["label"].to_numpy(dtype=str)
    if labels is None:
        label_set, label = np.unique(seen, return_inverse=True)
    else:
        label_set = np.asarray([str(x) for x in labels], dtype=object)
        index = {lab: i for i, lab in enumerate(label_set)}
        unknown = sorted(set(seen) - set(index))
        if unknown:
            raise DataError(f"annotations use label(s) not in the label set: {', '.join(unknown[:10])}")
        label = np.array([index[s] for s in seen], dtype=np.int64)
    k = len(label_set)
    counts = np.bincount(item * k + label, minlength=items.size * k).reshape(items.size, k)
    return RatingCodes(items=items.astype(object), annotators=annotators.astype(object),
                       labels=np.asarray(label_set, dtype=object), item=item.astype(np.int64),
                       annotator=annotator.astype(np.int64), label=label.astype(np.int64), counts=counts)


def _codes(ann) -> RatingCodes:
    return ann if isinstance(ann, RatingCodes) else encode_ratings(ann)


# --------------------------------------------------------------------------- pairwise (Cohen)

def _rating_pairs(codes: RatingCodes) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (i, j) of ratings on the same item with annotator code i < j.

    Returns two int64 arrays of shape (n_pairs,). Built per group size so it stays vectorised:
    items with m ratings contribute m(m-1)/2 pairs each.
    """
    order = np.lexsort((codes.annotator, codes.item))
    item_sorted = codes.item[order]
    starts = np.flatnonzero(np.r_[True, item_sorted[1:] != item_sorted[:-1]])
    sizes = np.diff(np.r_[starts, item_sorted.size])
    left, right = [], []
    for m in np.unique(sizes):
        if m < 2:
            continue
        s = starts[sizes == m]
        a, b = np.triu_indices(int(m), k=1)
        left.append(order[(s[:, None] + a[None, :]).ravel()])
        right.append(order[(s[:, None] + b[None, :]).ravel()])
    if not left:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(left), np.concatenate(right)


def pairwise_agreement(ann, *, min_shared: int = 5) -> pd.DataFrame:
    """Percent agreement and Cohen's kappa for every annotator pair sharing ``min_shared``+ items.

    Parameters
    ----------
    ann : DataFrame (prepared annotations) or RatingCodes
    min_shared : int
        Pairs that rated fewer items in common are left out (their kappa is noise).

    Returns
    -------
    DataFrame
        ``annotator_a, annotator_b, n_shared, percent_agreement, cohen_kappa``, sorted by
        ``n_shared`` descending. Kappa is NaN where chance agreement is 1 (both annotators gave
        one and the same label throughout), as in scikit-learn.
    """
    codes = _codes(ann)
    k = codes.labels.size
    i, j = _rating_pairs(codes)
    a, b = codes.annotator[i], codes.annotator[j]
    n_ann = codes.annotators.size
    pair = a * n_ann + b
    uniq, pair_idx, n_shared = np.unique(pair, return_inverse=True, return_counts=True)
    keep = n_shared >= min_shared
    cols = ["annotator_a", "annotator_b", "n_shared", "percent_agreement", "cohen_kappa"]
    if not keep.any():
        return pd.DataFrame(columns=cols)
    remap = np.full(uniq.size, -1, np.int64)
    remap[keep] = np.arange(int(keep.sum()))
    sel = remap[pair_idx] >= 0
    p = remap[pair_idx[sel]]
    n_pairs = int(keep.sum())
    conf = np.bincount(p * k * k + codes.label[i[sel]] * k + codes.label[j[sel]],
                       minlength=n_pairs * k * k).reshape(n_pairs, k, k).astype(np.float64)
    n = conf.sum(axis=(1, 2))
    observed = np.trace(conf, axis1=1, axis2=2) / n
    expected = (conf.sum(axis=2) * conf.sum(axis=1)).sum(axis=1) / n ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(expected < 1.0, (observed - expected) / (1.0 - expected), np.nan)
    out = pd.DataFrame({
        "annotator_a": codes.annotators[uniq[keep] // n_ann],
        "annotator_b": codes.annotators[uniq[keep] % n_ann],
        "n_shared": n_shared[keep],
        "percent_agreement": observed,
        "cohen_kappa": kappa,
    })
    return out.sort_values(["n_shared", "annotator_a", "annotator_b"], ascending=[False, True, True],
                           kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- Fleiss, Krippendorff

@dataclass(frozen=True)
class FleissResult:
    """Fleiss' kappa over the items that share one rater count.

    Attributes
    ----------
    kappa : float
        NaN when no rater count has 2+ raters.
    raters_per_item : int
        The rater count used (the one that keeps the most ratings).
    n_items_used, n_items_dropped : int
    dropped : dict
        ``{rater count: number of items}`` for the items left out.
    """

    kappa: float
    raters_per_item: int
    n_items_used: int
    n_items_dropped: int
    dropped: dict

    def to_dict(self) -> dict[str, Any]:
        return {"kappa": number_or_none(self.kappa), "raters_per_item": self.raters_per_item,
                "n_items_used": self.n_items_used, "n_items_dropped": self.n_items_dropped,
                "dropped_by_rater_count": {str(m): n for m, n in self.dropped.items()}}


def fleiss_table_kappa(table: np.ndarray) -> float:
    """Fleiss' kappa of an (n_items, k) count table (each item's agreement over its own number of
    ratings, so items may have different numbers; with the same number everywhere it is Fleiss' 1971
    statistic); nan without items."""
    table = np.asarray(table, dtype=np.float64)
    if table.shape[0] == 0:
        return float("nan")
    m = table.sum(axis=1)
    p_cat = table.sum(axis=0) / table.sum()
    p_item = ((table * table).sum(axis=1) - m) / (m * (m - 1.0))
    p_exp = float((p_cat * p_cat).sum())
    if p_exp >= 1.0:
        return float("nan")
    return float((p_item.mean() - p_exp) / (1.0 - p_exp))


def fleiss_kappa(ann) -> FleissResult:
    """Fleiss' kappa; it needs equal rater counts, so items with another count are dropped and listed.

    The rater count kept is the one (of 2 or more) holding the most ratings; ties go to the larger count.
    """
    codes = _codes(ann)
    m = codes.n_ratings_per_item
    values, n_items = np.unique(m, return_counts=True)
    eligible = values >= 2
    if not eligible.any():
        return FleissResult(float("nan"), 0, 0, int(m.size), {int(v): int(c) for v, c in zip(values, n_items)})
    weight = np.where(eligible, values * n_items, -1)
    best = int(values[np.flatnonzero(weight == weight.max())[-1]])
    used = m == best
    dropped = {int(v): int(c) for v, c in zip(values, n_items) if v != best}
    return FleissResult(kappa=fleiss_table_kappa(codes.counts[used]), raters_per_item=best,
                        n_items_used=int(used.sum()), n_items_dropped=int((~used).sum()), dropped=dropped)


def coincidence_matrix(counts: np.ndarray) -> np.ndarray:
    """Krippendorff's coincidence matrix (k, k) from an (n_items, k) count table (items with 2+ ratings)."""
    m = counts.sum(axis=1)
    pairable = m >= 2
    c = counts[pairable].astype(np.float64)
    w = 1.0 / (m[pairable] - 1.0)
    o = (c * w[:, None]).T @ c
    o[np.diag_indices_from(o)] -= (c * w[:, None]).sum(axis=0)
    return o


def krippendorff_alpha(ann) -> float:
    """Krippendorff's alpha for nominal data; missing ratings allowed, items with one rating ignored.

    Returns NaN when fewer than two pairable values exist or every value is the same label.
    """
    codes = _codes(ann)
    o = coincidence_matrix(codes.counts)
    n_c = o.sum(axis=1)
    n = n_c.sum()
    if n < 2:
        return float("nan")
    d_o = o.sum() - np.trace(o)
    expected_pairs = n * n - (n_c * n_c).sum()
    if expected_pairs <= 0:
        return float("nan")
    return float(1.0 - (n - 1.0) * d_o / expected_pairs)


# --------------------------------------------------------------------------- consensus

def majority_vote(ann, *, tie_break: str = "random", random_state: int | None = 0) -> pd.DataFrame:
    """Consensus label per item by plurality vote; ties are reported, never hidden.

    Parameters
    ----------
    ann : DataFrame (prepared annotations) or RatingCodes
    tie_break : {"random", "none"}
        ``"random"``: a tied item gets one of its tied labels chosen with ``random_state``;
        ``"none"``: a tied item gets no label (missing).
    random_state : int or None

    Returns
    -------
    DataFrame
        One row per item (sorted by item id): ``item_id, label, n_ratings, votes`` (top count),
        ``share`` (top count / n_ratings), ``tie`` (bool), ``tied_labels`` ("a|b" or "").
    """
    if tie_break not in ("random", "none"):
        raise ConfigError(f"tie_break must be 'random' or 'none', got {tie_break!r}")
    codes = _codes(ann)
    counts = codes.counts
    top = counts.max(axis=1)
    is_top = counts == top[:, None]
    n_top = is_top.sum(axis=1)
    tie = n_top > 1
    rng = np.random.default_rng(random_state)
    # Pick the r-th tied label, r uniform in [0, n_top): rank among the tied columns.
    pick = np.floor(rng.random(counts.shape[0]) * n_top).astype(np.int64)
    rank = np.cumsum(is_top, axis=1) - 1
    chosen = np.argmax(is_top & (rank == pick[:, None]), axis=1)
    labels = codes.labels[chosen].astype(object)
    if tie_break == "none":
        labels[tie] = None
    tied = np.full(counts.shape[0], "", dtype=object)
    for i in np.flatnonzero(tie):  # loop over tied items only, not ratings
        tied[i] = "|".join(codes.labels[is_top[i]])
    m = counts.sum(axis=1)
    return pd.DataFrame({"item_id": codes.items, "label": labels, "n_ratings": m, "votes": top,
                         "share": top / m, "tie": tie, "tied_labels": tied})


@dataclass
class DawidSkeneResult:
    """Dawid-Skene consensus.

    Attributes
    ----------
    items : ndarray of object, shape (n_items,)
    labels : ndarray of object, shape (k,)
    annotators : ndarray of object, shape (n_annotators,)
    posterior : ndarray of float64, shape (n_items, k)
        P(true label | ratings) per item.
    class_prior : ndarray of float64, shape (k,)
    confusion : ndarray of float64, shape (n_annotators, k, k)
        ``confusion[a, t, l]`` = P(annotator a says l | true label t); rows sum to 1.
    n_iter : int
    converged : bool
    log_likelihood : float
    """

    items: np.ndarray
    labels: np.ndarray
    annotators: np.ndarray
    posterior: np.ndarray
    class_prior: np.ndarray
    confusion: np.ndarray
    n_iter: int
    converged: bool
    log_likelihood: float

    @property
    def label(self) -> np.ndarray:
        """Most probable label per item, ndarray of object, shape (n_items,)."""
        return self.labels[self.posterior.argmax(axis=1)]

    @property
    def confidence(self) -> np.ndarray:
        """Posterior of the chosen label, ndarray of float64, shape (n_items,)."""
        return self.posterior.max(axis=1)

    def annotator_accuracy(self) -> np.ndarray:
        """Estimated accuracy per annotator, sum_t prior[t] * confusion[a, t, t]; shape (n_annotators,)."""
        return np.einsum("t,att->a", self.class_prior, self.confusion)

    def frame(self) -> pd.DataFrame:
        """``item_id, label, confidence`` per item."""
        return pd.DataFrame({"item_id": self.items, "label": self.label, "confidence": self.confidence})

    def confusion_frame(self) -> pd.DataFrame:
        """Long table ``annotator, true_label, given_label, probability``."""
        n_a, k, _ = self.confusion.shape
        a, t, g = np.meshgrid(np.arange(n_a), np.arange(k), np.arange(k), indexing="ij")
        return pd.DataFrame({"annotator": self.annotators[a.ravel()], "true_label": self.labels[t.ravel()],
                             "given_label": self.labels[g.ravel()], "probability": self.confusion.ravel()})


class ConvergenceWarning(UserWarning):
    """An iterative estimate (Dawid-Skene EM) stopped at its iteration limit before converging."""


def dawid_skene(ann, *, max_iter: int = 100, tol: float = 1e-6, smoothing: float = 0.01,
                shrinkage: float = 2.0, item_log_prior: np.ndarray | None = None,
                warn: bool = True) -> DawidSkeneResult:
    """Consensus labels and per-annotator confusion matrices by Dawid & Skene (1979) EM.

    Made for sparse crowds (many classes, 1-3 ratings per item, annotators with few items), where
    the textbook EM overfits each annotator's k x k matrix and falls below majority vote:

    * initialised from the majority vote (ties share the item's mass evenly);
    * each annotator's confusion row for a true class is shrunk towards the pooled confusion of
      all annotators, with ``shrinkage`` pseudo-ratings: an annotator seen on few items of a class
      is assumed to behave like the crowd there, one seen on many keeps their own matrix (with
      hundreds of ratings per annotator this is the textbook estimate);
    * the class prior gets one pseudo-count per class, so no class collapses to zero.

    Parameters
    ----------
    ann : DataFrame (prepared annotations) or RatingCodes
    max_iter : int
    tol : float
        Stop when the log-likelihood improves by less than ``tol`` (relative).
    smoothing : float
        Pseudo-count per cell of the pooled confusion.
    shrinkage : float
        Pseudo-ratings drawn from the pooled confusion per (annotator, true class); 0 gives the
        textbook per-annotator estimate.
    item_log_prior : ndarray, shape (n_items, k), optional
        Log-probabilities per item that replace the class prior (e.g. an out-of-fold model's
        probabilities); rows in ``RatingCodes.items`` order, columns in label order.
    warn : bool
        Warn (:class:`ConvergenceWarning`) when ``max_iter`` is reached before convergence.
    """
    codes = _codes(ann)
    n_items, k = codes.counts.shape
    n_ann = codes.annotators.size
    item, annot, lab = codes.item, codes.annotator, codes.label
    if item_log_prior is not None and item_log_prior.shape != (n_items, k):
        raise DataError(f"item_log_prior must have shape ({n_items}, {k}), got {item_log_prior.shape}")
    counts = codes.counts.astype(np.float64)
    is_top = counts == counts.max(axis=1, keepdims=True)
    post = is_top / is_top.sum(axis=1, keepdims=True)
    prev_ll = -np.inf
    converged = False
    ll = -np.inf
    it = 0
    key = annot * k + lab
    for it in range(1, max_iter + 1):
        # M-step: prior and confusion from the current posteriors.
        prior = (post.sum(axis=0) + 1.0) / (n_items + k)
        raw = np.empty((n_ann, k, k))
        for t in range(k):  # loop over classes; the ratings are summed by bincount
            raw[:, t, :] = np.bincount(key, weights=post[item, t], minlength=n_ann * k).reshape(n_ann, k)
        pooled = raw.sum(axis=0) + smoothing
        pooled /= pooled.sum(axis=1, keepdims=True)
        conf = raw + shrinkage * pooled[None, :, :] + (smoothing if shrinkage == 0 else 0.0)
        conf /= conf.sum(axis=2, keepdims=True)
        # E-step: log P(true = t) + sum over an item's ratings of log P(label | t, annotator).
        log_conf = np.log(conf)
        vote_ll = np.empty((n_items, k))
        for t in range(k):
            vote_ll[:, t] = np.bincount(item, weights=log_conf[annot, t, lab], minlength=n_items)
        if item_log_prior is None:
            log_post = np.log(prior)[None, :] + vote_ll
        else:
            log_post = item_log_prior + vote_ll
        top = log_post.max(axis=1, keepdims=True)
        norm = top[:, 0] + np.log(np.exp(log_post - top).sum(axis=1))
        post = np.exp(log_post - norm[:, None])
        ll = float(norm.sum())
        change = abs(ll - prev_ll) if np.isfinite(prev_ll) else np.inf
        if change <= tol * max(1.0, abs(ll)):
            converged = True
            break
        prev_ll = ll
    if not converged and warn:
        warnings.warn(f"Dawid-Skene did not converge in {max_iter} EM iterations (last log-likelihood change "
                      f"{change:.3g}); its labels are the last iterate's", ConvergenceWarning, stacklevel=2)
    return DawidSkeneResult(items=codes.items, labels=codes.labels, annotators=codes.annotators,
                            posterior=post, class_prior=post.mean(axis=0), confusion=conf, n_iter=it,
                            converged=converged, log_likelihood=ll)


def consensus_table(ann, *, random_state: int | None = 0, ds: DawidSkeneResult | None = None) -> pd.DataFrame:
    """Both consensus labels per item, for ``--out consensus.csv``.

    Returns
    -------
    DataFrame
        ``item_id, n_ratings, majority_label, majority_share, majority_tie, tied_labels,
        dawid_skene_label, dawid_skene_confidence, votes_text`` (e.g. ``"hate:4 not_hate:2"``).
    """
    codes = _codes(ann)
    mv = majority_vote(codes, random_state=random_state)
    ds = ds if ds is not None else dawid_skene(codes)
    return pd.DataFrame({
        "item_id": codes.items, "n_ratings": mv["n_ratings"], "majority_label": mv["label"],
        "majority_share": mv["share"].round(6), "majority_tie": mv["tie"], "tied_labels": mv["tied_labels"],
        "dawid_skene_label": ds.label, "dawid_skene_confidence": ds.confidence.round(6),
        "votes_text": votes_text(codes.counts, codes.labels),
    })


def votes_text(counts: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``"a:3 b:1"`` per row of ``counts`` (n, k), most votes first; shape (n,) of str."""
    out = np.empty(counts.shape[0], dtype=object)
    order = np.argsort(-counts, axis=1, kind="stable")
    for i in range(counts.shape[0]):  # one string per item, for people to read
        out[i] = " ".join(f"{labels[j]}:{counts[i, j]}" for j in order[i] if counts[i, j])
    return out


# --------------------------------------------------------------------------- disagreement views

def contested_items(ann, *, text: pd.Series | None = None) -> pd.DataFrame:
    """Items with any disagreement, most split first.

    ``split`` = 1 - (top count / n_ratings): 0 for unanimity, up to 1 - 1/k. Ties on ``split`` are
    broken by normalised vote entropy, then by more ratings.

    Returns
    -------
    DataFrame
        ``item_id, n_ratings, n_labels, split, entropy, top_label`` (None when tied), ``votes``
        (+ ``text`` when given as a Series indexed by item id).
    """
    codes = _codes(ann)
    counts = codes.counts
    m = counts.sum(axis=1)
    n_labels = (counts > 0).sum(axis=1)
    contested = n_labels > 1
    c = counts[contested].astype(np.float64)
    mm = m[contested].astype(np.float64)
    p = c / mm[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    h = h / np.log(max(codes.labels.size, 2))
    top = c.max(axis=1)
    tied = (c == top[:, None]).sum(axis=1) > 1
    top_label = codes.labels[c.argmax(axis=1)].astype(object)
    top_label[tied] = None
    out = pd.DataFrame({"item_id": codes.items[contested], "n_ratings": m[contested],
                        "n_labels": n_labels[contested], "split": 1.0 - top / mm, "entropy": h,
                        "top_label": top_label, "votes": votes_text(counts[contested], codes.labels)})
    if text is not None:
        out["text"] = out["item_id"].map(text)
    return out.sort_values(["split", "entropy", "n_ratings", "item_id"], ascending=[False, False, False, True],
                           kind="stable").reset_index(drop=True)


def confused_label_pairs(ann) -> pd.DataFrame:
    """Label pairs annotators split on, most frequent first (where the guidelines need a rule).

    Counts unordered pairs of ratings on the same item: ``n_pairs`` for labels (a, b) is
    sum over items of count_a * count_b. ``share`` is its fraction of all disagreeing pairs.
    """
    codes = _codes(ann)
    c = codes.counts.astype(np.float64)
    pairs = c.T @ c
    k = codes.labels.size
    a, b = np.triu_indices(k, k=1)
    n = pairs[a, b]
    total = n.sum()
    out = pd.DataFrame({"label_a": codes.labels[a], "label_b": codes.labels[b], "n_pairs": n.astype(np.int64),
                        "share": n / total if total else np.zeros_like(n)})
    out = out[out["n_pairs"] > 0]
    return out.sort_values(["n_pairs", "label_a", "label_b"], ascending=[False, True, True],
                           kind="stable").reset_index(drop=True)


def per_class_agreement(ann) -> pd.DataFrame:
    """Specific agreement per label (Fleiss 1971; Uebersax): given one rater chose the label, the
    share of the other raters of that item who chose it too.

    ``specific_agreement_c = sum_u n_uc (n_uc - 1) / sum_u n_uc (m_u - 1)`` over items with 2+ ratings.

    Returns
    -------
    DataFrame
        ``label, n_ratings, share_of_ratings, specific_agreement`` (NaN for a label only ever
        given by a lone rater).
    """
    codes = _codes(ann)
    c = codes.counts.astype(np.float64)
    m = c.sum(axis=1)
    pairable = m >= 2
    num = (c[pairable] * (c[pairable] - 1)).sum(axis=0)
    den = (c[pairable] * (m[pairable, None] - 1)).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        spec = np.where(den > 0, num / den, np.nan)
    n = c.sum(axis=0)
    return pd.DataFrame({"label": codes.labels, "n_ratings": n.astype(np.int64), "share_of_ratings": n / n.sum(),
                         "specific_agreement": spec})


def loo_majority_agreement(codes: RatingCodes) -> tuple[np.ndarray, np.ndarray]:
    """Per annotator: ratings compared with the leave-one-out majority of the item's *other* raters
    (items with another rater and no tie among them), and how many of those match it.

    Returns
    -------
    n_compared, n_agree : ndarray of float64, shape (n_annotators,)
    """
    n_ann = codes.annotators.size
    # Leave-one-out vote of the other raters, per rating: (n_ratings, k) counts minus the own vote.
    others = codes.counts[codes.item].copy()
    others[np.arange(codes.item.size), codes.label] -= 1
    top = others.max(axis=1)
    valid = (top > 0) & ((others == top[:, None]).sum(axis=1) == 1)
    agree = valid & (others.argmax(axis=1) == codes.label)
    return (np.bincount(codes.annotator, weights=valid, minlength=n_ann),
            np.bincount(codes.annotator, weights=agree, minlength=n_ann))


def annotator_agreement(ann, *, ds: DawidSkeneResult | None = None) -> pd.DataFrame:
    """Each annotator's agreement with the consensus.

    ``agree_majority``: share of the annotator's ratings (on items with 2+ ratings and no tie in the
    leave-one-out vote of the *other* raters) that match that vote — so a rater is not credited for
    agreeing with themself. ``agree_dawid_skene``: share matching the Dawid-Skene label.
    ``ds_accuracy``: the accuracy Dawid-Skene estimates from the annotator's confusion matrix.

    Returns
    -------
    DataFrame
        ``annotator, n_ratings, n_compared, agree_majority, agree_dawid_skene, ds_accuracy``,
        lowest ``agree_majority`` first.
    """
    codes = _codes(ann)
    ds = ds if ds is not None else dawid_skene(codes)
    n_ann = codes.annotators.size
    n_rat = np.bincount(codes.annotator, minlength=n_ann)
    n_cmp, n_agree = loo_majority_agreement(codes)
    ds_label_code = ds.posterior.argmax(axis=1)
    n_ds = np.bincount(codes.annotator, weights=(ds_label_code[codes.item] == codes.label), minlength=n_ann)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = pd.DataFrame({"annotator": codes.annotators, "n_ratings": n_rat, "n_compared": n_cmp.astype(np.int64),
                            "agree_majority": np.where(n_cmp > 0, n_agree / n_cmp, np.nan),
                            "agree_dawid_skene": n_ds / n_rat, "ds_accuracy": ds.annotator_accuracy()})
    return out.sort_values(["agree_majority", "n_ratings"], ascending=[True, False], na_position="last",
                           kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- the report

def number_or_none(x) -> float | None:
    """``x`` as a float, None for NaN (JSON has no NaN)."""
    x = float(x)
    return None if np.isnan(x) else x


def frame_records(df: pd.DataFrame, limit: int | None = None) -> list[dict]:
    df = df if limit is None else df.head(limit)
    return [{k: (number_or_none(v) if isinstance(v, (float, np.floating)) else
                 int(v) if isinstance(v, (np.integer,)) else bool(v) if isinstance(v, np.bool_) else v)
             for k, v in row.items()} for row in df.to_dict(orient="records")]


@dataclass
class AgreementReport:
    """Every agreement figure for one set of annotations (and per guideline version).

    Attributes
    ----------
    n_items, n_annotators, n_ratings : int
    labels : list of str
    ratings_per_item : dict
        ``min``, ``median``, ``max``.
    percent_agreement : float
        Mean over items (2+ ratings) of the share of rater pairs that agree (Fleiss' P-bar).
    fleiss : FleissResult
    krippendorff_alpha : float
    pairwise : DataFrame
        See :func:`pairwise_agreement`.
    annotators : DataFrame
        See :func:`annotator_agreement`.
    confused_pairs : DataFrame
        See :func:`confused_label_pairs`.
    per_class : DataFrame
        See :func:`per_class_agreement`.
    contested : DataFrame
        See :func:`contested_items`.
    consensus : DataFrame
        See :func:`consensus_table`.
    dawid_skene : DawidSkeneResult
    gold_accuracy : dict or None
        Accuracy of the consensus labels against a gold column, when one was given.
    by_version : dict of str -> AgreementReport
        One report per ``guideline_version`` when that column is present.
    min_shared : int
    n_unsure : int
        Ratings whose label was an unsure value: counted here, left out of every figure above
        (a rater who says "unsure" gave no rating, not a class).
    unsure_by_annotator : dict of str -> int
        The same count per annotator (annotators with none are left out).
    unsure_labels : list of str
    machine_annotators : list of str
        Annotators that are models, left out of every figure above.
    machine_report : DataFrame or None
        Their accuracy against the human majority label, per class
        (:data:`selector.quality.machine.MACHINE_REPORT_COLUMNS`).
    """

    n_items: int
    n_annotators: int
    n_ratings: int
    labels: list
    ratings_per_item: dict
    percent_agreement: float
    fleiss: FleissResult
    krippendorff_alpha: float
    pairwise: pd.DataFrame
    annotators: pd.DataFrame
    confused_pairs: pd.DataFrame
    per_class: pd.DataFrame
    contested: pd.DataFrame
    consensus: pd.DataFrame
    dawid_skene: DawidSkeneResult
    gold_accuracy: dict | None = None
    by_version: dict = field(default_factory=dict)
    min_shared: int = 5
    n_unsure: int = 0
    unsure_by_annotator: dict = field(default_factory=dict)
    unsure_labels: list = field(default_factory=list)
    machine_annotators: list = field(default_factory=list)
    machine_report: pd.DataFrame | None = None

    @property
    def n_ties(self) -> int:
        return int(self.consensus["majority_tie"].sum())

    def summary(self) -> dict[str, Any]:
        """The headline figures (no tables)."""
        pk = self.pairwise["cohen_kappa"].to_numpy(dtype=float) if len(self.pairwise) else np.array([])
        return {
            "n_items": self.n_items, "n_annotators": self.n_annotators, "n_ratings": self.n_ratings,
            "labels": list(self.labels), "ratings_per_item": self.ratings_per_item,
            "percent_agreement": number_or_none(self.percent_agreement),
            "fleiss": self.fleiss.to_dict(), "krippendorff_alpha": number_or_none(self.krippendorff_alpha),
            "n_pairs_compared": int(len(self.pairwise)), "min_shared": self.min_shared,
            "mean_pairwise_cohen_kappa": number_or_none(np.nanmean(pk)) if np.isfinite(pk).any() else None,
            "n_contested": int(len(self.contested)), "n_majority_ties": self.n_ties,
            "dawid_skene": {"n_iter": self.dawid_skene.n_iter, "converged": self.dawid_skene.converged,
                            "class_prior": dict(zip(map(str, self.dawid_skene.labels),
                                                    map(float, self.dawid_skene.class_prior))),
                            "n_differs_from_majority": int((self.consensus["majority_label"]
                                                            != self.consensus["dawid_skene_label"]).sum())},
            "gold_accuracy": self.gold_accuracy,
            "n_unsure": self.n_unsure, "unsure_labels": list(self.unsure_labels),
            "unsure_by_annotator": dict(self.unsure_by_annotator),
            "machine_annotators": list(self.machine_annotators),
            "machine_accuracy": (None if self.machine_report is None
                                 else self.machine_report.to_dict(orient="records")),
        }

    def to_dict(self, *, max_rows: int = 50) -> dict[str, Any]:
        """JSON-serialisable report; long tables are cut to ``max_rows`` rows (consensus: see ``--out``)."""
        out = self.summary()
        out.update({
            "pairwise": frame_records(self.pairwise, max_rows if len(self.pairwise) > 500 else None),
            "annotators": frame_records(self.annotators),
            "confused_pairs": frame_records(self.confused_pairs, max_rows),
            "per_class": frame_records(self.per_class),
            "contested": frame_records(self.contested, max_rows),
            "dawid_skene_confusion": {
                str(a): {str(t): dict(zip(map(str, self.dawid_skene.labels), map(float, row)))
                         for t, row in zip(self.dawid_skene.labels, mat)}
                for a, mat in zip(self.dawid_skene.annotators, self.dawid_skene.confusion)
            } if self.n_annotators <= 100 else "omitted (more than 100 annotators); see the Python API",
            "by_version": {v: r.to_dict(max_rows=max_rows) for v, r in self.by_version.items()},
        })
        return out

    def to_text(self, *, max_rows: int = 10) -> str:
        """A human-readable table report."""
        return _format_report(self, max_rows=max_rows)


def _gold_accuracy(consensus: pd.DataFrame, counts: np.ndarray, labels: np.ndarray, gold: pd.Series) -> dict:
    g = consensus["item_id"].map(gold)
    has = g.notna().to_numpy()
    if not has.any():
        return {"n_items_with_gold": 0}
    gv = g.to_numpy(dtype=object)[has].astype(str)
    c = counts[has]
    top = c.max(axis=1)
    is_top = c == top[:, None]
    col = {lab: j for j, lab in enumerate(labels)}
    gold_code = np.array([col.get(x, -1) for x in gv])
    known = gold_code >= 0
    gold_is_top = np.zeros(gv.size, bool)
    gold_is_top[known] = is_top[np.flatnonzero(known), gold_code[known]]
    n_top = is_top.sum(axis=1)
    untied = n_top == 1
    return {
        "n_items_with_gold": int(has.sum()),
        "majority_vote_random_ties": float((consensus["majority_label"].to_numpy(dtype=object)[has].astype(str)
                                            == gv).mean()),
        "majority_vote_expected": float(np.where(gold_is_top, 1.0 / n_top, 0.0).mean()),
        "majority_vote_untied_only": float(gold_is_top[untied].mean()) if untied.any() else None,
        "n_ties": int((~untied).sum()),
        "dawid_skene": float((consensus["dawid_skene_label"].to_numpy(dtype=object)[has].astype(str) == gv).mean()),
    }


def _report(ann: pd.DataFrame, *, min_shared: int, random_state: int | None, gold: pd.Series | None,
            ds_max_iter: int) -> AgreementReport:
    codes = encode_ratings(ann)
    m = codes.n_ratings_per_item
    ds = dawid_skene(codes, max_iter=ds_max_iter)
    consensus = consensus_table(codes, random_state=random_state, ds=ds)
    pairable = m >= 2
    c = codes.counts[pairable].astype(np.float64)
    mm = m[pairable].astype(np.float64)
    pbar = float((((c * c).sum(axis=1) - mm) / (mm * (mm - 1))).mean()) if pairable.any() else float("nan")
    text = None
    if "text" in ann.columns:
        text = ann.drop_duplicates("item_id").set_index("item_id")["text"]
    return AgreementReport(
        n_items=int(codes.items.size), n_annotators=int(codes.annotators.size), n_ratings=int(codes.item.size),
        labels=[str(x) for x in codes.labels],
        ratings_per_item={"min": int(m.min()), "median": float(np.median(m)), "max": int(m.max())},
        percent_agreement=pbar, fleiss=fleiss_kappa(codes), krippendorff_alpha=krippendorff_alpha(codes),
        pairwise=pairwise_agreement(codes, min_shared=min_shared), annotators=annotator_agreement(codes, ds=ds),
        confused_pairs=confused_label_pairs(codes), per_class=per_class_agreement(codes),
        contested=contested_items(codes, text=text), consensus=consensus, dawid_skene=ds,
        gold_accuracy=None if gold is None else _gold_accuracy(consensus, codes.counts, codes.labels, gold),
        min_shared=min_shared,
    )


def agreement(df: pd.DataFrame, *, item_col: str = "item_id", annotator_col: str = "annotator",
              label_col: str = "label", gold_col: str | None = None, min_shared: int = 5,
              random_state: int | None = 0, ds_max_iter: int = 100, source: str = "<DataFrame>",
              unsure_labels=None, machine_annotators=()) -> AgreementReport:
    """Inter-annotator agreement and consensus for long-format annotations.

    Parameters
    ----------
    df : DataFrame
        One row per rating; optional ``text`` and ``guideline_version`` columns.
    item_col, annotator_col, label_col : str
        Column names.
    gold_col : str, optional
        A column holding a reference label per item (e.g. ``gold_label``); the report then gives
        the consensus accuracy against it.
    min_shared : int
        Annotator pairs sharing fewer items are left out of the pairwise table.
    random_state : int or None
        Breaks majority-vote ties (ties stay flagged in ``consensus.majority_tie``).
    ds_max_iter : int
        Dawid-Skene EM iterations at most.
    source : str
        Name for error messages.
    unsure_labels : iterable of str, optional
        Label values that mean "no rating" (default ``unsure``, ``needs_review``; an empty list
        counts every value as a class). Such ratings are counted (``n_unsure``) and left out.

    Returns
    -------
    AgreementReport
        With ``by_version`` filled when ``guideline_version`` is present.

    Raises
    ------
    DataError
        Missing columns, empty data, conflicting duplicate ratings, fewer than 2 annotators, or a
        gold column that gives one item two labels.
    """
    if isinstance(min_shared, bool) or not isinstance(min_shared, int) or min_shared < 1:
        raise ConfigError(f"min_shared must be a positive integer, got {min_shared!r}")
    ann = prepare_annotations(df, item_col=item_col, annotator_col=annotator_col, label_col=label_col, source=source)
    unsure_set = normalise_unsure_labels(unsure_labels)
    unsure = unsure_mask(ann["label"], unsure_set)
    unsure_by_annotator = {str(a): int(n) for a, n in ann.loc[unsure, "annotator"].value_counts().sort_index().items()}
    ann = ann[~unsure].reset_index(drop=True)
    if ann.empty:
        raise DataError(f"{source}: every rating is an unsure value ({', '.join(sorted(unsure_set))}); "
                        "nothing to measure agreement on")
    machines = check_machine_annotators(ann, machine_annotators, source=source)
    machine_votes = None
    if machines:
        # Agreement is a human figure: a model's labels are measured against the humans, not with them.
        ann, machine_votes = split_machine(ann, machines)
    if ann["annotator"].nunique() < 2:
        raise DataError(f"{source}: only one annotator ({ann['annotator'].iloc[0]!r}); agreement needs two or more")
    gold = None
    if gold_col is not None:
        if gold_col not in df.columns:
            raise DataError(f"{source}: no gold column {gold_col!r} (columns found: {', '.join(map(str, df.columns))})")

        g = pd.DataFrame({"item_id": [normalise_label(v) for v in df[item_col].to_numpy(dtype=object)],
                          "gold": [normalise_label(v) for v in df[gold_col].to_numpy(dtype=object)]}).dropna()
        g = g.drop_duplicates()
        dup = g["item_id"].duplicated(keep=False)
        if dup.any():
            raise DataError(f"{source}: item {g.loc[dup, 'item_id'].iloc[0]!r} has two different {gold_col!r} values; "
                            "the gold column needs one label per item")
        gold = g.set_index("item_id")["gold"]
    report = _report(ann, min_shared=min_shared, random_state=random_state, gold=gold, ds_max_iter=ds_max_iter)
    if "guideline_version" in ann.columns:
        versions = guideline_versions(ann["guideline_version"])
        for version in sorted(versions.unique()):
            sub = ann[versions.to_numpy() == version]
            if sub["annotator"].nunique() < 2:
                continue
            report.by_version[version] = _report(sub.reset_index(drop=True), min_shared=min_shared,
                                                 random_state=random_state, gold=gold, ds_max_iter=ds_max_iter)
    report.n_unsure = int(unsure.sum())
    report.unsure_by_annotator = unsure_by_annotator
    report.unsure_labels = sorted(unsure_set)
    if machines:
        report.machine_annotators = list(machines)
        # Against the human majority; an item whose top human labels tie is not scored.
        human = majority_vote(ann, tie_break="none").set_index("item_id")["label"]
        report.machine_report = machine_accuracy(machine_votes, human)
    return report


# --------------------------------------------------------------------------- text output

def format_number(x, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, (float, np.floating)):
        return "nan" if np.isnan(x) else f"{float(x) + 0.0:.{digits}f}".replace(f"-{0:.{digits}f}", f"{0:.{digits}f}")
    return " ".join(str(x).split())  # one line per row, whatever the text holds


def _table(df: pd.DataFrame, columns: list[str], max_rows: int, width: int = 60) -> list[str]:
    if df.empty:
        return ["  (none)"]
    rows = [[format_number(v)[:width] for v in r] for r in df[columns].head(max_rows).itertuples(index=False)]
    lines = text_table(columns, rows, indent="  ")
    if len(df) > max_rows:
        lines.append(f"  ... {len(df) - max_rows} more")
    return lines


def _format_report(r: AgreementReport, *, max_rows: int, title: str = "Agreement") -> str:
    s = r.summary()
    f = r.fleiss
    lines = [
        f"{title}: {r.n_ratings} ratings of {r.n_items} items by {r.n_annotators} annotators; "
        f"labels: {', '.join(r.labels)}",
        f"  ratings per item: min {r.ratings_per_item['min']}, median {r.ratings_per_item['median']:g}, "
        f"max {r.ratings_per_item['max']}"
        + (f"; {r.n_unsure} unsure rating(s) ({', '.join(r.unsure_labels)}) left out as missing" if r.n_unsure else "")
        + (f"; machine annotator(s) {', '.join(r.machine_annotators)} left out (accuracy against the human majority: "
           + ", ".join(f"{a} {format_number(acc)}" for a, acc in r.machine_report[r.machine_report['label'] == '(all)']
                       [['annotator', 'accuracy']].itertuples(index=False)) + ")" if r.machine_annotators else ""),
        f"  percent agreement (pairs within items): {format_number(r.percent_agreement)}",
        f"  Fleiss' kappa: {format_number(f.kappa)} on {f.n_items_used} items with {f.raters_per_item} raters"
        + (f" ({f.n_items_dropped} items dropped, rater counts {f.dropped})" if f.n_items_dropped else ""),
        f"  Krippendorff's alpha (nominal): {format_number(r.krippendorff_alpha)}",
        f"  mean pairwise Cohen's kappa: {format_number(s['mean_pairwise_cohen_kappa'])} over {len(r.pairwise)} pairs "
        f"sharing >= {r.min_shared} items",
        f"  contested items: {len(r.contested)} of {r.n_items}; majority-vote ties: {r.n_ties}; "
        f"Dawid-Skene differs from majority on {s['dawid_skene']['n_differs_from_majority']} items "
        f"({r.dawid_skene.n_iter} EM iterations{'' if r.dawid_skene.converged else ', not converged'})",
    ]
    if r.gold_accuracy and r.gold_accuracy.get("n_items_with_gold"):
        g = r.gold_accuracy
        lines.append(f"  accuracy vs gold ({g['n_items_with_gold']} items): majority vote {format_number(g['majority_vote_random_ties'])} "
                     f"(ties at random; expected {format_number(g['majority_vote_expected'])}, {g['n_ties']} ties), "
                     f"Dawid-Skene {format_number(g['dawid_skene'])}")
    lines += ["", "Pairwise (most shared items first):"]
    lines += _table(r.pairwise, ["annotator_a", "annotator_b", "n_shared", "percent_agreement", "cohen_kappa"], max_rows)
    lines += ["", "Per class (specific agreement):"]
    lines += _table(r.per_class, ["label", "n_ratings", "share_of_ratings", "specific_agreement"], max_rows)
    lines += ["", "Most confused label pairs:"]
    lines += _table(r.confused_pairs, ["label_a", "label_b", "n_pairs", "share"], max_rows)
    lines += ["", "Annotators vs consensus (lowest first):"]
    lines += _table(r.annotators, ["annotator", "n_ratings", "n_compared", "agree_majority", "agree_dawid_skene",
                                   "ds_accuracy"], max_rows)
    lines += ["", "Contested items (most split first):"]
    cols = ["item_id", "n_ratings", "split", "votes"] + (["text"] if "text" in r.contested.columns else [])
    lines += _table(r.contested, cols, max_rows)
    for version, sub in r.by_version.items():
        lines += ["", _format_report(sub, max_rows=max_rows, title=f"Guideline version {version}")]
    return "\n".join(lines)
