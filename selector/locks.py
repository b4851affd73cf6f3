"""An exclusive lock on a data file for a read-modify-write (``merge --in-place``, ``ingest --in-place``).

Two runs that each read DATA, change it and rename a new DATA into place would lose one run's
update. The lock is a ``flock`` on ``.selector/<data name>.lock`` beside the file the data path
resolves to (the data file itself is replaced by a rename, so it cannot carry the lock): a second
run waits for the first to finish, then reads what the first wrote.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from selector.errors import DataError

__all__ = ["data_lock", "lock_path_for"]


def lock_path_for(data: str | os.PathLike) -> Path:
    """``.selector/<name>.lock`` beside the real file behind ``data`` (symbolic links followed)."""
    real = Path(os.path.realpath(data))
    return real.parent / ".selector" / f"{real.name}.lock"


@contextlib.contextmanager
def data_lock(data: str | os.PathLike, *, timeout: float = 600.0) -> Iterator[Path]:
    """Hold an exclusive lock on ``data`` for the ``with`` block; waits up to ``timeout`` seconds.

    Raises
    ------
    DataError
        The lock folder cannot be written, or another run held the lock for longer than ``timeout``.
    """
    lock = lock_path_for(data)
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataError(f"{lock}: cannot create the lock for editing {data} in place ({exc.strerror}); "
                        "check the folder's permissions") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise DataError(f"{data}: another selector command has been editing it in place for over "
                                    f"{timeout:.0f} s (lock {lock}); wait for it to finish, then run again") from None
                time.sleep(0.05)
        yield lock
    finally:
        os.close(fd)  # closing the descriptor releases the flock
