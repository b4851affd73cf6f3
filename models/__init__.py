"""Embedders (with their on-disk cache) and classifiers (installed as ``selector.models``)."""

from selector.models.cache import (
    CachedEmbedder,
    CacheRows,
    EmbeddingCache,
    text_digests,
    unique_digests,
)
from selector.models.classifiers import (
    aligned_proba,
    fit_classifier,
    make_classifier,
    out_of_fold_proba,
)
from selector.models.embedders import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_MODEL,
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    default_model_path,
    make_embedder,
    pick_batch_size,
    resolve_device,
)

__all__ = [
    "BACKENDS",
    "CachedEmbedder",
    "CacheRows",
    "DEFAULT_BACKEND",
    "DEFAULT_MODEL",
    "Embedder",
    "EmbeddingCache",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "aligned_proba",
    "default_model_path",
    "fit_classifier",
    "make_classifier",
    "make_embedder",
    "out_of_fold_proba",
    "pick_batch_size",
    "resolve_device",
    "text_digests",
    "unique_digests",
]
