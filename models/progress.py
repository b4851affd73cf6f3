"""Progress for long work: a tqdm bar on a terminal, plain periodic lines when stderr is a file or pipe.

A redirected log gets no carriage-return frames, only a line every ``LINE_EVERY_S`` seconds (and at
the end), so CI logs and ``2> run.log`` stay readable.
"""

from __future__ import annotations

import sys
import time

__all__ = ["Progress", "LINE_EVERY_S"]

#: Seconds between plain progress lines when stderr is not a terminal.
LINE_EVERY_S = 10.0


class Progress:
    """``with Progress(total, "embedding", unit="text", enabled=True) as p: p.update(n)``.

    Parameters
    ----------
    total : int
    desc, unit : str
    enabled : bool
        False shows nothing.
    stream : file, optional
        Default ``sys.stderr``; a bar only when it is a terminal.
    """

    def __init__(self, total: int, desc: str, *, unit: str = "item", enabled: bool = True, stream=None) -> None:
        self.total, self.desc, self.unit, self.enabled = int(total), desc, unit, enabled
        self.stream = stream if stream is not None else sys.stderr
        self.done = 0
        self._bar = None
        self._start = self._last = time.monotonic()

    def __enter__(self) -> "Progress":
        if self.enabled and _is_tty(self.stream):
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, desc=self.desc, unit=self.unit, file=self.stream, dynamic_ncols=True)
        return self

    def update(self, n: int) -> None:
        self.done += int(n)
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(int(n))
            return
        now = time.monotonic()
        if now - self._last >= LINE_EVERY_S and self.done < self.total:
            self._last = now
            self._line(now)

    def _line(self, now: float) -> None:
        rate = self.done / max(now - self._start, 1e-9)
        share = f" ({self.done / self.total:.0%})" if self.total else ""
        self.stream.write(f"{self.desc}: {self.done}/{self.total} {self.unit}s{share}, {rate:.0f} {self.unit}s/s\n")
        self.stream.flush()

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and exc[0] is None and self.total and time.monotonic() - self._start >= LINE_EVERY_S:
            # Long work gets a closing line in a log; a short one stays silent.
            self._line(time.monotonic())


def _is_tty(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False
