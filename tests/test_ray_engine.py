"""--engine ray: Ray Data actor pool against a local Ray (num_cpus=2), compared to the local engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'selector[ray]')")

from selector.config import SelectConfig  # noqa: E402
from selector.models import CachedEmbedder, HashingEmbedder  # noqa: E402
from selector.round.run import run_round  # noqa: E402
from selector.ray_engine import embed_with_ray  # noqa: E402

# The bundled example: a fresh clone has it (no ../shared needed).
DATA = Path(__file__).resolve().parents[1] / "selector" / "data" / "banking77_sample.csv"


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def texts() -> list[str]:
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False).head(30)
    # a few exact duplicates: each distinct text must go to the cluster once
    return df["text"].tolist() + df["text"].tolist()[:6]


def test_ray_embeddings_equal_local_engine(local_ray, texts, tmp_path):
    stats = embed_with_ray(texts, HashingEmbedder(64), tmp_path / "ray", model="hashing:64")
    assert stats["n_sent"] == len(set(texts)) == 30
    assert stats["gpu"] is False

    from_cache = CachedEmbedder(HashingEmbedder(64), tmp_path / "ray")
    got = from_cache.encode(texts)
    assert from_cache.last_stats["n_embedded"] == 0  # everything came from what Ray wrote
    local = CachedEmbedder(HashingEmbedder(64), tmp_path / "local").encode(texts)
    np.testing.assert_array_equal(got, local)

    again = embed_with_ray(texts, HashingEmbedder(64), tmp_path / "ray", model="hashing:64")
    assert again["n_sent"] == 0  # already cached: nothing is sent twice


def test_run_round_with_ray_engine_gives_local_queue(local_ray, texts, tmp_path):
    labels = ["card_arrival" if i % 3 == 0 else ("" if i % 3 == 1 else "other") for i in range(len(texts))]
    df = pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts, "label": labels})
    base = SelectConfig(budget=5, model="hashing:64", seed=0)
    local = run_round(df, base, cache_dir=tmp_path / "local")
    remote = run_round(df, base.replace(engine="ray"), cache_dir=tmp_path / "ray")
    pd.testing.assert_frame_equal(local.queue, remote.queue)
    assert remote.stats["n_embedded"] == 0  # the driver read every vector from the cache Ray filled


@pytest.mark.slow
def test_ray_real_model_matches_local(local_ray, texts, tmp_path):
    from selector.models import SentenceTransformerEmbedder

    few = texts[:24]
    emb = SentenceTransformerEmbedder(device="cpu", backend="torch")
    embed_with_ray(few, emb, tmp_path / "ray", backend="torch", num_actors=1)
    got = CachedEmbedder(emb, tmp_path / "ray").encode(few)
    local = SentenceTransformerEmbedder(device="cpu", backend="torch").encode(few)
    assert np.abs(got - local).max() < 1e-5


def test_a_large_pool_on_ray_is_shortlisted_on_exact_vectors_streamed_from_the_cache(local_ray, texts, tmp_path,
                                                                                      monkeypatch):
    from selector.round import two_stage

    monkeypatch.setattr(two_stage, "STREAM_MIN_ROWS", 10)  # these 36 rows stand for a pool of millions
    labels = ["card_arrival" if i % 3 == 0 else ("" if i % 3 == 1 else "other") for i in range(len(texts))]
    df = pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts, "label": labels})
    base = SelectConfig(budget=5, model="hashing:64", seed=0, strategy="margin")
    local = run_round(df, base.replace(two_stage="off"), cache_dir=tmp_path / "local")
    remote = run_round(df, base.replace(engine="ray"), cache_dir=tmp_path / "ray")
    two = remote.stats["two_stage"]
    assert two["used"] and two["source"] == "exact" and "engine ray" in two["reason"]
    assert remote.stats["n_embedded"] == len(set(texts))  # sent to Ray once each, then read back from the cache
    pd.testing.assert_frame_equal(local.queue, remote.queue)
