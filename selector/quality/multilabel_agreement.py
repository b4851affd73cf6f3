"""Agreement on label sets: Krippendorff's alpha with MASI distance, per-label kappa, exact-set agreement.

Input is long format with one label *set* per (item, annotator): a column of tuples or lists
(:func:`selector.labelsets.parse_label_set` turns ``anger;fear`` cells into them).

* **MASI distance** (Passonneau 2006): ``1 - J(A, B) * M(A, B)``, ``J`` the Jaccard overlap and
  ``M`` 1 for equal sets, 2/3 when one holds the other, 1/3 for other overlapping sets, 0 for
  disjoint ones; two empty sets are at distance 0. Equal to NLTK's ``masi_distance`` (NLTK 3.9+;
  older releases rounded the weights to 0.67 and 0.33).
* **Krippendorff's alpha** with that distance, computed as NLTK's ``AnnotationTask.alpha`` does
  (items with fewer than two annotations are left out): ``1 - D_o / D_e``. One difference: NLTK
  drops an empty set as a missing value, while here it is the answer "none of these labels".
* **Per label**: each label as a yes/no question per (item, annotator): Fleiss' kappa over the items
  with at least two annotations, the mean pairwise Cohen's kappa, the share of items where
  annotators split on it.
* **Exact-set agreement**: the share of same-item annotator pairs that gave identical sets.
* **Consensus sets** (:func:`label_set_consensus`): per label, the majority of the item's
  annotators (a tie leaves the label out), and per-label Dawid-Skene (each label a yes/no question
  with its own annotator confusions), each with a quality score: the mean over labels of the
  support for the decided value (vote share, or the posterior).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from selector.errors import DataError
from selector.labelsets import DEFAULT_LABEL_SEP, DEFAULT_NONE_LABEL, LabelSpace, parse_label_sets
from selector.quality.agreement import fleiss_table_kappa

__all__ = ["masi_distance", "masi_alpha", "exact_set_agreement", "per_label_agreement", "set_codes",
           "label_set_consensus", "MultiLabelAgreement", "multilabel_agreement", "read_label_set_annotations",
           "multilabel_consensus"]


def masi_distance(a: Iterable[str], b: Iterable[str]) -> float:
    """MASI distance between two label sets, in [0, 1] (0 = the same set)."""
    a, b = frozenset(a), frozenset(b)
    union = len(a | b)
    if union == 0:
        return 0.0
    inter = len(a & b)
    if len(a) == len(b) == inter:
        m = 1.0
    elif inter == min(len(a), len(b)):
        m = 2.0 / 3.0
    elif inter > 0:
        m = 1.0 / 3.0
    else:
        m = 0.0
    return 1.0 - inter / union * m


def _masi_matrix(distinct: list[frozenset]) -> np.ndarray:
    """:func:`masi_distance` between every two of ``distinct`` sets, shape (S, S), from their indicator rows."""
    names = sorted({v for s in distinct for v in s})
    col = {v: j for j, v in enumerate(names)}
    B = np.zeros((len(distinct), len(names)))
    for i, s in enumerate(distinct):
        B[i, [col[v] for v in s]] = 1.0
    size = B.sum(axis=1)
    inter = B @ B.T
    union = size[:, None] + size[None, :] - inter
    smaller = np.minimum(size[:, None], size[None, :])
    m = np.where((inter == size[:, None]) & (inter == size[None, :]), 1.0,
                 np.where(inter == smaller, 2.0 / 3.0, np.where(inter > 0, 1.0 / 3.0, 0.0)))
    return np.where(union > 0, 1.0 - inter / np.maximum(union, 1.0) * m, 0.0)


def set_codes(ann: pd.DataFrame, *, item_col: str = "item_id", set_col: str = "labels"
              ) -> tuple[np.ndarray, list[frozenset], np.ndarray]:
    """Items, distinct sets and each annotation's set code.

    Returns
    -------
    items : ndarray of object, shape (n_annotations,)
    distinct : list of frozenset, length S
    code : ndarray of int64, shape (n_annotations,)
        Index into ``distinct``.
    """
    for col in (item_col, set_col):
        if col not in ann.columns:
            raise DataError(f"annotations have no {col!r} column (columns: {', '.join(map(str, ann.columns))})")
    sets = [frozenset(s) for s in ann[set_col]]
    distinct = sorted(set(sets), key=lambda s: (len(s), sorted(s)))
    at = {s: i for i, s in enumerate(distinct)}
    return ann[item_col].to_numpy(dtype=object), distinct, np.array([at[s] for s in sets], dtype=np.int64)


def masi_alpha(ann: pd.DataFrame, *, item_col: str = "item_id", set_col: str = "labels") -> float:
    """Krippendorff's alpha of label sets with MASI distance (NLTK's ``AnnotationTask.alpha``).

    Parameters
    ----------
    ann : DataFrame
        One row per (item, annotator) with a label set (tuple, list or set) in ``set_col``.

    Returns
    -------
    float
        1 = perfect agreement, 0 = chance; nan when no item has two annotations or every set is the same.
    """
    items, distinct, code = set_codes(ann, item_col=item_col, set_col=set_col)
    S = len(distinct)
    D = _masi_matrix(distinct)
    _, item_idx = np.unique(items.astype(str), return_inverse=True)
    counts = np.zeros((item_idx.max() + 1 if item_idx.size else 0, S))
    np.add.at(counts, (item_idx, code), 1.0)
    n_i = counts.sum(axis=1)
    counts = counts[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if counts.shape[0] == 0:
        return float("nan")
    observed = float((((counts @ D) * counts).sum(axis=1) / (n_i - 1)).sum() / n_i.sum())
    total = counts.sum(axis=0)
    N = total.sum()
    expected = float(total @ D @ total / (N * (N - 1)))
    if expected == 0:
        return float("nan")
    return 1.0 - observed / expected


def exact_set_agreement(ann: pd.DataFrame, *, item_col: str = "item_id", set_col: str = "labels") -> float:
    """Share of same-item annotator pairs with identical label sets (nan without any pair)."""
    items, _, code = set_codes(ann, item_col=item_col, set_col=set_col)
    _, item_idx = np.unique(items.astype(str), return_inverse=True)
    counts = np.zeros((item_idx.max() + 1 if item_idx.size else 0, int(code.max()) + 1 if code.size else 0))
    np.add.at(counts, (item_idx, code), 1.0)
    n = counts.sum(axis=1)
    pairs = (n * (n - 1) / 2).sum()
    if pairs == 0:
        return float("nan")
    return float((counts * (counts - 1) / 2).sum() / pairs)


def per_label_agreement(ann: pd.DataFrame, labels: Iterable[str], *, item_col: str = "item_id",
                        set_col: str = "labels", annotator_col: str = "annotator",
                        min_shared: int = 5) -> pd.DataFrame:
    """Each label as a yes/no question: Fleiss' and Cohen's kappa, how often it is given, the contested items.

    Parameters
    ----------
    labels : iterable of str
        The labels to report, in order.
    min_shared : int
        Annotator pairs sharing fewer items are left out of the Cohen's kappa mean.

    Returns
    -------
    DataFrame
        ``label, fleiss_kappa, cohen_kappa, share_given, n_items_contested, share_contested`` over the
        items with at least two annotations (a contested item: some annotators gave the label, others
        did not). ``cohen_kappa`` is the mean of Cohen's kappa over the annotator pairs that share at
        least ``min_shared`` items (nan without such a pair, or without an annotator column).
    """
    items = ann[item_col].astype(str).to_numpy()
    sets = [frozenset(s) for s in ann[set_col]]
    _, item_idx = np.unique(items, return_inverse=True)
    n_i = np.bincount(item_idx)
    keep = n_i >= 2
    pairs = _shared_pairs(ann, item_idx, annotator_col, min_shared)
    rows = []
    for label in labels:
        given = np.array([label in s for s in sets], dtype=float)
        yes = np.bincount(item_idx, weights=given, minlength=n_i.size)
        table = np.column_stack([n_i - yes, yes])[keep]
        contested = ((table[:, 0] > 0) & (table[:, 1] > 0)).sum()
        kappa = fleiss_table_kappa(table)
        rows.append({"label": label, "fleiss_kappa": kappa, "cohen_kappa": _mean_cohen(given, pairs),
                     "share_given": float(table[:, 1].sum() / max(table.sum(), 1)),
                     "n_items_contested": int(contested),
                     "share_contested": float(contested / max(table.shape[0], 1))})
    return pd.DataFrame(rows, columns=["label", "fleiss_kappa", "cohen_kappa", "share_given", "n_items_contested",
                                       "share_contested"])


def _shared_pairs(ann: pd.DataFrame, item_idx: np.ndarray, annotator_col: str,
                  min_shared: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each annotator pair sharing at least ``min_shared`` items: the positions (in ``ann``) of
    their two annotations of each shared item, as two aligned arrays."""
    if annotator_col not in ann.columns:
        return []
    who = ann[annotator_col].astype(str).to_numpy()
    by = {}
    for pos, (a, i) in enumerate(zip(who, item_idx)):
        by.setdefault(a, {})[int(i)] = pos
    names = sorted(by)
    out = []
    for x in range(len(names)):
        for y in range(x + 1, len(names)):
            a, b = by[names[x]], by[names[y]]
            shared = sorted(set(a) & set(b))
            if len(shared) >= min_shared:
                out.append((np.array([a[i] for i in shared]), np.array([b[i] for i in shared])))
    return out


