"""Agreement on ratings (a 1-5 helpfulness score, a 1-10 quality score) and on rubrics.

A rating is a number on a scale, so "3 vs 4" is a smaller disagreement than "1 vs 5". Nominal
agreement throws that away and reads a team's agreement as far lower than it is. Here:

- :func:`krippendorff_alpha_at` — Krippendorff's alpha at the ``nominal``, ``ordinal``,
  ``interval`` or ``ratio`` level (equal to the ``krippendorff`` package to 1e-9; the value domain
  is the values seen, as there).
- :func:`weighted_kappa` — Cohen's kappa with ``linear`` or ``quadratic`` weights for one pair of
  raters (equal to ``sklearn.metrics.cohen_kappa_score(..., labels=scale, weights=...)``: the
  weights count scale steps).
- :func:`ratings_report` — the whole picture (:class:`RatingsReport`): alpha at every level,
  pairwise weighted kappa, per-item spread (SD, range) and contested items, per-annotator bias
  (mean offset from the other raters' mean on the same items) and scale use, and a consensus score
  per item (mean, median, and a rater-bias-corrected mean). With several ``criteria`` columns
  (a rubric) every figure is given per criterion and for their total, and with a
  ``guideline_version`` column per version.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.labels import normalise_unsure_labels, unsure_mask
from selector.quality.agreement import (
    coincidence_matrix,
    format_number,
    frame_records,
    number_or_none,
)
from selector.quality.annotations import guideline_versions, prepare_annotations
from selector.tables import text_table

__all__ = ["LEVELS", "RatingsReport", "krippendorff_alpha_at", "weighted_kappa", "ratings_report", "rating_table",
           "TOTAL"]

LEVELS = ("nominal", "ordinal", "interval", "ratio")
#: Name of the rubric total (the sum of the criteria).
TOTAL = "total"
#: Alternating passes (at most) of the additive item + rater-bias model behind ``bias_corrected``.
_BIAS_PASSES = 1000


def _value_counts(item: np.ndarray, value: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n_items, V) counts of each value per item, and the sorted value domain (V,)."""
    domain, code = np.unique(value, return_inverse=True)
    items, item_code = np.unique(item, return_inverse=True)
    V = domain.size
    counts = np.bincount(item_code * V + code, minlength=items.size * V).reshape(items.size, V)
    return counts, domain


