"""One selection round: embed, fit, score, select, and the queue it produces.

:func:`select_batch` is the array-level entry (benchmarks and training scripts);
:func:`run_round` is the table-level round the CLI and :func:`selector.select` use.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selector.config import SelectConfig
from selector.round.pool import LabeledPool, prepare_pool
from selector.errors import ConfigError, DataError, EmptyPoolError
from selector.models.classifiers import aligned_proba, fit_classifier, make_classifier
from selector.strategies import Selection, SelectionContext, make_strategy

__all__ = ["select_batch", "build_context", "run_round", "RoundResult", "load_embeddings", "QUEUE_COLUMNS"]

QUEUE_COLUMNS = ["rank", "id", "text", "score", "strategy", "reason", "predicted_label", "predicted_proba"]

# Pool rows scored per classifier call. Scoring is row-wise, so chunks give the same probabilities
# as one call, while the float64 copies scikit-learn makes stay ~100 MB instead of O(pool).
SCORE_CHUNK_ROWS = 65_536


def _chunked_proba(model, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``aligned_proba`` over ``X`` (shape (n, d)) in ``SCORE_CHUNK_ROWS`` blocks; returns (n, n_classes)."""
    n = X.shape[0]
    if n <= SCORE_CHUNK_ROWS:
        return aligned_proba(model, X, classes)
    out = np.empty((n, classes.size), dtype=np.float64)
    for start in range(0, n, SCORE_CHUNK_ROWS):
        out[start : start + SCORE_CHUNK_ROWS] = aligned_proba(model, X[start : start + SCORE_CHUNK_ROWS], classes)
    return out


def _as_embeddings(X, name: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise DataError(f"{name} must be a 2-D array (n, d), got shape {X.shape}")
    return np.ascontiguousarray(X, dtype=np.float32)


def build_context(X_labeled: np.ndarray, y_labeled: np.ndarray, X_pool: np.ndarray, *,
                  classifier=None, random_state: int | None = None) -> SelectionContext:
    """Fit the classifier on the labeled rows (when possible) and score the pool.

    Parameters
    ----------
    X_labeled : ndarray, shape (n_labeled, d)
    y_labeled : ndarray, shape (n_labeled,)
    X_pool : ndarray, shape (n_pool, d)
    classifier : scikit-learn estimator with predict_proba, optional
        Unfitted template; default logistic regression.

    Returns
    -------
    SelectionContext
        ``proba_pool`` is None (with ``cold_start_reason``) when there are no labels or one class.
    """
    X_labeled = _as_embeddings(X_labeled, "X_labeled")
    X_pool = _as_embeddings(X_pool, "X_pool")
    y_labeled = np.asarray(y_labeled, dtype=object)
    if X_labeled.shape[0] != y_labeled.shape[0]:
        raise DataError(f"X_labeled has {X_labeled.shape[0]} rows but y_labeled has {y_labeled.shape[0]}")
    if X_labeled.shape[0] and X_labeled.shape[1] != X_pool.shape[1]:
        raise DataError(f"X_labeled has {X_labeled.shape[1]} dimensions but X_pool has {X_pool.shape[1]}")
    classes = np.unique(y_labeled.astype(str)) if y_labeled.size else np.array([], dtype=object)
    if y_labeled.size == 0:
        return SelectionContext(X_pool, X_labeled, y_labeled, cold_start_reason="0 labeled rows")
    if classes.size < 2:
        return SelectionContext(X_pool, X_labeled, y_labeled,
                                cold_start_reason=f"only one class labeled ({classes[0]})")
    template = classifier if classifier is not None else make_classifier(random_state=random_state)
    model = fit_classifier(template, X_labeled, y_labeled.astype(str))
    classes = np.asarray(model.classes_, dtype=object)
    proba = _chunked_proba(model, X_pool, classes) if X_pool.shape[0] else np.zeros((0, classes.size))
    return SelectionContext(X_pool, X_labeled, y_labeled, proba_pool=proba, classes=classes, classifier=model)


def select_batch(X_labeled: np.ndarray, y_labeled: np.ndarray, X_pool: np.ndarray, budget: int, *,
                 strategy: str = "auto", classifier=None, random_state: int | None = None,
                 strategy_params: dict[str, Any] | None = None) -> Selection:
    """Pick ``budget`` rows of ``X_pool`` to label next.

    Parameters
    ----------
    X_labeled : ndarray, shape (n_labeled, d)
        Embeddings of labeled rows (may have 0 rows: cold start).
    y_labeled : ndarray, shape (n_labeled,)
    X_pool : ndarray, shape (n_pool, d)
        Embeddings of the unlabeled candidates.
    budget : int
    strategy : str
        A registered strategy name (``selector.strategies.available_strategies()``).
    classifier : scikit-learn estimator with predict_proba, optional
    random_state : int or None

    Returns
    -------
    Selection
        ``.indices`` are positions in ``X_pool`` in rank order, ``.scores`` their scores.
    """
    strat = make_strategy(strategy, **(strategy_params or {}))
    context = build_context(X_labeled, y_labeled, X_pool, classifier=classifier, random_state=random_state)
    return strat.select(context, budget, random_state=random_state)


def load_embeddings(path: str | Path, n_rows: int) -> np.ndarray:
    """Load user-supplied embeddings (.npy, one row per input row) and L2-normalise them.

    Returns
    -------
    ndarray of float32, shape (n_rows, d)
    """
    path = Path(path)
    if path.suffix.lower() != ".npy":
        raise DataError(f"{path}: embeddings must be a .npy file (numpy.save of an (n_rows, d) array)")
    if not path.is_file():
        raise DataError(f"{path}: embeddings file not found")
    try:
        X = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if X.ndim != 2 or X.shape[0] != n_rows:
        raise DataError(f"{path}: embeddings have shape {X.shape}, but the data has {n_rows} rows; "
                        "pass one row per data row, in the same order")
    X = np.asarray(X, dtype=np.float32)
    finite = np.isfinite(X).all(axis=1)
    if not finite.all():
        raise DataError(f"{path}: row {int(np.flatnonzero(~finite)[0]) + 1} has NaN or infinite values")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, np.float32(1e-12))


