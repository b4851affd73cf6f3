"""A static (per-token) embedding model distilled from the bundled transformer: the approximate fast tier.

Distillation follows model2vec (Tulkens & van Dongen, 2024) and needs no download: every token of
the model's own vocabulary is embedded alone (``[CLS] token [SEP]``) by the exact ONNX graph, the
vectors are reduced by PCA to :data:`STATIC_DIMENSION` and weighted by ``log(1 + rank)`` (Zipf: later,
rarer WordPiece ids weigh more). A text's vector is then the mean of its tokens' rows, L2-normalised:
no attention, no matmuls, so a text costs about as much as tokenising it.

It is *not* the same function as the transformer. ``scripts/bench_embed.py`` measures its throughput
and the downstream accuracy it costs per dataset, and :func:`selector.round.embed.embed_pool` checks
that cost on the user's own labeled rows (a warning when it exceeds one point).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from selector.errors import ModelError
from selector.io import atomic_write, remove_stale_temps

__all__ = ["STATIC_DIMENSION", "STATIC_VERSION", "StaticEncoder", "distill_static"]

STATIC_DIMENSION = 256
# Bump when the distillation changes, so vectors of an older recipe are neither reused nor mixed in the cache.
STATIC_VERSION = 1
_DISTILL_BATCH = 1024


def distill_static(onnx_encoder, dest: str | os.PathLike, *, dimension: int = STATIC_DIMENSION) -> Path:
    """Distil a static token table from an :class:`~selector.models.onnx_backend.OnnxEncoder` (once).

    Parameters
    ----------
    onnx_encoder : OnnxEncoder
        The exact fp32 graph and its tokenizer.
    dest : path
        The ``.npy`` file to write (temp file, then rename); returned as is when it exists.
    dimension : int
        PCA components kept (at most the model's width).

    Returns
    -------
    Path of a float32 array of shape (vocab_size, dimension).
    """
    dest = Path(dest)
    if dest.exists():
        return dest
    tok = onnx_encoder.tokenizer
    if tok.cls_id is None or tok.sep_id is None:
        raise ModelError(f"{onnx_encoder.model_path}: the tokenizer has no [CLS]/[SEP] tokens; "
                         "the static backend supports BERT-style models only (use --backend onnx)")
    vocab = tok.vocab_size
    seqs = np.stack([np.full(vocab, tok.cls_id), np.arange(vocab), np.full(vocab, tok.sep_id)],
                    axis=1).astype(np.int64)
    session, inputs = onnx_encoder.session, onnx_encoder.input_names
    token_vecs = None
    for start in range(0, vocab, _DISTILL_BATCH):
        ids = seqs[start : start + _DISTILL_BATCH]
        feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if "token_type_ids" in inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        vec = session.run(["sentence_embedding"], feeds)[0]
        if token_vecs is None:
            token_vecs = np.empty((vocab, vec.shape[1]), dtype=np.float32)
        token_vecs[start : start + len(ids)] = vec
    centred = token_vecs - token_vecs.mean(axis=0)
    dimension = min(dimension, centred.shape[1])
    # PCA by SVD; the sign of each component is fixed so the table is the same on every machine.
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    components = vt[:dimension] * np.sign(vt[:dimension, :1] + 1e-30)
    table = (centred @ components.T) * np.log1p(np.arange(vocab, dtype=np.float64))[:, None]
    # Every text's mean shares the vector of its commonest words, which crowds all texts into one cone
    # (mean pairwise cosine 0.64 on banking77 vs 0.21 for the transformer) and starves a regularised
    # classifier. Subtract that shared part once: the Zipf-weighted mean of the whole-word tokens.
    table -= _word_frequency_weights(tok) @ table
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(dest.parent)
    with atomic_write(dest, "wb") as fh:
        np.save(fh, table.astype(np.float32))
    return dest


def _word_frequency_weights(tokenizer) -> np.ndarray:
    """Zipf weights over the vocabulary of ``tokenizer`` (a :class:`~selector.models.onnx_backend.ModelTokenizer`):
    1/rank for whole-word tokens in id order, 0 elsewhere.

    WordPiece vocabularies list whole words roughly by frequency after their special, unused and
    single-character entries; sub-word pieces (``##``) and bracketed tokens get no weight.

    Returns
    -------
    ndarray of float64, shape (vocab_size,), summing to 1.
    """
    vocab = tokenizer.raw.get_vocab(with_added_tokens=True)
    weights = np.zeros(tokenizer.vocab_size, dtype=np.float64)
    words = sorted((i, t) for t, i in vocab.items() if i < weights.size and len(t) > 1 and t.isalpha())
    for rank, (i, _) in enumerate(words, start=1):
        weights[i] = 1.0 / rank
    return weights / weights.sum()


class StaticEncoder:
    """Mean of distilled token vectors per text.

    Parameters
    ----------
    onnx_encoder : OnnxEncoder
        Source of the tokenizer and, on first use, of the distillation.
    table_path : path
        Where the distilled table is (or will be) stored.
    """

    def __init__(self, onnx_encoder, table_path: str | os.PathLike) -> None:
        from tokenizers import Tokenizer

        tok = onnx_encoder.tokenizer
        # Checked before the distillation too, whose word weights read the Rust tokenizer's vocabulary.
        if tok.raw is None:
            raise ModelError(f"{onnx_encoder.model_path}: the static backend needs a fast tokenizer "
                             "(tokenizer.json); use --backend onnx")
        self.table = np.load(distill_static(onnx_encoder, table_path), allow_pickle=False)
        self.unk_id = int(tok.unk_id if tok.unk_id is not None else 0)
        # A private copy of the Rust tokenizer: whole texts (a static model has no length limit), no
        # padding, batches encoded in parallel, without touching the shared one's settings.
        self.tokenizer = Tokenizer.from_str(tok.raw.to_str())
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()

    @property
    def dimension(self) -> int:
        return int(self.table.shape[1])

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns
        -------
        ndarray of float32, shape (len(texts), dimension)
            The mean of each text's token rows (an empty text: [UNK]'s row), not normalised: the
            embedder L2-normalises every backend's output in one place.
        """
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        ids = [enc.ids or [self.unk_id] for enc in self.tokenizer.encode_batch(texts, add_special_tokens=False)]
        lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flat = np.fromiter((t for row in ids for t in row), dtype=np.int64, count=int(lengths.sum()))
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        return (np.add.reduceat(self.table[flat], starts, axis=0) / lengths[:, None]).astype(np.float32)