def _distance(domain: np.ndarray, n_v: np.ndarray, level: str) -> np.ndarray:
    """(V, V) squared distances of the value domain at ``level`` (Krippendorff 2011, section 4)."""
    V = domain.size
    if level == "nominal":
        return 1.0 - np.eye(V)
    if level == "ordinal":
        # delta(c, k) = (sum of n_g for g from c to k) - (n_c + n_k) / 2, squared
        cum = np.r_[0.0, np.cumsum(n_v)]
        i = np.arange(V)
        lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
        return (cum[hi + 1] - cum[lo] - (n_v[lo] + n_v[hi]) / 2.0) ** 2
    d = domain.astype(np.float64)
    if level == "interval":
        return (d[:, None] - d[None, :]) ** 2
    s = d[:, None] + d[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(s != 0, ((d[:, None] - d[None, :]) / s) ** 2, 0.0)


def krippendorff_alpha_at(item, value, level: str = "interval") -> float:
    """Krippendorff's alpha of ratings at a level of measurement.

    Parameters
    ----------
    item : array-like, shape (n_ratings,)
        The item each rating is of.
    value : array-like of float, shape (n_ratings,)
        The ratings (numbers; a nominal level compares them as categories).
    level : {"nominal", "ordinal", "interval", "ratio"}

    Returns
    -------
    float
        NaN when fewer than two pairable values exist or they do not vary.
    """
    if level not in LEVELS:
        raise ConfigError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    counts, domain = _value_counts(np.asarray(item), np.asarray(value, dtype=np.float64))
    o = coincidence_matrix(counts)
    n_v = o.sum(axis=0)
    n = n_v.sum()
    if n < 2:
        return float("nan")
    d = _distance(domain, n_v, level)
    expected = (np.outer(n_v, n_v) - np.diag(n_v)) / (n - 1.0)
    d_e = float((expected * d).sum())
    if d_e <= 0:
        return float("nan")
    return float(1.0 - (o * d).sum() / d_e)


def weighted_kappa(a, b, scale, weights: str | None = "quadratic") -> float:
    """Cohen's kappa of two raters' ratings of the same items, weighted by scale steps.

    Parameters
    ----------
    a, b : array-like of float, shape (n_shared,)
        The two raters' ratings, aligned by item.
    scale : array-like of float, shape (V,)
        The scale's values, sorted; a weight counts steps between positions on it.
    weights : {"linear", "quadratic", None}

    Returns
    -------
    float
        NaN when expected disagreement is zero (both raters used one value).
    """
    scale = np.asarray(scale, dtype=np.float64)
    ia = np.searchsorted(scale, np.asarray(a, dtype=np.float64))
    ib = np.searchsorted(scale, np.asarray(b, dtype=np.float64))
    V = scale.size
    observed = np.bincount(ia * V + ib, minlength=V * V).reshape(V, V).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / observed.sum()
    steps = np.abs(np.subtract.outer(np.arange(V), np.arange(V))).astype(np.float64)
    w = {"linear": steps, "quadratic": steps ** 2, None: (steps > 0).astype(np.float64)}[weights]
    d_e = float((w * expected).sum())
    if d_e == 0:
        return float("nan")
    return float(1.0 - (w * observed).sum() / d_e)


@dataclass
class RatingsReport:
    """Agreement figures for one rating column (or the rubric total).

    Attributes
    ----------
    name : str
        The criterion (the rating column's name, or ``total``).
    level : str
        The level the headline ``alpha`` is at.
    n_items, n_annotators, n_ratings : int
    scale : list of float
        The values seen, sorted.
    alpha : dict of str -> float
        Krippendorff's alpha at every level (``nominal``, ``ordinal``, ``interval``, ``ratio``).
    pairwise : DataFrame
        ``annotator_a, annotator_b, n_shared, percent_agreement, kappa_linear, kappa_quadratic``
        for pairs sharing ``min_shared`` items or more.
    items : DataFrame
        Per item: ``item_id, n_ratings, mean, median, sd, range, min, max, bias_corrected``
        (+ ``text``), highest spread first.
    contested : DataFrame
        Rows of ``items`` whose range is at least ``contested_range`` scale units.
    annotators : DataFrame
        ``annotator, n_ratings, mean, bias, sd, n_values_used, share_extremes`` (+ one ``share_<v>``
        per scale value): ``bias`` is the mean of (rating - the other raters' mean on that item).
    contested_range : float
    by_version : dict of str -> RatingsReport
    n_unsure : int
    """

    name: str
    level: str
    n_items: int
    n_annotators: int
    n_ratings: int
    scale: list
    alpha: dict
    pairwise: pd.DataFrame
    items: pd.DataFrame
    contested: pd.DataFrame
    annotators: pd.DataFrame
    contested_range: float
    by_version: dict = field(default_factory=dict)
    n_unsure: int = 0

    @property
    def headline(self) -> float:
        return self.alpha[self.level]

    def summary(self) -> dict[str, Any]:
        pk = self.pairwise
        return {"name": self.name, "level": self.level, "alpha": {k: number_or_none(v) for k, v in self.alpha.items()},
                "n_items": self.n_items, "n_annotators": self.n_annotators, "n_ratings": self.n_ratings,
                "scale": [number_or_none(v) for v in self.scale], "n_contested": int(len(self.contested)),
                "contested_range": self.contested_range, "n_unsure": self.n_unsure,
                "mean_item_sd": number_or_none(self.items["sd"].mean()),
                "mean_pairwise_kappa_linear": number_or_none(pk["kappa_linear"].mean()) if len(pk) else None,
                "mean_pairwise_kappa_quadratic": number_or_none(pk["kappa_quadratic"].mean()) if len(pk) else None}

    def to_dict(self, *, max_rows: int = 50) -> dict[str, Any]:
        out = self.summary()
        out.update({"pairwise": frame_records(self.pairwise, max_rows if len(self.pairwise) > 500 else None),
                    "annotators": frame_records(self.annotators),
                    "contested": frame_records(self.contested, max_rows),
                    "by_version": {v: r.to_dict(max_rows=max_rows) for v, r in self.by_version.items()}})
        return out


def rating_table(df: pd.DataFrame, *, item_col: str, annotator_col: str, rating_col: str, source: str,
                 unsure_labels=None) -> tuple[pd.DataFrame, int]:
    """Long-format ratings with numeric ``value`` (unsure values left out, counted).

    Returns
    -------
    ratings : DataFrame
        ``item_id, annotator, value`` (+ ``text``, ``guideline_version`` when present).
    n_unsure : int

    Raises
    ------
    DataError
        A rating that is not a number, naming the row and the column.
    """
    ann = prepare_annotations(df, item_col=item_col, annotator_col=annotator_col, label_col=rating_col, source=source)
    unsure = unsure_mask(ann["label"], normalise_unsure_labels(unsure_labels))
    ann = ann[~unsure].reset_index(drop=True)
    values = pd.to_numeric(ann["label"], errors="coerce")
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=np.float64, na_value=np.nan))
    if bad.any():
        first = ann.loc[bad, "label"].iloc[0]
        raise DataError(f"{source}: column {rating_col!r} holds {int(bad.sum())} rating(s) that are not numbers, "
                        f"e.g. {first!r} (item {ann.loc[bad, 'item_id'].iloc[0]!r}); ratings need a numeric scale, "
                        "or use --level nominal for categories")
    ann = ann.drop(columns="label")
    ann.insert(2, "value", values.to_numpy(dtype=np.float64))
    return ann, int(unsure.sum())


