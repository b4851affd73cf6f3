"""A data card: what a labeled set holds and how far its labels can be trusted.

:func:`data_card` gathers counts, class balance, annotator agreement (when annotations are given),
agreement between the labels and an out-of-fold model per class, validator findings, embedding
coverage, guideline versions, known limitations and the commands/versions that produced it.
:meth:`DataCard.write` renders Markdown + JSON and two PNG plots beside them.

Coverage: the rows' embeddings are clustered with mini-batch k-means (``n_clusters``, default
``clip(round(sqrt(n_rows) / 2), 2, 100)``); a cluster with no labeled row is a region of the data
the model has never been shown a label for. The card reports how many clusters that is and the
share of the unlabeled pool inside them.
"""

from __future__ import annotations

import datetime as _dt
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from selector.config import SelectConfig
from selector.labelsets import table_task
from selector.errors import ConfigError
from selector.kmeans import cluster_pool
from selector.outputs import OutputPlan, Writer, json_file, text_file
from selector.quality.agreement import agreement, format_number, frame_records
from selector.quality.ratings import LEVELS, ratings_report
from selector.quality.validate import validate
from selector.round.embed import embed_pool
from selector.round.model import classifier_template, labels_problem, out_of_fold
from selector.round.pool import prepare_pool
from selector.round.record import package_versions

__all__ = ["DataCard", "data_card", "coverage"]

# Krippendorff (2004): alpha >= 0.8 reliable, 0.667-0.8 tentative conclusions only.
_ALPHA_TENTATIVE = 0.667


def coverage(X: np.ndarray, labeled: np.ndarray, *, n_clusters: int | None = None,
             random_state: int | None = 0) -> dict[str, Any]:
    """Clusters of the embeddings that hold no labeled row.

    Parameters
    ----------
    X : ndarray of float32, shape (n, d)
    labeled : ndarray of bool, shape (n,)
    n_clusters : int, optional
        Default ``clip(round(sqrt(n) / 2), 2, 100)``.
    random_state : int or None

    Returns
    -------
    dict
        ``n_clusters``, ``n_uncovered`` (clusters without a labeled row), ``pool_share_uncovered``
        (share of unlabeled rows in them), ``rows_share_uncovered``, ``uncovered_sizes``, ``cluster``
        (ndarray (n,) of cluster ids; not JSON).
    """
    n = X.shape[0]
    k = n_clusters if n_clusters is not None else int(np.clip(round(np.sqrt(n) / 2), 2, 100))
    k = int(min(k, n))
    if k < 2:
        raise ConfigError(f"coverage needs at least 2 rows and 2 clusters, got {n} rows")
    _, cluster, _ = cluster_pool(np.ascontiguousarray(X, dtype=np.float32), k, np.random.default_rng(random_state))
    size = np.bincount(cluster, minlength=k)
    lab_in = np.bincount(cluster[labeled], minlength=k)
    uncovered = (lab_in == 0) & (size > 0)
    pool = ~labeled
    in_unc = uncovered[cluster]
    return {"n_clusters": k, "n_uncovered": int(uncovered.sum()),
            "pool_share_uncovered": float(in_unc[pool].mean()) if pool.any() else 0.0,
            "rows_share_uncovered": float(in_unc.mean()),
            "uncovered_sizes": sorted(size[uncovered].tolist(), reverse=True), "cluster": cluster}


def _model_agreement(X: np.ndarray, y: np.ndarray, *, classifier, random_state) -> pd.DataFrame:
    """Per class: share of labeled rows whose out-of-fold prediction equals their label (one out-of-fold pass)."""
    oof = out_of_fold(classifier, X, y, random_state=random_state)
    classes = oof.classes
    pred = classes[oof.proba.argmax(axis=1)]
    hit = pred == y
    frame = pd.DataFrame({"label": y, "hit": hit}).groupby("label")["hit"].agg(["size", "mean"]).reset_index()
    return frame.rename(columns={"size": "n_rows", "mean": "model_agreement"})


