"""The strategy registry: registration, lookup, parameter validation."""

import numpy as np
import pytest

from selector import ConfigError, UnknownStrategyError, available_strategies, make_strategy
from selector.strategies import Selection, Strategy, register
from selector.strategies.registry import _REGISTRY


def test_builtins_registered_with_descriptions():
    items = available_strategies()
    for name in ("random", "entropy", "margin", "least_confidence"):
        assert name in items and items[name]


def test_unknown_name_suggests_closest():
    with pytest.raises(UnknownStrategyError, match=r"did you mean 'margin'|Did you mean 'margin'"):
        make_strategy("margn")


def test_unknown_name_lists_choices():
    with pytest.raises(UnknownStrategyError, match="random"):
        make_strategy("zzzz")


def test_duplicate_name_is_an_error():
    with pytest.raises(ValueError, match="already registered"):

        @register
        class Again(Strategy):
            name = "random"


def test_unknown_parameter_is_a_config_error():
    with pytest.raises(ConfigError, match="no parameter"):
        make_strategy("random", temperature=3)


def test_register_and_build_a_custom_strategy():
    class FirstRows(Strategy):
        name = "test_first_rows"
        description = "first rows of the pool"

        def __init__(self):
            pass

        def _select(self, context, budget, *, random_state):
            idx = np.arange(budget, dtype=np.int64)
            return Selection(idx, np.zeros(budget), np.full(budget, "first", dtype=object))

    try:
        register(FirstRows)
        assert isinstance(make_strategy("test_first_rows"), FirstRows)
    finally:
        _REGISTRY.pop("test_first_rows", None)
