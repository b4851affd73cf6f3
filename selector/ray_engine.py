"""Embedding a pool on a Ray cluster (``--engine ray``), written into the same embedding cache.

Only the texts the cache does not hold are sent to the cluster, each distinct text once, sorted by
length so batches pad little. Ray Data runs ``map_batches`` over a pool of actors, each loading the
model once (a GPU per actor where the cluster has GPUs). The vectors come back to the driver,
which writes them into the local cache, so the cluster needs no shared filesystem. Selection then
runs on the driver from the cache, exactly as with the local engine.

Needs the optional extra: ``pip install 'selector[ray]'``.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence

import numpy as np

from selector.errors import ConfigError, ModelError
from selector.models.cache import CachedEmbedder, text_digests, unique_digests
from selector.models.embedders import make_embedder

__all__ = ["embed_with_ray", "ray_available"]

# Rows per block handed to an actor; each actor batches them further by the model's batch size.
_BLOCK_ROWS = 1024
# Rows per cache shard the driver writes: each write merges its keys into the cache's sorted index
# (O(cached rows)), so small shards would make a 10M-row run quadratic. A run cut off keeps every
# vector it received: what is buffered is written before the error goes up.
_SHARD_ROWS = 65_536


def ray_available() -> bool:
    """Whether the optional ``ray[data]`` dependency is installed."""
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


class _EmbedActor:
    """One model per Ray actor: builds the embedder once, then embeds every batch it is given."""

    def __init__(self, model: str | None, backend: str | None, device: str, batch_size: int | None,
                 onnx_cache: str | None, precision: str, fingerprint: str, factory: Callable | None = None) -> None:
        if factory is not None:
            self.embedder = factory()
        else:
            self.embedder = make_embedder(model, device=device, batch_size=batch_size, backend=backend,
                                          onnx_cache=onnx_cache, precision=precision)
        # The vectors go into the driver's cache under the driver's fingerprint: they must be the same function.
        if self.embedder.fingerprint != fingerprint:
            raise ModelError(f"Ray actor built embedder {self.embedder.fingerprint!r}, but the cache expects "
                             f"{fingerprint!r}; the cluster has a different model or settings")

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        return {"row": np.asarray(batch["row"], dtype=np.int64), "vec": self.embedder.encode(texts)}


def embed_with_ray(texts: Sequence[str], embedder, cache_dir: str | os.PathLike, *, model: str | None = None,
                   backend: str | None = None, batch_size: int | None = None, cache_dtype: str = "float32",
                   address: str | None = None, num_actors: int | None = None,
                   onnx_cache: str | os.PathLike | None = None, embedder_factory: Callable | None = None) -> dict:
    """Embed the texts missing from the cache on Ray and store them in the cache.

    Parameters
    ----------
    texts : sequence of str, length n
    embedder : Embedder
        The driver-side embedder built from the same spec (its fingerprint and dimension key the
        cache; its model is never loaded on the driver).
    cache_dir : path
        The embedding cache folder the local engine uses.
    model, backend, batch_size, onnx_cache
        The spec each actor builds its embedder from (as :func:`~selector.models.make_embedder`);
        each actor checks that its embedder has the driver's fingerprint.
    cache_dtype : {"float32", "float16"}
        Storage type of the new cache shards.
    address : str, optional
        Ray cluster address (``ray://host:10001`` or ``auto``); None starts or joins a local Ray.
    num_actors : int, optional
        Actor pool size; default one per GPU when the cluster has GPUs, else one per 2 CPUs.
    embedder_factory : callable, optional
        A zero-argument callable (a class or a function Ray can pickle) that builds each actor's
        embedder, for custom embedders the spec cannot name; its fingerprint must be ``embedder``'s.

    Notes
    -----
    Vectors are written to the cache as they come back, so a run that is cut off keeps what it
    received and a rerun sends only the rest. An actor whose process dies is restarted by Ray and
    its batch retried, so the run still completes with every row once.

    Returns
    -------
    dict
        ``n_sent`` (distinct texts embedded on the cluster), ``n_actors``, ``gpu`` (bool).
    """
    if not ray_available():
        raise ConfigError("--engine ray needs the optional Ray extra; run `pip install 'selector[ray]'`")
    import ray

    cached = CachedEmbedder(embedder, cache_dir, dtype=cache_dtype)
    texts = list(texts)
    digests = text_digests(texts)
    first, _ = unique_digests(digests)
    found, _, _ = cached.cache.lookup(digests[first])
    todo = first[~found]
    if todo.size == 0:
        return {"n_sent": 0, "n_actors": 0, "gpu": False}
    # Longest first so consecutive rows (and so each batch) have similar lengths.
    todo = todo[np.argsort([-len(texts[i]) for i in todo], kind="stable")]

    if not ray.is_initialized():
        try:
            ray.init(address=address, ignore_reinit_error=True, log_to_driver=False,
                     include_dashboard=False)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise ConfigError(f"could not connect to Ray at {address or 'a local instance'} ({exc}); "
                              "check --address") from None
    resources = ray.cluster_resources()
    n_gpus = int(resources.get("GPU", 0))
    if num_actors is None:
        num_actors = n_gpus if n_gpus else max(1, int(resources.get("CPU", 1)) // 2)
    num_actors = max(1, min(int(num_actors), -(-todo.size // _BLOCK_ROWS)))
    device = "cuda" if n_gpus else "cpu"
    # Actors compute what the driver's embedder would (same fingerprint): on GPU actors an fp32
    # ONNX driver becomes fp32 torch (the same function, and no onnxruntime-gpu needed).
    precision = getattr(embedder, "precision", "fp32")
    actor_backend = backend if backend is not None else getattr(embedder, "backend", None)
    if n_gpus and actor_backend == "onnx":
        actor_backend = "torch"

    items = [{"row": int(i), "text": texts[i]} for i in todo]
    ds = ray.data.from_items(items, override_num_blocks=max(1, -(-len(items) // _BLOCK_ROWS)))
    ds = ds.map_batches(
        _EmbedActor,
        fn_constructor_kwargs={"model": model, "backend": actor_backend, "device": device,
                               "batch_size": batch_size, "precision": precision, "fingerprint": embedder.fingerprint,
                               "onnx_cache": str(onnx_cache) if onnx_cache is not None else None,
                               "factory": embedder_factory},
        batch_size=_BLOCK_ROWS,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=num_actors),
        num_gpus=1 if n_gpus else 0,
        num_cpus=0 if n_gpus else 1,
    )
    cache = cached.cache
    buffered: list[tuple[np.ndarray, np.ndarray]] = []

    def flush() -> None:
        if buffered:
            rows = np.concatenate([r for r, _ in buffered])
            cache.add(digests[rows], np.concatenate([v for _, v in buffered]))
            buffered.clear()

    try:
        # No prefetch: with it, Ray holds a finished block back until the next task's output
        # arrives, so an error in that task loses vectors that had already come back.
        for batch in ds.iter_batches(batch_format="numpy", batch_size=_BLOCK_ROWS, prefetch_batches=0):
            rows = np.asarray(batch["row"], dtype=np.int64)
            vecs = np.asarray(np.stack(batch["vec"]) if batch["vec"].dtype == object else batch["vec"],
                              dtype=np.float32)
            if vecs.shape != (rows.size, cache.dimension):
                raise ModelError(f"Ray actors returned vectors of shape {vecs.shape}, expected "
                                 f"({rows.size}, {cache.dimension}); the cluster runs a different model")
            buffered.append((rows, vecs))
            if sum(r.size for r, _ in buffered) >= _SHARD_ROWS:
                flush()
    finally:
        flush()  # what came back before an error (or Ctrl-C) is kept: a rerun sends only the rest
    return {"n_sent": int(todo.size), "n_actors": num_actors, "gpu": bool(n_gpus)}

