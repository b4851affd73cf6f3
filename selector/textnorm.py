"""Text normalisation for "is this the same text?" checks (contradictions, duplicates).

Two texts are treated as the same when :func:`normalise_text` maps them to the same string:
Unicode compatibility forms, case, punctuation/symbols and whitespace are folded, so
``"Where's my card?!"`` and ``"  wheres MY card "`` match, while a changed word does not.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalise_text"]

_SPACE = re.compile(r"\s+")


class _FoldTable(dict):
    """``str.translate`` table built as characters are met: C-speed folding, one category look-up per
    distinct character.

    Punctuation and modifier symbols (backticks, carets) are deleted, not spaced: people drop
    punctuation by omitting it ("US", "dont"), so "The U.S. isn't" must meet "the US isnt". Other
    symbols (math, currency, emoji) become a space, so "5+3" meets "5 + 3".
    """

    def __missing__(self, code: int):
        cat = unicodedata.category(chr(code))
        if cat[0] == "P" or cat == "Sk":
            folded = None
        elif cat[0] == "S":
            folded = " "
        else:
            folded = code
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def normalise_text(text: str) -> str:
    """Fold case, punctuation, symbols and whitespace of one text.

    Steps: Unicode NFKC (full-width and ligature forms to their plain letters), ``casefold``,
    punctuation and modifier symbols deleted, other symbols to a space, runs of whitespace to one
    space, strip. The one definition of "the same text" for contradictions, duplicates and ingest.

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
    'wheres my card'
    >>> normalise_text("The U.S. isn't big.") == normalise_text("the US isnt big")
    True
    """
    if not isinstance(text, str):
        raise TypeError(f"normalise_text needs a str, got {type(text).__name__}")
    folded = unicodedata.normalize("NFKC", text).casefold()
    folded = folded.translate(_FOLD)
    return _SPACE.sub(" ", folded).strip()