@dataclass
class RoundResult:
    """Everything one round produced.

    Attributes
    ----------
    queue : DataFrame
        Columns ``QUEUE_COLUMNS`` (+ strategy extras such as ``cluster``), one row per pick, best first.
    selection : Selection
    context : SelectionContext
    pool : LabeledPool
    embeddings : ndarray, shape (n_rows, d)
    stats : dict
        Counts and timings for the round record.
    """

    queue: pd.DataFrame
    selection: Selection
    context: SelectionContext
    pool: LabeledPool
    embeddings: np.ndarray
    stats: dict = field(default_factory=dict)


def embed_pool(pool: LabeledPool, config: SelectConfig, *, embedder=None, embeddings=None,
               cache_dir: str | Path | None = None, show_progress: bool = False) -> tuple[np.ndarray, dict]:
    """Embeddings for every row of ``pool`` (from ``embeddings``, or the cached embedder).

    Returns
    -------
    X : ndarray of float32, shape (pool.n, d)
    stats : dict
        ``model_fingerprint``, ``n_embedded``, ``n_cached``, ``embed_seconds``.
    """
    from selector.models.cache import CachedEmbedder
    from selector.models.embedders import make_embedder

    t0 = time.perf_counter()
    if embeddings is not None:
        X = embeddings if isinstance(embeddings, np.ndarray) else load_embeddings(embeddings, pool.n)
        if X.shape[0] != pool.n:
            raise DataError(f"embeddings have {X.shape[0]} rows but the data has {pool.n}")
        return _as_embeddings(X, "embeddings"), {
            "model_fingerprint": "user-supplied", "n_embedded": 0, "n_cached": 0,
            "embed_seconds": time.perf_counter() - t0}
    if embedder is None:
        embedder = make_embedder(config.model, device=config.device, batch_size=config.batch_size,
                                 backend=config.backend)
    if config.engine == "ray":
        if cache_dir is None:
            raise ConfigError("engine 'ray' writes into the embedding cache; pass a cache folder (--cache-dir)")
        from selector.ray_engine import embed_with_ray

        inner = embedder.embedder if isinstance(embedder, CachedEmbedder) else embedder
        embed_with_ray(pool.texts, inner, cache_dir, model=config.model, backend=config.backend,
                       batch_size=config.batch_size, cache_dtype=config.cache_dtype, address=config.ray_address)
    if cache_dir is not None and not isinstance(embedder, CachedEmbedder):
        embedder = CachedEmbedder(embedder, cache_dir, dtype=config.cache_dtype)
    X = embedder.encode(list(pool.texts), show_progress=show_progress)
    stats = getattr(embedder, "last_stats", {}) or {"n_embedded": pool.n, "n_cached": 0}
    return X, {"model_fingerprint": embedder.fingerprint, "n_embedded": stats.get("n_embedded", pool.n),
               "n_cached": stats.get("n_cached", 0), "embed_seconds": time.perf_counter() - t0}