def _pairwise(r: pd.DataFrame, scale: np.ndarray, min_shared: int) -> pd.DataFrame:
    wide = r.pivot_table(index="item_id", columns="annotator", values="value", aggfunc="first")
    names = list(wide.columns)
    W = wide.to_numpy(dtype=np.float64)
    rows = []
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            both = ~np.isnan(W[:, i]) & ~np.isnan(W[:, j])
            n = int(both.sum())
            if n < min_shared:
                continue
            a, b = W[both, i], W[both, j]
            rows.append((names[i], names[j], n, float((a == b).mean()), weighted_kappa(a, b, scale, "linear"),
                         weighted_kappa(a, b, scale, "quadratic")))
    return pd.DataFrame(rows, columns=["annotator_a", "annotator_b", "n_shared", "percent_agreement",
                                       "kappa_linear", "kappa_quadratic"])


def _bias_corrected(item: np.ndarray, annotator: np.ndarray, value: np.ndarray, n_items: int,
                    n_ann: int) -> tuple[np.ndarray, np.ndarray]:
    """Additive model value = item score + rater bias, fitted by alternating means (least squares).

    The biases average to zero over raters, so an item's score is on the scale of the average
    rater, whoever happened to rate it. Returns the item scores (n_items,) and the biases (n_ann,).
    """
    bias = np.zeros(n_ann)
    n_i = np.bincount(item, minlength=n_items)
    n_a = np.maximum(np.bincount(annotator, minlength=n_ann), 1)
    for _ in range(_BIAS_PASSES):
        score = np.bincount(item, weights=value - bias[annotator], minlength=n_items) / n_i
        new = np.bincount(annotator, weights=value - score[item], minlength=n_ann) / n_a
        new -= new.mean()
        done = np.abs(new - bias).max() < 1e-10
        bias = new
        if done:
            break
    score = np.bincount(item, weights=value - bias[annotator], minlength=n_items) / n_i
    return score, bias


