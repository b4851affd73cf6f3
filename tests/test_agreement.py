"""Agreement figures against reference implementations, consensus labels, the CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.quality.agreement import (
    agreement,
    dawid_skene,
    encode_ratings,
    fleiss_kappa,
    krippendorff_alpha,
    majority_vote,
    pairwise_agreement,
)
from selector.quality.annotations import prepare_annotations
from selector.cli.app import app
from selector.errors import DataError

krippendorff = pytest.importorskip("krippendorff")
inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
from sklearn.metrics import cohen_kappa_score  # noqa: E402

DATASETS = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
MULTI_ANNOTATOR = ["snow2008_rte", "lewidi_hs_brexit", "lewidi_md_agreement"]


@pytest.fixture(scope="module", params=MULTI_ANNOTATOR)
def real_set(request):
    path = DATASETS / request.param / "data.csv"
    if not path.exists():
        pytest.skip(f"{path} not available")
    df = pd.read_csv(path, dtype=str, keep_default_na=False, usecols=["item_id", "annotator", "label"])
    return request.param, prepare_annotations(df)


def _reliability(codes) -> np.ndarray:
    rel = np.full((codes.annotators.size, codes.items.size), np.nan)
    rel[codes.annotator, codes.item] = codes.label
    return rel


def test_matches_reference_implementations_on_real_sets(real_set):
    name, ann = real_set
    codes = encode_ratings(ann)
    # Krippendorff's alpha (nominal) vs the krippendorff package.
    ref_alpha = krippendorff.alpha(reliability_data=_reliability(codes), level_of_measurement="nominal")
    assert krippendorff_alpha(codes) == pytest.approx(ref_alpha, abs=1e-9)
    # Fleiss' kappa vs statsmodels, on the items it keeps.
    fk = fleiss_kappa(codes)
    used = codes.counts[codes.n_ratings_per_item == fk.raters_per_item]
    assert fk.n_items_used == used.shape[0]
    assert fk.kappa == pytest.approx(inter_rater.fleiss_kappa(used, method="fleiss"), abs=1e-9)
    # Cohen's kappa vs scikit-learn, for up to 60 pairs (every pair on the small sets).
    pw = pairwise_agreement(codes, min_shared=2)
    assert len(pw) > 0
    sample = pw if len(pw) <= 60 else pw.sample(60, random_state=0)
    wide = ann.pivot(index="item_id", columns="annotator", values="label")
    for a, b, n_shared, pa, kappa in sample.itertuples(index=False):
        both = wide[[a, b]].dropna()
        assert len(both) == n_shared
        assert pa == pytest.approx((both[a] == both[b]).mean(), abs=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # sklearn warns on a degenerate (0/0) kappa; we compare NaN
            ref = cohen_kappa_score(both[a], both[b])
        if np.isnan(ref):
            assert np.isnan(kappa)
        else:
            assert kappa == pytest.approx(ref, abs=1e-9), (name, a, b)


def test_snow2008_consensus_accuracy_against_gold():
    path = DATASETS / "snow2008_rte" / "data.csv"
    if not path.exists():
        pytest.skip("snow2008_rte not available")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    report = agreement(df, gold_col="gold_label")
    g = report.gold_accuracy
    assert g["n_items_with_gold"] == 800
    assert g["n_ties"] == 65
    # Snow et al. (2008): 0.897 for majority vote with random tie-breaking (expected value).
    assert g["majority_vote_expected"] == pytest.approx(0.897, abs=0.001)
    assert g["dawid_skene"] > g["majority_vote_expected"]


def _synthetic(seed=0, n_items=300, labels=("a", "b", "c")):
    """Three good annotators (90% right), one spammer (uniform), one who swaps b and c."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(len(labels), size=n_items, p=[0.5, 0.3, 0.2])
    rows = []
    for i, t in enumerate(truth):
        for a in ("good1", "good2", "good3"):
            lab = t if rng.random() < 0.9 else rng.integers(len(labels))
            rows.append((f"item{i}", a, labels[lab]))
        rows.append((f"item{i}", "spammer", labels[rng.integers(len(labels))]))
        rows.append((f"item{i}", "swapper", labels[{0: 0, 1: 2, 2: 1}[int(t)]]))
    return pd.DataFrame(rows, columns=["item_id", "annotator", "label"]), np.array(labels)[truth]


def test_dawid_skene_learns_annotator_confusions():
    df, truth = _synthetic()
    ds = dawid_skene(prepare_annotations(df))
    assert ds.converged
    acc = dict(zip(ds.annotators, ds.annotator_accuracy()))
    assert acc["spammer"] < 0.5 < min(acc["good1"], acc["good2"], acc["good3"])
    swapper = ds.confusion[list(ds.annotators).index("swapper")]
    b, c = list(ds.labels).index("b"), list(ds.labels).index("c")
    assert swapper[b, c] > 0.8 and swapper[c, b] > 0.8
    np.testing.assert_allclose(ds.confusion.sum(axis=2), 1.0)
    np.testing.assert_allclose(ds.posterior.sum(axis=1), 1.0)
    truth_by_item = pd.Series(truth, index=[f"item{i}" for i in range(truth.size)])[ds.items].to_numpy()
    mv = majority_vote(prepare_annotations(df))
    assert (ds.label == truth_by_item).mean() > 0.95
    assert (ds.label == truth_by_item).mean() > (mv["label"].to_numpy() == truth_by_item).mean()


