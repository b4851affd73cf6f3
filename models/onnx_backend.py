"""ONNX Runtime backend for sentence-transformers models (same model, faster on CPU).

The model folder is exported once with ``torch.onnx.export`` into a cache folder (no network):
the transformer plus mean pooling over the attention mask and L2 normalisation, the same three
steps sentence-transformers runs for all-MiniLM-L6-v2. ``onnx-int8`` is that graph with its
weights quantised by ONNX Runtime's dynamic quantisation (faster, but the vectors move: see
``scripts/bench_embed.py`` for the measured cosine and downstream accuracy).

Only models made of a ``Transformer``, a mean ``Pooling`` and optionally a ``Normalize`` module
can be exported; anything else is refused with a :class:`~selector.errors.ModelError` rather than
silently embedded differently.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import numpy as np
from selector.models.hf_progress import quiet_weight_loading

from selector.errors import ModelError
from selector.io import remove_stale_temps, temp_path_for

__all__ = ["ONNX_BACKENDS", "DEFAULT_MAX_TOKENS", "OnnxEncoder", "ModelTokenizer", "load_tokenizer", "cfs_quota_cpus", "cpu_threads", "default_onnx_cache", "export_onnx",
           "exportable", "length_batches", "onnx_available", "token_length_batches"]

ONNX_BACKENDS = ("onnx", "onnx-int8", "static")
# Bump when the exported graph changes, so old exports are not reused.
_EXPORT_VERSION = 1
_OPSET = 17
# Padded tokens per forward pass, chosen by scripts/bench_embed.py --sweep on this project's CPU
# (fp32 matmuls are at the core's peak there, so the budget mostly sets how little is padding).
DEFAULT_MAX_TOKENS = 512


def cfs_quota_cpus(cgroup_root: str | os.PathLike = "/sys/fs/cgroup") -> int | None:
    """CPUs the process's cgroup quota allows (CFS quota / period, rounded up); None without a quota.

    Reads cgroup v2 (``cpu.max``: ``"200000 100000"`` or ``"max 100000"``) or v1
    (``cpu/cpu.cfs_quota_us`` and ``cpu/cpu.cfs_period_us``; -1 = none). A container limited to 2 CPUs
    on a 64-core host still shows 64 in its affinity; more threads than the quota only queue.
    """
    root = Path(cgroup_root)
    try:
        v2 = root / "cpu.max"
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            if quota == "max":
                return None
            return max(1, -(-int(quota) // int(period)))
        q1, p1 = root / "cpu" / "cpu.cfs_quota_us", root / "cpu" / "cpu.cfs_period_us"
        if q1.exists() and p1.exists():
            quota, period = int(q1.read_text().strip()), int(p1.read_text().strip())
            return None if quota <= 0 or period <= 0 else max(1, -(-quota // period))
    except (OSError, ValueError):
        # An unreadable or odd cgroup file says nothing about a quota; the affinity still bounds us.
        return None
    return None


def cpu_threads() -> int:
    """Cores this process may use: its CPU affinity, capped by its cgroup's CFS quota; at least 1."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS/Windows have no affinity call
        cores = max(1, os.cpu_count() or 1)
    quota = cfs_quota_cpus()
    return cores if quota is None else min(cores, quota)