def _one_report(r: pd.DataFrame, *, name: str, level: str, min_shared: int,
                contested_range: float | None) -> RatingsReport:
    items, item = np.unique(r["item_id"].to_numpy(dtype=str), return_inverse=True)
    anns, ann = np.unique(r["annotator"].to_numpy(dtype=str), return_inverse=True)
    value = r["value"].to_numpy(dtype=np.float64)
    scale = np.unique(value)
    alpha = {lv: krippendorff_alpha_at(item, value, lv) for lv in LEVELS}
    span = float(scale.max() - scale.min()) if scale.size else 0.0
    if contested_range is None:
        # 40% of the scale's span, at least two of its smallest steps (2 on a 1-5 scale, 4 on 1-10).
        step = float(np.diff(scale).min()) if scale.size > 1 else 1.0
        contested_range = max(2 * step, math.ceil(0.4 * span / step) * step)
    g = pd.DataFrame({"item_id": items[item], "value": value}).groupby("item_id", sort=True)["value"]
    stats = g.agg(n_ratings="size", mean="mean", median="median", sd="std", min="min", max="max")
    stats["sd"] = g.std(ddof=0)  # population SD: the raters' spread, not an estimate of a wider one
    stats["range"] = stats["max"] - stats["min"]
    score, bias_fit = _bias_corrected(item, ann, value, items.size, anns.size)
    stats["bias_corrected"] = score
    stats = stats.reset_index()
    if "text" in r.columns:
        stats["text"] = stats["item_id"].map(r.drop_duplicates("item_id").set_index("item_id")["text"])
    stats = stats.sort_values(["range", "sd", "item_id"], ascending=[False, False, True], kind="stable")
    stats = stats[["item_id", "n_ratings", "mean", "median", "sd", "range", "min", "max", "bias_corrected"]
                  + (["text"] if "text" in stats.columns else [])].reset_index(drop=True)
    contested = stats[(stats["range"] >= contested_range) & (stats["n_ratings"] >= 2)].reset_index(drop=True)
    # Bias: offset from the *other* raters' mean on the same item (a rater is not compared with themself).
    total = np.bincount(item, weights=value, minlength=items.size)
    count = np.bincount(item, minlength=items.size)
    others = count[item] - 1
    has_others = others > 0
    offset = np.where(has_others, value - (total[item] - value) / np.maximum(others, 1), np.nan)
    rows = []
    extremes = (value == scale.min()) | (value == scale.max())
    for a, who in enumerate(anns):
        mine = ann == a
        v = value[mine]
        off = offset[mine & has_others]
        row = {"annotator": who, "n_ratings": int(mine.sum()), "mean": float(v.mean()),
               "bias": float(off.mean()) if off.size else float("nan"), "model_bias": float(bias_fit[a]),
               "sd": float(v.std()), "n_values_used": int(np.unique(v).size),
               "share_extremes": float(extremes[mine].mean())}
        row.update({f"share_{_fmt_value(s)}": float((v == s).mean()) for s in scale})
        rows.append(row)
    annotators = pd.DataFrame(rows)
    annotators = annotators.reindex(annotators["bias"].abs().sort_values(ascending=False, kind="stable").index)
    return RatingsReport(name=name, level=level, n_items=int(items.size), n_annotators=int(anns.size),
                         n_ratings=int(value.size), scale=[float(s) for s in scale], alpha=alpha,
                         pairwise=_pairwise(r, scale, min_shared), items=stats, contested=contested,
                         annotators=annotators.reset_index(drop=True), contested_range=float(contested_range))


