"""The embedding cache at scale: exact vectorised lookup and de-duplication, 1M keys, float16 storage."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from selector.config import SelectConfig
from selector.models import CachedEmbedder, EmbeddingCache, HashingEmbedder, text_digests
from selector.models.cache import unique_digests
import selector.round.compute as pipeline
from selector.round.run import run_round


class CountingEmbedder(HashingEmbedder):
    """HashingEmbedder that records every text it is asked to embed."""

    def __init__(self, dimension: int = 16) -> None:
        super().__init__(dimension)
        self.seen: list[str] = []

    def encode(self, texts, *, show_progress=False):
        self.seen.extend(texts)
        return super().encode(texts)


def test_unique_digests_matches_numpy_unique():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (500, 32), dtype=np.uint8)
    d = base[rng.integers(0, 500, 3000)]
    first, inverse = unique_digests(d)
    ref_u, ref_first = np.unique(d.view("V32").reshape(-1), return_index=True)
    assert first.size == ref_u.size
    np.testing.assert_array_equal(d[first][inverse], d)
    assert len({d[i].tobytes() for i in first}) == first.size
    assert all(first[inverse[i]] <= i for i in range(d.shape[0]))  # each maps to its first occurrence


def test_prefix_collisions_are_resolved_exactly(tmp_path):
    rng = np.random.default_rng(1)
    d = rng.integers(0, 256, (6, 32), dtype=np.uint8)
    d[:, :8] = d[0, :8]  # six different digests sharing their 8-byte prefix
    first, inverse = unique_digests(np.concatenate([d, d[::-1]]))
    assert first.size == 6
    cache = EmbeddingCache(tmp_path, "fp", 4)
    vecs = rng.standard_normal((6, 4)).astype(np.float32)
    cache.add(d[:3], vecs[:3])
    cache.add(d[3:], vecs[3:])
    found, got = EmbeddingCache(tmp_path, "fp", 4).get(d[::-1])
    assert found.all()
    np.testing.assert_array_equal(got, vecs[::-1])


def test_duplicates_are_embedded_once_and_incremental_index_matches_reload(tmp_path):
    emb = CountingEmbedder()
    cached = CachedEmbedder(emb, tmp_path, chunk_size=3)
    texts = ["b", "a", "b", "c", "a", "d", "dd", "b"]
    out = cached.encode(texts)
    assert sorted(emb.seen) == ["a", "b", "c", "d", "dd"]
    assert cached.last_stats == {"n_texts": 8, "n_unique": 5, "n_cached": 0, "n_embedded": 5}
    np.testing.assert_array_equal(out, HashingEmbedder(16).encode(texts))
    more = texts + ["e", "a"]
    out2 = cached.encode(more)  # index grown in place by add(): must agree with a fresh load
    assert emb.seen[5:] == ["e"]
    assert cached.last_stats == {"n_texts": 10, "n_unique": 6, "n_cached": 5, "n_embedded": 1}
    fresh = CachedEmbedder(CountingEmbedder(), tmp_path)
    np.testing.assert_array_equal(fresh.encode(more), out2)
    assert fresh.last_stats["n_embedded"] == 0


def test_float16_storage_round_trips_within_half_precision(tmp_path):
    texts = [f"text {i} about {i % 7}" for i in range(50)]
    first = CachedEmbedder(HashingEmbedder(32), tmp_path, dtype="float16").encode(texts)
    again = CachedEmbedder(HashingEmbedder(32), tmp_path, dtype="float16")
    np.testing.assert_array_equal(again.encode(texts), first)  # a run returns what later runs read
    assert again.last_stats["n_embedded"] == 0
    assert np.abs(first - HashingEmbedder(32).encode(texts)).max() < 1e-3


def test_one_million_keys_resolve_in_seconds(tmp_path):
    n, dim = 1_000_000, 4
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 256, (n, 32), dtype=np.uint8)
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    cache = EmbeddingCache(tmp_path, "fp", dim)
    for start in range(0, n, 250_000):
        cache.add(keys[start : start + 250_000], vecs[start : start + 250_000])
    query = np.concatenate([keys[rng.permutation(n)[: n - 1000]], rng.integers(0, 256, (1000, 32), dtype=np.uint8)])
    reopened = EmbeddingCache(tmp_path, "fp", dim)
    t0 = time.perf_counter()
    found, got = reopened.get(query)
    seconds = time.perf_counter() - t0
    assert found[: n - 1000].all() and not found[n - 1000 :].any()
    lookup = {k.tobytes(): i for i, k in enumerate(keys[:2000])}
    for j in np.flatnonzero([q.tobytes() in lookup for q in query[:200_000]])[:200]:
        np.testing.assert_array_equal(got[j], vecs[lookup[query[j].tobytes()]])
    # "seconds", with head room for a loaded 2-core CI machine (about 2 s unloaded).
    assert seconds < 30, f"1M-key lookup took {seconds:.1f}s"


def test_chunked_scoring_gives_the_unchunked_queue(monkeypatch):
    rng = np.random.default_rng(3)
    n = 3000
    words = np.array(["card", "transfer", "refund", "atm", "fee", "pin", "cash", "rate", "top", "up"])
    texts = [" ".join(rng.choice(words, 6)) + f" #{i}" for i in range(n)]
    labels = np.full(n, "", dtype=object)
    lab = rng.choice(n, 300, replace=False)
    labels[lab] = [t.split()[0] for t in np.asarray(texts, dtype=object)[lab]]
    df = pd.DataFrame({"id": np.arange(n).astype(str), "text": texts, "label": labels})
    config = SelectConfig(budget=50, model="hashing:64", seed=0)
    whole = run_round(df, config).queue
    monkeypatch.setattr(pipeline, "SCORE_CHUNK_ROWS", 257)
    chunked = run_round(df, config).queue
    pd.testing.assert_frame_equal(whole, chunked)
