"""Pairwise preferences: swapped sides flipped, ties, kappa on the choice, consensus and the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from selector.cli import app
from selector.errors import DataError
from selector.quality.preferences import normalise_choice, preference_report

DATA = Path(__file__).parent / "data"


def _rows(votes):
    """votes: (pair, annotator, first shown, second shown, preferred)."""
    return pd.DataFrame([{"prompt": f"q-{p}", "annotator": a, "response_a": x, "response_b": y, "preferred": c}
                         for p, a, x, y, c in votes])


def test_swapped_sides_agree_after_flipping_and_consensus():
    df = _rows([
        ("1", "u1", "good", "bad", "A"), ("1", "u2", "bad", "good", "B"), ("1", "u3", "good", "bad", "a"),
        ("2", "u1", "x", "y", "tie"), ("2", "u2", "y", "x", "Equal"), ("2", "u3", "x", "y", "b"),
        ("3", "u1", "p", "q", "a"), ("3", "u2", "q", "p", "a"), ("3", "u3", "p", "q", "tie"),
    ])
    rep = preference_report(df, min_shared=1)
    pairs = rep.pairs.set_index("prompt")
    # Pair 1: everyone preferred "good" whatever side it was on.
    assert pairs.loc["q-1", ["votes_a", "votes_b", "votes_tie"]].tolist() in ([3, 0, 0], [0, 3, 0])
    winner = pairs.loc["q-1", "response_a"] if pairs.loc["q-1", "consensus"] == "a" else pairs.loc["q-1", "response_b"]
    assert winner == "good" and not pairs.loc["q-1", "contested"]
    assert pairs.loc["q-2", "consensus"] == "tie"  # two tie votes beat one decisive vote
    assert pairs.loc["q-3", "consensus"] == "tie" and pairs.loc["q-3", "contested"]  # one a, one b, one tie
    assert rep.n_tie_votes == 3 and rep.n_flipped == 3
    assert rep.choice.n_items == 3 and rep.decisive is not None


def test_cohen_kappa_on_the_choice_matches_scikit_learn():
    df = pd.read_csv(DATA / "preferences_hs_brexit.csv")
    rep = preference_report(df, item_col="pair", min_shared=5)
    # Recompute one annotator pair's kappa on the canonical (flipped) choices.
    canon = []
    for r in df.itertuples():
        c = normalise_choice(r.preferred)
        if r.response_a > r.response_b:
            c = {"a": "b", "b": "a"}.get(c, c)
        canon.append(c)
    wide = df.assign(c=canon).pivot_table(index="pair", columns="annotator", values="c", aggfunc="first")
    row = rep.choice.pairwise.iloc[0]
    both = wide[[row["annotator_a"], row["annotator_b"]]].dropna()
    assert row["cohen_kappa"] == pytest.approx(cohen_kappa_score(both.iloc[:, 0], both.iloc[:, 1]), abs=1e-9)
    # The control group saw every pair swapped; without the flip their votes would contradict the others'.
    assert rep.n_flipped > 0 and rep.decisive.percent_agreement > 0.8


def test_bad_choice_and_missing_columns_are_clear():
    with pytest.raises(DataError, match="data row 2 has preferred='maybe'"):
        preference_report(_rows([("1", "u1", "a", "b", "a"), ("1", "u2", "a", "b", "maybe")]))
    with pytest.raises(DataError, match="no column 'preferred'"):
        preference_report(pd.DataFrame({"response_a": ["x"], "response_b": ["y"], "annotator": ["u"]}))


def test_cli_detects_preferences_and_writes_consensus(tmp_path):
    out = tmp_path / "prefs.csv"
    res = CliRunner().invoke(app, ["agreement", str(DATA / "preferences_hs_brexit.csv"), "--item-col", "pair",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Preference agreement: 150 pairs, 6 annotators" in res.stdout and "decisive votes only" in res.stdout
    pairs = pd.read_csv(out)
    assert len(pairs) == 150 and set(pairs["consensus"]) <= {"a", "b", "tie"}
    res = CliRunner().invoke(app, ["agreement", str(DATA / "preferences_hs_brexit.csv"), "--item-col", "pair", "--json"])
    summary = json.loads(res.stdout)
    assert summary["n_pairs"] == 150 and summary["n_votes"] == 900
