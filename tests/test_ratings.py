"""Ratings and rubrics: Krippendorff's alpha at every level against the krippendorff package, weighted
kappa against scikit-learn, spread, rater bias, consensus scores, and the CLI / card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from typer.testing import CliRunner

from selector.cli import app
from selector.errors import DataError
from selector.quality.ratings import (
    LEVELS,
    krippendorff_alpha_at,
    ratings_report,
    weighted_kappa,
)

krippendorff = pytest.importorskip("krippendorff")
DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _reliability(df, item_col, annotator_col, value_col):
    """The krippendorff package's input: annotators x items, NaN where missing."""
    wide = df.pivot_table(index=annotator_col, columns=item_col, values=value_col, aggfunc="first")
    return wide.to_numpy(dtype=float)


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_krippendorff_package_on_the_hs_brexit_ratings(level):
    df = pd.read_csv(DATA / "ratings_hs_brexit.csv")
    ours = krippendorff_alpha_at(df["item_id"], df["rating"], level)
    ref = krippendorff.alpha(reliability_data=_reliability(df, "item_id", "annotator", "rating"),
                             level_of_measurement=level)
    assert abs(ours - ref) < 1e-9


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_krippendorff_package_on_a_shared_multi_annotator_set(level):
    """MD-Agreement: 5 of 819 MTurk annotators per tweet (sparse), offensive coded 1, not 0."""
    path = SHARED / "lewidi_md_agreement" / "data.csv"
    if not path.exists():
        pytest.skip("shared datasets not present")
    df = pd.read_csv(path, usecols=["item_id", "annotator", "label"])
    items = sorted(df["item_id"].unique())[:600]
    df = df[df["item_id"].isin(items)]
    value = (df["label"] == "offensive").astype(float)
    ours = krippendorff_alpha_at(df["item_id"], value, level)
    ref = krippendorff.alpha(reliability_data=_reliability(df.assign(v=value), "item_id", "annotator", "v"),
                             level_of_measurement=level)
    assert abs(ours - ref) < 1e-9


@pytest.mark.parametrize("level", LEVELS)
def test_alpha_equals_package_with_missing_ratings_and_uneven_scale(level):
    rng = np.random.default_rng(3)
    M = rng.choice([1.0, 2.0, 4.0, 7.0, 10.0], size=(6, 50))
    M[rng.random(M.shape) < 0.3] = np.nan
    a, i = np.nonzero(~np.isnan(M))
    ours = krippendorff_alpha_at(i, M[a, i], level)
    assert abs(ours - krippendorff.alpha(reliability_data=M, level_of_measurement=level)) < 1e-9


@pytest.mark.parametrize("weights", ["linear", "quadratic", None])
def test_weighted_kappa_equals_scikit_learn(weights):
    rng = np.random.default_rng(0)
    a = rng.integers(1, 6, 200).astype(float)
    b = np.clip(a + rng.integers(-2, 3, 200), 1, 5)
    scale = np.arange(1.0, 6.0)
    assert abs(weighted_kappa(a, b, scale, weights)
               - cohen_kappa_score(a, b, labels=scale, weights=weights)) < 1e-12


def test_report_spread_bias_and_consensus_scores():
    df = pd.DataFrame({"item_id": ["i1"] * 3 + ["i2"] * 3 + ["i3"] * 3,
                       "annotator": ["a", "b", "c"] * 3,
                       "label": [3, 4, 5, 1, 1, 2, 2, 5, 3]})
    rep = ratings_report(df, level="interval", min_shared=1)["label"]
    items = rep.items.set_index("item_id")
    assert items.loc["i1", "mean"] == 4 and items.loc["i1", "median"] == 4 and items.loc["i3", "range"] == 3
    assert items.loc["i2", "sd"] == pytest.approx(np.std([1, 1, 2]))
    assert rep.contested["item_id"].tolist() == ["i3", "i1"]  # range >= 2 on a 1-5 scale
    ann = rep.annotators.set_index("annotator")
    # c's offset from the others' mean: (5-3.5) + (2-1) + (3-3.5) = 2 over 3 items
    assert ann.loc["c", "bias"] == pytest.approx(2 / 3)
    assert ann.loc["a", "share_extremes"] == pytest.approx(1 / 3) and ann.loc["b", "n_values_used"] == 3
    assert rep.alpha["interval"] == pytest.approx(krippendorff.alpha(
        reliability_data=np.array([[3, 1, 2], [4, 1, 5], [5, 2, 3]], float), level_of_measurement="interval"))


