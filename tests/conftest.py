"""Shared fixtures: small seeded synthetic tables and the fast hashing embedder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from selector.models import HashingEmbedder

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
FIXTURES = REPO / "tests" / "data"
#: The bundled example (2,002 banking77 questions), installed with the package.
EXAMPLE = REPO / "selector" / "data" / "banking77_sample.csv"


def trec_sample() -> pd.DataFrame:
    """600 trec training questions (``text``, ``label``), committed under ``tests/data`` (see its SOURCE.md)."""
    return pd.read_csv(FIXTURES / "trec_sample.csv", dtype=str, keep_default_na=False)


def shared_split(name: str, split: str, n: int | None = None, seed: int = 0) -> pd.DataFrame:
    """Rows of one split of a shared dataset (a seeded sample of ``n`` when given); skips the test when
    the shared datasets are not there."""
    path = DATASETS / name / "data.csv"
    if not path.exists():
        pytest.skip(f"shared {name} not found")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    df = df[df["split"] == split]
    return df.sample(n, random_state=seed) if n is not None else df

_TOPICS = {
    "sports": ["match", "goal", "team", "coach", "season", "league", "score", "player"],
    "finance": ["bank", "stock", "market", "loan", "interest", "profit", "shares", "rate"],
    "weather": ["rain", "storm", "sunny", "forecast", "wind", "snow", "cloud", "cold"],
}


def make_table(n: int = 120, labeled_frac: float = 0.3, seed: int = 0, with_id: bool = True) -> pd.DataFrame:
    """Seeded synthetic texts from three word-topics; ``labeled_frac`` of rows keep their label."""
    rng = np.random.default_rng(seed)
    topics = list(_TOPICS)
    rows = []
    for i in range(n):
        topic = topics[i % len(topics)]
        words = rng.choice(_TOPICS[topic], size=6) if rng.random() > 0.15 else rng.choice(sum(_TOPICS.values(), []), size=6)
        text = f"{' '.join(words)} number {i}"
        label = topic if rng.random() < labeled_frac else ""
        rows.append({"id": f"r{i:04d}", "text": text, "label": label})
    df = pd.DataFrame(rows)
    # Guarantee at least two labeled classes whatever the draw.
    df.loc[0, "label"], df.loc[1, "label"] = topics[0], topics[1]
    return df if with_id else df.drop(columns="id")


@pytest.fixture
def table() -> pd.DataFrame:
    return make_table()


@pytest.fixture
def hashing() -> HashingEmbedder:
    return HashingEmbedder(64)


@pytest.fixture
def csv_file(tmp_path, table) -> Path:
    path = tmp_path / "data.csv"
    table.to_csv(path, index=False)
    return path
