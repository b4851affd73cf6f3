"""Embeddings for every row of a pool: user-supplied, or the embedding model behind the on-disk cache."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from selector.config import SelectConfig
from selector.errors import ConfigError, DataError
from selector.models.cache import CachedEmbedder
from selector.models.embedders import make_embedder
from selector.ray_engine import embed_with_ray
from selector.round.pool import LabeledPool

__all__ = ["as_embeddings", "load_embeddings", "embed_pool"]


def as_embeddings(X, name: str) -> np.ndarray:
    """``X`` as a C-contiguous float32 array of shape (n, d)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n, d), got shape {X.shape}")
    if X.dtype.kind not in "fiu":
        raise DataError(f"{name} must hold numbers, got dtype {X.dtype}")
    return np.ascontiguousarray(X, dtype=np.float32)


def load_embeddings(path: str | Path, n_rows: int) -> np.ndarray:
    """Load user-supplied embeddings (.npy, one row per input row) and L2-normalise them.

    Returns
    -------
    ndarray of float32, shape (n_rows, d)

    Raises
    ------
    DataError
        Not a .npy file, unreadable, not numeric, wrong shape, or NaN/infinite values.
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise DataError(f"{path}: embeddings must be a .npy file (numpy.save of an (n_rows, d) array)")
    if not path.is_file():
        raise DataError(f"{path}: embeddings file not found")
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc}); save it with numpy.save") from None
    if X.dtype.kind not in "fiu":
        raise DataError(f"{path}: embeddings must be numbers (float32 or float64), got dtype {X.dtype}; "
                        "save a numeric (n_rows, d) array")
    if X.ndim != 2 or X.shape[0] != n_rows:
        raise DataError(f"{path}: embeddings have shape {X.shape}, but the data has {n_rows} rows; "
                        "pass one row per data row, in the same order")
    X = np.asarray(X, dtype=np.float32)
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        raise DataError(f"{path}: row {int(np.flatnonzero(~finite)[0]) + 1} has NaN or infinite values")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, np.float32(1e-12))


def embed_pool(pool: LabeledPool, config: SelectConfig, *, embedder=None, embeddings=None,
               cache_dir: str | Path | None = None, show_progress: bool = False) -> tuple[np.ndarray, dict]:
    """Embeddings for every row of ``pool`` (from ``embeddings``, or the cached embedder).

    Parameters
    ----------
    embeddings : ndarray of shape (pool.n, d) or path to a .npy, optional
        Skips the model.
    embedder : object with ``encode`` and ``fingerprint``, optional
        Default: built from ``config`` (model, device, batch size, backend).
    cache_dir : path, optional
        Embedding cache; None embeds without one.

    Returns
    -------
    X : ndarray of float32, shape (pool.n, d)
    stats : dict
        ``model_fingerprint``, ``n_embedded``, ``n_cached``, ``embed_seconds``.
    """
    t0 = time.perf_counter()
    if embeddings is not None:
        X = embeddings if isinstance(embeddings, np.ndarray) else load_embeddings(embeddings, pool.n)
        if X.shape[0] != pool.n:
            raise DataError(f"embeddings have {X.shape[0]} rows but the data has {pool.n}")
        return as_embeddings(X, "embeddings"), {
            "model_fingerprint": "user-supplied", "n_embedded": 0, "n_cached": 0,
            "embed_seconds": time.perf_counter() - t0}
    if embedder is None:
        embedder = make_embedder(config.model, device=config.device, batch_size=config.batch_size,
                                 backend=config.backend)
    if config.engine == "ray":
        if cache_dir is None:
            raise ConfigError("engine 'ray' writes into the embedding cache; pass a cache folder (--cache-dir)")
        inner = embedder.embedder if isinstance(embedder, CachedEmbedder) else embedder
        embed_with_ray(pool.texts, inner, cache_dir, model=config.model, backend=config.backend,
                       batch_size=config.batch_size, cache_dtype=config.cache_dtype, address=config.ray_address)
    if cache_dir is not None and not isinstance(embedder, CachedEmbedder):
        embedder = CachedEmbedder(embedder, cache_dir, dtype=config.cache_dtype)
    X = embedder.encode(list(pool.texts), show_progress=show_progress)
    stats = getattr(embedder, "last_stats", {}) or {"n_embedded": pool.n, "n_cached": 0}
    return X, {"model_fingerprint": embedder.fingerprint, "n_embedded": stats.get("n_embedded", pool.n),
               "n_cached": stats.get("n_cached", 0), "embed_seconds": time.perf_counter() - t0}
