"""The bundled example dataset (a labeled/unlabeled sample of banking77, CC BY 4.0)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

__all__ = ["example_path"]


def example_path() -> Path:
    """Path of ``banking77_sample.csv`` shipped inside the package (see selector/data/SOURCE.md)."""
    return Path(str(resources.files("selector.data").joinpath("banking77_sample.csv")))
