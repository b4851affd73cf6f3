"""Shared helpers for the benchmark scripts: datasets, splits and cached embeddings.

Scripts only (never imported by the package). Embeddings go through selector's own
``CachedEmbedder`` so each dataset is embedded once per machine, and every benchmark run
after the first reads them from the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("SELECTOR_DATASETS", REPO.parent / "shared" / "datasets"))
CACHE_DIR = Path(os.environ.get("SELECTOR_BENCH_CACHE", REPO / ".selector" / "bench-cache"))

SINGLE_LABEL = ("ag_news", "trec", "banking77", "sst2", "sms_spam", "emotion")
MULTI_ANNOTATOR = ("snow2008_rte", "lewidi_hs_brexit", "lewidi_md_agreement")


def code_fingerprint() -> str:
    """A short hash of the installed ``selector`` sources (``selector``, ``selector.strategies``,
    ``selector.models``).

    Benchmarks store it with each cached run, so a run recorded by older code is recognised
    instead of silently reused: the figures then describe the code they were measured on.
    """
    import hashlib

    import selector
    import selector.models
    import selector.strategies

    digest = hashlib.sha256()
    packages = (selector, selector.strategies, selector.models)
    roots = sorted({Path(p).resolve() for mod in packages for p in mod.__path__})
    for root in roots:
        for f in sorted(root.rglob("*.py")):
            digest.update(str(f.relative_to(root.parent)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def parse_strategy_spec(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value,key=value`` -> (name, params); values parsed as JSON where possible."""
    import json

    name, _, rest = spec.partition(":")
    params = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return name, params


def load_dataset(name: str) -> pd.DataFrame:
    """The dataset's ``data.csv`` as text columns (no type guessing)."""
    path = DATASETS / name / "data.csv"
    if not path.exists():
        raise SystemExit(f"dataset {name!r} not found at {path}; set SELECTOR_DATASETS")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def train_test(df: pd.DataFrame, seed: int = 0, test_size: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the train pool and the fixed test split.

    The dataset's own ``split`` column is used where present (``test`` is the test set, every
    other split joins the pool); otherwise a seeded stratified ``test_size`` share.
    """
    if "split" in df.columns and (df["split"] == "test").any():
        test = np.flatnonzero(df["split"].to_numpy() == "test")
        train = np.flatnonzero(df["split"].to_numpy() != "test")
        return train, test
    from sklearn.model_selection import train_test_split

    pos = np.arange(len(df))
    train, test = train_test_split(pos, test_size=test_size, random_state=seed, stratify=df["label"].to_numpy())
    return np.sort(train), np.sort(test)


def embedder(cache_dir: str | Path | None = None, dtype: str = "float32", backend: str | None = None):
    """The bundled all-MiniLM-L6-v2 (``backend``: None = the default exact one) behind selector's embedding cache."""
    from selector.models import CachedEmbedder, SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder(**({} if backend is None else {"device": "cpu", "backend": backend}))
    return CachedEmbedder(model, cache_dir or CACHE_DIR, dtype=dtype)


def embed(texts, cache_dir: str | Path | None = None, show_progress: bool = True) -> np.ndarray:
    """Embeddings of ``texts`` (float32, shape (n, 384)) through the cache."""
    return embedder(cache_dir).encode(list(texts), show_progress=show_progress)