def _mean_cohen(given: np.ndarray, pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean Cohen's kappa of a yes/no label (``given``, one 0/1 per annotation) over annotator ``pairs``;
    a pair where both always answer the same way has no chance-corrected agreement and is left out."""
    kappas = []
    for pa, pb in pairs:
        x, y = given[pa], given[pb]
        px, py = x.mean(), y.mean()
        pe = px * py + (1 - px) * (1 - py)
        if pe < 1.0:
            kappas.append(((x == y).mean() - pe) / (1.0 - pe))
    return float(np.mean(kappas)) if kappas else float("nan")


def read_label_set_annotations(df: pd.DataFrame, *, item_col: str = "item_id", annotator_col: str = "annotator",
                               label_col: str = "label", label_sep: str = DEFAULT_LABEL_SEP,
                               none_label: str = DEFAULT_NONE_LABEL, unsure_labels: Iterable[str] = (),
                               source: str = "annotations") -> pd.DataFrame:
    """Long-format annotations with a label set per row: ``item_id, annotator, labels`` (tuples).

    Empty cells and unsure values are not annotations and are dropped; the none token is the empty set.
    """
    from selector.quality.annotations import prepare_annotations

    ann = prepare_annotations(df.assign(**{label_col: df[label_col].map(
        lambda v: v if isinstance(v, str) or v is None else (label_sep.join(map(str, v)) if isinstance(v, (list, tuple))
                                                              else v))}),
        item_col=item_col, annotator_col=annotator_col, label_col=label_col, source=source, keep=())
    unsure = {str(u).strip().casefold() for u in unsure_labels}
    raw = ann["label"].to_numpy(dtype=object)
    sets = parse_label_sets(raw, sep=label_sep, none_label=none_label, source=source, label_col=label_col)
    keep = [s_ is not None and not (isinstance(r, str) and r.strip().casefold() in unsure) for s_, r in zip(sets, raw)]
    out = ann.loc[keep, ["item_id", "annotator"]].copy()
    out["labels"] = [tuple(v for v in s_ if v != none_label) for s_, k in zip(sets, keep) if k]
    return out.reset_index(drop=True)


def label_set_consensus(ann: pd.DataFrame, space: LabelSpace, *, max_iter: int = 100, X: np.ndarray | None = None,
                        random_state: int | None = 0, classifier=None) -> pd.DataFrame:
    """Consensus label sets per item by per-label majority, per-label Dawid-Skene and, with ``X``,
    per-label votes x model.

    Parameters
    ----------
    ann : DataFrame
        ``item_id, annotator, labels`` (:func:`read_label_set_annotations`).
    space : LabelSpace
    X : ndarray, shape (n_items, d), optional
        Item embeddings in sorted item-id order: each label's votes are then weighed against an
        out-of-fold model of that label (:func:`selector.quality.consensus.consensus_from_codes`,
        method ``model``), giving ``model_labels`` and ``model_quality``.

    Returns
    -------
    DataFrame
        One row per item: ``item_id, n_annotations, majority_labels, majority_quality, ds_labels,
        ds_quality`` (+ ``model_labels, model_quality``; sets written with :meth:`LabelSpace.join`),
        least certain first (by the model's quality when there is one, else Dawid-Skene's).
    """
    from selector.quality.agreement import dawid_skene

    items, item_idx = np.unique(ann["item_id"].astype(str).to_numpy(), return_inverse=True)
    n_i = np.bincount(item_idx, minlength=items.size).astype(np.float64)
    Y = space.indicator([tuple(s) for s in ann["labels"]])
    yes = np.zeros((items.size, space.n_labels))
    np.add.at(yes, item_idx, Y)
    share = yes / n_i[:, None]
    majority = share > 0.5
    majority_quality = np.where(majority, share, 1.0 - share).mean(axis=1)
    ds_post = np.zeros((items.size, space.n_labels))
    for j, name in enumerate(space.names):
        frame = pd.DataFrame({"item_id": ann["item_id"].astype(str), "annotator": ann["annotator"].astype(str),
                              "label": np.where(Y[:, j] == 1, "yes", "no")})
        if frame["label"].nunique() < 2:
            ds_post[:, j] = float(frame["label"].iloc[0] == "yes") if len(frame) else 0.0
            continue
        res = dawid_skene(frame, max_iter=max_iter, warn=False)
        col = list(res.labels).index("yes")
        at = {str(i): k for k, i in enumerate(res.items)}
        ds_post[:, j] = res.posterior[[at[i] for i in items], col]
    ds = ds_post >= 0.5
    ds_quality = np.where(ds, ds_post, 1.0 - ds_post).mean(axis=1)
    names = np.asarray(space.names, dtype=object)
    out = pd.DataFrame({
        "item_id": items, "n_annotations": n_i.astype(int),
        "majority_labels": [space.join(names[m]) for m in majority],
        "majority_quality": majority_quality.round(4),
        "ds_labels": [space.join(names[m]) for m in ds],
        "ds_quality": ds_quality.round(4),
    })
    key = "ds_quality"
    if X is not None:
        post = _model_posteriors(ann, Y, items, space, np.asarray(X, dtype=np.float32), random_state, classifier)
        chosen = post >= 0.5
        out["model_labels"] = [space.join(names[m]) for m in chosen]
        out["model_quality"] = np.where(chosen, post, 1.0 - post).mean(axis=1).round(4)
        key = "model_quality"
    return out.sort_values([key, "item_id"], kind="stable").reset_index(drop=True)


def _model_posteriors(ann: pd.DataFrame, Y: np.ndarray, items: np.ndarray, space: LabelSpace, X: np.ndarray,
                      random_state: int | None, classifier) -> np.ndarray:
    """P(label applies | votes, model) per item and label, shape (n_items, L): each label's yes/no votes
    weighed against its out-of-fold model (``consensus_from_codes``, method ``model``)."""
    from selector.quality.agreement import encode_ratings
    from selector.quality.consensus import consensus_from_codes

    if X.shape[0] != items.size:
        raise DataError(f"embeddings have {X.shape[0]} rows but there are {items.size} items")
    at = {str(i): k for k, i in enumerate(items)}
    post = np.zeros((items.size, space.n_labels))
    for j in range(space.n_labels):
        frame = pd.DataFrame({"item_id": ann["item_id"].astype(str), "annotator": ann["annotator"].astype(str),
                              "label": np.where(Y[:, j] == 1, "yes", "no")})
        if frame["label"].nunique() < 2:
            post[:, j] = float(frame["label"].iloc[0] == "yes") if len(frame) else 0.0
            continue
        codes = encode_ratings(frame)
        rows = np.array([at[str(i)] for i in codes.items])
        res = consensus_from_codes(codes, method="model", X=X[rows], random_state=random_state,
                                   classifier=classifier)
        post[rows, j] = res.posterior[:, list(res.labels).index("yes")]
    return post


@dataclass
class MultiLabelAgreement:
    """Agreement on label sets (see the module docstring)."""

    n_items: int
    n_annotators: int
    n_annotations: int
    masi_alpha: float
    exact_set_agreement: float
    per_label: pd.DataFrame
    consensus: pd.DataFrame
    labels: tuple = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"task": "multi_label", "n_items": self.n_items, "n_annotators": self.n_annotators,
                "n_annotations": self.n_annotations, "krippendorff_alpha_masi": self.masi_alpha,
                "exact_set_agreement": self.exact_set_agreement, "labels": list(self.labels),
                "per_label": self.per_label.to_dict(orient="records"),
                "least_certain": self.consensus.head(20).to_dict(orient="records")}

    def to_text(self, *, max_rows: int = 10) -> str:
        from selector.tables import text_table

        def rows(frame: pd.DataFrame) -> list[list[str]]:
            return [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r] for r in frame.itertuples(index=False)]

        lines = [f"Agreement on label sets: {self.n_items} items, {self.n_annotators} annotators, "
                 f"{self.n_annotations} annotations, {len(self.labels)} labels",
                 f"  Krippendorff's alpha (MASI distance): {self.masi_alpha:.3f}",
                 f"  exact-set agreement (same-item annotator pairs): {self.exact_set_agreement:.3f}", "",
                 "Per label (each label a yes/no question):",
                 *text_table(list(self.per_label.columns), rows(self.per_label), indent="  ", right=(1, 2, 3, 4)), "",
                 f"Least certain consensus sets (first {max_rows}):",
                 *text_table(list(self.consensus.columns), rows(self.consensus.head(max_rows)), indent="  ")]
        return "\n".join(lines)


def multilabel_agreement(df: pd.DataFrame, *, item_col: str = "item_id", annotator_col: str = "annotator",
                         label_col: str = "label", label_sep: str = DEFAULT_LABEL_SEP,
                         none_label: str = DEFAULT_NONE_LABEL, unsure_labels: Iterable[str] = (),
                         source: str = "annotations") -> MultiLabelAgreement:
    """Agreement and consensus for long-format label-set annotations (``agreement --multi-label``)."""
    ann = read_label_set_annotations(df, item_col=item_col, annotator_col=annotator_col, label_col=label_col,
                                     label_sep=label_sep, none_label=none_label, unsure_labels=unsure_labels,
                                     source=source)
    if ann.empty:
        raise DataError(f"{source}: no annotations with a label set in column {label_col!r}")
    space = LabelSpace.from_sets([tuple(s) for s in ann["labels"]], sep=label_sep, none_label=none_label)
    return MultiLabelAgreement(
        n_items=int(ann["item_id"].nunique()), n_annotators=int(ann["annotator"].nunique()), n_annotations=len(ann),
        masi_alpha=masi_alpha(ann), exact_set_agreement=exact_set_agreement(ann),
        per_label=per_label_agreement(ann, space.names), consensus=label_set_consensus(ann, space),
        labels=space.names)


def multilabel_consensus(annotations: pd.DataFrame, *, data: pd.DataFrame | None = None, method: str = "model",
                         item_col: str = "item_id", annotator_col: str = "annotator", label_col: str = "label",
                         text_col: str = "text", id_col: str = "id", unsure_labels: Iterable[str] = (),
                         label_sep: str | None = None, none_label: str | None = None, config=None, embedder=None,
                         cache_dir=None, classifier=None, show_progress: bool = False,
                         source: str = "annotations") -> pd.DataFrame:
    """Consensus label sets for label-set votes (``selector consensus`` on multi-label annotations).

    Parameters
    ----------
    annotations : DataFrame
        Long format, a label set per (item, annotator).
    data : DataFrame, optional
        The items' texts (``id_col`` = the item id); default: ``text_col`` in ``annotations``.
    method : {"model", "dawid_skene", "majority"}
        ``model`` weighs each label's votes against an out-of-fold model of it (needs texts); the
        table always has the majority and Dawid-Skene columns too.

    Returns
    -------
    DataFrame
        :func:`label_set_consensus`'s table.
    """
    from selector.config import SelectConfig
    from selector.round.embed import embed_pool
    from selector.round.pool import prepare_pool

    config = config or SelectConfig()
    sep = label_sep or config.label_sep
    none = none_label or config.none_label
    ann = read_label_set_annotations(annotations, item_col=item_col, annotator_col=annotator_col, label_col=label_col,
                                     label_sep=sep, none_label=none, unsure_labels=unsure_labels, source=source)
    if ann.empty:
        raise DataError(f"{source}: no annotations with a label set in column {label_col!r}")
    space = LabelSpace.from_sets([tuple(s_) for s_ in ann["labels"]], sep=sep, none_label=none)
    X = None
    if method == "model":
        items = np.unique(ann["item_id"].astype(str).to_numpy())
        if data is not None:
            for col in (id_col, text_col):
                if col not in data.columns:
                    raise DataError(f"--data has no {col!r} column (columns found: {', '.join(map(str, data.columns[:30]))})")
            by_id = pd.Series(data[text_col].to_numpy(dtype=object), index=data[id_col].astype(str).str.strip())
        elif text_col in annotations.columns:
            by_id = pd.Series(annotations[text_col].to_numpy(dtype=object),
                              index=annotations[item_col].astype(str).str.strip())
        else:
            raise DataError(f"{source}: --method model needs the items' texts: give --data, or a {text_col!r} column "
                            "in the annotations (or --method dawid_skene)")
        texts = by_id[~by_id.index.duplicated()].reindex(items).to_numpy(dtype=object)
        missing = [i for i, t in zip(items, texts) if not isinstance(t, str) or not t.strip()]
        if missing:
            raise DataError(f"{source}: item {missing[0]!r} has no text ({len(missing)} items in all); give every item "
                            "a text, or --method dawid_skene")
        pool = prepare_pool(pd.DataFrame({"id": items, "text": texts}), source=source, require_label_col=False)
        X, _ = embed_pool(pool, config, embedder=embedder, cache_dir=cache_dir, show_progress=show_progress)
    elif method not in ("dawid_skene", "majority"):
        raise DataError(f"unknown method {method!r}; choose model, dawid_skene or majority")
    return label_set_consensus(ann, space, X=X, random_state=config.seed, classifier=classifier)
