"""--engine ray on a local multi-node Ray cluster: a head with no CPUs and two 1-CPU worker nodes.

Checks what a real cluster adds to tests/test_ray_engine.py: both workers embed, the vectors are
those of a single process in the pool's row order, a worker process killed mid-run is restarted
without losing or repeating rows, and a run cut off by an error keeps what it received, so the
rerun sends only the rest.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'selector[ray]')")
from ray.cluster_utils import Cluster  # noqa: E402

import selector.ray_engine as ray_engine  # noqa: E402
from selector.models import CachedEmbedder, HashingEmbedder  # noqa: E402
from selector.models.cache import text_digests  # noqa: E402
from selector.ray_engine import embed_with_ray  # noqa: E402

DIM = 64
N_TEXTS = 5_000  # five 1,024-row blocks: both actors get several


@pytest.fixture(scope="module")
def cluster():
    if ray.is_initialized():
        ray.shutdown()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        c.add_node(num_cpus=1)
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False, configure_logging=False)
    yield c
    ray.shutdown()
    c.shutdown()


@pytest.fixture(autouse=True)
def cluster_idle(cluster):
    """Wait for the last test's actors to release both worker CPUs, so each run gets its two actors."""
    import time

    deadline = time.monotonic() + 60
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.fixture(scope="module")
def texts() -> list[str]:
    rng = np.random.default_rng(0)
    words = [f"w{i}" for i in range(300)]
    out = [" ".join(rng.choice(words, size=int(rng.integers(3, 30)))) + f" row{i}" for i in range(N_TEXTS)]
    return out + out[:50]  # duplicates: each distinct text is sent once


def _factory(folder: Path, *, kill_once: bool = False, fail_unless: Path | None = None, poison: str = ""):
    """A zero-argument embedder factory for the actors (built inside a function so Ray pickles it by value).

    Each embedder it builds records its node in ``folder``. ``kill_once``: the first batch any actor
    sees kills that actor's process (``os._exit``). ``fail_unless``: while that file is absent, the
    batch holding ``poison`` raises, once the driver has written a cache shard (so the error comes after
    some vectors were received).
    """

    class Recording:
        def __init__(self) -> None:
            self.inner = HashingEmbedder(DIM)
            self.fingerprint, self.dimension = self.inner.fingerprint, self.inner.dimension
            node = ray.get_runtime_context().get_node_id()
            (folder / f"node-{node}").touch()

        def encode(self, batch, *, show_progress: bool = False):
            if kill_once:
                try:
                    os.close(os.open(folder / "killed", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                    os._exit(1)  # a worker process dies mid-run, as when a node is lost
                except FileExistsError:
                    pass
            if fail_unless is not None and not fail_unless.exists() and poison in batch:
                import time

                cache_dir = folder / "cache"
                deadline = time.monotonic() + 60
                while not list(cache_dir.rglob("*.json")) and time.monotonic() < deadline:
                    time.sleep(0.1)
                raise RuntimeError("poison batch: the run is cut off here")
            return self.inner.encode(batch)

    return Recording


def _local(texts, tmp_path):
    return CachedEmbedder(HashingEmbedder(DIM), tmp_path / "local").encode(texts)


def test_two_workers_embed_in_row_order_and_survive_a_killed_worker(cluster, texts, tmp_path):
    stats = embed_with_ray(texts, HashingEmbedder(DIM), tmp_path / "cache", model=f"hashing:{DIM}", num_actors=2,
                           embedder_factory=_factory(tmp_path, kill_once=True))
    assert (tmp_path / "killed").exists()  # one actor process did die mid-run
    assert stats["n_sent"] == N_TEXTS and stats["n_actors"] == 2
    assert len(list(tmp_path.glob("node-*"))) == 2  # actors ran on both worker nodes

    from_cache = CachedEmbedder(HashingEmbedder(DIM), tmp_path / "cache")
    got = from_cache.encode(texts)
    assert from_cache.last_stats["n_embedded"] == 0
    # Every row once, in the pool's order, equal to a single process.
    np.testing.assert_array_equal(got, _local(texts, tmp_path))
    assert len(from_cache.cache) == N_TEXTS


def test_a_run_cut_off_keeps_what_came_back_and_the_rerun_sends_the_rest(cluster, texts, tmp_path, monkeypatch):
    monkeypatch.setattr(ray_engine, "_SHARD_ROWS", 1024)  # a shard per block, so the first one lands early
    allow = tmp_path / "allow"
    # The run embeds longest texts first: the shortest distinct text is in the last block.
    poison = min(dict.fromkeys(texts), key=len)
    factory = _factory(tmp_path, fail_unless=allow, poison=poison)
    with pytest.raises(Exception, match="poison batch"):
        embed_with_ray(texts, HashingEmbedder(DIM), tmp_path / "cache", model=f"hashing:{DIM}", num_actors=2,
                       embedder_factory=factory)
    kept = CachedEmbedder(HashingEmbedder(DIM), tmp_path / "cache").cache
    found = kept.lookup(text_digests(list(dict.fromkeys(texts))))[0]
    assert 0 < found.sum() < N_TEXTS  # some vectors were kept, not all
    assert not kept.lookup(text_digests([poison]))[0][0]

    allow.touch()
    again = embed_with_ray(texts, HashingEmbedder(DIM), tmp_path / "cache", model=f"hashing:{DIM}", num_actors=2,
                           embedder_factory=factory)
    assert again["n_sent"] == N_TEXTS - int(found.sum())  # nothing kept is embedded twice
    from_cache = CachedEmbedder(HashingEmbedder(DIM), tmp_path / "cache")
    np.testing.assert_array_equal(from_cache.encode(texts), _local(texts, tmp_path))
    assert from_cache.last_stats["n_embedded"] == 0 and len(from_cache.cache) == N_TEXTS


def test_a_factory_with_another_fingerprint_is_refused(cluster, texts, tmp_path):
    def other():
        return HashingEmbedder(DIM * 2)

    with pytest.raises(Exception, match="different model"):
        embed_with_ray(texts[:100], HashingEmbedder(DIM), tmp_path / "cache", model=f"hashing:{DIM}", num_actors=1,
                       embedder_factory=other)
    assert len(CachedEmbedder(HashingEmbedder(DIM), tmp_path / "cache").cache) == 0
