"""The bundled example dataset (a labeled/unlabeled sample of banking77, CC BY 4.0).

``--example`` on a command that reads a data table works on a copy of it in the working folder
(:func:`example_copy`), so a whole loop (select, status, export, merge, select again) can be
followed on a fresh install: the package folder may be read-only, and merged labels must persist.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from selector.errors import DataError
from selector.io import atomic_write

__all__ = ["example_path", "example_copy", "EXAMPLE_NAME"]

EXAMPLE_NAME = "banking77_sample.csv"


def example_path() -> Path:
    """Path of ``banking77_sample.csv`` shipped inside the package (see selector/data/SOURCE.md)."""
    return Path(str(resources.files("selector.data").joinpath(EXAMPLE_NAME)))


def example_copy(folder: str | Path = ".") -> tuple[Path, bool]:
    """The working copy of the bundled example in ``folder``, written there when it is not yet.

    An existing copy is used as it is (it may hold labels merged since): it is never overwritten.

    Returns
    -------
    path : Path
        ``folder / banking77_sample.csv``.
    created : bool
        Whether this call wrote it.

    Raises
    ------
    DataError
        The copy's path exists and is not a file, or the folder cannot be written.
    """
    target = Path(folder) / EXAMPLE_NAME
    if target.is_file():
        return target, False
    if target.exists():
        raise DataError(f"{target}: exists and is not a file; --example writes the example's copy there "
                        "(move it, or run from another folder)")
    try:
        with atomic_write(target, "wb") as handle, example_path().open("rb") as source:
            shutil.copyfileobj(source, handle)
    except OSError as exc:
        raise DataError(f"{target}: cannot write the example's copy ({exc.strerror}); run from a folder "
                        "you can write to") from None
    return target, True
