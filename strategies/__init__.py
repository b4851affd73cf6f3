"""Query strategies and their registry (installed as ``selector.strategies``).

Importing this package registers every built-in strategy.
"""

# Every other module in this package holds built-in strategies that register themselves on
# import; they are imported in name order, so adding a strategy is adding a file.
import importlib as _importlib  # noqa: E402
import pkgutil as _pkgutil  # noqa: E402

from selector.strategies.base import (
    Selection,
    SelectionContext,
    Strategy,
    UncertaintyStrategy,
)
from selector.strategies.registry import (
    available_strategies,
    get_strategy_class,
    make_strategy,
    register,
    strategies_for,
)

for _module in sorted(m.name for m in _pkgutil.iter_modules(__path__)):
    if _module not in ("base", "registry"):
        _importlib.import_module(f"{__name__}.{_module}")

__all__ = [
    "Selection",
    "SelectionContext",
    "Strategy",
    "UncertaintyStrategy",
    "available_strategies",
    "get_strategy_class",
    "make_strategy",
    "register",
    "strategies_for",
]
