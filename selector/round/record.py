"""The round record: what produced a queue. One schema, written as ``queue.round.json`` and as the ledger line."""

from __future__ import annotations

import datetime as _dt
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from selector.io import table_sibling

__all__ = ["package_versions", "round_record", "record_path_for", "RECORD_VERSION"]

#: Bumped when a key changes meaning; readers of older ledgers use ``.get``.
RECORD_VERSION = 2
_PACKAGES = ("selector", "numpy", "pandas", "scikit-learn", "torch", "sentence-transformers", "transformers")


def package_versions() -> dict[str, str | None]:
    """Installed versions of selector and the packages that shape its results."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def record_path_for(out: str | Path) -> Path:
    """``queue.csv`` -> ``queue.round.json`` (beside the queue)."""
    return table_sibling(out, "round", ".json")


def round_record(*, round_number: int | None, config: dict, stats: dict, data_path: str | None,
                 data_sha256: str | None, queue_ids: list[str], queue_path: str | None,
                 class_counts: dict[str, int], cv: dict | None, stop_set: dict | None,
                 outputs: dict[str, str], command: str | None = None,
                 gold: dict | None = None) -> dict[str, Any]:
    """Assemble the JSON-serialisable record of one round.

    Parameters
    ----------
    round_number : int or None
        Taken under the ledger lock; None when the round has no ledger (library use).
    stats : dict
        Counts (``n_*``), ``timings``, ``strategy_info``, ``model_fingerprint``, ``approximation_check``,
        cold-start facts.
    queue_ids : list of str
        Ids queued for labeling (gold items excluded: they are in ``gold.ids``).
    cv : dict or None
        Out-of-fold accuracy and macro-F1 (:func:`selector.round.model.cv_figures`).
    stop_set : dict or None
        Stop-set ids and predictions for the stopping hint.
    gold : dict, optional
        ``path``, ``sha256``, ``rate``, ``ids`` of gold items mixed in.
    """
    stats = dict(stats)
    info = {k: v for k, v in stats.get("strategy_info", {}).items() if k != "cluster"}
    record = {
        "record_version": RECORD_VERSION,
        "round": round_number,
        "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "data": {"path": data_path, "sha256": data_sha256},
        "config": config,
        "seed": config.get("seed"),
        "strategy": config.get("strategy"),
        # The task type the round ran as (a detected multi-label task too), so merge reads sets back.
        "task": stats.get("task", "single_label"),
        "model_fingerprint": stats.get("model_fingerprint"),
        # An approximate backend's cost on this round's labels (None with an exact backend).
        "approximation_check": stats.get("approximation_check"),
        # Chat-format input: how labels were taken and which lines were skipped.
        "chat": stats.get("chat"),
        "versions": package_versions(),
        "counts": {k: v for k, v in stats.items() if k.startswith("n_")},
        "class_counts": class_counts,
        "cold_start": stats.get("cold_start"),
        "cold_start_reason": stats.get("cold_start_reason"),
        "ids_generated": stats.get("ids_generated"),
        "strategy_info": info,
        "timings_seconds": stats.get("timings", {}),
        "cpu_seconds": stats.get("cpu_seconds", {}),
        "cv": cv,
        "queue": {"path": queue_path, "ids": [str(i) for i in queue_ids]},
        "stop_set": stop_set,
        "outputs": outputs,
    }
    if stats.get("two_stage") is not None:
        # Whether the round ran in two stages (a cold pool), why, and the shortlist it embedded exactly.
        record["two_stage"] = stats["two_stage"]
    if stats.get("relabel") is not None:
        # Which queued ids are second opinions: `selector merge` keeps their labels as votes.
        record["relabel"] = stats["relabel"]
    if stats.get("consensus") is not None:
        record["consensus"] = stats["consensus"]
    if gold is not None:
        record["gold"] = {k: v for k, v in gold.items() if k != "ids"}
        record["gold_ids"] = sorted(str(i) for i in gold.get("ids", []))
    return record
