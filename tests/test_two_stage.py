"""Two-stage rounds for cold pools (selector.round.two_stage): the shortlist, the decision, the round."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector import run_round
from selector.cli.app import app
from selector.config import SelectConfig
from selector.errors import ConfigError
from selector.models import CachedEmbedder, make_embedder
from selector.models.cache import text_digests
from selector.models.classifiers import make_classifier
from selector.round import run as run_module
from selector.round import two_stage
from selector.round.pool import prepare_pool
from selector.round.two_stage import (
    SHORTLIST_MIN,
    TWO_STAGE_MIN_ROWS,
    decide_two_stage,
    shortlist,
    shortlist_size,
    why_not_shortlist,
    why_not_two_stage,
)

SAMPLE = Path(__file__).resolve().parents[1] / "selector" / "data" / "banking77_sample.csv"
CHAT = Path(__file__).resolve().parent / "data" / "chat_banking77.jsonl"


def _blobs(n_per: int = 300, k: int = 4, d: int = 16, seed: int = 0):
    """``k`` well-separated unit-norm blobs: vectors (k * n_per, d) and their blob as the label."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 4
    X = np.concatenate([c + rng.standard_normal((n_per, d)) for c in centres]).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, np.repeat([f"c{i}" for i in range(k)], n_per).astype(object)


def test_shortlist_size_follows_the_budget():
    assert shortlist_size(1) == SHORTLIST_MIN
    assert shortlist_size(1000) == 10_000


def test_cold_shortlist_is_a_uniform_sample_and_is_deterministic():
    X, y = _blobs()
    got = shortlist(X, X[:0], y[:0], 100, classifier=make_classifier(random_state=0), random_state=3)
    assert got.positions.size == 100 and np.all(np.diff(got.positions) > 0)
    assert got.sources == {"random": 100}
    again = shortlist(X, X[:0], y[:0], 100, classifier=make_classifier(random_state=0), random_state=3)
    np.testing.assert_array_equal(again.positions, got.positions)
    # coverage, when asked for, takes the rows nearest the cluster centres: every blob is represented
    covered = shortlist(X, X[:0], y[:0], 40, classifier=make_classifier(), random_state=3,
                        cold_shares={"coverage": 1.0})
    assert covered.sources["coverage"] == 40 and set(y[covered.positions]) == set(y)


def test_shortlist_with_a_model_takes_uncertain_rows_and_the_neighbours_of_rare_classes():
    X, y = _blobs()
    lab = np.r_[np.arange(0, 20), np.arange(300, 320), np.arange(600, 620), np.arange(900, 903)]  # c3 is rare
    unl = np.setdiff1d(np.arange(len(y)), lab)
    got = shortlist(X[unl], X[lab], y[lab], 200, classifier=make_classifier(random_state=0), random_state=0)
    assert got.rare_classes == ["c3"]
    assert got.positions.size == 200
    assert set(got.sources) == {"coverage", "rare", "uncertain", "random"}
    assert got.sources["rare"] == 40
    # the rare share is the rows nearest the rare class's labeled rows: all from its blob here
    assert (y[unl][got.positions] == "c3").sum() >= 40


def test_shortlist_leaves_out_cached_rows_and_random_gets_a_uniform_sample():
    X, y = _blobs()
    exclude = np.zeros(len(y), dtype=bool)
    exclude[:500] = True
    got = shortlist(X, X[:0], y[:0], 100, exclude=exclude, classifier=make_classifier(), random_state=0)
    assert got.positions.min() >= 500
    uniform = shortlist(X, X[:0], y[:0], 100, uniform=True, random_state=0)
    assert uniform.sources == {"random": 100}
    # asking for more than is left returns everything left
    everything = shortlist(X, X[:0], y[:0], 10_000, exclude=exclude, random_state=0)
    np.testing.assert_array_equal(everything.positions, np.arange(500, len(y)))


def _pool(n: int, labeled: int = 0):
    df = pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": [f"text {i}" for i in range(n)],
                       "label": ["a" if i < labeled else "" for i in range(n)]})
    return prepare_pool(df)


def test_auto_turns_on_for_large_uncached_pools_only(tmp_path):
    emb = make_embedder(None, device="cpu")  # built, not loaded: the decision reads only the cache
    small = decide_two_stage("auto", _pool(1000), embedder=emb, cache_dir=tmp_path, cache_dtype="float32",
                             budget=100, why_not=None)
    assert not small.use and str(TWO_STAGE_MIN_ROWS) in small.reason
    big = decide_two_stage("auto", _pool(TWO_STAGE_MIN_ROWS + 10), embedder=emb, cache_dir=None,
                           cache_dtype="float32", budget=100, why_not=None)
    assert big.use
    # a budget whose shortlist is over half the rows to embed: one stage
    huge = decide_two_stage("auto", _pool(TWO_STAGE_MIN_ROWS + 10), embedder=emb, cache_dir=None,
                            cache_dtype="float32", budget=5000, why_not=None)
    assert not huge.use and "half" in huge.reason
    assert not decide_two_stage("off", _pool(10), embedder=emb, cache_dir=None, cache_dtype="float32",
                                budget=1, why_not=None).use
    with pytest.raises(ConfigError, match="two_stage: on cannot run here: the embeddings were given"):
        decide_two_stage("on", _pool(10), embedder=emb, cache_dir=None, cache_dtype="float32", budget=1,
                         why_not="the embeddings were given (--embeddings)")