@dataclass
class DataCard:
    """Everything on the card (see :meth:`to_dict` for the JSON layout)."""

    name: str
    counts: dict
    class_balance: pd.DataFrame
    validation: Any
    coverage: dict
    guideline_versions: dict
    limitations: list
    provenance: dict
    agreement: Any = None
    model_agreement: pd.DataFrame | None = None
    files: dict = field(default_factory=dict)
    ratings: dict | None = None

    def to_dict(self) -> dict[str, Any]:

        return {
            "name": self.name, "counts": self.counts, "class_balance": frame_records(self.class_balance),
            "agreement": None if self.agreement is None else self.agreement.to_dict(max_rows=20),
            "ratings": None if self.ratings is None else {k: r.to_dict(max_rows=20) for k, r in self.ratings.items()},
            "model_agreement": None if self.model_agreement is None else frame_records(self.model_agreement),
            "validation": self.validation.to_dict() if self.validation is not None else None,
            "coverage": {k: v for k, v in self.coverage.items() if k != "cluster"},
            "guideline_versions": self.guideline_versions, "limitations": self.limitations,
            "provenance": self.provenance, "files": self.files,
        }

    def to_markdown(self) -> str:
        return _markdown(self)

    def paths_for(self, out: str | Path) -> dict[str, Path]:
        """The files :meth:`write` makes for ``out`` (a path without extension or ending in ``.md``).

        ``markdown``, ``json``, ``class_balance_png`` and, with per-class agreement, ``agreement_png``.
        """
        paths = card_paths(out)
        if _per_class_agreement(self) is None:
            paths.pop("agreement_png")
        return paths

    def writers(self, paths: dict[str, Path]) -> dict[str, Writer]:
        """One writer per file of :meth:`paths_for` (for :meth:`selector.outputs.OutputPlan.commit`)."""
        self.files = {k: p.name for k, p in paths.items()}
        per_class = _per_class_agreement(self)
        writers = {"markdown": text_file(self.to_markdown()), "json": json_file(self.to_dict()),
                   "class_balance_png": lambda tmp: _plot_class_balance(self.class_balance, tmp)}
        if per_class is not None:
            writers["agreement_png"] = lambda tmp: _plot_agreement(per_class, tmp)
        return writers

    def write(self, out: str | Path) -> dict[str, Path]:
        """Write ``<out>.md``, ``<out>.json``, ``<out>.class_balance.png`` and ``<out>.agreement.png`` together.

        Returns the written paths.
        """
        plan = OutputPlan()
        paths = self.paths_for(out)
        for key, path in paths.items():
            plan.add_output(key, path, f"data card {key}")
        plan.check()
        return plan.commit(self.writers(paths))


def card_paths(out: str | Path) -> dict[str, Path]:
    """Every file a card for ``out`` may write: ``.md``, ``.json``, ``.class_balance.png``, ``.agreement.png``."""
    out = Path(out)
    base = out.with_suffix("") if out.suffix.lower() in (".md", ".json") else out
    return {"markdown": base.with_name(base.name + ".md"), "json": base.with_name(base.name + ".json"),
            "class_balance_png": base.with_name(base.name + ".class_balance.png"),
            "agreement_png": base.with_name(base.name + ".agreement.png")}


