"""Agreement on pairwise preferences (which of two replies is better), the data behind RLHF/DPO sets.

Input is long format, one row per (pair, annotator): ``prompt, response_a, response_b, preferred``
(+ ``annotator``, optional ``item_id``). ``preferred`` is ``a``/``b`` (also ``response_a``,
``1``/``2``, ``left``/``right``) or a tie (``tie``, ``equal``, ``both``, ``neither``, ``same``).

A pair is the same item however it was shown: rows are keyed by ``item_id`` when given, else by
the prompt and the two responses in a canonical order, and a choice made with the responses shown
the other way round is flipped, so "A" on one screen and "B" on the swapped screen agree.

:func:`preference_report` gives percent agreement, Cohen's (pairwise) and Fleiss' kappa and
Krippendorff's alpha on the choice (tie a third category), the same on decisive votes only,
contested pairs, each annotator's agreement with the majority of the others, and a consensus
preference per pair (majority; a tie between a and b votes is reported as ``tie``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from selector.errors import DataError
from selector.labels import normalise_label
from selector.quality.agreement import (
    AgreementReport,
    agreement,
    format_number,
    frame_records,
)
from selector.tables import text_table

__all__ = ["PreferenceReport", "preference_report", "normalise_choice", "PREFERENCE_COLUMNS", "looks_like_preferences"]

PREFERENCE_COLUMNS = ("prompt", "response_a", "response_b", "preferred")
_A = {"a", "response_a", "1", "left", "first", "model_a"}
_B = {"b", "response_b", "2", "right", "second", "model_b"}
_TIE = {"tie", "equal", "both", "neither", "same", "draw", "0", "both_good", "both_bad", "tie (bothbad)"}


def looks_like_preferences(df: pd.DataFrame) -> bool:
    """Whether ``df`` has the pairwise-preference columns."""
    return all(c in df.columns for c in PREFERENCE_COLUMNS[1:])


def normalise_choice(value) -> str | None:
    """``"A"``/``"response_b"``/``"Tie"`` -> ``"a"``/``"b"``/``"tie"``; empty -> None; else ValueError."""
    v = normalise_label(value)
    if v is None:
        return None
    key = v.strip().casefold()
    if key in _A:
        return "a"
    if key in _B:
        return "b"
    if key in _TIE:
        return "tie"
    raise ValueError(v)


@dataclass
class PreferenceReport:
    """Agreement on pairwise preferences.

    Attributes
    ----------
    choice : AgreementReport
        Agreement on the choice with ``a``, ``b`` and ``tie`` as categories (responses in canonical order).
    decisive : AgreementReport or None
        The same on a/b votes only (ties left out); None when fewer than two annotators remain.
    pairs : DataFrame
        One row per pair: ``item_id, prompt, response_a, response_b, n_votes, votes_a, votes_b, votes_tie,
        consensus, consensus_share, contested``; ``consensus`` is ``a``, ``b`` or ``tie``.
    n_flipped : int
        Votes whose responses were shown in the other order (flipped to the canonical one).
    n_tie_votes : int
    """

    choice: AgreementReport
    decisive: AgreementReport | None
    pairs: pd.DataFrame
    n_flipped: int
    n_tie_votes: int

    def summary(self) -> dict[str, Any]:
        c = self.choice
        return {"n_pairs": c.n_items, "n_annotators": c.n_annotators, "n_votes": c.n_ratings,
                "n_tie_votes": self.n_tie_votes, "n_flipped": self.n_flipped,
                "percent_agreement": c.percent_agreement, "fleiss_kappa": c.fleiss.kappa,
                "krippendorff_alpha": c.krippendorff_alpha,
                "mean_pairwise_cohen_kappa": c.summary()["mean_pairwise_cohen_kappa"],
                "decisive": None if self.decisive is None else {
                    "n_votes": self.decisive.n_ratings, "percent_agreement": self.decisive.percent_agreement,
                    "fleiss_kappa": self.decisive.fleiss.kappa, "krippendorff_alpha": self.decisive.krippendorff_alpha},
                "n_contested": int(self.pairs["contested"].sum()),
                "consensus_counts": {k: int(v) for k, v in self.pairs["consensus"].value_counts().items()}}

    def to_dict(self, *, max_rows: int = 50) -> dict[str, Any]:
        out = self.summary()
        out["annotators"] = frame_records(self.choice.annotators)
        out["pairwise"] = frame_records(self.choice.pairwise, max_rows)
        out["contested"] = frame_records(self.pairs[self.pairs["contested"]], max_rows)
        return out

    def to_text(self, *, max_rows: int = 10) -> str:
        s, c = self.summary(), self.choice
        lines = [f"Preference agreement: {s['n_pairs']} pairs, {s['n_annotators']} annotators, {s['n_votes']} votes "
                 f"({s['n_tie_votes']} ties; {s['n_flipped']} shown in swapped order, flipped)",
                 f"  a/b/tie: percent agreement {format_number(c.percent_agreement)}, Fleiss' kappa "
                 f"{format_number(c.fleiss.kappa)}, Krippendorff's alpha {format_number(c.krippendorff_alpha)}, "
                 f"mean pairwise Cohen's kappa {format_number(s['mean_pairwise_cohen_kappa'])}"]
        if self.decisive is not None:
            d = self.decisive
            lines.append(f"  decisive votes only: percent agreement {format_number(d.percent_agreement)}, Fleiss' kappa "
                         f"{format_number(d.fleiss.kappa)}, Krippendorff's alpha {format_number(d.krippendorff_alpha)}")
        lines.append("  consensus: " + ", ".join(f"{k} {v}" for k, v in s["consensus_counts"].items())
                     + f"; contested pairs: {s['n_contested']}")
        a = c.annotators.head(max_rows)
        lines.append("  annotators (least agreement with the others' majority first):")
        lines += text_table(["annotator", "votes", "compared", "agree_majority"],
                            [[str(x.annotator), str(x.n_ratings), str(x.n_compared), format_number(x.agree_majority)]
                             for x in a.itertuples()], indent="    ", right=[1, 2, 3])
        cont = self.pairs[self.pairs["contested"]].head(max_rows)
        if len(cont):
            lines.append("  contested pairs:")
            lines += text_table(["item_id", "a", "b", "tie", "prompt"],
                                [[str(x.item_id), str(x.votes_a), str(x.votes_b), str(x.votes_tie), " ".join(str(x.prompt).split())[:60]]
                                 for x in cont.itertuples()], indent="    ", right=[1, 2, 3])
        return "\n".join(lines)


def _key(prompt: str, first: str, second: str) -> str:
    h = hashlib.sha256("\x00".join((prompt, first, second)).encode("utf-8")).hexdigest()
    return f"pair-{h[:12]}"


def preference_report(df: pd.DataFrame, *, annotator_col: str = "annotator", item_col: str | None = None,
                      min_shared: int = 5, random_state: int | None = 0, contested_share: float = 0.7,
                      source: str = "<DataFrame>") -> PreferenceReport:
    """Agreement and consensus for pairwise preferences (see the module docstring).

    Parameters
    ----------
    df : DataFrame
        Columns ``prompt`` (optional), ``response_a``, ``response_b``, ``preferred``, the annotator
        column, and optionally an item id column.
    item_col : str, optional
        Pair id column; default ``item_id`` when present, else pairs are keyed by their content.
    contested_share : float
        A pair is contested when its consensus choice has less than this share of its votes.

    Raises
    ------
    DataError
        Missing columns, an unreadable choice (naming the row), or fewer than two annotators.
    """
    found = ", ".join(map(str, df.columns[:30]))
    for col in (*PREFERENCE_COLUMNS[1:], annotator_col):
        if col not in df.columns:
            raise DataError(f"{source}: no column {col!r} (columns found: {found}); preferences need "
                            "response_a, response_b, preferred and an annotator column")
    if item_col is None and "item_id" in df.columns:
        item_col = "item_id"
    prompt = (df["prompt"] if "prompt" in df.columns else pd.Series([""] * len(df))).map(
        lambda v: normalise_label(v) or "").to_numpy(dtype=object)
    ra = df["response_a"].map(lambda v: normalise_label(v) or "").to_numpy(dtype=object)
    rb = df["response_b"].map(lambda v: normalise_label(v) or "").to_numpy(dtype=object)
    choice = []
    for row, v in enumerate(df["preferred"].to_numpy(dtype=object), start=1):
        try:
            choice.append(normalise_choice(v))
        except ValueError:
            raise DataError(f"{source}: data row {row} has preferred={v!r}; use a, b or tie "
                            "(response_a/response_b, 1/2, left/right, equal/both also work)") from None
    choice = np.array(choice, dtype=object)
    swap = np.array([a > b for a, b in zip(ra, rb)])
    first = np.where(swap, rb, ra)
    second = np.where(swap, ra, rb)
    flipped = np.array([{"a": "b", "b": "a"}.get(c, c) if s else c for c, s in zip(choice, swap)], dtype=object)
    if item_col is not None:
        items = df[item_col].map(normalise_label).to_numpy(dtype=object)
        if any(i is None for i in items):
            raise DataError(f"{source}: empty {item_col!r} on some rows; every pair needs an id")
    else:
        items = np.array([_key(p, a, b) for p, a, b in zip(prompt, first, second)], dtype=object)
    long = pd.DataFrame({"item_id": items, "annotator": df[annotator_col].to_numpy(dtype=object), "label": flipped,
                         "text": prompt})
    voted = long["label"].notna().to_numpy()
    n_flipped = int((swap & voted & np.isin(choice, ["a", "b"])).sum())
    long = long[voted].reset_index(drop=True)
    choice_report = agreement(long, min_shared=min_shared, random_state=random_state, source=source, unsure_labels=())
    decisive_votes = long[long["label"] != "tie"]
    decisive = None
    if decisive_votes["annotator"].nunique() >= 2 and decisive_votes["item_id"].nunique() >= 1:
        decisive = agreement(decisive_votes, min_shared=min_shared, random_state=random_state, source=source,
                             unsure_labels=())
    counts = long.groupby(["item_id", "label"]).size().unstack(fill_value=0)
    for c in ("a", "b", "tie"):
        if c not in counts.columns:
            counts[c] = 0
    info = pd.DataFrame({"item_id": items, "prompt": prompt, "response_a": first, "response_b": second}
                        ).drop_duplicates("item_id").set_index("item_id")
    pairs = counts[["a", "b", "tie"]].rename(columns={"a": "votes_a", "b": "votes_b", "tie": "votes_tie"})
    pairs = info.join(pairs, how="inner")
    n_votes = pairs[["votes_a", "votes_b", "votes_tie"]].sum(axis=1)
    va, vb, vt = pairs["votes_a"].to_numpy(), pairs["votes_b"].to_numpy(), pairs["votes_tie"].to_numpy()
    # a beats b when it has more votes; equal a and b votes, or most votes for "tie", make a tie.
    consensus = np.where((va > vb) & (va >= vt), "a", np.where((vb > va) & (vb >= vt), "b", "tie"))
    top = np.where(consensus == "a", va, np.where(consensus == "b", vb, np.maximum(vt, np.minimum(va, vb))))
    pairs.insert(3, "n_votes", n_votes.to_numpy())
    pairs["consensus"] = consensus
    pairs["consensus_share"] = top / np.maximum(n_votes.to_numpy(), 1)
    pairs["contested"] = (pairs["consensus_share"] < contested_share) & (pairs["n_votes"] >= 2)
    pairs = pairs.reset_index().sort_values(["contested", "consensus_share", "item_id"], ascending=[False, True, True],
                                            kind="stable").reset_index(drop=True)
    return PreferenceReport(choice=choice_report, decisive=decisive, pairs=pairs, n_flipped=n_flipped,
                            n_tie_votes=int((long["label"] == "tie").sum()))