def test_rows_in_the_exact_cache_count_as_embedded(tmp_path):
    emb = make_embedder("hashing")
    pool = _pool(TWO_STAGE_MIN_ROWS + 10)
    CachedEmbedder(emb, tmp_path).encode(list(pool.texts[:20]))
    got = decide_two_stage("on", pool, embedder=emb, cache_dir=tmp_path, cache_dtype="float32", budget=1,
                           why_not=None)
    assert got.exact_cached.sum() == 20 and got.exact_cached[:20].all()


def test_why_not_names_each_round_that_must_read_every_row():
    st = make_embedder(None, device="cpu")
    base = dict(multi_label=False, embeddings_given=False, engine="local", embedder=st, votes=False, relabel=False,
                bucket_priority=False)
    assert why_not_two_stage(**base) is None
    assert "multi-label" in why_not_two_stage(**{**base, "multi_label": True})
    assert "--embeddings" in why_not_two_stage(**{**base, "embeddings_given": True})
    assert "engine ray" in why_not_two_stage(**{**base, "engine": "ray"})
    assert "--relabel" in why_not_two_stage(**{**base, "relabel": True})
    assert "hashing" in why_not_two_stage(**{**base, "embedder": make_embedder("hashing")})
    assert "approximate" in why_not_two_stage(**{**base, "embedder": make_embedder(None, device="cpu",
                                                                                    backend="static")})


def test_two_stage_on_is_refused_before_embedding_where_it_cannot_run(tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame({"text": ["a b", "c d", "e f"], "label": ["x", "", ""]}).to_csv(data, index=False)
    res = CliRunner().invoke(app, ["select", str(data), "--model", "hashing", "--two-stage", "on", "-o",
                                   str(tmp_path / "q.csv")])
    assert res.exit_code != 0
    assert "two_stage: on cannot run here" in res.output and "hashing" in res.output
    assert not (tmp_path / "q.csv").exists()
    bad = CliRunner().invoke(app, ["select", str(data), "--model", "hashing", "--two-stage", "maybe"])
    assert bad.exit_code != 0 and "two_stage must be auto, on or off" in bad.output
    with pytest.raises(ConfigError):
        SelectConfig(two_stage="yes")


@pytest.mark.slow
def test_a_two_stage_round_queues_exactly_embedded_rows_and_the_next_round_reuses_them(tmp_path, monkeypatch):
    monkeypatch.setattr(two_stage, "SHORTLIST_MIN", 200)  # a 2,000-row pool, shortlisted as a large one is
    monkeypatch.setattr(two_stage, "STATIC_CHUNK_ROWS", 500)  # the static vectors come in 5 chunks
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    data = tmp_path / "pool.csv"
    df.to_csv(data, index=False)
    config = SelectConfig(budget=10, two_stage="on", seed=0)
    first = run_round(data, config, out=tmp_path / "q.csv", cache_dir=tmp_path / "cache")
    rec = json.loads((tmp_path / "q.round.json").read_text())
    two = rec["two_stage"]
    assert two["used"] and two["shortlist"] == 200 and sum(two["sources"].values()) == 200
    assert rec["counts"]["n_rows"] == len(df) and rec["counts"]["n_unlabeled"] == (df["label"] == "").sum()
    assert rec["counts"]["n_embedded"] == two["exact_rows"] < len(df)
    assert two["n_static_embedded"] == df["text"].nunique()  # every distinct text once, over all chunks
    # every queued row was embedded exactly, and nothing else was
    exact = CachedEmbedder(make_embedder(None, device="cpu"), tmp_path / "cache")
    assert exact.cache.lookup(text_digests(first.queue["text"].tolist()))[0].all() and len(first.queue) == 10
    assert len(exact.cache) == two["exact_rows"]
    # the same data, config, seed and (empty) cache give the same queue
    again = run_round(data, config, cache_dir=tmp_path / "other-cache")
    assert again.queue["id"].tolist() == first.queue["id"].tolist()
    # the next round reads the cached rows and embeds only a new shortlist
    later = run_round(data, config, cache_dir=tmp_path / "cache")
    assert later.stats["two_stage"]["cached_candidates"] == two["candidates"]
    assert later.stats["n_embedded"] == 200 and later.stats["two_stage"]["n_static_embedded"] == 0


@pytest.mark.slow
def test_a_two_stage_round_on_chat_data_keeps_each_rows_own_conversation(tmp_path, monkeypatch):
    monkeypatch.setattr(two_stage, "SHORTLIST_MIN", 20)
    # a stop set of 5 rows, so the rows read exactly are a part of the 240-line file, not all of it
    monkeypatch.setattr(run_module, "stop_set_ids", lambda ids, records: np.asarray(ids[:5], dtype=object))
    result = run_round(CHAT, SelectConfig(budget=5, two_stage="on", seed=0), cache_dir=tmp_path)
    assert result.stats["two_stage"]["exact_rows"] < 240
    assert len(result.queue) == 5
    for text, conversation in zip(result.queue["text"], result.queue["conversation"]):
        assert text in [m["content"] for m in json.loads(conversation)]


def test_unlabeled_rows_are_kept_in_place_chunk_by_chunk(monkeypatch):
    monkeypatch.setattr(two_stage, "STATIC_CHUNK_ROWS", 7)
    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 60))
        X = rng.standard_normal((n, 3)).astype(np.float32)
        rows = np.sort(rng.choice(n, size=int(rng.integers(0, n + 1)), replace=False))
        want = X[rows].copy()
        got = two_stage._keep_rows(X, rows)
        np.testing.assert_array_equal(got, want)
        assert rows.size == 0 or np.shares_memory(got, X)  # a view: no second copy of the pool's vectors


