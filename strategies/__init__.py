"""Query strategies and their registry (installed as ``selector.strategies``).

Importing this package registers every built-in strategy.
"""

from selector.strategies.base import Selection, SelectionContext, Strategy, UncertaintyStrategy
from selector.strategies.registry import (
    available_strategies,
    get_strategy_class,
    make_strategy,
    register,
)

# Built-in strategies register themselves on import.
from selector.strategies import simple  # noqa: E402,F401  isort: skip

__all__ = [
    "Selection",
    "SelectionContext",
    "Strategy",
    "UncertaintyStrategy",
    "available_strategies",
    "get_strategy_class",
    "make_strategy",
    "register",
]
