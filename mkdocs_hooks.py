"""MkDocs hook: a source view of the package as it is installed, for mkdocstrings.

``selector.strategies`` and ``selector.models`` live in ``strategies/`` and ``models/`` at the top of
the repository (mapped by ``package-dir`` in pyproject.toml), which static analysis cannot follow.
This builds ``build/api-src/selector/``: a copy of ``selector/`` with ``strategies`` and ``models``
inside (copies: griffe follows a linked file back to its real folder), so the API reference reads
the installed layout from the sources.
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VIEW = ROOT / "build" / "api-src"


def build_view() -> None:
    """(Re)build ``build/api-src/selector`` from the sources."""
    package = VIEW / "selector"
    if VIEW.exists():
        shutil.rmtree(VIEW)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.csv")
    shutil.copytree(ROOT / "selector", package, ignore=skip)
    shutil.copytree(ROOT / "strategies", package / "strategies", ignore=skip)
    shutil.copytree(ROOT / "models", package / "models", ignore=skip)


# Built when MkDocs loads this hook, before any plugin's on_config: mkdocstrings drops search paths
# that do not exist when it sets its handler up.
build_view()


def on_config(config):
    return config
