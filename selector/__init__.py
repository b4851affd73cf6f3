"""selector: active-learning sample selection with a model in the loop.

Choose what to label next (:func:`select`, :func:`select_batch`), with a strategy registry
(:mod:`selector.strategies`) and embedders/classifiers (:mod:`selector.models`).
"""

from __future__ import annotations

from selector.api import select
from selector.config import SelectConfig, load_config
from selector.errors import (
    ConfigError,
    DataError,
    EmptyPoolError,
    ModelError,
    SelectorError,
    UnknownStrategyError,
)
from selector.export import export_records
from selector.ingest import ingest_rows
from selector.ledger import read_ledger
from selector.merge import merge_labels, read_labels
from selector.pipeline import select_batch
from selector.strategies import Selection, SelectionContext, available_strategies, make_strategy, register

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "EmptyPoolError",
    "ModelError",
    "SelectConfig",
    "Selection",
    "SelectionContext",
    "SelectorError",
    "UnknownStrategyError",
    "available_strategies",
    "export_records",
    "ingest_rows",
    "load_config",
    "make_strategy",
    "merge_labels",
    "read_labels",
    "read_ledger",
    "register",
    "select",
    "select_batch",
]
