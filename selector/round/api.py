"""Table-level Python API: the same rounds as the CLI, on DataFrames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selector.config import SelectConfig
from selector.errors import DataError

__all__ = ["select"]


def select(df: pd.DataFrame, budget: int, *, strategy: str = "auto", text_col: str = "text",
           label_col: str = "label", id_col: str = "id", random_state: int | None = None,
           strategy_params: dict[str, Any] | None = None, embedder=None, model: str | None = None,
           embeddings: np.ndarray | None = None, classifier=None, cache_dir: str | Path | None = None,
           show_progress: bool = False) -> pd.DataFrame:
    """Choose the next ``budget`` unlabeled rows of ``df`` to label.

    Parameters
    ----------
    df : DataFrame
        One row per text; an empty/NaN label means unlabeled. Not modified.
    budget : int
        Rows to return (the whole pool, with a warning, when the pool is smaller).
    strategy : str
        A registered strategy name.
    text_col, label_col, id_col : str
        Column names; without an id column ids are generated from the text's hash and row number.
    random_state : int or None
    strategy_params : dict, optional
    embedder : object with ``encode(texts) -> (n, d)`` and ``fingerprint``, optional
        Default: the bundled all-MiniLM-L6-v2 (or ``model``).
    model : str, optional
        A local sentence-transformers folder (ignored when ``embedder`` is given).
    embeddings : ndarray of shape (len(df), d), optional
        Precomputed embeddings aligned with the rows; skips the model.
    classifier : scikit-learn estimator with predict_proba, optional
        Default logistic regression.
    cache_dir : path, optional
        Embedding cache folder; none by default in the API.

    Returns
    -------
    DataFrame
        ``rank, id, text, score, strategy, reason, predicted_label, predicted_proba`` (+ extras),
        best first.
    """
    from selector.round.compute import run_round

    if not isinstance(df, pd.DataFrame):
        raise DataError(f"select() needs a pandas DataFrame, got {type(df).__name__}")
    config = SelectConfig(budget=budget, strategy=strategy, strategy_params=dict(strategy_params or {}),
                          seed=random_state, text_col=text_col, label_col=label_col, id_col=id_col,
                          model=model)
    result = run_round(df, config, embedder=embedder, embeddings=embeddings, classifier=classifier,
                       cache_dir=cache_dir, show_progress=show_progress)
    return result.queue
