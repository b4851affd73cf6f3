"""The merged review queue of selector.quality.review and the ``selector review`` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.cli.app import app
from selector.errors import ConfigError
from selector.quality.review import REVIEW_COLUMNS, review


def _data(seed=0, n=120):
    """Three well-separated classes; rows 0-1 carry a wrong label; the last 30 rows are unlabeled."""
    rng = np.random.default_rng(seed)
    centers = np.eye(3, 16) * 4
    y = rng.integers(3, size=n)
    X = centers[y] + rng.normal(size=(n, 16))
    X[-5:] = centers[0] * 0.5 + centers[1] * 0.5 + 0.1 * rng.normal(size=(5, 16))  # between classes 0 and 1
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    names = np.array(["a", "b", "c"], dtype=object)
    labels = names[y].copy()
    labels[0] = names[(y[0] + 1) % 3]
    labels[1] = names[(y[1] + 1) % 3]
    labels[-30:] = ""
    df = pd.DataFrame({"id": [f"row{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)], "label": labels})
    ann = pd.DataFrame({"item_id": ["row5", "row5", "row5", "row5", "row6", "row6", "row6", "zz", "zz"],
                        "annotator": ["p", "q", "r", "s", "p", "q", "r", "p", "q"],
                        "label": ["a", "b", "a", "b", "a", "a", "b", "a", "c"],
                        "text": ["t5"] * 4 + ["t6"] * 3 + ["only in annotations"] * 2})
    return df, X.astype(np.float32), ann


def test_queue_merges_sources_with_reasons():
    df, X, ann = _data()
    res = review(df, annotations=ann, budget=30, embeddings=X, random_state=0)
    q = res.queue
    assert list(q.columns[:len(REVIEW_COLUMNS)]) == REVIEW_COLUMNS
    assert len(q) == 30 and q["id"].is_unique
    assert (np.diff(q["priority"].to_numpy()) <= 0).all()
    assert q["priority"].between(0, 1).all()
    by_id = q.set_index("id")
    # An even 2-2 split is maximally contested; the annotation-only item is kept with its text.
    assert by_id.loc["row5", "score_contested"] == pytest.approx(1.0)
    assert "annotators split" in by_id.loc["row5", "reasons"]
    assert by_id.loc["zz", "text"] == "only in annotations" and not by_id.loc["zz", "in_data"]
    # The two planted mislabels are suspects with a suggested label.
    for rid in ("row0", "row1"):
        assert "suspect" in by_id.loc[rid, "sources"]
        assert by_id.loc[rid, "suggested_label"] != by_id.loc[rid, "label"]
    # The unlabeled rows between two classes are the uncertain ones.
    uncertain = q[q["sources"].str.contains("uncertain")]
    assert set(uncertain["id"]) >= {f"row{i}" for i in range(115, 120)}
    assert res.stats["queued_by_source"]["contested"] == 3


def test_noisy_or_and_weights():
    df, X, ann = _data()
    only_contested = review(df, annotations=ann, budget=10, embeddings=X, weights={"suspect": 0, "uncertain": 0})
    assert set(only_contested.queue["sources"]) == {"contested"}
    half = review(df, annotations=ann, budget=10, embeddings=X, weights={"contested": 0.5, "suspect": 0,
                                                                           "uncertain": 0})
    top = half.queue.set_index("id").loc["row5"]
    assert top["priority"] == pytest.approx(0.5)
    with pytest.raises(ConfigError, match="unknown review source"):
        review(df, embeddings=X, weights={"loss": 1.0})
    with pytest.raises(ConfigError, match="budget"):
        review(df, embeddings=X, budget=0)


def test_deterministic():
    df, X, ann = _data()
    a = review(df, annotations=ann, budget=30, embeddings=X, random_state=3).queue
    b = review(df, annotations=ann, budget=30, embeddings=X, random_state=3).queue
    pd.testing.assert_frame_equal(a, b)


def test_cli_review(tmp_path):
    df, X, ann = _data()
    df.to_csv(tmp_path / "data.csv", index=False)
    ann.to_csv(tmp_path / "ann.csv", index=False)
    runner = CliRunner()
    res = runner.invoke(app, ["review", str(tmp_path / "data.csv"), "--annotations", str(tmp_path / "ann.csv"),
                              "--budget", "15", "--model", "hashing", "--cache-dir", str(tmp_path / "cache"),
                              "--out", str(tmp_path / "review.csv")])
    assert res.exit_code == 0, res.output
    q = pd.read_csv(tmp_path / "review.csv")
    assert len(q) == 15 and "queued 15 rows" in res.stderr
    res = runner.invoke(app, ["review", str(tmp_path / "data.csv"), "--out", str(tmp_path / "data.csv")])
    assert res.exit_code == 1 and "input file" in res.stderr


def test_unsure_items_head_the_queue_and_are_not_counted_as_votes():
    from conftest import make_table

    from selector.models import HashingEmbedder

    base = make_table(90, labeled_frac=0.5, seed=3)
    base.loc[5, "label"] = "needs_review"  # an unsure cell in the data itself
    ann = pd.DataFrame({
        "item_id": ["r0010"] * 3 + ["r0011"] * 3 + ["r0012"] * 3,
        "annotator": ["a", "b", "c"] * 3,
        "label": ["sports", "unsure", "sports",      # one unsure vote, otherwise unanimous
                  "finance", "weather", "finance",   # contested
                  "weather", "weather", "weather"],  # agreed
    })
    q = review(base, annotations=ann, budget=200, embedder=HashingEmbedder(64), random_state=0).queue
    top = q.head(2)
    assert set(top["id"]) == {"r0005", "r0010"}
    assert top["sources"].str.contains("unsure").all()
    # r0010's unsure vote is not a competing label: it is not contested.
    assert "contested" not in q.loc[q["id"] == "r0010", "sources"].iloc[0]
    assert "contested" in q.loc[q["id"] == "r0011", "sources"].iloc[0]
    assert "r0012" not in set(q.loc[q["sources"].str.contains("contested"), "id"])


def test_cli_review_puts_unsure_rows_first(tmp_path):
    from conftest import make_table

    data = tmp_path / "data.csv"
    df = make_table(60, labeled_frac=0.5, seed=4)
    df.loc[7, "label"] = "unsure"
    df.to_csv(data, index=False)
    out = tmp_path / "review.csv"
    res = CliRunner().invoke(app, ["review", str(data), "--budget", "10", "--out", str(out), "--model", "hashing",
                                   "--cache-dir", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert "unsure 1" in res.stderr
    queue = pd.read_csv(out)
    assert queue.loc[0, "id"] == "r0007" and queue.loc[0, "sources"].startswith("unsure")
