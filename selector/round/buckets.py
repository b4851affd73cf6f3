"""Bucket priority: part of a round's queue reserved for the rarest failure buckets (``selector ingest --bucket``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.round.compute import queue_frame
from selector.scoring import margin
from selector.strategies import Selection

__all__ = ["BUCKET_COL", "check_bucket_share", "prioritise_buckets"]

BUCKET_COL = "bucket"  # the column `selector ingest --bucket` writes


def check_bucket_share(share: float) -> float:
    """``share`` if it is in [0, 1], else ConfigError."""
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"--bucket-priority must be a share between 0 and 1, got {share}")
    return float(share)


def prioritise_buckets(result, df: pd.DataFrame, *, share: float, strategy: str, random_state: int | None = None,
                       bucket_col: str = BUCKET_COL):
    """Reserve ``share`` of a round's queue for unlabeled rows of the rarest failure buckets.

    The reserved slots are spread evenly, round-robin, over the buckets from the rarest (fewest rows
    in the data) up, so a bucket of 3 rows gets as many slots as one of 3,000;
    inside a bucket rows are taken by the round's classifier margin uncertainty (most uncertain
    first), or in a seeded random order at cold start. The rest of the queue is the strategy's own
    ranking, minus the rows already taken.

    Parameters
    ----------
    result : selector.round.run.RoundResult
    df : DataFrame
        The table the round read (aligned with ``result.pool``).
    share : float
        In [0, 1].

    Returns
    -------
    RoundResult
        A copy with ``queue`` and ``selection`` replaced (same length as before).
    """
    share = check_bucket_share(share)
    if bucket_col not in df.columns:
        raise DataError(f"{result.pool.source}: --bucket-priority needs a {bucket_col!r} column "
                        "(added by `selector ingest --bucket COL`)")
    budget = len(result.selection)
    n_reserved = int(round(share * budget))
    buckets_all = df[bucket_col].astype(str).str.strip().to_numpy(dtype=object)
    unl = result.pool.pool_positions
    buckets_pool = buckets_all[unl]
    names, sizes = np.unique(buckets_all[buckets_all != ""], return_counts=True)
    context = result.context
    if context.has_model:
        priority = margin(context.proba_pool)
    else:
        priority = np.random.default_rng(random_state).random(unl.size)
    queues = []
    for name in names[np.argsort(sizes, kind="stable")]:
        members = np.flatnonzero(buckets_pool == name)
        if members.size:
            queues.append((name, list(members[np.argsort(-priority[members], kind="stable")])))
    picked: list[int] = []
    reasons: list[str] = []
    size_of = dict(zip(names, sizes))
    while len(picked) < n_reserved and any(q for _, q in queues):
        for name, q in queues:
            if q and len(picked) < n_reserved:
                picked.append(int(q.pop(0)))
                reasons.append(f"bucket priority: failure bucket {name!r} ({size_of[name]} rows)")
    taken = set(picked)
    sel = result.selection
    scores = [float(priority[i]) for i in picked]
    for i, s, r in zip(sel.indices, sel.scores, sel.reasons):
        if len(picked) == budget:
            break
        if int(i) not in taken:
            picked.append(int(i))
            scores.append(float(s))
            reasons.append(str(r))
    # The strategy's per-pick extras (e.g. cluster) no longer line up with the reordered picks.
    info = {k: v for k, v in sel.info.items() if k != "cluster"}
    info = dict(info, bucket_priority={"share": share, "reserved": n_reserved,
                                           "buckets": {str(k): int(v) for k, v in size_of.items()}})
    selection = Selection(np.asarray(picked, dtype=np.int64), np.asarray(scores, dtype=np.float64),
                          np.asarray(reasons, dtype=object), info)
    queue = queue_frame(result.pool, context, selection, strategy)
    stats = dict(result.stats, strategy_info=info)
    return dataclasses.replace(result, queue=queue, selection=selection, stats=stats)
