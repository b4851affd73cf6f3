"""The round record: what produced a queue (config, seed, versions, model, data hash, counts)."""

from __future__ import annotations

import datetime as _dt
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["package_versions", "round_record", "record_path_for"]

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
    out = Path(out)
    return out.with_name(f"{out.stem}.round.json")


def round_record(*, config: dict, stats: dict, input_path: str | None, input_sha256: str | None,
                 outputs: dict[str, str], command: str | None = None) -> dict[str, Any]:
    """Assemble the JSON-serialisable round record."""
    stats = dict(stats)
    timings = stats.pop("timings", {})
    info = stats.pop("strategy_info", {})
    info = {k: v for k, v in info.items() if k != "cluster"}
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "input": {"path": input_path, "sha256": input_sha256},
        "config": config,
        "seed": config.get("seed"),
        "model_fingerprint": stats.pop("model_fingerprint", None),
        "versions": package_versions(),
        "counts": {k: v for k, v in stats.items() if k.startswith("n_")},
        "cold_start": stats.get("cold_start"),
        "cold_start_reason": stats.get("cold_start_reason"),
        "ids_generated": stats.get("ids_generated"),
        "strategy_info": info,
        "timings_seconds": timings,
        "outputs": outputs,
    }