def dataset_embeddings(name: str, cache_dir: str | Path | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """A dataset and the embeddings of its ``text`` column, row-aligned."""
    df = load_dataset(name)
    return df, embed(df["text"].tolist(), cache_dir)


def static_embeddings(name: str, cache_dir: str | Path | None = None) -> np.ndarray:
    """The static tier's vectors (float32, shape (n, 256)) of a dataset's ``text`` column, through the cache."""
    return embedder(cache_dir, backend="static").encode(load_dataset(name)["text"].tolist())


class SimulatedCrowd:
    """Annotators with the faults real crowds have, voting on items whose true label is known.

    * skill spread: accuracies drawn from Beta(``skill``) (Beta(5, 2): mean 0.71, 10th-90th
      percentile 0.52-0.89), and ``spam_share`` of the annotators answer uniformly at random;
    * Zipf workloads (exponent 1): a few annotators do hundreds of items, most a handful;
    * structured confusions: a wrong answer is, with probability 0.8, a class the data find similar
      to the true one: half the time by a clean out-of-fold model's probabilities for that item,
      half by the similarity of the class centroids; else a uniform other class.

    Parameters
    ----------
    X : ndarray, shape (n_items, d)
    truth : ndarray of int, shape (n_items,)
        True class per item (column of ``clean_proba``).
    clean_proba : ndarray, shape (n_items, k)
        Out-of-fold probabilities of a model trained on the true labels.
    rng : numpy Generator
        Draws the crowd (accuracies, spammers, workloads), in that order.
    """

    def __init__(self, X: np.ndarray, truth: np.ndarray, clean_proba: np.ndarray, rng: np.random.Generator, *,
                 n_annotators: int = 120, spam_share: float = 0.05, skill: tuple[float, float] = (5.0, 2.0)) -> None:
        k = clean_proba.shape[1]
        self.truth, self.clean_proba, self.k = truth, clean_proba, k
        Z = X / np.linalg.norm(X, axis=1, keepdims=True)
        cent = np.stack([Z[truth == c].mean(axis=0) for c in range(k)])
        cent /= np.linalg.norm(cent, axis=1, keepdims=True)
        class_conf = np.exp((cent @ cent.T - 1.0) / 0.05)
        np.fill_diagonal(class_conf, 0.0)
        self.class_conf = class_conf / class_conf.sum(axis=1, keepdims=True)
        self.accuracy = rng.beta(*skill, size=n_annotators)
        self.spammer = np.zeros(n_annotators, bool)
        if spam_share > 0:
            self.spammer[rng.choice(n_annotators, size=max(1, round(spam_share * n_annotators)), replace=False)] = True
        workload = 1.0 / np.arange(1, n_annotators + 1)
        self.workload = rng.permutation(workload / workload.sum())
        self.n_annotators = n_annotators

    @property
    def noise(self) -> float:
        """The share of wrong votes of an average vote (workload-weighted)."""
        acc = np.where(self.spammer, 1.0 / self.k, self.accuracy)
        return float(1.0 - (self.workload * acc).sum())

    def annotators_for(self, n: int, rng: np.random.Generator, exclude=()) -> np.ndarray:
        """``n`` distinct annotators drawn by workload, none of ``exclude``."""
        p = self.workload.copy()
        p[list(exclude)] = 0.0
        return rng.choice(self.n_annotators, size=n, replace=False, p=p / p.sum())

    def vote(self, i: int, a: int, rng: np.random.Generator) -> int:
        """Annotator ``a``'s answer (a class index) on item ``i``."""
        t, k = int(self.truth[i]), self.k
        if self.spammer[a]:
            return int(rng.integers(k))
        if rng.random() < self.accuracy[a]:
            return t
        if rng.random() < 0.8:
            if rng.random() < 0.5:
                p = self.clean_proba[i].copy()
                p[t] = 0.0
                p = p / p.sum() if p.sum() > 0 else self.class_conf[t]
            else:
                p = self.class_conf[t]
            return int(rng.choice(k, p=p))
        return int((t + rng.integers(1, k)) % k)


if __name__ == "__main__":  # warm the cache: python scripts/bench_common.py [names...]
    import sys

    for name in sys.argv[1:] or (*SINGLE_LABEL, *MULTI_ANNOTATOR):
        df = load_dataset(name)
        X = embed(df["text"].unique().tolist())
        print(f"{name}: {len(df)} rows, {X.shape[0]} unique texts embedded/cached")
