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
from selector.pipeline import select_batch
from selector.strategies import Selection, SelectionContext, available_strategies, make_strategy, register
from selector.suspects import SuspectResult, find_suspects, suspects
from selector.textnorm import normalise_text

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
    "SuspectResult",
    "UnknownStrategyError",
    "available_strategies",
    "find_suspects",
    "load_config",
    "make_strategy",
    "normalise_text",
    "register",
    "select",
    "select_batch",
    "suspects",
]
