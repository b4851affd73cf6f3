"""selector: active-learning sample selection with a model in the loop.

Choose what to label next (:func:`select`, :func:`select_batch`), with a strategy registry
(:mod:`selector.strategies`) and embedders/classifiers (:mod:`selector.models`).
"""

from __future__ import annotations

from selector.agreement import AgreementReport, agreement, dawid_skene, majority_vote
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
from selector.pipeline import select_batch
from selector.strategies import Selection, SelectionContext, available_strategies, make_strategy, register

__version__ = "0.1.0"

__all__ = [
    "AgreementReport",
    "ConfigError",
    "DataError",
    "EmptyPoolError",
    "ModelError",
    "SelectConfig",
    "Selection",
    "SelectionContext",
    "SelectorError",
    "UnknownStrategyError",
    "agreement",
    "available_strategies",
    "dawid_skene",
    "load_config",
    "majority_vote",
    "make_strategy",
    "register",
    "select",
    "select_batch",
]