def onnx_available() -> bool:
    """Whether ``onnxruntime`` and ``onnx`` can be imported."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def default_onnx_cache() -> Path:
    """Folder for exported models: ``$SELECTOR_ONNX_CACHE``, else ``$XDG_CACHE_HOME/selector/onnx``."""
    env = os.environ.get("SELECTOR_ONNX_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "selector" / "onnx"


def exportable(model_path: str | os.PathLike) -> bool:
    """Whether :func:`export_onnx` can reproduce this sentence-transformers folder exactly."""
    try:
        _check_exportable(Path(model_path))
    except (ModelError, OSError, KeyError, ValueError):
        return False
    return True


def _check_exportable(model_path: Path) -> int:
    """Refuse models whose pipeline this backend does not reproduce; returns max_seq_length."""
    modules_file = model_path / "modules.json"
    if not modules_file.exists():
        raise ModelError(f"{model_path}: no modules.json; the ONNX backend needs a sentence-transformers folder "
                         "(use --backend torch)")
    kinds = [m["type"].rsplit(".", 1)[-1] for m in json.loads(modules_file.read_text())]
    if kinds[:2] != ["Transformer", "Pooling"] or any(k != "Normalize" for k in kinds[2:]):
        raise ModelError(f"{model_path}: modules {kinds} are not Transformer + Pooling (+ Normalize); "
                         "the ONNX backend cannot reproduce them (use --backend torch)")
    modules = json.loads(modules_file.read_text())
    pooling_cfg = model_path / modules[1]["path"] / "config.json"
    pooling = json.loads(pooling_cfg.read_text()) if pooling_cfg.exists() else {}
    modes = [k for k, v in pooling.items() if k.startswith("pooling_mode") and v]
    if modes != ["pooling_mode_mean_tokens"]:
        raise ModelError(f"{model_path}: pooling {modes or 'unknown'} is not mean pooling; "
                         "the ONNX backend cannot reproduce it (use --backend torch)")
    st_cfg = model_path / "sentence_bert_config.json"
    max_len = json.loads(st_cfg.read_text()).get("max_seq_length") if st_cfg.exists() else None
    return int(max_len or 512)


def export_onnx(model_path: str | os.PathLike, out_dir: str | os.PathLike, *, quantize: bool = False) -> Path:
    """Export a sentence-transformers folder to ONNX (once; later calls return the existing file).

    Parameters
    ----------
    model_path : path
        Local sentence-transformers folder (Transformer + mean Pooling [+ Normalize]).
    out_dir : path
        Where the ``.onnx`` files go (one folder per model fingerprint).
    quantize : bool
        Also write the dynamically int8-quantised graph and return its path.

    Returns
    -------
    Path of ``model.onnx`` (or ``model-int8.onnx``). Both are written to a temp name and renamed
    into place, so a crash or a concurrent export never leaves a half-written model.
    """
    model_path = Path(model_path)
    out_dir = Path(out_dir)
    fp32 = out_dir / f"model-v{_EXPORT_VERSION}.onnx"
    int8 = out_dir / f"model-v{_EXPORT_VERSION}-int8-pc.onnx"
    target = int8 if quantize else fp32
    if target.exists():
        return target
    _check_exportable(model_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(out_dir)  # exports of runs that were killed midway
    if not fp32.exists():
        _export_fp32(model_path, fp32)
    if quantize and not int8.exists():
        from onnxruntime.quantization import QuantType, quantize_dynamic

        tmp = temp_path_for(int8)
        try:
            # Per-channel scales: mean cosine to fp32 0.992 vs 0.958 per-tensor, same speed (bench_embed).
            # The quantiser logs a generic "consider pre-processing" advice on the root logger; the
            # graph is checked against fp32 in tests, so that line would only alarm a user.
            logging.disable(logging.WARNING)
            try:
                quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True)
            finally:
                logging.disable(logging.NOTSET)
            os.replace(tmp, int8)
        finally:
            tmp.unlink(missing_ok=True)
    return target


def _export_fp32(model_path: Path, dest: Path) -> None:
    import torch
    from transformers import AutoModel
    with quiet_weight_loading():
        base = AutoModel.from_pretrained(str(model_path), local_files_only=True)
    base.eval()

    class MeanPooled(torch.nn.Module):
        """Transformer -> mean over real tokens -> L2 normalise (sentence-transformers' pipeline)."""

        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            hidden = self.model(input_ids=input_ids, attention_mask=attention_mask,
                                token_type_ids=token_type_ids).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            summed = (hidden * mask).sum(dim=1)
            mean = summed / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    wrapped = MeanPooled(base)
    ids = torch.ones((2, 8), dtype=torch.long)
    dummy = (ids, torch.ones_like(ids), torch.zeros_like(ids))
    tmp = temp_path_for(dest)
    axes = {0: "batch", 1: "tokens"}
    try:
        # The tracer warns about Python control flow in the HF attention code; the graph is checked
        # against sentence-transformers in tests/test_onnx_backend.py, so the warnings are noise here.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Exporting aten::index", category=UserWarning)
            torch.onnx.export(
                wrapped, dummy, str(tmp),
                input_names=["input_ids", "attention_mask", "token_type_ids"],
                output_names=["sentence_embedding"],
                dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes,
                              "sentence_embedding": {0: "batch"}},
                opset_version=_OPSET,
                # The TorchScript exporter needs no onnxscript and handles this small BERT graph.
                dynamo=False,
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass
class ModelTokenizer:
    """A model's tokenizer as the ONNX and static backends use it.

    Attributes
    ----------
    token_ids : callable
        ``token_ids(texts) -> list of id lists``, special tokens added, truncated to the model's length.
    raw : tokenizers.Tokenizer or None
        The Rust tokenizer (None for a model with only a slow, Python tokenizer).
    pad_id : int
    cls_id, sep_id, unk_id : int or None
    vocab_size : int
        Every token id, added tokens included.
    """

    token_ids: Callable[[list], list]
    raw: Any
    pad_id: int
    cls_id: int | None
    sep_id: int | None
    unk_id: int | None
    vocab_size: int


def _special(config: dict, key: str):
    value = config.get(key)
    return value.get("content") if isinstance(value, dict) else value  # an AddedToken written out in full


def load_tokenizer(model_path: str | os.PathLike, max_length: int) -> ModelTokenizer:
    """The model's tokenizer (:class:`ModelTokenizer`), truncating to ``max_length`` tokens.

    With a ``tokenizer.json`` (every fast tokenizer) it is the Rust ``tokenizers`` library alone:
    the same ids as transformers' ``AutoTokenizer`` (tested), without importing transformers and
    torch (about 220 MB of a process that only runs ONNX). The file's own padding and truncation
    (all-MiniLM-L6-v2's pads every text to 128 tokens) are replaced by none and ``max_length``,
    as ``AutoTokenizer(..., truncation=True, max_length=...)`` does. A model with only a slow
    (Python) tokenizer goes through transformers.
    """
    path = Path(model_path) / "tokenizer.json"
    if path.exists():
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(str(path))
        tok.no_padding()
        tok.enable_truncation(max_length=max_length)
        config_path = path.with_name("tokenizer_config.json")
        config = json.loads(config_path.read_text()) if config_path.exists() else {}
        ids = {k: (tok.token_to_id(_special(config, k)) if _special(config, k) else None)
               for k in ("pad_token", "cls_token", "sep_token", "unk_token")}

        def token_ids(texts: list) -> list:
            return [e.ids for e in tok.encode_batch(texts, add_special_tokens=True)]

        return ModelTokenizer(token_ids=token_ids, raw=tok, pad_id=int(ids["pad_token"] or 0), cls_id=ids["cls_token"],
                              sep_id=ids["sep_token"], unk_id=ids["unk_token"],
                              vocab_size=tok.get_vocab_size(with_added_tokens=True))
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)

    def hf_ids(texts: list) -> list:
        return hf(texts, truncation=True, max_length=max_length)["input_ids"]

    return ModelTokenizer(token_ids=hf_ids, raw=hf.backend_tokenizer if hf.is_fast else None,
                          pad_id=int(hf.pad_token_id or 0), cls_id=hf.cls_token_id, sep_id=hf.sep_token_id,
                          unk_id=hf.unk_token_id, vocab_size=len(hf))


