"""Strategy registry: ``register`` adds a class, ``make_strategy`` builds one by name."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from selector.strategies.base import Strategy

from selector.errors import ConfigError, UnknownStrategyError

__all__ = ["register", "make_strategy", "available_strategies", "get_strategy_class", "strategies_for"]

_REGISTRY: dict[str, type[Strategy]] = {}


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator: add a strategy to the registry under ``cls.name``.

    Raises
    ------
    ValueError
        When the name is empty or already registered.
    """
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY:
        raise ValueError(f"a strategy named {cls.name!r} is already registered ({_REGISTRY[cls.name].__name__})")
    _REGISTRY[cls.name] = cls
    return cls


def available_strategies() -> dict[str, str]:
    """Registered names mapped to their one-line descriptions, sorted by name."""
    return {name: _REGISTRY[name].description for name in sorted(_REGISTRY)}


def strategies_for(task: str) -> list[str]:
    """Registered names that serve ``task`` (``"single_label"`` or ``"multi_label"``), sorted."""
    return [name for name in sorted(_REGISTRY) if task in _REGISTRY[name].tasks]


def get_strategy_class(name: str) -> type[Strategy]:
    """The class registered under ``name``; unknown names raise with the closest suggestion."""
    try:
        return _REGISTRY[name]
    except KeyError:
        choices = sorted(_REGISTRY)
        close = difflib.get_close_matches(str(name), choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UnknownStrategyError(
            f"unknown strategy {name!r}.{hint} Choose one of: {', '.join(choices)}"
        ) from None


def make_strategy(name: str, **params: Any) -> Strategy:
    """Build the strategy registered under ``name`` with validated parameters.

    Raises
    ------
    UnknownStrategyError
        When ``name`` is not registered.
    ConfigError
        When a parameter is unknown or invalid.
    """
    cls = get_strategy_class(name)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise ConfigError(
            f"strategy {name!r} has no parameter(s) {', '.join(unknown)}; "
            f"it accepts: {', '.join(accepted) or 'no parameters'}"
        )
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid parameters for strategy {name!r}: {exc}") from None