def _fmt_value(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else format(v, "g")


def _versions(r: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if "guideline_version" not in r.columns:
        return {}
    versions = guideline_versions(r["guideline_version"])
    return {v: r[versions.to_numpy() == v].reset_index(drop=True) for v in sorted(versions.unique())}


def ratings_report(df: pd.DataFrame, *, item_col: str = "item_id", annotator_col: str = "annotator",
                   rating_col: str = "label", criteria: Sequence[str] | None = None, level: str = "ordinal",
                   min_shared: int = 5, contested_range: float | None = None, unsure_labels=None,
                   source: str = "<DataFrame>") -> dict[str, RatingsReport]:
    """Agreement on numeric ratings, per criterion of a rubric and for its total.

    Parameters
    ----------
    df : DataFrame
        Long format: one row per (item, annotator); optional ``text`` and ``guideline_version``.
    rating_col : str
        The rating column, when ``criteria`` is not given.
    criteria : sequence of str, optional
        Rubric columns, each a rating; the report then has one entry per criterion and ``total``
        (their sum, over ratings that score every criterion).
    level : {"nominal", "ordinal", "interval", "ratio"}
        The level of the headline alpha (every level is computed).
    contested_range : float, optional
        An item is contested when its ratings span at least this much (default: 40% of the scale's
        span, at least two steps).
    unsure_labels : iterable of str, optional
        Values meaning "no rating" (default ``unsure``, ``needs_review``); counted, left out.

    Returns
    -------
    dict of str -> RatingsReport
        Keyed by criterion (the rating column's name without a rubric), ``total`` last.

    Raises
    ------
    DataError
        Missing columns, non-numeric ratings, fewer than two annotators.
    """
    if level not in LEVELS:
        raise ConfigError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    if isinstance(min_shared, bool) or not isinstance(min_shared, int) or min_shared < 1:
        raise ConfigError(f"min_shared must be a positive integer, got {min_shared!r}")
    columns = list(criteria) if criteria else [rating_col]
    tables = {}
    for col in columns:
        r, n_unsure = rating_table(df, item_col=item_col, annotator_col=annotator_col, rating_col=col, source=source,
                                   unsure_labels=unsure_labels)
        if r.empty:
            raise DataError(f"{source}: column {col!r} has no ratings")
        if r["annotator"].nunique() < 2:
            raise DataError(f"{source}: only one annotator rated {col!r}; agreement needs two or more")
        tables[col] = (r, n_unsure)
    if criteria and len(columns) > 1:
        keys = ["item_id", "annotator"]
        merged = None
        for col in columns:
            part = tables[col][0][keys + ["value"]].rename(columns={"value": col})
            merged = part if merged is None else merged.merge(part, on=keys, how="inner")
        first = tables[columns[0]][0]
        extra = [c for c in ("text", "guideline_version") if c in first.columns]
        total = merged[keys].copy()
        total["value"] = merged[columns].sum(axis=1).to_numpy(dtype=np.float64)
        if extra:
            total = total.merge(first[keys + extra], on=keys, how="left")
        if total.empty:
            raise DataError(f"{source}: no rating scores every criterion ({', '.join(columns)}); the total needs them all")
        tables[TOTAL] = (total, 0)
    out = {}
    for name, (r, n_unsure) in tables.items():
        rep = _one_report(r, name=name, level=level, min_shared=min_shared, contested_range=contested_range)
        rep.n_unsure = n_unsure
        for version, sub in _versions(r).items():
            if sub["annotator"].nunique() >= 2:
                rep.by_version[version] = _one_report(sub, name=name, level=level, min_shared=min_shared,
                                                      contested_range=rep.contested_range)
        out[name] = rep
    return out


def format_ratings(reports: dict[str, RatingsReport], *, max_rows: int = 10) -> str:
    """The ratings report as text tables (alpha per criterion and level first)."""
    lines = []
    first = next(iter(reports.values()))
    lines.append(f"Ratings agreement ({first.n_items} items, {first.n_annotators} annotators, "
                 f"headline level: {first.level})")
    rows = [[name, str(r.n_ratings), " ".join(_fmt_value(v) for v in r.scale[:12]) + (" ..." if len(r.scale) > 12 else ""),
             *[format_number(r.alpha[lv]) for lv in LEVELS]] for name, r in reports.items()]
    lines += text_table(["criterion", "ratings", "scale", *[f"alpha_{lv}" for lv in LEVELS]], rows, indent="  ",
                        right=[1, 3, 4, 5, 6])
    for name, r in reports.items():
        lines.append("")
        lines.append(f"[{name}] Krippendorff's alpha ({r.level}) = {format_number(r.headline)}; "
                     f"mean item SD {format_number(r.items['sd'].mean())}; {len(r.contested)} contested item(s) "
                     f"(range >= {_fmt_value(r.contested_range)})"
                     + (f"; {r.n_unsure} unsure rating(s) left out" if r.n_unsure else ""))
        if len(r.pairwise):
            pk = r.pairwise
            lines.append(f"  weighted Cohen's kappa over {len(pk)} pair(s): linear {format_number(pk['kappa_linear'].mean())}, "
                         f"quadratic {format_number(pk['kappa_quadratic'].mean())} (mean)")
        a = r.annotators.head(max_rows)
        lines.append("  annotators (largest bias first):")
        lines += text_table(["annotator", "n", "mean", "bias", "sd", "values used", "extremes"],
                            [[str(x.annotator), str(x.n_ratings), format_number(x.mean), format_number(x.bias),
                              format_number(x.sd), str(x.n_values_used), format_number(x.share_extremes)]
                             for x in a.itertuples()], indent="    ", right=[1, 2, 3, 4, 5, 6])
        if len(r.contested):
            lines.append("  contested items (widest spread first):")
            c = r.contested.head(max_rows)
            lines += text_table(["item_id", "n", "mean", "sd", "range", "bias_corrected"]
                                + (["text"] if "text" in c.columns else []),
                                [[str(x.item_id), str(x.n_ratings), format_number(x.mean), format_number(x.sd),
                                  _fmt_value(x.range), format_number(x.bias_corrected)]
                                 + ([" ".join(str(x.text).split())[:60]] if "text" in c.columns else [])
                                 for x in c.itertuples()],
                                indent="    ", right=[1, 2, 3, 4, 5])
        for version, v in r.by_version.items():
            lines.append(f"  guideline version {version}: alpha ({v.level}) {format_number(v.headline)} "
                         f"over {v.n_items} items, {v.n_annotators} annotators")
    return "\n".join(lines)
