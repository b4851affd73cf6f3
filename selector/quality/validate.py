"""A release gate for a labeled set: the checks a data team runs before every training job.

Checks (each a :class:`Finding` listing the row ids it concerns):

==========================  ========  ===========================================================
check                       default   what it finds
==========================  ========  ===========================================================
``duplicate_id``            blocker   one id on several rows
``contradiction``           blocker   the same normalised text with different labels
``invalid_label``           blocker   a label outside the allowed set (``labels=``)
``exact_duplicate``         warning   the same normalised text with the same label, repeated
``near_duplicate``          warning   texts in different classes whose embeddings have cosine
                                      >= ``near_duplicate_threshold`` (default 0.95)
``label_variant``           warning   labels that differ only in case/spacing/punctuation
``class_imbalance``         warning   a class with < ``imbalance_ratio`` (5%) of the largest's rows
``missing_negatives``       warning   none of the negative labels (``out_of_scope``, ``oos``, ``none``,
                                      ``other``, ``refuse``, ``escalate``, ...), no ``not_*`` /
                                      ``non_*`` label and no refusal-style reply; a two-class set
                                      (positive/negative, ham/spam) has its negative built in
``empty_text``              warning   empty or near-empty texts (< ``min_text_chars`` letters/digits)
``placeholder_label``       warning   labels like ``-``, ``?``, ``n/a``, ``null``, ``nan``
``none_with_labels``        blocker   multi-label: the none token together with other labels
``exclusive_labels``        blocker   multi-label: declared mutually exclusive labels on one row
``cardinality_outlier``     warning   multi-label: a row with far more labels than the others
``unused_label``            warning   multi-label: a declared label no row carries
==========================  ========  ===========================================================

Multi-label tables (``multi_label=True``; cells are label sets, :mod:`selector.labelsets`) are
checked label by label (invalid, placeholder, variant, imbalance), and row by row on the whole set:
a contradiction is the same text with different sets (the message names the differing labels), a
duplicate the same text with the same set; the none token counts as the negative.

With ``output_col`` (a generation set: chat-format data's replies) the checks of
:mod:`selector.quality.generation` run too; ``output_contradiction`` and ``unparsable_output`` block
by default, the others warn. Duplicates are then the same input with the same reply.

"Normalised text" is :func:`selector.textnorm.normalise_text` (case, punctuation, whitespace folded).
The near-duplicate threshold 0.95 is for L2-normalised sentence embeddings (all-MiniLM-L6-v2):
at that level pairs are rewordings of one request (a changed article, a typo, a reordered
clause); below ~0.9 they are often different requests on one topic. The search runs in chunks of
rows against all labeled rows (memory ``chunk x n``), never an N x N matrix.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from selector.config import SelectConfig
from selector.errors import ConfigError, DataError
from selector.labels import normalise_label
from selector.labelsets import DEFAULT_LABEL_SEP, DEFAULT_NONE_LABEL, check_label_sep, parse_label_sets
from selector.quality.generation import (
    GENERATION_CHECKS,
    REPLY_AGREEMENT,
    generation_findings,
    is_refusal,
)
from selector.round.embed import embed_pool
from selector.round.pool import LabeledPool, check_text_cells, generated_ids
from selector.textnorm import normalise_text

__all__ = ["Finding", "ValidationReport", "validate", "near_duplicate_pairs", "CHECKS", "DEFAULT_BLOCKERS",
           "DEFAULT_NEGATIVES", "NEAR_DUPLICATE_THRESHOLD"]

CHECKS = ("duplicate_id", "contradiction", "invalid_label", "none_with_labels", "exclusive_labels",
          "output_contradiction", "unparsable_output", "exact_duplicate", "cardinality_outlier", "unused_label",
          "near_duplicate", "label_variant", "class_imbalance", "missing_negatives", "empty_text", "placeholder_label", *[c for c in GENERATION_CHECKS if c not in ("output_contradiction", "unparsable_output")])
DEFAULT_BLOCKERS = ("duplicate_id", "contradiction", "invalid_label", "none_with_labels", "exclusive_labels",
                    "output_contradiction", "unparsable_output")
#: A multi-label row is a cardinality outlier above max(this, mean + 3 sd) labels.
MIN_OUTLIER_CARDINALITY = 3
DEFAULT_NEGATIVES = ("out_of_scope", "oos", "none", "other", "refuse", "refusal", "escalate", "unknown",
                     "not_applicable")
NEAR_DUPLICATE_THRESHOLD = 0.95
_PLACEHOLDERS = {"nan", "null", "n/a", "na", "#n/a", "undefined", "?", "-", "tbd", "todo"}
_CHUNK_FLOATS = 1 << 24  # similarities held at once: 64 MB of float32


@dataclass
class Finding:
    """One check's result.

    Attributes
    ----------
    check : str
        One of :data:`CHECKS`.
    severity : {"blocker", "warning"}
    message : str
        One line for people.
    row_ids : list of str
        Every row the finding concerns.
    details : dict
        Check-specific data (e.g. ``groups``: the rows that belong together, ``pairs``).
    """

    check: str
    severity: str
    message: str
    row_ids: list
    details: dict = field(default_factory=dict)


@dataclass
class ValidationReport:
    """All findings for one table.

    Attributes
    ----------
    findings : list of Finding
        Only checks that found something.
    n_rows, n_labeled : int
    class_counts : dict
        Rows per label.
    settings : dict
        Thresholds and label sets used.
    source : str
    """

    findings: list
    n_rows: int
    n_labeled: int
    class_counts: dict
    settings: dict
    source: str = "<DataFrame>"

    @property
    def blockers(self) -> list:
        return [f for f in self.findings if f.severity == "blocker"]

    @property
    def passed(self) -> bool:
        """True when no blocker was found."""
        return not self.blockers

    def finding(self, check: str) -> Finding | None:
        return next((f for f in self.findings if f.check == check), None)

    def rows(self) -> pd.DataFrame:
        """One row per (finding, row id): ``check, severity, row_id, group`` (group index within the check)."""
        out = []
        for f in self.findings:
            groups = f.details.get("groups")
            if groups:
                for g, grp in enumerate(groups):
                    out += [(f.check, f.severity, rid, g) for rid in grp["row_ids"]]
            else:
                out += [(f.check, f.severity, rid, 0) for rid in f.row_ids]
        return pd.DataFrame(out, columns=["check", "severity", "row_id", "group"])

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "passed": self.passed, "n_rows": self.n_rows, "n_labeled": self.n_labeled,
                "n_blockers": len(self.blockers), "class_counts": self.class_counts, "settings": self.settings,
                "findings": [asdict(f) for f in self.findings]}

    def to_text(self, *, max_ids: int = 8) -> str:
        head = (f"{self.source}: {self.n_rows} rows, {self.n_labeled} labeled, {len(self.class_counts)} labels -> "
                f"{'PASS' if self.passed else 'FAIL'} ({len(self.blockers)} blocker(s), "
                f"{len(self.findings) - len(self.blockers)} warning(s))")
        lines = [head]
        for f in self.findings:
            ids = ", ".join(map(str, f.row_ids[:max_ids])) + (" ..." if len(f.row_ids) > max_ids else "")
            lines.append(f"  [{f.severity.upper()}] {f.check}: {f.message}")
            if ids:
                lines.append(f"      rows ({len(f.row_ids)}): {ids}")
        if not self.findings:
            lines.append("  no findings")
        return "\n".join(lines)


def _label_key(label: str) -> str:
    """``Out of Scope`` / ``out-of-scope`` / ``OUT_OF_SCOPE`` -> ``out_of_scope``."""
    return re.sub(r"[\W_]+", "_", label.casefold()).strip("_")


def near_duplicate_pairs(X: np.ndarray, threshold: float = NEAR_DUPLICATE_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (i < j) of rows with cosine similarity >= ``threshold``, found chunk by chunk.

    Parameters
    ----------
    X : ndarray of float32, shape (n, d)
        L2-normalised embeddings.
    threshold : float

    Returns
    -------
    pairs : ndarray of int64, shape (n_pairs, 2)
    similarity : ndarray of float32, shape (n_pairs,)
    """
    X = np.ascontiguousarray(X, dtype=np.float32)
    n = X.shape[0]
    chunk = max(1, _CHUNK_FLOATS // max(n, 1))
    found_i, found_j, found_s = [], [], []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        # Only columns after the chunk's first row: each unordered pair is seen once.
        sim = X[start:stop] @ X[start:].T
        r, c = np.nonzero(sim >= threshold)
        c_abs = c + start
        i_abs = r + start
        keep = c_abs > i_abs
        found_i.append(i_abs[keep])
        found_j.append(c_abs[keep])
        found_s.append(sim[r[keep], c[keep]])
    if not found_i:
        return np.zeros((0, 2), np.int64), np.zeros(0, np.float32)
    pairs = np.stack([np.concatenate(found_i), np.concatenate(found_j)], axis=1).astype(np.int64)
    return pairs, np.concatenate(found_s).astype(np.float32)


def _groups_by(keys: np.ndarray, positions: np.ndarray) -> list[np.ndarray]:
    """Positions sharing a key, for keys held by 2+ positions (in order of first appearance)."""
    if positions.size == 0:
        return []
    _, inverse, counts = np.unique(keys[positions], return_inverse=True, return_counts=True)
    multi = np.flatnonzero(counts > 1)
    if multi.size == 0:
        return []
    order = np.argsort(inverse, kind="stable")
    sorted_inv = inverse[order]
    starts = np.searchsorted(sorted_inv, multi)
    groups = [positions[order[s:s + counts[m]]] for s, m in zip(starts, multi)]
    groups.sort(key=lambda g: g[0])
    return groups


def validate(df: pd.DataFrame, *, text_col: str = "text", label_col: str = "label", id_col: str = "id",
             labels: Sequence[str] | None = None, negatives: Sequence[str] | None = DEFAULT_NEGATIVES,
             imbalance_ratio: float = 0.05, near_duplicate_threshold: float = NEAR_DUPLICATE_THRESHOLD,
             min_text_chars: int = 3, blockers: Sequence[str] = DEFAULT_BLOCKERS,
             embeddings: np.ndarray | str | Path | None = None, embedder=None, cache_dir: str | Path | None = None,
             config=None, near_duplicates: bool = True, max_groups: int = 200,
             unsure_labels: Sequence[str] = ("unsure", "needs_review"),
             output_col: str | None = None, system_col: str | None = None,
             reply_agreement: float | None = None, multi_label: bool = False,
             label_sep: str = DEFAULT_LABEL_SEP, none_label: str = DEFAULT_NONE_LABEL,
             exclusive: Sequence[Sequence[str]] = (),
             source: str = "<DataFrame>") -> ValidationReport:
    """Check a labeled table before training.

    Parameters
    ----------
    df : DataFrame
        One row per example; an empty label means unlabeled (ignored by the label checks).
    text_col, label_col, id_col : str
        Column names; without an id column ids are generated as in :func:`selector.round.pool.prepare_pool`.
    labels : sequence of str, optional
        The allowed label set; without it ``invalid_label`` is not checked.
    negatives : sequence of str or None
        Labels of which at least one should be present (compared case/punctuation-insensitively;
        a label starting with ``not_`` or ``non_`` also counts); None or empty skips ``missing_negatives``.
    imbalance_ratio : float
        A class with fewer than this share of the largest class's rows is flagged.
    near_duplicate_threshold : float
        Cosine similarity at or above which two labeled texts with different labels are flagged.
    min_text_chars : int
        Texts with fewer letters/digits than this (after normalisation) are near-empty.
    blockers : sequence of str
        Checks whose findings block a release (exit 1 in the CLI).
    embeddings : ndarray (n_rows, d) or path to .npy, optional
        Precomputed embeddings; otherwise ``embedder`` (default: the configured model, cached in
        ``cache_dir``) embeds the texts.
    config : SelectConfig, optional
        Model, device and batch size for the default embedder.
    near_duplicates : bool
        False skips the embedding check (no model needed).
    max_groups : int
        Groups/pairs kept in each finding's ``details`` (``row_ids`` always lists every row).
    unsure_labels : sequence of str
        Label values meaning "no label yet" (case-insensitive), treated as unlabeled as everywhere else.
    output_col, system_col : str, optional
        The reply and system-prompt columns of a generation set (chat-format data gives ``output``
        and ``system``); with ``output_col`` the generation checks run. A ``has_reply`` column, when
        present, tells an empty reply from a row without one.
    reply_agreement : float, optional
        Cosine below which two replies to one input disagree (default
        :data:`selector.quality.generation.REPLY_AGREEMENT`).
    multi_label : bool
        Label cells hold label sets (``label_sep``-joined or JSON lists; ``none_label`` = none of these).
    exclusive : sequence of label groups
        Multi-label: labels that must not share a row (each group of two or more labels).

    Returns
    -------
    ValidationReport
    """
    unknown = sorted(set(blockers) - set(CHECKS))
    if unknown:
        raise ConfigError(f"unknown check(s) in blockers: {', '.join(unknown)}; choose from {', '.join(CHECKS)}")
    if not 0.0 <= imbalance_ratio <= 1.0:
        raise ConfigError(f"imbalance_ratio must be between 0 and 1, got {imbalance_ratio!r}")
    if not -1.0 <= near_duplicate_threshold <= 1.0:
        raise ConfigError(f"near_duplicate_threshold must be a cosine in [-1, 1], got {near_duplicate_threshold!r}")
    if df.shape[0] == 0:
        raise DataError(f"{source}: has no data rows")
    for col, flag in ((text_col, "--text-col"), (label_col, "--label-col")):
        if col not in df.columns:
            raise DataError(f"{source}: no column {col!r} (columns found: {', '.join(map(str, df.columns[:30]))}); "
                            f"pass {flag} COLUMN")
    check_text_cells(df[text_col].to_numpy(dtype=object), source, text_col)
    texts = np.array(["" if normalise_label(t) is None else str(t) for t in df[text_col].to_numpy(dtype=object)],
                     dtype=object)
    unsure = {str(u).strip().casefold() for u in unsure_labels}
    raw_labels = df[label_col].to_numpy(dtype=object)
    sets = None
    if multi_label:
        check_label_sep(label_sep, none_label)
        sets = parse_label_sets(raw_labels, sep=label_sep, none_label=none_label, source=source, label_col=label_col)
        sets = [None if s_ is None or (isinstance(x, str) and x.strip().casefold() in unsure) else s_
                for s_, x in zip(sets, raw_labels)]
        # One cell per set, labels sorted: the same set written in another order is the same label.
        lab = np.array([None if s_ is None else (label_sep.join(sorted(s_)) if s_ else none_label) for s_ in sets],
                       dtype=object)
    else:
        lab = np.array([None if (v := normalise_label(x)) is not None and v.casefold() in unsure else v
                        for x in raw_labels], dtype=object)
    labeled = np.array([v is not None for v in lab])
    if id_col in df.columns:
        ids = np.array([normalise_label(v) or f"<row {i + 1}>" for i, v in enumerate(df[id_col].to_numpy(dtype=object))],
                       dtype=object)
    else:
        ids = generated_ids(texts)
    norm = np.array([normalise_text(t) for t in texts], dtype=object)
    blocking = set(blockers)
    findings: list[Finding] = []

    def add(check: str, message: str, positions, details: dict | None = None) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        findings.append(Finding(check=check, severity="blocker" if check in blocking else "warning",
                                message=message, row_ids=[str(x) for x in ids[positions]], details=details or {}))

    all_pos = np.arange(len(ids))
    # -- ids
    if id_col in df.columns:
        groups = _groups_by(ids.astype(str), all_pos)
        if groups:
            add("duplicate_id", f"{len(groups)} id(s) used on more than one row; ids must be unique",
                np.concatenate(groups), {"groups": [{"id": str(ids[g[0]]), "row_numbers": (g + 1).tolist(),
                                                     "row_ids": [str(ids[g[0]])] * g.size}
                                                    for g in groups[:max_groups]]})
    # -- empty texts
    n_chars = np.array([sum(ch.isalnum() for ch in t) for t in norm])
    empty = np.flatnonzero(n_chars < min_text_chars)
    if empty.size:
        add("empty_text", f"{empty.size} empty or near-empty text(s) (< {min_text_chars} letters/digits)", empty,
            {"examples": [{"row_id": str(ids[i]), "text": str(texts[i])} for i in empty[:max_groups]]})
    # -- labels
    lab_pos = np.flatnonzero(labeled)
    # The per-label checks read one (row, label) entry per label given: a single-label row has one,
    # a multi-label row one per label of its set (none for "none of these").
    if multi_label:
        entries = [(i, v) for i in lab_pos for v in sets[i] if v != none_label]
        entry_pos = np.array([e[0] for e in entries], dtype=np.int64)
        label_str = np.array([e[1] for e in entries], dtype=object).astype(str)
    else:
        entry_pos, label_str = lab_pos, lab[lab_pos].astype(str)
    placeholder = np.array([(_label_key(v) == "" or v.casefold() in _PLACEHOLDERS) for v in label_str], dtype=bool)
    if placeholder.any():
        vals = sorted(set(label_str[placeholder]))
        add("placeholder_label", f"{int(placeholder.sum())} row(s) carry a placeholder label ({', '.join(vals[:10])}); "
            "leave the cell empty for unlabeled rows or give a real label", np.unique(entry_pos[placeholder]))
    classes, class_counts = np.unique(label_str, return_counts=True)
    counts = {str(c): int(n) for c, n in zip(classes, class_counts)}
    keys = {}
    for c in classes:
        keys.setdefault(_label_key(str(c)), []).append(str(c))
    variants = {k: v for k, v in keys.items() if len(v) > 1}
    if variants:
        rows = np.unique(entry_pos[np.isin(label_str, [x for v in variants.values() for x in v])])
        add("label_variant", f"{len(variants)} label(s) spelled several ways: "
            + "; ".join(" / ".join(v) for v in list(variants.values())[:5]), rows, {"variants": variants})
    if labels is not None:
        allowed = {str(x).strip() for x in labels}
        bad = ~np.isin(label_str, list(allowed))
        if bad.any():
            vals = sorted(set(label_str[bad]))
            add("invalid_label", f"{np.unique(entry_pos[bad]).size} row(s) have a label outside the allowed set: "
                f"{', '.join(vals[:10])}{' ...' if len(vals) > 10 else ''}", np.unique(entry_pos[bad]),
                {"invalid_labels": {v: int((label_str == v).sum()) for v in vals}})
    if classes.size >= 2 and imbalance_ratio > 0:
        largest = class_counts.max()
        small = classes[class_counts < imbalance_ratio * largest]
        if small.size:
            add("class_imbalance", f"{small.size} class(es) have < {imbalance_ratio:.0%} of the largest class "
                f"({classes[class_counts.argmax()]}: {largest}): "
                + ", ".join(f"{c} ({counts[str(c)]})" for c in small[:10]),
                np.unique(entry_pos[np.isin(label_str, small)]),
                {"small_classes": {str(c): counts[str(c)] for c in small}})
    if multi_label:
        _multilabel_findings(add, sets, lab_pos, none_label, labels, exclusive, counts)
    outputs, has_output = None, None
    if output_col is not None:
        if output_col not in df.columns:
            raise DataError(f"{source}: no reply column {output_col!r}; generation checks need the replies")
        outputs = np.array(["" if normalise_label(v) is None else str(v) for v in df[output_col].to_numpy(dtype=object)],
                           dtype=object)
        has_output = (df["has_reply"].to_numpy(dtype=bool) if "has_reply" in df.columns
                      else np.array([o != "" for o in outputs]))
    refusals = int(sum(is_refusal(o) for o in outputs[has_output])) if outputs is not None else 0
    if negatives and (lab_pos.size or (outputs is not None and has_output.any())):
        wanted = {_label_key(str(x)) for x in negatives}
        keys_seen = {_label_key(str(c)) for c in classes}
        # "not_hate", "non_offensive": a binary task's negative class counts as one too, and a
        # two-class set (positive/negative, ham/spam) has its negative built in.
        binary = classes.size == 2 and not multi_label
        # A multi-label row labeled "none of these" is the negative answer itself.
        said_none = multi_label and any(sets[i] == () for i in lab_pos)
        if not (said_none or wanted & keys_seen or any(k.startswith(("not_", "non_")) for k in keys_seen) or binary or refusals):
            what = "negative label" if lab_pos.size else "refusal-style reply"
            add("missing_negatives", f"no {what} present (looked for {', '.join(map(str, negatives))}"
                f"{' and refusal-style replies' if outputs is not None else ''}); "
                "a model trained without one cannot say 'none of these' or decline", [],
                {"negatives": list(map(str, negatives)), "n_refusal_replies": refusals})
    # -- same normalised text
    nonempty_labeled = lab_pos[norm[lab_pos] != ""]
    contradictions, duplicates = [], []
    for g in _groups_by(norm, nonempty_labeled):
        (contradictions if len(set(lab[g])) > 1 else duplicates).append(g)
    if outputs is not None:
        # A generation set's duplicate is the same input with the same reply.
        with_reply = np.flatnonzero(has_output & (norm != ""))
        pair_key = np.array([n + "\x00" + normalise_text(o) for n, o in zip(norm, outputs)], dtype=object)
        duplicates = _groups_by(pair_key, with_reply)
    if contradictions:
        groups = [{"text": str(texts[g[0]]), "labels": sorted({str(x) for x in lab[g]}),
                   "row_ids": [str(x) for x in ids[g]]} for g in contradictions[:max_groups]]
        extra = ""
        if multi_label:
            # Name the labels the sets differ on: given on some of the rows but not on all.
            for grp, g in zip(groups, contradictions):
                given = [set(sets[i]) for i in g]
                grp["differing_labels"] = sorted(set.union(*given) - set.intersection(*given))
            first = groups[0]["differing_labels"]
            extra = (f"; e.g. rows {', '.join(groups[0]['row_ids'][:3])} differ on "
                     f"{', '.join(first[:5]) or none_label}")
        add("contradiction", f"{len(contradictions)} text(s) appear with different labels "
            f"({sum(g.size for g in contradictions)} rows){extra}", np.concatenate(contradictions), {"groups": groups})
    if duplicates:
        add("exact_duplicate", f"{len(duplicates)} text(s) repeated with the same label "
            f"({sum(g.size - 1 for g in duplicates)} extra rows)", np.concatenate(duplicates),
            {"groups": [{"text": str(texts[g[0]]), "label": str(lab[g[0]]), "row_ids": [str(x) for x in ids[g]]}
                        for g in duplicates[:max_groups]]})
    # -- near duplicates across labels
    settings = {"labels": None if labels is None else sorted(map(str, labels)),
                "multi_label": multi_label, "label_sep": label_sep if multi_label else None,
                "exclusive": [list(map(str, g)) for g in exclusive] if multi_label else None,
                "negatives": list(map(str, negatives or [])), "imbalance_ratio": imbalance_ratio,
                "near_duplicate_threshold": near_duplicate_threshold if near_duplicates else None,
                "min_text_chars": min_text_chars, "blockers": sorted(blocking),
                "text_normalisation": "NFKC, casefold, punctuation/symbols to spaces, whitespace collapsed"}
    if near_duplicates and nonempty_labeled.size >= 2:
        X = _embeddings(texts, ids, lab, labeled, embeddings, embedder, cache_dir, config, source)
        sub = nonempty_labeled
        pairs, sim = near_duplicate_pairs(X[sub], near_duplicate_threshold)
        i, j = sub[pairs[:, 0]], sub[pairs[:, 1]]
        across = (lab[i] != lab[j]) & (norm[i] != norm[j])  # same-text pairs are contradictions already
        i, j, sim = i[across], j[across], sim[across]
        if i.size:
            order = np.argsort(-sim, kind="stable")
            i, j, sim = i[order], j[order], sim[order]
            rows = np.unique(np.concatenate([i, j]))
            add("near_duplicate", f"{i.size} pair(s) of near-identical texts (cosine >= {near_duplicate_threshold}) "
                f"carry different labels", rows,
                {"groups": [{"similarity": round(float(s), 4), "row_ids": [str(ids[a]), str(ids[b])],
                             "labels": [str(lab[a]), str(lab[b])], "texts": [str(texts[a]), str(texts[b])]}
                            for a, b, s in zip(i[:max_groups], j[:max_groups], sim[:max_groups])],
                 "n_pairs": int(i.size)})
    if outputs is not None:
        systems = (np.array(["" if normalise_label(v) is None else str(v) for v in df[system_col].to_numpy(dtype=object)],
                            dtype=object) if system_col is not None and system_col in df.columns else None)
        embed = None
        if near_duplicates:
            def embed(batch):
                return _embeddings(np.asarray(batch, dtype=object), generated_ids(np.asarray(batch, dtype=object)),
                                   np.full(len(batch), None, dtype=object), np.zeros(len(batch), bool), None,
                                   embedder, cache_dir, config, source)
        for check, message, positions, details in generation_findings(
                texts, outputs, has_output, systems=systems, ids=ids, embed=embed,
                reply_agreement=settings_reply_agreement(reply_agreement), min_text_chars=min_text_chars,
                max_groups=max_groups, skip_groups={norm[g[0]] for g in contradictions}):
            add(check, message, positions, details)
        settings["reply_agreement"] = settings_reply_agreement(reply_agreement) if near_duplicates else None
    order = {c: n for n, c in enumerate(CHECKS)}
    findings.sort(key=lambda f: (f.severity != "blocker", order[f.check]))
    return ValidationReport(findings=findings, n_rows=int(len(ids)), n_labeled=int(lab_pos.size),
                            class_counts=counts, settings=settings, source=source)


def _multilabel_findings(add, sets, lab_pos: np.ndarray, none_label: str, labels, exclusive, counts: dict) -> None:
    """The checks only a multi-label table has (module docstring), through ``add(check, message, positions, details)``."""
    with_none = [i for i in lab_pos if none_label in sets[i] and len(sets[i]) > 1]
    if with_none:
        add("none_with_labels", f"{len(with_none)} row(s) say {none_label!r} and also give labels; keep either the "
            "labels or the none token", with_none)
    for group in exclusive:
        group = [str(g) for g in group]
        if len(group) < 2:
            raise ConfigError(f"an exclusive group needs two or more labels, got {group!r}")
        rows = [i for i in lab_pos if sum(g in sets[i] for g in group) >= 2]
        if rows:
            add("exclusive_labels", f"{len(rows)} row(s) carry labels declared mutually exclusive "
                f"({', '.join(group)}); keep one", rows, {"labels": group})
    sizes = np.array([len([v for v in sets[i] if v != none_label]) for i in lab_pos], dtype=np.float64)
    if sizes.size >= 10:
        cut = max(MIN_OUTLIER_CARDINALITY, sizes.mean() + 3 * sizes.std())
        many = lab_pos[sizes > cut]
        if many.size:
            add("cardinality_outlier", f"{many.size} row(s) carry more than {cut:.1f} labels (mean "
                f"{sizes.mean():.2f} per row); check they were not labeled by selecting everything", many,
                {"mean_cardinality": round(float(sizes.mean()), 4), "cut": round(float(cut), 4)})
    if labels is not None:
        unused = [str(v) for v in labels if str(v) not in counts and str(v) != none_label]
        if unused:
            add("unused_label", f"{len(unused)} declared label(s) no row carries: {', '.join(unused[:10])}"
                f"{' ...' if len(unused) > 10 else ''}", [], {"unused_labels": unused})


def settings_reply_agreement(value: float | None) -> float:
    """The reply-agreement cosine: ``value``, or the default, checked to be a cosine."""
    value = REPLY_AGREEMENT if value is None else value
    if not -1.0 <= value <= 1.0:
        raise ConfigError(f"reply_agreement must be a cosine in [-1, 1], got {value!r}")
    return value


def _embeddings(texts, ids, lab, labeled, embeddings, embedder, cache_dir, config, source) -> np.ndarray:

    pool = LabeledPool(ids=ids, texts=np.array([t if t else " " for t in texts], dtype=object), labels=lab,
                       labeled=labeled, ids_generated=False, source=source)
    X, _ = embed_pool(pool, config or SelectConfig(), embedder=embedder, embeddings=embeddings, cache_dir=cache_dir)
    return X
