"""Embeddings for every row of a pool: user-supplied, or the embedding model behind the on-disk cache."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np

from selector.config import SelectConfig
from selector.errors import ConfigError, DataError
from selector.models.cache import CachedEmbedder
from selector.models.embedders import make_embedder
from selector.ray_engine import embed_with_ray
from selector.round.model import classifier_template, cv_metrics, labels_problem
from selector.round.pool import LabeledPool

__all__ = ["as_embeddings", "load_embeddings", "embed_pool", "approximation_check", "GUARD_ROWS",
           "GUARD_MAX_DROP_POINTS"]

#: Labeled rows (at most) on which an approximate backend is compared with the exact model.
GUARD_ROWS = 600
#: Cross-validated accuracy an approximate backend may cost before a run warns, in points.
GUARD_MAX_DROP_POINTS = 1.0


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
    out = {"model_fingerprint": embedder.fingerprint, "n_embedded": stats.get("n_embedded", pool.n),
           "n_cached": stats.get("n_cached", 0)}
    inner = embedder.embedder if isinstance(embedder, CachedEmbedder) else embedder
    if getattr(inner, "approximate", False):
        check = approximation_check(pool, X, inner, config, cache_dir=cache_dir)
        if check is not None:
            out["approximation_check"] = check
    out["embed_seconds"] = time.perf_counter() - t0
    return X, out


def approximation_check(pool: LabeledPool, X: np.ndarray, embedder, config: SelectConfig, *,
                        cache_dir: str | Path | None = None) -> dict | None:
    """What an approximate backend costs on this pool's own labels; warns above one point.

    Up to :data:`GUARD_ROWS` labeled rows (a seeded sample) are embedded again with the exact
    model (the CPU default backend, through the same cache, so later rounds pay nothing) and the
    configured classifier's cross-validated accuracy is compared on both sets of vectors.

    Parameters
    ----------
    X : ndarray of float32, shape (pool.n, d)
        The approximate backend's vectors.
    embedder : SentenceTransformerEmbedder
        The approximate embedder (its model, device and batch size are reused).

    Returns
    -------
    dict or None
        ``backend``, ``n``, ``accuracy_exact``, ``accuracy_approx``, ``drop_points``; None when the
        labels are too few to cross-validate.
    """
    positions = pool.labeled_positions
    if labels_problem(pool.labels[positions]) is not None:
        return None
    rng = np.random.default_rng(config.seed)
    if positions.size > GUARD_ROWS:
        positions = np.sort(rng.choice(positions, size=GUARD_ROWS, replace=False))
    y = pool.labels[positions].astype(str)
    exact = make_embedder(config.model, device=config.device, batch_size=config.batch_size, backend=None)
    if cache_dir is not None:
        exact = CachedEmbedder(exact, cache_dir, dtype=config.cache_dtype)
    X_exact = exact.encode(list(pool.texts[positions]))
    seed = config.seed if config.seed is not None else 0
    template = classifier_template(config)
    approx_cv = cv_metrics(X[positions], y, classifier=template, random_state=seed)
    exact_cv = cv_metrics(X_exact, y, classifier=template, random_state=seed)
    drop = 100.0 * (exact_cv["accuracy"] - approx_cv["accuracy"])
    check = {"backend": embedder.backend, "n": int(positions.size),
             "accuracy_exact": exact_cv["accuracy"], "accuracy_approx": approx_cv["accuracy"],
             "drop_points": round(drop, 2)}
    if drop > GUARD_MAX_DROP_POINTS:
        warnings.warn(
            f"backend {embedder.backend} costs {drop:.1f} points of cross-validated accuracy on {positions.size} "
            f"of your labeled rows ({100 * approx_cv['accuracy']:.1f}% vs {100 * exact_cv['accuracy']:.1f}% with "
            f"the exact model); use --backend onnx for the exact vectors", stacklevel=2)
    return check