class OnnxEncoder:
    """Runs an exported sentence-transformers graph with ONNX Runtime.

    Parameters
    ----------
    model_path : path
        The sentence-transformers folder (for its tokenizer and max_seq_length).
    onnx_dir : path
        Folder of the exported graph (exported there on first use).
    quantize : bool
        Use the dynamically int8-quantised graph.
    device : {"cpu", "cuda"}
        ``"cuda"`` uses ONNX Runtime's CUDA provider (needs ``onnxruntime-gpu``).
    batch_size : int
        Most texts per forward pass.
    max_tokens : int
        Most padded tokens per forward pass (:data:`DEFAULT_MAX_TOKENS`): batches of short texts
        hold more rows, batches of long ones fewer.
    """

    def __init__(self, model_path: str | os.PathLike, onnx_dir: str | os.PathLike, *, quantize: bool = False,
                 device: str = "cpu", batch_size: int = 64, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        if not onnx_available():
            raise ModelError("the ONNX backend needs onnxruntime and onnx; run `pip install onnxruntime onnx` "
                             "or use --backend torch")
        self.model_path = Path(model_path)
        self.max_seq_length = _check_exportable(self.model_path)
        self.onnx_path = export_onnx(self.model_path, onnx_dir, quantize=quantize)
        self.batch_size = int(batch_size)
        self.max_tokens = int(max_tokens)
        import onnxruntime as ort

        self.tokenizer = load_tokenizer(self.model_path, self.max_seq_length)
        self.pad_id = self.tokenizer.pad_id
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ModelError("device cuda with an ONNX backend needs onnxruntime-gpu; "
                                 "install it or use --backend torch")
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"]
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        # Idle worker threads sleep instead of spinning: measured ~10% faster on a shared,
        # oversubscribed CPU, and it leaves cores to the other processes of the pipeline.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # One pool of worker threads, one per core this process may run on (ORT's own default counts
        # the host's cores, which oversubscribes a CPU-limited container); the graph is a chain of
        # matmuls, so a second (inter-op) pool only adds threads that compete for the same cores.
        opts.intra_op_num_threads = cpu_threads()
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(str(self.onnx_path), sess_options=opts, providers=providers)
        self.input_names = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in batches of similar token length.

        Returns
        -------
        ndarray of float32, shape (len(texts), dimension), rows L2-normalised.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        out: np.ndarray | None = None
        for idx, feeds in self.batches(texts):
            vec = self.session.run(["sentence_embedding"], feeds)[0]
            if out is None:
                out = np.empty((len(texts), vec.shape[1]), dtype=np.float32)
            out[idx] = vec
        return out

    def batches(self, texts: Sequence[str]) -> Iterator[tuple[np.ndarray, dict]]:
        """Tokenised, padded batches of ``texts``, longest first, within the row and token budgets.

        Yields
        ------
        idx : ndarray of int, shape (b,)
            Positions in ``texts`` of the batch's rows.
        feeds : dict of str -> ndarray of int64, shape (b, width)
            ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the graph takes it).
        """
        ids = self.tokenizer.token_ids(list(texts))
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        for idx in token_length_batches(lengths, max_tokens=self.max_tokens, max_rows=self.batch_size):
            width = int(lengths[idx[0]])
            input_ids = np.full((idx.size, width), self.pad_id, dtype=np.int64)
            mask = np.zeros((idx.size, width), dtype=np.int64)
            for row, i in enumerate(idx):
                input_ids[row, : lengths[i]] = ids[i]
                mask[row, : lengths[i]] = 1
            feeds = {"input_ids": input_ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(input_ids)
            yield idx, feeds


def token_length_batches(lengths: np.ndarray, *, max_tokens: int, max_rows: int) -> list[np.ndarray]:
    """Positions of texts grouped longest first into batches of similar token length.

    Sorting by *token* count matters: sorting by characters (as sentence-transformers does) pads
    2,000 ag_news texts by 38% of their tokens in batches of 64; this pads them by 0.4% at the
    default budget.

    Parameters
    ----------
    lengths : ndarray of int, shape (n,)
        Token count of each text, in input order.
    max_tokens, max_rows : int
        Budget per batch (:func:`length_batches`).

    Returns
    -------
    list of ndarray of int
        Positions into ``lengths``, the first of each batch its longest.
    """
    order = np.argsort(-np.asarray(lengths), kind="stable")
    return [order[batch] for batch in length_batches(np.asarray(lengths)[order], max_tokens=max_tokens,
                                                     max_rows=max_rows)]


def length_batches(sorted_lengths: np.ndarray, *, max_tokens: int, max_rows: int) -> list[slice]:
    """Cut rows sorted longest-first into batches of at most ``max_rows`` rows and ``max_tokens`` padded tokens.

    Parameters
    ----------
    sorted_lengths : ndarray of int, shape (n,)
        Token counts, non-increasing.
    max_tokens, max_rows : int
        Budget per batch; a single row longer than ``max_tokens`` still gets a batch of its own.

    Returns
    -------
    list of slice into ``sorted_lengths``, covering it in order.
    """
    batches = []
    start, n = 0, len(sorted_lengths)
    while start < n:
        # The first row is the longest, so it sets the padded width of the whole batch.
        rows = max(1, min(max_rows, max_tokens // max(int(sorted_lengths[start]), 1)))
        batches.append(slice(start, min(start + rows, n)))
        start += rows
    return batches