def data_card(df: pd.DataFrame, *, annotations: pd.DataFrame | None = None, name: str | None = None,
              text_col: str = "text", label_col: str = "label", id_col: str = "id",
              item_col: str = "item_id", annotator_col: str = "annotator", annotation_label_col: str = "label",
              labels: Sequence[str] | None = None, validate_options: dict | None = None,
              embeddings=None, embedder=None, cache_dir=None, config=None, classifier=None,
              model_agreement: bool = True, n_clusters: int | None = None, random_state: int | None = 0,
              command: str | None = None, input_sha256: str | None = None,
              ratings_level: str | None = None, criteria: Sequence[str] | None = None,
              source: str = "<DataFrame>") -> DataCard:
    """Build a data card for a labeled table (and, optionally, its raw annotations).

    Parameters
    ----------
    df : DataFrame
        The data table; an empty label = unlabeled.
    annotations : DataFrame, optional
        Long-format ratings (``item_id, annotator, label``, optional ``guideline_version``).
    labels : sequence of str, optional
        The allowed label set, for the validator.
    validate_options : dict, optional
        Extra keyword arguments for :func:`selector.quality.validate.validate`.
    embeddings, embedder, cache_dir, config
        As for :func:`selector.round.compute.embed_pool`; embedded once, shared by every section.
    model_agreement : bool
        Also fit out-of-fold models and report, per class, how often the model agrees with the label.
    n_clusters : int, optional
        k-means clusters for coverage.
    command, input_sha256 : str, optional
        Recorded under ``provenance``.
    ratings_level : {"ordinal", "interval", "ratio"}, optional
        The annotations are numeric ratings: the card shows :func:`selector.quality.ratings.ratings_report`
        (alpha at every level, weighted kappa, spread, rater bias) instead of nominal agreement.
    criteria : sequence of str, optional
        Rubric columns of the annotations (implies ratings; alpha per criterion and for the total).

    Returns
    -------
    DataCard
    """

    config = config or SelectConfig()
    multi = table_task(df, label_col, config.task, config.label_sep)[0] == "multi_label"
    pool = prepare_pool(df, text_col=text_col, label_col=label_col, id_col=id_col, source=source,
                        unsure_labels=config.unsure_labels, multi_label=multi, label_sep=config.label_sep,
                        none_label=config.none_label, declared_labels=labels if multi else None,
                        warn_label_sets=config.task == "single_label")
    X, embed_stats = embed_pool(pool, config, embedder=embedder, embeddings=embeddings, cache_dir=cache_dir)
    lab = pool.labeled_positions
    y = pool.labels[lab].astype(str)
    if multi:  # a multi-label card counts rows per label (a row with two labels counts for both)
        label_counts = pool.space.counts(pool.Y[lab])
        classes = np.array([k for k, v in label_counts.items() if v], dtype=object)
        counts = np.array([label_counts[k] for k in classes], dtype=np.int64)
    else:
        classes, counts = np.unique(y, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    # share: of the labeled rows (multi-label shares need not sum to 1).
    balance = pd.DataFrame({"label": classes[order], "n_rows": counts[order],
                            "share": counts[order] / max(lab.size if multi else counts.sum(), 1)})
    balance["ratio_to_largest"] = balance["n_rows"] / max(int(counts.max()) if counts.size else 1, 1)

    chat = df.attrs.get("selector_chat")
    report = validate(df, text_col=text_col, label_col=label_col, id_col=id_col, labels=labels, embeddings=X,
                      source=source, output_col="output" if chat else None, system_col="system" if chat else None,
                      embedder=embedder, cache_dir=cache_dir, config=config,
                      **({"multi_label": True, "label_sep": config.label_sep, "none_label": config.none_label}
                         if multi else {}), **(validate_options or {}))
    cov = coverage(X, pool.labeled, n_clusters=n_clusters, random_state=random_state)
    agree = None
    versions: dict[str, Any] = {}
    ratings = None
    if annotations is not None and (ratings_level is not None or criteria):
        ratings = ratings_report(annotations, item_col=item_col, annotator_col=annotator_col,
                                 rating_col=annotation_label_col, criteria=criteria, level=ratings_level or "ordinal",
                                 unsure_labels=(validate_options or {}).get("unsure_labels"),
                                 source=f"{source} (annotations)")
    elif annotations is not None and multi:
        raise ConfigError("a multi-label card does not read --annotations yet; measure agreement on the label sets "
                          "with `selector agreement --multi-label`")
    elif annotations is not None:
        agree = agreement(annotations, item_col=item_col, annotator_col=annotator_col,
                          label_col=annotation_label_col, random_state=random_state, source=f"{source} (annotations)",
                          unsure_labels=(validate_options or {}).get("unsure_labels"))
        if "guideline_version" in annotations.columns:
            gv = annotations["guideline_version"].astype(str).str.strip().replace("", "(none)")
            versions["annotations"] = {str(k): int(v) for k, v in gv.value_counts().sort_index().items()}
    if "guideline_version" in df.columns:
        gv = df["guideline_version"].astype(str).str.strip().replace("", "(none)")
        versions["data"] = {str(k): int(v) for k, v in gv.value_counts().sort_index().items()}
    model_frame = None
    if model_agreement and not multi and labels_problem(y) is None:
        model_frame = _model_agreement(X[lab], y, classifier=classifier_template(config, classifier),
                                       random_state=random_state)

    counts_d = {"n_rows": pool.n, "n_labeled": int(lab.size), "n_unlabeled": int(pool.n - lab.size),
                "n_labels": int(classes.size), "ids_generated": pool.ids_generated}
    if multi:
        counts_d.update(task="multi_label", label_cardinality=round(pool.space.cardinality(pool.Y[lab]), 4),
                        n_none_of_these=int((pool.Y[lab].sum(axis=1) == 0).sum()))
    card = DataCard(
        name=name or source, counts=counts_d, class_balance=balance, validation=report, coverage=cov,
        guideline_versions=versions, limitations=[], agreement=agree, model_agreement=model_frame, ratings=ratings,
        provenance={"created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                    "command": command, "input": {"path": source, "sha256": input_sha256},
                    "model_fingerprint": embed_stats["model_fingerprint"], "versions": package_versions(),
                    "seed": random_state, "n_clusters": cov["n_clusters"]},
    )
    card.limitations = _limitations(card)
    return card


def _limitations(card: DataCard) -> list[str]:
    """Known limitations, derived from the figures (each one a sentence a reader can act on)."""
    out = []
    c = card.counts
    if card.agreement is None:
        out.append("No annotator-level ratings were given: label reliability (agreement) is unmeasured; "
                   "pass --annotations to measure it.")
    else:
        a = card.agreement.krippendorff_alpha
        if np.isfinite(a) and a < _ALPHA_TENTATIVE:
            out.append(f"Krippendorff's alpha is {a:.3f} (< {_ALPHA_TENTATIVE}, Krippendorff's floor for tentative "
                       "conclusions): labels are noisy; prefer consensus labels and soft targets.")
        if card.agreement.n_ties:
            out.append(f"{card.agreement.n_ties} item(s) have a majority-vote tie; their consensus label is a coin flip.")
    v = card.validation
    for f in v.findings:
        if f.check in ("contradiction", "invalid_label", "duplicate_id", "missing_negatives", "class_imbalance",
                       "near_duplicate"):
            out.append(f"Validator ({f.severity}): {f.check}: {f.message}.")
    cov = card.coverage
    if cov["n_uncovered"]:
        out.append(f"{cov['n_uncovered']} of {cov['n_clusters']} embedding clusters hold no labeled row "
                   f"({cov['pool_share_uncovered']:.1%} of the unlabeled pool): a model has seen no label there.")
    if card.model_agreement is not None:
        weak = card.model_agreement[card.model_agreement["model_agreement"] < 0.5]
        if len(weak):
            out.append(f"{len(weak)} class(es) where an out-of-fold model agrees with the label on < 50% of rows "
                       f"({', '.join(weak.sort_values('model_agreement')['label'].astype(str).head(5))}): "
                       "overlapping definitions or too few examples.")
    if c["ids_generated"]:
        out.append("No id column: ids were generated from text hash and row number, so they change if rows move.")
    out.append("Embedding-based figures (coverage, near-duplicates, model agreement) depend on the embedding "
               f"model ({card.provenance['model_fingerprint']}) and the k-means seed.")
    return out


def _per_class_agreement(card: DataCard) -> pd.DataFrame | None:
    frames = []
    if card.agreement is not None:
        pc = card.agreement.per_class[["label", "specific_agreement"]].rename(
            columns={"specific_agreement": "annotators (specific agreement)"})
        frames.append(pc.set_index("label"))
    if card.model_agreement is not None:
        frames.append(card.model_agreement.set_index("label")[["model_agreement"]].rename(
            columns={"model_agreement": "label vs out-of-fold model"}))
    if not frames:
        return None
    return pd.concat(frames, axis=1)


def _figure(n_bars: int):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, max(2.5, 0.18 * n_bars + 1.2)), dpi=110)
    FigureCanvasAgg(fig)  # the Agg canvas: no display, no global backend switch
    return fig


