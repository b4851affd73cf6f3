"""Text normalisation for "is this the same text?" checks (contradictions, duplicates).

Two texts are treated as the same when :func:`normalise_text` maps them to the same string:
Unicode compatibility forms, case, punctuation/symbols and whitespace are folded, so
``"Where's my card?!"`` and ``"  where s MY card "`` match, while a changed word does not.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalise_text"]

_SPACE = re.compile(r"\s+")


def _fold_char(ch: str) -> str:
    # Unicode categories P* (punctuation) and S* (symbols) become a space, so "don't" and "don t"
    # match and "a-b" does not glue into "ab" differently from "a b".
    return " " if unicodedata.category(ch)[0] in "PS" else ch


def normalise_text(text: str) -> str:
    """Fold case, punctuation, symbols and whitespace of one text.

    Steps: Unicode NFKC (full-width and ligature forms to their plain letters), ``casefold``,
    every punctuation or symbol character to a space, runs of whitespace to one space, strip.

    Parameters
    ----------
    text : str

    Returns
    -------
    str
        The normalised text; ``""`` for a text made only of punctuation and spaces.

    Examples
    --------
    >>> normalise_text("  Where's   my CARD?! ")
    'where s my card'
    """
    if not isinstance(text, str):
        raise TypeError(f"normalise_text needs a str, got {type(text).__name__}")
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = "".join(_fold_char(ch) for ch in folded)
    return _SPACE.sub(" ", folded).strip()
