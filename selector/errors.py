"""Exception hierarchy.

Every error a user can cause derives from :class:`SelectorError`. The CLI catches it, prints its
message as one line on stderr and exits 1; anything else is a bug and keeps its traceback.
Messages say what was wrong, where (file, row, column) and what to do.
"""

from __future__ import annotations


class SelectorError(Exception):
    """Root of every user-facing error raised by selector."""


class ConfigError(SelectorError):
    """A configuration file, option or parameter is invalid."""


class UnknownStrategyError(ConfigError):
    """A strategy name is not in the registry."""


class DataError(SelectorError):
    """Input data is missing, malformed or inconsistent."""


class EmptyPoolError(DataError):
    """There is nothing left to select from (no unlabeled rows, or budget larger than the pool)."""


class ModelError(SelectorError):
    """An embedding model or classifier could not be loaded or used."""
