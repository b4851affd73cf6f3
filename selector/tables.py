"""The one fixed-width text table every command prints (agreement, gold, unsure, status, strategies)."""

from __future__ import annotations

from typing import Sequence

__all__ = ["text_table"]


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]], *, indent: str = "",
               right: Sequence[int] = ()) -> list[str]:
    """Lines of a table: columns padded to their widest cell, two spaces apart.

    Parameters
    ----------
    header : sequence of str
        Column titles.
    rows : sequence of sequences of str
        Cells, already formatted; one row per line.
    indent : str
        Prefix of every line.
    right : sequence of int
        Columns aligned right (numbers); the others are aligned left.

    Returns
    -------
    list of str
        The header line, then one line per row (trailing spaces stripped).
    """
    rows = [[str(c) for c in r] for r in rows]
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(header)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return (indent + "  ".join(padded)).rstrip()

    return [line(header), *(line(r) for r in rows)]
