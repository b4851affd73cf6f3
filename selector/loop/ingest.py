"""The data flywheel: add new unlabeled rows (e.g. failed production samples) to the pool.

:func:`ingest_rows` appends rows with their ``source`` and failure ``bucket``, dropping exact
duplicates (same text after Unicode NFKC, case folding, dropping punctuation and collapsing
whitespace) and near
duplicates (embedding cosine similarity >= ``NEAR_DUPLICATE_THRESHOLD`` to a row already present or
to an earlier new row). Near duplicates are found with a nearest-neighbour query per new row
(scikit-learn's brute-force search, which works in memory-bounded chunks), never an N x N matrix.

:func:`prioritise_buckets` lets ``selector select --bucket-priority SHARE`` reserve part of the
budget for unlabeled rows of the rarest buckets, so a failure mode seen a handful of times is not
drowned by the bulk of the pool.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.neighbors import nearest_in
from selector.round.buckets import BUCKET_COL
from selector.textnorm import normalise_text

__all__ = [
    "NEAR_DUPLICATE_THRESHOLD",
    "SOURCE_COL",
    "BUCKET_COL",
    "IngestResult",
    "ingest_rows",
]

#: Cosine similarity at or above which two texts count as near duplicates. Measured with
#: all-MiniLM-L6-v2 on trec (scripts/near_duplicate_threshold.py): pairs of different trec questions
#: at >= 0.95 are rewordings of the same question ("What species was Winnie the Pooh ?" / "What was
#: the species of Winnie the Pooh ?"), while 0.90-0.95 already mixes in different questions ("23rd"
#: vs "22nd president"). At 0.95, 97.6% of texts with an inserted filler word are caught but only
#: 21% of one-letter typos (a typo drops a short text's cosine a lot); dropped punctuation is caught
#: by the exact match, since :func:`normalise_text` removes it.
NEAR_DUPLICATE_THRESHOLD = 0.95
SOURCE_COL = "source"
_NEIGHBOURS_WITHIN_BATCH = 10


@dataclass
class IngestResult:
    """The merged table and what happened to each new row.

    Attributes
    ----------
    data : DataFrame
        The old rows (unchanged, in order) followed by the added rows.
    n_new : int
        Rows in the new file.
    n_exact_duplicates, n_near_duplicates, n_added : int
    dropped : DataFrame
        One row per dropped new row: ``row`` (1-based in the new file), ``text``, ``reason``,
        ``duplicate_of`` (id of the matching row), ``similarity``.
    """

    data: pd.DataFrame
    n_new: int
    n_exact_duplicates: int
    n_near_duplicates: int
    n_added: int
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)


def ingest_rows(data: pd.DataFrame, new: pd.DataFrame, *, source: str, embed, text_col: str = "text",
                label_col: str = "label", id_col: str = "id", bucket_col: str | None = None,
                threshold: float = NEAR_DUPLICATE_THRESHOLD, new_source: str = "<new rows>") -> IngestResult:
    """Append ``new`` rows to ``data`` as unlabeled pool rows, without duplicates.

    Parameters
    ----------
    data : DataFrame
        The current data (not modified).
    new : DataFrame
        Rows to add; needs ``text_col``; its ``id_col`` is used when present (else ids are made from
        the source and the text's hash, when ``data`` has ids), ``bucket_col`` becomes ``bucket``.
    source : str
        Written to the ``source`` column of the added rows.
    embed : callable
        ``embed(texts) -> ndarray (n, d)``, L2-normalised (e.g. a cached embedder's ``encode``).
    threshold : float
        Near-duplicate cosine similarity, in (0, 1].

    Returns
    -------
    IngestResult
    """
    if not 0.0 < threshold <= 1.0:
        raise ConfigError(f"near-duplicate threshold must be in (0, 1], got {threshold}")
    if not source or not str(source).strip():
        raise ConfigError("--source must be a non-empty name, e.g. production")
    if text_col not in new.columns:
        raise DataError(f"{new_source}: no text column {text_col!r} (columns found: {', '.join(map(str, new.columns))}); "
                        "pass --text-col COLUMN")
    if bucket_col is not None and bucket_col not in new.columns:
        raise DataError(f"{new_source}: no bucket column {bucket_col!r} (columns found: "
                        f"{', '.join(map(str, new.columns))}); check --bucket")
    new_texts = new[text_col].to_numpy(dtype=object)
    for i, t in enumerate(new_texts):
        if t is None or (isinstance(t, float) and np.isnan(t)) or not str(t).strip():
            raise DataError(f"{new_source}: row {i + 1} has no text in column {text_col!r}; fill it in or drop the row")
    new_texts = np.array([str(t) for t in new_texts], dtype=object)
    old_texts = data[text_col].astype(str).to_numpy(dtype=object)
    old_ids = data[id_col].astype(str).to_numpy(dtype=object) if id_col in data.columns else \
        np.array([f"row {i + 1}" for i in range(len(data))], dtype=object)

    if id_col in data.columns:
        if id_col in new.columns:
            new_ids = new[id_col].astype(str).str.strip().to_numpy(dtype=object)
        else:
            new_ids = np.array([f"{source}-{hashlib.sha256(t.encode('utf-8')).hexdigest()[:12]}" for t in new_texts],
                               dtype=object)
    else:
        new_ids = np.array([f"new row {i + 1}" for i in range(len(new))], dtype=object)

    reason = np.full(len(new), "", dtype=object)
    dup_of = np.full(len(new), "", dtype=object)
    sim = np.full(len(new), np.nan)
    seen: dict[str, str] = {normalise_text(t): i for t, i in zip(old_texts, old_ids)}
    for j, t in enumerate(new_texts):
        key = normalise_text(t)
        if key in seen:
            reason[j], dup_of[j], sim[j] = "exact duplicate", seen[key], 1.0
        else:
            seen[key] = new_ids[j]
    n_exact = int((reason == "exact duplicate").sum())

    cand = np.flatnonzero(reason == "")
    if cand.size:
        Xq = np.asarray(embed(list(new_texts[cand])), dtype=np.float32)
        near = np.zeros(cand.size, dtype=bool)
        if len(old_texts):
            Xo = np.asarray(embed(list(old_texts)), dtype=np.float32)
            p, s = nearest_in(Xo, Xq, 1)
            hit = s[:, 0] >= threshold
            near |= hit
            for a in np.flatnonzero(hit):
                dup_of[cand[a]], sim[cand[a]] = old_ids[p[a, 0]], s[a, 0]
        if cand.size > 1:
            # Within the batch: keep the first of each near-duplicate group (in file order).
            p, s = nearest_in(Xq, Xq, _NEIGHBOURS_WITHIN_BATCH + 1)
            for a in range(cand.size):
                if near[a]:
                    continue
                for sb, b in zip(s[a], p[a]):
                    if b < a and not near[b] and sb >= threshold:
                        near[a] = True
                        dup_of[cand[a]], sim[cand[a]] = new_ids[cand[b]], sb
                        break
        reason[cand[near]] = "near duplicate"
    n_near = int((reason == "near duplicate").sum())
    # An exact duplicate of a new row that was itself dropped points at what that row duplicated.
    dropped_to = {new_ids[j]: dup_of[j] for j in np.flatnonzero(reason == "near duplicate")}
    for j in np.flatnonzero(reason == "exact duplicate"):
        dup_of[j] = dropped_to.get(dup_of[j], dup_of[j])

    keep = np.flatnonzero(reason == "")
    if id_col in data.columns:
        existing = set(old_ids)
        clash = [new_ids[j] for j in keep if new_ids[j] in existing]
        if clash:
            raise DataError(f"{new_source}: {len(clash)} new row(s) reuse ids already in the data with a different "
                            f"text, e.g. {clash[0]!r}; give them new ids or drop the id column to generate them")
        uniq, counts = np.unique(new_ids[keep].astype(str), return_counts=True)
        if (counts > 1).any():
            raise DataError(f"{new_source}: duplicate id {uniq[counts > 1][0]!r} among the new rows; ids must be unique")

    added = pd.DataFrame({c: pd.Series([""] * keep.size, dtype=object) for c in data.columns})
    added[text_col] = new_texts[keep]
    if id_col in data.columns:
        added[id_col] = new_ids[keep]
    if label_col in added.columns:
        added[label_col] = ""
    added[SOURCE_COL] = str(source)
    if bucket_col is not None:
        added[BUCKET_COL] = new[bucket_col].astype(str).to_numpy(dtype=object)[keep]
    old = data.copy()
    for col in (SOURCE_COL, BUCKET_COL):
        if col in added.columns and col not in old.columns:
            old[col] = ""
    if label_col not in old.columns:
        old[label_col] = ""
        added[label_col] = ""
    merged = pd.concat([old, added[[c for c in old.columns if c in added.columns] +
                                   [c for c in added.columns if c not in old.columns]]],
                       ignore_index=True)
    dropped_rows = np.flatnonzero(reason != "")
    dropped = pd.DataFrame({"row": dropped_rows + 1, "text": new_texts[dropped_rows], "reason": reason[dropped_rows],
                            "duplicate_of": dup_of[dropped_rows], "similarity": np.round(sim[dropped_rows], 4)})
    return IngestResult(data=merged, n_new=len(new), n_exact_duplicates=n_exact, n_near_duplicates=n_near,
                        n_added=int(keep.size), dropped=dropped)
