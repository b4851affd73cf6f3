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
import os
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
from selector.models.hf_progress import quiet_weight_loading

from selector.errors import ModelError
from selector.io import remove_stale_temps, temp_path_for

__all__ = ["ONNX_BACKENDS", "OnnxEncoder", "default_onnx_cache", "export_onnx", "exportable", "onnx_available"]

ONNX_BACKENDS = ("onnx", "onnx-int8")
# Bump when the exported graph changes, so old exports are not reused.
_EXPORT_VERSION = 1
_OPSET = 17


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
    int8 = out_dir / f"model-v{_EXPORT_VERSION}-int8.onnx"
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
            quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8)
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
    """

    def __init__(self, model_path: str | os.PathLike, onnx_dir: str | os.PathLike, *, quantize: bool = False,
                 device: str = "cpu", batch_size: int = 64) -> None:
        if not onnx_available():
            raise ModelError("the ONNX backend needs onnxruntime and onnx; run `pip install onnxruntime onnx` "
                             "or use --backend torch")
        self.model_path = Path(model_path)
        self.max_seq_length = _check_exportable(self.model_path)
        self.onnx_path = export_onnx(self.model_path, onnx_dir, quantize=quantize)
        self.batch_size = int(batch_size)
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_path), local_files_only=True)
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
        self.session = ort.InferenceSession(str(self.onnx_path), sess_options=opts, providers=providers)
        self._inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts`` in length-sorted batches.

        Returns
        -------
        ndarray of float32, shape (len(texts), dimension), rows L2-normalised.
        """
        texts = list(texts)
        # Longest first (as sentence-transformers does) so each batch pads to similar lengths.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out: np.ndarray | None = None
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                 max_length=self.max_seq_length, return_tensors="np")
            feeds = {k: v.astype(np.int64) for k, v in enc.items() if k in self._inputs}
            if "token_type_ids" in self._inputs and "token_type_ids" not in feeds:
                feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
            vec = self.session.run(["sentence_embedding"], feeds)[0]
            if out is None:
                out = np.empty((len(texts), vec.shape[1]), dtype=np.float32)
            out[idx] = vec
        return out if out is not None else np.zeros((0, 0), dtype=np.float32)