def _save(fig, path: Path) -> None:
    """Save ``fig`` as PNG at ``path`` (a temp file of the commit; the format is explicit)."""
    fig.tight_layout()
    fig.savefig(path, format="png")


def _plot_class_balance(balance: pd.DataFrame, path: Path) -> None:
    fig = _figure(len(balance))
    ax = fig.add_subplot(1, 1, 1)
    b = balance.iloc[::-1]
    ax.barh(b["label"].astype(str), b["n_rows"], color="#4C72B0")
    ax.set_xlabel("labeled rows")
    ax.set_title(f"Class balance ({int(balance['n_rows'].sum())} labeled rows, {len(balance)} labels)")
    ax.tick_params(axis="y", labelsize=7 if len(balance) > 30 else 9)
    _save(fig, path)


def _plot_agreement(per_class: pd.DataFrame, path: Path) -> None:
    fig = _figure(len(per_class) * max(1, per_class.shape[1]) // 1)
    ax = fig.add_subplot(1, 1, 1)
    data = per_class.sort_values(per_class.columns[0], na_position="first")
    pos = np.arange(len(data))
    height = 0.8 / data.shape[1]
    for j, col in enumerate(data.columns):
        ax.barh(pos + j * height, data[col].to_numpy(dtype=float), height=height, label=col)
    ax.set_yticks(pos + height * (data.shape[1] - 1) / 2)
    ax.set_yticklabels(data.index.astype(str), fontsize=7 if len(data) > 30 else 9)
    ax.set_xlim(0, 1)
    ax.set_xlabel("agreement")
    ax.set_title("Agreement per class")
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def _md(text) -> str:
    """``text`` safe inside Markdown: HTML escaped (labels and texts are user data); pipes, brackets and
    backticks escaped, so a label cannot open a table cell, a link (``[x](javascript:...)``) or a code
    span."""
    out = html.escape(str(text), quote=False)
    for ch in ("\\", "|", "[", "]", "`"):
        out = out.replace(ch, "\\" + ch)
    return out


def _code(text) -> str:
    """``text`` as a Markdown code span that no backtick inside it can close (CommonMark: a fence one
    backtick longer than the longest run inside, padded with spaces)."""
    text = str(text).replace("\n", " ")
    fence = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    return f"{fence} {text} {fence}"


def _md_table(df: pd.DataFrame, max_rows: int | None = None) -> str:
    d = df if max_rows is None else df.head(max_rows)
    lines = ["| " + " | ".join(_md(c) for c in d.columns) + " |", "|" + "---|" * d.shape[1]]
    for row in d.itertuples(index=False):
        lines.append("| " + " | ".join(_md(format_number(v)) for v in row) + " |")
    if max_rows is not None and len(df) > max_rows:
        lines.append(f"\n... {len(df) - max_rows} more rows in the JSON card.")
    return "\n".join(lines)


def _markdown(card: DataCard) -> str:
    c = card.counts
    L = [f"# Data card: {_md(card.name)}", "",
         f"Created {card.provenance['created']} by selector {card.provenance['versions'].get('selector')}.", "",
         "## Counts", "",
         f"- rows: {c['n_rows']} ({c['n_labeled']} labeled, {c['n_unlabeled']} unlabeled)",
         f"- labels: {c['n_labels']}",
         f"- ids: {'generated (no id column)' if c['ids_generated'] else 'from the id column'}", "",
         "## Class balance", ""]
    if card.files.get("class_balance_png"):
        L += [f"![class balance]({card.files['class_balance_png']})", ""]
    cb = card.class_balance.copy()
    L += [_md_table(cb, 100), ""]
    L += ["## Agreement", ""]
    if card.ratings is not None:
        L += _ratings_markdown(card.ratings)
    elif card.agreement is None:
        L += ["No annotator-level ratings given (`--annotations`): agreement is unmeasured.", ""]
    else:
        s = card.agreement.summary()
        L += [f"- ratings: {s['n_ratings']} of {s['n_items']} items by {s['n_annotators']} annotators"
              + (f"; {s['n_unsure']} unsure rating(s) ({_md(', '.join(s['unsure_labels']))}) counted as missing, "
                 "not as a class" if s["n_unsure"] else ""),
              f"- percent agreement: {_f(s['percent_agreement'])}",
              f"- Fleiss' kappa: {_f(s['fleiss']['kappa'])} ({s['fleiss']['n_items_used']} items, "
              f"{s['fleiss']['n_items_dropped']} dropped for unequal rater counts)",
              f"- Krippendorff's alpha (nominal): {_f(s['krippendorff_alpha'])}",
              f"- mean pairwise Cohen's kappa: {_f(s['mean_pairwise_cohen_kappa'])} over {s['n_pairs_compared']} pairs",
              f"- contested items: {s['n_contested']}; majority-vote ties: {s['n_majority_ties']}", ""]
        L += ["Most confused label pairs:", "", _md_table(card.agreement.confused_pairs, 10), ""]
        for version, sub in card.agreement.by_version.items():
            L.append(f"- guideline {_md(version)}: {sub.n_items} items, Krippendorff's alpha {_f(sub.krippendorff_alpha)}, "
                     f"Fleiss' kappa {_f(sub.fleiss.kappa)}")
        if card.agreement.by_version:
            L.append("")
    if card.model_agreement is not None:
        L += ["Label vs out-of-fold model, per class (share of rows where a model trained without the row "
              "predicts its label; lowest first):", "",
              _md_table(card.model_agreement.sort_values("model_agreement"), 20), ""]
    if card.files.get("agreement_png"):
        L += [f"![agreement per class]({card.files['agreement_png']})", ""]
    v = card.validation
    L += ["## Validator findings", "",
          f"Result: **{'PASS' if v.passed else 'FAIL'}** ({len(v.blockers)} blocker(s), "
          f"{len(v.findings) - len(v.blockers)} warning(s)).", ""]
    if v.findings:
        L += ["| check | severity | rows | finding |", "|---|---|---|---|"]
        L += [f"| {f.check} | {f.severity} | {len(f.row_ids)} | {_md(f.message)} |" for f in v.findings]
        L.append("")
    cov = card.coverage
    L += ["## Coverage", "",
          f"k-means with {cov['n_clusters']} clusters on the embeddings: **{cov['n_uncovered']}** "
          f"cluster(s) hold no labeled row; they contain {cov['pool_share_uncovered']:.1%} of the unlabeled pool "
          f"({cov['rows_share_uncovered']:.1%} of all rows).", ""]
    L += ["## Guideline versions", ""]
    if card.guideline_versions:
        for where, counts in card.guideline_versions.items():
            L.append(f"- {_md(where)}: " + ", ".join(f"{_md(k)} ({n} rows)" for k, n in counts.items()))
    else:
        L.append("- none recorded (no `guideline_version` column)")
    L += ["", "## Known limitations", ""] + [f"- {_md(x)}" for x in card.limitations]
    p = card.provenance
    L += ["", "## How this card was made", "",
          f"- command: {_code(p['command'] or 'Python API (selector.data_card)')}",
          f"- input: {_code(p['input']['path'])}" + (f" (sha256 {p['input']['sha256']})" if p['input']['sha256'] else ""),
          f"- embedding model: {p['model_fingerprint']}; seed {p['seed']}",
          "- versions: " + ", ".join(f"{k} {v}" for k, v in p["versions"].items()), ""]
    return "\n".join(L)


def _ratings_markdown(reports: dict) -> list[str]:
    first = next(iter(reports.values()))
    L = [f"Ratings on a scale: {first.n_ratings} ratings of {first.n_items} items by {first.n_annotators} annotators; "
         f"Krippendorff's alpha at every level of measurement (headline: {first.level}).", "",
         "| criterion | scale | nominal | ordinal | interval | ratio | weighted kappa (quadratic) | mean item SD | contested |",
         "|---|---|---|---|---|---|---|---|---|"]
    for name, r in reports.items():
        pk = r.pairwise["kappa_quadratic"].mean() if len(r.pairwise) else None
        scale = " ".join(format(v, "g") for v in r.scale[:12])
        L.append(f"| {_md(name)} | {scale} | " + " | ".join(_f(r.alpha[lv]) for lv in LEVELS)
                 + f" | {_f(pk)} | {_f(r.items['sd'].mean())} | {len(r.contested)} |")
    L.append("")
    r = next(reversed(reports.values()))
    a = r.annotators[["annotator", "n_ratings", "mean", "bias", "sd", "n_values_used", "share_extremes"]]
    L += [f"Rater bias and scale use ({_md(r.name)}; bias = mean offset from the other raters' mean on the "
          "same items; largest first):", "", _md_table(a, 20), ""]
    for version, v in r.by_version.items():
        L.append(f"- guideline {_md(version)}: alpha ({v.level}) {_f(v.headline)} over {v.n_items} items")
    if r.by_version:
        L.append("")
    return L


def _f(x) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    return f"{x:.3f}"