def run_round(df: pd.DataFrame, config: SelectConfig, *, source: str = "<DataFrame>", embedder=None,
              embeddings=None, classifier=None, cache_dir: str | Path | None = None,
              show_progress: bool = False) -> RoundResult:
    """Read labels, embed, fit, select: one labeling round over a table.

    When the pool is smaller than ``config.budget`` the whole pool is queued with a warning.

    Raises
    ------
    DataError, EmptyPoolError, ConfigError
    """
    t_start = time.perf_counter()
    # The default "id" column is optional (ids are generated); a column the user named must exist.
    pool = prepare_pool(df, text_col=config.text_col, label_col=config.label_col, id_col=config.id_col,
                        source=source, require_id_col=config.id_col != "id",
                        unsure_labels=config.unsure_labels)
    n_pool = int((~pool.labeled).sum())
    if n_pool == 0:
        raise EmptyPoolError(f"{source}: every row is labeled, so there is nothing to select; "
                             f"add unlabeled rows (an empty {config.label_col!r} cell)")
    strategy = make_strategy(config.strategy, **config.strategy_params)
    budget = config.budget
    if budget > n_pool:
        warnings.warn(f"budget {budget} is larger than the pool ({n_pool} unlabeled rows); "
                      f"queueing the whole pool", stacklevel=2)
        budget = n_pool

    X, embed_stats = embed_pool(pool, config, embedder=embedder, embeddings=embeddings,
                                cache_dir=cache_dir, show_progress=show_progress)
    lab = pool.labeled_positions
    unl = pool.pool_positions
    t_fit = time.perf_counter()
    template = classifier
    if template is None:
        template = make_classifier(config.classifier, random_state=config.seed, **config.classifier_params)
    context = build_context(X[lab], pool.labels[lab], X[unl], classifier=template, random_state=config.seed)
    t_select = time.perf_counter()
    selection = strategy.select(context, budget, random_state=config.seed)
    t_done = time.perf_counter()

    queue = queue_frame(pool, context, selection, config.strategy)
    stats = {
        **embed_stats,
        "n_rows": pool.n, "n_labeled": int(lab.size), "n_unlabeled": n_pool,
        "n_classes": int(context.classes.size) if context.classes is not None else len(set(pool.labels[lab])),
        "n_selected": len(selection), "cold_start": not context.has_model,
        "cold_start_reason": context.cold_start_reason, "ids_generated": pool.ids_generated,
        "strategy_info": selection.info,
        "timings": {"embed": round(embed_stats["embed_seconds"], 3), "fit": round(t_select - t_fit, 3),
                    "select": round(t_done - t_select, 3), "total": round(t_done - t_start, 3)},
    }
    return RoundResult(queue=queue, selection=selection, context=context, pool=pool, embeddings=X, stats=stats)


def queue_frame(pool: LabeledPool, context: SelectionContext, selection: Selection, strategy: str) -> pd.DataFrame:
    """The labeling queue: one row per pick, best first (columns ``QUEUE_COLUMNS`` + extras)."""
    unl = pool.pool_positions
    rows = unl[selection.indices]
    if context.has_model:
        p = context.proba_pool[selection.indices]
        best = p.argmax(axis=1)
        pred_label = context.classes[best].astype(object)
        pred_proba = p[np.arange(p.shape[0]), best].round(6)
    else:
        pred_label = np.full(rows.size, None, dtype=object)
        pred_proba = np.full(rows.size, np.nan)
    queue = pd.DataFrame({
        "rank": np.arange(1, rows.size + 1),
        "id": pool.ids[rows],
        "text": pool.texts[rows],
        "score": np.round(selection.scores, 6),
        "strategy": strategy,
        "reason": selection.reasons,
        "predicted_label": pred_label,
        "predicted_proba": pred_proba,
    })
    cluster = selection.info.get("cluster")
    if cluster is not None and len(cluster) == rows.size:
        queue["cluster"] = np.asarray(cluster)
    return queue
