"""The embedding cache: reuse across runs, only new rows embedded, corruption detected."""

import json

import numpy as np
import pytest

from selector.errors import ModelError
from selector.models import CacheRows, CachedEmbedder, EmbeddingCache, HashingEmbedder, text_digests


class CountingEmbedder(HashingEmbedder):
    """Hashing embedder that counts how many texts reached the model."""

    def __init__(self):
        super().__init__(32)
        self.calls = 0

    def encode(self, texts, *, show_progress=False):
        self.calls += len(texts)
        return super().encode(texts)


def texts(n, start=0):
    return [f"text number {i} about topic {i % 7}" for i in range(start, start + n)]


def test_second_run_embeds_nothing(tmp_path):
    model = CountingEmbedder()
    first = CachedEmbedder(model, tmp_path).encode(texts(50))
    assert model.calls == 50
    again = CachedEmbedder(model, tmp_path)  # a new process would build a fresh wrapper
    second = again.encode(texts(50))
    assert model.calls == 50
    assert again.last_stats["n_embedded"] == 0 and again.last_stats["n_cached"] == 50
    np.testing.assert_array_equal(first, second)


def test_new_rows_are_exactly_the_ones_embedded(tmp_path):
    model = CountingEmbedder()
    CachedEmbedder(model, tmp_path).encode(texts(200))
    wrapped = CachedEmbedder(model, tmp_path)
    wrapped.encode(texts(1200))  # 200 old + 1,000 new
    assert wrapped.last_stats["n_embedded"] == 1000
    assert model.calls == 1200


def test_duplicate_texts_embedded_once(tmp_path):
    model = CountingEmbedder()
    out = CachedEmbedder(model, tmp_path).encode(["a b", "c d", "a b", "a b"])
    assert model.calls == 2
    np.testing.assert_array_equal(out[0], out[2])


def test_cached_vectors_match_fresh_ones(tmp_path):
    model = HashingEmbedder(32)
    fresh = model.encode(texts(20))
    CachedEmbedder(model, tmp_path).encode(texts(20))
    cached = CachedEmbedder(model, tmp_path).encode(texts(20))
    np.testing.assert_allclose(cached, fresh, rtol=0, atol=1e-7)


def test_order_of_results_follows_input(tmp_path):
    model = HashingEmbedder(32)
    CachedEmbedder(model, tmp_path).encode(texts(30))
    shuffled = list(reversed(texts(30)))
    np.testing.assert_allclose(CachedEmbedder(model, tmp_path).encode(shuffled), model.encode(shuffled), atol=1e-7)


def _shard_files(tmp_path):
    return sorted((tmp_path / "embeddings").rglob("*.vecs.npy"))


def test_corrupt_vectors_are_recomputed_not_returned(tmp_path):
    model = CountingEmbedder()
    good = CachedEmbedder(model, tmp_path).encode(texts(10))
    (vecs,) = _shard_files(tmp_path)
    arr = np.load(vecs)
    arr[3] = 123.0  # flip content, keep the shape: only the checksum can tell
    np.save(vecs, arr)
    wrapped = CachedEmbedder(model, tmp_path)
    with pytest.warns(UserWarning, match="corrupt"):
        out = wrapped.encode(texts(10))
    np.testing.assert_allclose(out, good, atol=1e-7)
    assert wrapped.last_stats["n_embedded"] == 10


def test_truncated_shard_is_detected(tmp_path):
    model = CountingEmbedder()
    CachedEmbedder(model, tmp_path).encode(texts(10))
    (vecs,) = _shard_files(tmp_path)
    np.save(vecs, np.load(vecs)[:5])
    with pytest.warns(UserWarning, match="corrupt"):
        wrapped = CachedEmbedder(model, tmp_path)
        wrapped.encode(texts(10))
    assert wrapped.last_stats["n_embedded"] == 10


def test_partial_write_without_manifest_is_ignored(tmp_path):
    model = CountingEmbedder()
    CachedEmbedder(model, tmp_path).encode(texts(10))
    (manifest,) = sorted((tmp_path / "embeddings").rglob("*.json"))
    manifest.unlink()  # a crash between writing arrays and committing the manifest
    wrapped = CachedEmbedder(model, tmp_path)
    wrapped.encode(texts(10))
    assert wrapped.last_stats["n_embedded"] == 10


def test_manifest_garbage_is_corrupt(tmp_path):
    model = CountingEmbedder()
    CachedEmbedder(model, tmp_path).encode(texts(5))
    (manifest,) = sorted((tmp_path / "embeddings").rglob("*.json"))
    manifest.write_text("{not json")
    with pytest.warns(UserWarning, match="corrupt"):
        CachedEmbedder(model, tmp_path).encode(texts(5))


def test_fingerprints_do_not_share_vectors(tmp_path):
    a, b = HashingEmbedder(32), HashingEmbedder(48)
    CachedEmbedder(a, tmp_path).encode(texts(5))
    wrapped = CachedEmbedder(b, tmp_path)
    out = wrapped.encode(texts(5))
    assert out.shape == (5, 48) and wrapped.last_stats["n_embedded"] == 5


def test_float16_storage_is_consistent_between_runs(tmp_path):
    model = HashingEmbedder(32)
    first = CachedEmbedder(model, tmp_path, dtype="float16").encode(texts(20))
    second = CachedEmbedder(model, tmp_path, dtype="float16").encode(texts(20))
    np.testing.assert_array_equal(first, second)
    assert first.dtype == np.float32


