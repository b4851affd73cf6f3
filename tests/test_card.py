"""Data card: content, coverage, written files, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector.models import HashingEmbedder
from selector.quality.card import coverage, data_card
from selector.cli.app import app

PNG = b"\x89PNG\r\n\x1a\n"


def _blobs(seed=0):
    """Two labeled classes in blobs 0 and 1; blob 2 has only unlabeled rows (uncovered)."""
    rng = np.random.default_rng(seed)
    centers = np.eye(3, 12) * 6
    blob = np.repeat([0, 1, 2], [40, 40, 30])
    X = centers[blob] + rng.normal(size=(blob.size, 12))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    labels = np.where(blob == 0, "pos", np.where(blob == 1, "neg", ""))
    labels[30:40] = ""  # some unlabeled rows in covered blobs too
    df = pd.DataFrame({"id": [f"r{i}" for i in range(blob.size)], "text": [f"text number {i}" for i in range(blob.size)],
                       "label": labels})
    df.loc[1, "text"] = df.loc[0, "text"]  # same text and label: an exact duplicate
    return df, X.astype(np.float32), blob


def _annotations():
    rows = []
    for i in range(20):
        for a in ("p", "q", "r"):
            lab = "pos" if (i + (a == "r" and i % 4 == 0)) % 2 else "neg"
            rows.append((f"r{i}", a, lab, "v1" if i < 10 else "v2"))
    return pd.DataFrame(rows, columns=["item_id", "annotator", "label", "guideline_version"])


def test_coverage_finds_the_unlabeled_region():
    _, X, blob = _blobs()
    labeled = np.zeros(blob.size, bool)
    labeled[:30] = True
    labeled[40:80] = True
    cov = coverage(X, labeled, n_clusters=3, random_state=0)
    assert cov["n_uncovered"] == 1
    assert cov["pool_share_uncovered"] == pytest.approx(30 / 40)
    assert cov["rows_share_uncovered"] == pytest.approx(30 / blob.size)


def test_card_content_and_files(tmp_path):
    df, X, _ = _blobs()
    card = data_card(df, annotations=_annotations(), embeddings=X, n_clusters=3, name="blobs", source="blobs.csv")
    assert card.counts == {"n_rows": 110, "n_labeled": 70, "n_unlabeled": 40, "n_labels": 2, "ids_generated": False}
    assert card.class_balance["n_rows"].sum() == 70
    assert card.coverage["n_uncovered"] == 1
    assert card.validation.finding("exact_duplicate").row_ids == ["r0", "r1"]
    assert set(card.agreement.by_version) == {"v1", "v2"}
    assert card.guideline_versions["annotations"] == {"v1": 30, "v2": 30}
    assert card.model_agreement["model_agreement"].between(0, 1).all()
    assert any("hold no labeled row" in x for x in card.limitations)
    paths = card.write(tmp_path / "card.md")
    assert {p.name for p in paths.values()} == {"card.md", "card.json", "card.class_balance.png", "card.agreement.png"}
    for key in ("class_balance_png", "agreement_png"):
        assert paths[key].read_bytes()[:8] == PNG
    md = paths["markdown"].read_text()
    for heading in ("## Counts", "## Class balance", "## Agreement", "## Validator findings", "## Coverage",
                    "## Guideline versions", "## Known limitations", "## How this card was made"):
        assert heading in md
    assert "![class balance](card.class_balance.png)" in md and "guideline v2" in md
    data = json.loads(paths["json"].read_text())
    assert data["coverage"]["n_uncovered"] == 1 and data["agreement"]["krippendorff_alpha"] is not None
    assert data["provenance"]["versions"]["numpy"] == np.__version__


def test_cli_card(tmp_path):
    df, _, _ = _blobs()
    df.to_csv(tmp_path / "data.csv", index=False)
    res = CliRunner().invoke(app, ["card", str(tmp_path / "data.csv"), "--model", "hashing", "--no-model",
                                   "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out" / "card.md")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "out" / "card.md").exists() and (tmp_path / "out" / "card.class_balance.png").exists()
    assert not (tmp_path / "out" / "card.agreement.png").exists()  # nothing to plot without annotations or model
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["provenance"]["command"].startswith("selector ")
    assert card["provenance"]["input"]["sha256"]


def test_card_markdown_escapes_html_in_labels(tmp_path):
    from selector.quality.card import data_card

    rows = [{"id": f"r{i}", "text": f"text {i} about things", "label": lab}
            for i, lab in enumerate(["<img src=x onerror=alert(1)>", "ok|pipe"] * 10)]
    card = data_card(pd.DataFrame(rows), embedder=HashingEmbedder(32), model_agreement=False, source="t.csv")
    md = card.to_markdown()
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md
    assert "ok\\|pipe" in md