def test_bias_corrected_score_removes_a_constant_rater_offset():
    rng = np.random.default_rng(1)
    truth = rng.uniform(1, 5, 40)
    rows = []
    for i, t in enumerate(truth):
        for who, off in (("fair", 0.0), ("harsh", -1.0), ("kind", 1.0)):
            if who == "kind" and i % 2:  # the kind rater rates only every other item
                continue
            rows.append({"item_id": f"i{i:02d}", "annotator": who, "label": t + off})
    rep = ratings_report(pd.DataFrame(rows), level="interval")["label"]
    got = rep.items.set_index("item_id").loc[[f"i{i:02d}" for i in range(40)]]
    err_mean = np.abs(got["mean"].to_numpy() - truth).mean()
    err_fixed = np.abs(got["bias_corrected"].to_numpy() - truth).mean()
    assert err_fixed < 1e-6 < err_mean


def test_rubric_alpha_per_criterion_total_and_version():
    df = pd.read_csv(DATA / "rubric_synthetic.csv")
    reports = ratings_report(df, criteria=["helpful", "correct", "safe"], level="ordinal")
    assert list(reports) == ["helpful", "correct", "safe", "total"]
    for crit in ("helpful", "correct", "safe"):
        ref = krippendorff.alpha(reliability_data=_reliability(df, "item_id", "annotator", crit),
                                 level_of_measurement="ordinal")
        assert abs(reports[crit].alpha["ordinal"] - ref) < 1e-9
    total = df.assign(total=df[["helpful", "correct", "safe"]].sum(axis=1))
    ref = krippendorff.alpha(reliability_data=_reliability(total, "item_id", "annotator", "total"),
                             level_of_measurement="interval")
    assert abs(reports["total"].alpha["interval"] - ref) < 1e-9
    # The vague criterion is the one raters disagree on; the clearer v2 guideline raises agreement.
    assert reports["helpful"].alpha["ordinal"] < min(reports["correct"].alpha["ordinal"], reports["safe"].alpha["ordinal"])
    v = reports["helpful"].by_version
    assert set(v) == {"v1", "v2"} and v["v2"].alpha["ordinal"] > v["v1"].alpha["ordinal"]


def test_non_numeric_rating_is_one_clear_error():
    df = pd.DataFrame({"item_id": ["a", "a"], "annotator": ["x", "y"], "label": ["3", "good"]})
    with pytest.raises(DataError, match="column 'label' holds 1 rating.*'good'.*--level nominal"):
        ratings_report(df)
    unsure = pd.DataFrame({"item_id": ["a", "a", "b", "b"], "annotator": ["x", "y", "x", "y"],
                           "label": ["3", "unsure", "2", "2"]})
    assert ratings_report(unsure)["label"].n_unsure == 1


def test_cli_agreement_levels_rubric_and_out(tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["agreement", str(DATA / "ratings_hs_brexit.csv"), "--label-col", "rating",
                              "--level", "ordinal", "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)["rating"]
    assert report["level"] == "ordinal" and report["alpha"]["ordinal"] > report["alpha"]["nominal"]
    out = tmp_path / "scores.csv"
    res = runner.invoke(app, ["agreement", str(DATA / "rubric_synthetic.csv"), "--criteria", "helpful,correct,safe",
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "helpful" in res.stdout and "guideline version v2" in res.stdout
    scores = pd.read_csv(out)
    assert set(scores["criterion"]) == {"helpful", "correct", "safe", "total"} and len(scores) == 4 * 80
    res = runner.invoke(app, ["agreement", str(DATA / "ratings_hs_brexit.csv"), "--level", "loud"])
    assert res.exit_code != 0 and "--level must be one of" in res.output


def test_card_shows_ratings(tmp_path):
    ratings = pd.read_csv(DATA / "ratings_hs_brexit.csv")
    items = ratings.groupby("item_id").agg(text=("text", "first"), mean=("rating", "mean")).reset_index()
    table = pd.DataFrame({"id": items["item_id"], "text": items["text"],
                          "label": np.where(items["mean"] >= 1, "hateful", "not_hateful")})
    data, ann = tmp_path / "items.csv", tmp_path / "ratings.csv"
    table.to_csv(data, index=False)
    ratings.rename(columns={"rating": "label"}).to_csv(ann, index=False)  # --label-col names both files' column
    res = CliRunner().invoke(app, ["card", str(data), "--annotations", str(ann), "--level", "ordinal", "--model", "hashing",
                                   "-o", str(tmp_path / "card.md")])
    assert res.exit_code == 0, res.output
    md = (tmp_path / "card.md").read_text()
    assert "Krippendorff's alpha at every level" in md and "Rater bias and scale use" in md
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["ratings"]["label"]["alpha"]["ordinal"] == pytest.approx(
        krippendorff.alpha(reliability_data=_reliability(ratings, "item_id", "annotator", "rating"),
                           level_of_measurement="ordinal"))