def test_lookup_finds_keys_across_shards(tmp_path):
    cache = EmbeddingCache(tmp_path, "fp", 4)
    d1, d2 = text_digests(["a", "b"]), text_digests(["c"])
    cache.add(d1, np.ones((2, 4)))
    cache.add(d2, np.full((1, 4), 2.0))
    found, vecs = EmbeddingCache(tmp_path, "fp", 4).get(text_digests(["c", "x", "a"]))
    assert found.tolist() == [True, False, True]
    assert vecs[0, 0] == 2.0 and vecs[2, 0] == 1.0 and not vecs[1].any()
    meta = json.loads(next((tmp_path / "embeddings" / "fp").glob("*.json")).read_text())
    assert meta["n"] in (1, 2)


def _dead_pid() -> int:
    """The pid of a process that has exited (a crashed writer)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_zero_byte_shard_heals_with_one_warning(tmp_path):
    model = CountingEmbedder()
    good = CachedEmbedder(model, tmp_path).encode(texts(10))
    (vecs,) = _shard_files(tmp_path)
    vecs.write_bytes(b"")  # a disk-full or killed write left a 0-byte array
    with pytest.warns(UserWarning, match="corrupt"):
        wrapped = CachedEmbedder(model, tmp_path)
        out = wrapped.encode(texts(10))
    np.testing.assert_allclose(out, good, atol=1e-7)
    assert wrapped.last_stats["n_embedded"] == 10
    again = CachedEmbedder(model, tmp_path)
    again.encode(texts(10))
    assert again.last_stats["n_embedded"] == 0  # healed: the next run reads the rewritten shard


def test_cache_path_that_is_a_file_is_a_clear_error(tmp_path):
    from selector.errors import DataError

    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / HashingEmbedder(32).fingerprint).write_text("not a folder")
    with pytest.raises(DataError, match="is a file, not a folder"):
        CachedEmbedder(HashingEmbedder(32), tmp_path).encode(texts(3))


def test_orphans_and_stale_temps_of_dead_writers_are_removed(tmp_path):
    model = CountingEmbedder()
    CachedEmbedder(model, tmp_path).encode(texts(10))
    folder = next((tmp_path / "embeddings").iterdir())
    pid = _dead_pid()
    orphan = folder / f"{0:020d}-{pid}-deadbeef.keys.npy"
    np.save(orphan, np.zeros((2, 32), dtype=np.uint8))  # arrays written, manifest never came
    stale = folder / f".x.vecs.npy.{pid}.abc123.tmp"
    stale.write_bytes(b"half")
    live = folder / f".y.vecs.npy.{__import__('os').getpid()}.abc123.tmp"  # ours: a live writer's temp
    live.write_bytes(b"busy")
    CachedEmbedder(model, tmp_path).encode(texts(10))
    assert not orphan.exists() and not stale.exists()
    assert live.exists()


def test_nan_vector_with_valid_checksum_is_dropped_once(tmp_path):
    model = CountingEmbedder()
    CachedEmbedder(model, tmp_path).encode(texts(10))
    (manifest,) = sorted((tmp_path / "embeddings").rglob("*.json"))
    (vecs,) = _shard_files(tmp_path)
    arr = np.load(vecs)
    arr[4] = np.nan
    np.save(vecs, arr)
    from selector.models.cache import _crc

    meta = json.loads(manifest.read_text())
    meta["vecs_crc"] = _crc(arr)  # a valid checksum over a NaN row
    manifest.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="NaN"):
        wrapped = CachedEmbedder(model, tmp_path)
        out = wrapped.encode(texts(10))
    assert np.isfinite(out).all() and wrapped.last_stats["n_embedded"] == 1
    calls = model.calls
    for _ in range(2):  # later runs find every row; nothing is re-embedded or re-added
        again = CachedEmbedder(model, tmp_path)
        again.encode(texts(10))
        assert again.last_stats["n_embedded"] == 0
    assert model.calls == calls
    assert len(EmbeddingCache(tmp_path, model.fingerprint, 32)) == 10


def test_cache_rows_reads_any_rows_in_the_order_asked(tmp_path):
    model = CountingEmbedder()
    wrapped = CachedEmbedder(model, tmp_path, chunk_size=7)  # several shards
    full = wrapped.encode(texts(40))
    order = np.random.default_rng(0).permutation(40)
    rows = CacheRows(wrapped.cache, text_digests([texts(40)[i] for i in order]))
    assert rows.shape == (40, 32) and len(rows) == 40
    np.testing.assert_array_equal(rows[0:40], full[order])
    np.testing.assert_array_equal(rows[5:17], full[order[5:17]])
    picks = np.array([39, 0, 12, 12])
    np.testing.assert_array_equal(rows[picks], full[order[picks]])
    mask = np.zeros(40, dtype=bool)
    mask[[3, 30]] = True
    np.testing.assert_array_equal(rows[mask], full[order[[3, 30]]])
    with pytest.raises(TypeError, match="chunk by chunk"):
        np.asarray(rows)
    with pytest.raises(ModelError, match="1 of 41 rows are not in the embedding cache"):
        CacheRows(wrapped.cache, text_digests(texts(41)))


def test_cache_rows_refuses_a_corrupt_shard_and_removes_it(tmp_path):
    model = CountingEmbedder()
    CachedEmbedder(model, tmp_path).encode(texts(10))
    (vecs,) = _shard_files(tmp_path)
    arr = np.load(vecs)
    arr[3] = 123.0  # the vectors' checksum is read when they are, not when the cache opens
    np.save(vecs, arr)
    rows = CacheRows(EmbeddingCache(tmp_path, model.fingerprint, 32), text_digests(texts(10)))
    with pytest.warns(UserWarning, match="corrupt"), pytest.raises(ModelError, match="run the command again"):
        rows[0:10]
    assert not vecs.exists()  # the next run embeds its rows anew