def test_majority_vote_reports_ties():
    df = pd.DataFrame({"item_id": ["x", "x", "y", "y", "y"], "annotator": ["p", "q", "p", "q", "r"],
                       "label": ["a", "b", "a", "a", "b"]})
    mv = majority_vote(prepare_annotations(df)).set_index("item_id")
    assert bool(mv.loc["x", "tie"]) and mv.loc["x", "tied_labels"] == "a|b"
    assert mv.loc["x", "label"] in {"a", "b"}
    assert not mv.loc["y", "tie"] and mv.loc["y", "label"] == "a" and mv.loc["y", "share"] == pytest.approx(2 / 3)
    none = majority_vote(prepare_annotations(df), tie_break="none").set_index("item_id")
    assert pd.isna(none.loc["x", "label"])


def test_fleiss_drops_unequal_items_and_alpha_handles_missing():
    rng = np.random.default_rng(3)
    rows = []
    for i in range(120):
        raters = rng.choice(8, size=4 if i < 90 else 3, replace=False)
        rows += [(f"i{i}", f"r{r}", "xyz"[rng.integers(3)]) for r in raters]
    rows.append(("lonely", "r0", "x"))  # one rating: not pairable, ignored by alpha
    ann = prepare_annotations(pd.DataFrame(rows, columns=["item_id", "annotator", "label"]))
    fk = fleiss_kappa(ann)
    assert (fk.raters_per_item, fk.n_items_used, fk.n_items_dropped) == (4, 90, 31)
    assert fk.dropped == {1: 1, 3: 30}
    codes = encode_ratings(ann)
    ref = krippendorff.alpha(reliability_data=_reliability(codes), level_of_measurement="nominal")
    assert krippendorff_alpha(codes) == pytest.approx(ref, abs=1e-9)


def test_report_per_guideline_version_and_contested_order():
    df, _ = _synthetic(n_items=120)
    df["guideline_version"] = np.where(df["item_id"].str[4:].astype(int) < 60, "v1", "v2")
    report = agreement(df)
    assert set(report.by_version) == {"v1", "v2"}
    assert report.by_version["v1"].n_items == 60 and report.by_version["v2"].n_items == 60
    split = report.contested["split"].to_numpy()
    assert (np.diff(split) <= 1e-12).all() and (split > 0).all()
    assert len(report.consensus) == 120
    d = json.loads(json.dumps(report.to_dict()))
    assert set(d["by_version"]) == {"v1", "v2"}
    assert "Guideline version v2" in report.to_text()


def test_errors_are_clear():
    with pytest.raises(DataError, match="only one annotator"):
        agreement(pd.DataFrame({"item_id": ["a", "b"], "annotator": ["p", "p"], "label": ["x", "y"]}))
    with pytest.raises(DataError, match="pass --annotator-col"):
        agreement(pd.DataFrame({"item_id": ["a"], "rater": ["p"], "label": ["x"]}))


def test_cli_agreement(tmp_path):
    df, _ = _synthetic(n_items=50)
    src = tmp_path / "ann.csv"
    df.to_csv(src, index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["agreement", str(src), "--out", str(tmp_path / "cons.csv")])
    assert res.exit_code == 0, res.output
    assert "Fleiss' kappa" in res.stdout and "Krippendorff's alpha" in res.stdout
    cons = pd.read_csv(tmp_path / "cons.csv")
    assert len(cons) == 50 and {"majority_label", "majority_tie", "dawid_skene_label"} <= set(cons.columns)
    res = runner.invoke(app, ["agreement", str(src), "--json"])
    assert res.exit_code == 0
    assert json.loads(res.stdout)["n_items"] == 50
    res = runner.invoke(app, ["agreement", str(src), "--annotator-col", "worker"])
    assert res.exit_code == 1
    assert "no column 'worker'" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_unsure_votes_are_missing_ratings_not_a_class(tmp_path):
    df, _ = _synthetic(n_items=60)
    base = agreement(df)
    # The same ratings plus unsure answers from a sixth rater: every figure stays the same.
    extra = pd.DataFrame({"item_id": [f"item{i}" for i in range(20)], "annotator": "hesitant",
                          "label": ["unsure", "Needs_Review"] * 10})
    with_unsure = agreement(pd.concat([df, extra], ignore_index=True))
    assert with_unsure.labels == base.labels and "unsure" not in with_unsure.labels
    assert with_unsure.n_unsure == 20 and with_unsure.unsure_by_annotator == {"hesitant": 20}
    assert with_unsure.krippendorff_alpha == pytest.approx(base.krippendorff_alpha, abs=1e-12)
    assert with_unsure.fleiss.kappa == pytest.approx(base.fleiss.kappa, abs=1e-12)
    assert not with_unsure.confused_pairs[["label_a", "label_b"]].isin(["unsure", "Needs_Review"]).any().any()
    assert "20 unsure rating(s)" in with_unsure.to_text()
    # An empty unsure list makes them a class again (the user's choice, said explicitly).
    assert "unsure" in agreement(pd.concat([df, extra], ignore_index=True), unsure_labels=()).labels
    src = tmp_path / "ann.csv"
    pd.concat([df, extra], ignore_index=True).to_csv(src, index=False)
    res = CliRunner().invoke(app, ["agreement", str(src), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_unsure"] == 20
    res = CliRunner().invoke(app, ["agreement", str(src), "--json", "--unsure-labels", "unsure"])
    assert json.loads(res.stdout)["n_unsure"] == 10 and "Needs_Review" in json.loads(res.stdout)["labels"]
