"""Helpers shared by the labeling-loop commands (status, merge, ingest, simulate)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from selector.config import SelectConfig


def config_from_record(record: dict | None, **overrides) -> SelectConfig:
    """The config a ledger record ran with (keys this version knows), with CLI overrides applied."""
    known = {f.name for f in dataclasses.fields(SelectConfig)}
    base = {k: v for k, v in ((record or {}).get("config") or {}).items() if k in known}
    return SelectConfig(**base).replace(**overrides)


def cache_dir_for(data: Path, config: SelectConfig, cache_dir: Path | None) -> Path:
    """``--cache-dir``, else the config's, else ``.selector/`` beside the data."""
    from selector.cli.app import default_cache_dir

    if cache_dir is not None:
        return cache_dir
    return Path(config.cache_dir) if config.cache_dir else default_cache_dir(data)