def test_a_large_pool_the_static_tier_cannot_shortlist_streams_its_exact_vectors(tmp_path, monkeypatch):
    monkeypatch.setattr(two_stage, "STREAM_MIN_ROWS", 1000)  # the 2,000-row sample counts as a large pool
    monkeypatch.setattr(two_stage, "SHORTLIST_MIN", 200)
    monkeypatch.setattr(two_stage, "STATIC_CHUNK_ROWS", 300)  # the missing rows are embedded in chunks
    streamed_chunks = []
    real_getitem = two_stage.CacheRows.__getitem__

    def counting_getitem(self, key):
        out = real_getitem(self, key)
        streamed_chunks.append(out.shape[0])
        return out

    monkeypatch.setattr(two_stage.CacheRows, "__getitem__", counting_getitem)
    monkeypatch.setattr(two_stage, "_CHUNK", 256)
    monkeypatch.setattr(two_stage, "KMEANS_FIT_ROWS", 256)
    real_nearest = two_stage.chunked_nearest
    monkeypatch.setattr(two_stage, "chunked_nearest", lambda X, C: real_nearest(X, C, chunk=256))
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    n_unlabeled = int((df["label"] == "").sum())
    # margin's picks are the rows of smallest margin, which the shortlist's uncertain share holds:
    # the same queue as a one-stage round that holds every vector
    config = SelectConfig(budget=10, model="hashing:64", strategy="margin", seed=0)
    one = run_round(df, config.replace(two_stage="off"), cache_dir=tmp_path / "one")
    got = run_round(df, config, cache_dir=tmp_path / "cache")
    two = got.stats["two_stage"]
    assert two["used"] and two["source"] == "exact" and "hashing" in two["reason"]
    assert two["shortlist"] == 200 and two["n_static_embedded"] == 0
    assert 200 <= two["candidates"] < n_unlabeled  # the shortlist and the stop set, not every cached row
    assert got.stats["n_embedded"] == df["text"].nunique()  # the first stage embedded every row once
    assert got.queue["id"].tolist() == one.queue["id"].tolist()
    assert max(streamed_chunks) <= 256 and sum(streamed_chunks) >= n_unlabeled  # read in chunks, never at once
    # the next round embeds nothing
    later = run_round(df, config, cache_dir=tmp_path / "cache")
    assert later.stats["n_embedded"] == 0 and later.stats["two_stage"]["source"] == "exact"
    # without a cache there is nothing to stream from: one stage
    plain = run_round(df, config, cache_dir=None)
    assert "two_stage" not in plain.stats or not plain.stats["two_stage"]["used"]
    assert plain.queue["id"].tolist() == one.queue["id"].tolist()


def test_streaming_needs_a_cache_and_a_round_that_may_shortlist(tmp_path, monkeypatch):
    monkeypatch.setattr(two_stage, "STREAM_MIN_ROWS", 100)
    emb = make_embedder("hashing")
    pool = _pool(500)
    why = why_not_two_stage(multi_label=False, embeddings_given=False, engine="local", embedder=emb, votes=False,
                            relabel=False, bucket_priority=False)
    args = dict(embedder=emb, cache_dtype="float32", budget=5, why_not=why)
    got = decide_two_stage("auto", pool, cache_dir=tmp_path, **args)
    assert got.use and got.source == "exact"
    assert not decide_two_stage("auto", pool, cache_dir=None, **args).use
    assert not decide_two_stage("off", pool, cache_dir=tmp_path, **args).use
    votes = why_not_shortlist(multi_label=False, embeddings_given=False, votes=True, relabel=False,
                              bucket_priority=False)
    assert "--annotations" in votes
    refused = decide_two_stage("auto", pool, cache_dir=tmp_path, stream_why_not=votes, **args)
    assert not refused.use and refused.reason == why
