"""Embedding throughput per backend vs plain ``SentenceTransformer.encode``: CPU seconds, vectors, accuracy, memory.

For each dataset it takes ``--n`` distinct texts of the train pool and embeds them, in one process,
with every method below; the texts are cut into ``--rounds`` rounds and every method embeds each
round in a rotating order, so load from other processes hits all methods alike.

* ``st.encode``  plain sentence-transformers at its default batch size (32): the baseline, 1.00
* ``torch``      selector's torch backend: sentence-transformers' own modules, token-length batches on CPU
* ``onnx``       selector's fp32 ONNX Runtime backend (the CPU default): token-length batches
* ``onnx-fused``  the same graph after ONNX Runtime's transformer optimizer (measured only; not a backend)
* ``openvino``   the same exported graph and batches run by OpenVINO (measured only; not a backend)
* ``onnx-int8``  approximate: int8 weights (dynamic quantisation, per-channel scales)
* ``static``     approximate: a token table distilled from the model (``selector.models.static_backend``)

Figures per method: CPU seconds per 1,000 texts (user + system of the whole process, all threads),
the ratio of st.encode's CPU seconds to the method's (higher is faster), wall texts/s, cosine and
max |diff| to st.encode's vectors, and the accuracy of a logistic regression trained on the
method's vectors of the timed texts and scored on its vectors of the test split. Peak RSS per
backend is measured in a fresh child process that loads the backend and embeds 500 texts.

The fp32 ceiling line: the model's matmul FLOPs for these texts' real tokens divided by the
machine's measured single-core fp32 matmul rate, as a ratio to st.encode's CPU seconds. No exact
fp32 path can beat it on this CPU.

Targets (exit 1 when missed):
* the default CPU backend (``DEFAULT_BACKEND``) >= 2.0x st.encode in CPU seconds, on every dataset;
* its vectors match st.encode's: cosine >= 0.9999 and max |diff| <= 1e-4; accuracy within 0.5 points;
* its peak RSS is no more than the torch backend's.

On a GPU (``--device cuda``; a clear error without CUDA) it measures wall seconds per 1,000 texts
instead, for ``st.encode`` (fp32, the baseline), selector's torch backend at its CUDA default (fp16)
and the ONNX backend on ONNX Runtime's CUDA provider (fp32; "not measured" without onnxruntime-gpu),
and checks the vectors against st.encode's: cosine >= 0.999 for fp16, >= 0.9999 for fp32 (exit 1 on a
miss); the figures go to ``scripts/results/bench_embed_cuda.json``.

Usage::

    python scripts/bench_embed.py [--n 2000] [--rounds 4] [--datasets ag_news banking77] [--sweep]
    python scripts/bench_embed.py --device cuda [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402

from selector.models import SentenceTransformerEmbedder  # noqa: E402
from selector.models.embedders import DEFAULT_BACKEND, default_model_path  # noqa: E402
from selector.models.onnx_backend import cpu_threads  # noqa: E402

BACKENDS = ("torch", "onnx", "onnx-int8", "static")
EXACT = ("st.encode", "torch", "onnx", "onnx-fused", "openvino")
TARGET_DEFAULT_SPEEDUP = 2.0
TARGET_MIN_COS = 0.9999
TARGET_MAX_DIFF = 1e-4
TARGET_MAX_ACC_DROP = 0.5
RSS_TEXTS = 500
ST_DEFAULT_BATCH = 32


class GraphRunner:
    """Another runtime or graph fed the ONNX backend's own token-length batches (measured, not shipped).

    ``kind`` is ``"openvino"`` (the exported fp32 graph compiled by OpenVINO) or ``"onnx-fused"`` (the
    graph after ONNX Runtime's offline transformer optimizer: fused LayerNorm, GELU and, where it
    recognises the pattern, attention).
    """

    def __init__(self, onnx_encoder, kind: str, workdir: Path) -> None:
        self.enc = onnx_encoder
        if kind == "openvino":
            import openvino as ov

            compiled = ov.Core().compile_model(str(onnx_encoder.onnx_path), "CPU", {
                "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                "INFERENCE_NUM_THREADS": cpu_threads()})
            request = compiled.create_infer_request()
            self.run = lambda feeds: request.infer(feeds)[0]
        else:
            import onnxruntime as ort
            from onnxruntime.transformers.optimizer import optimize_model

            cfg = json.loads((onnx_encoder.model_path / "config.json").read_text())
            fused = workdir / "model-fused.onnx"
            optimize_model(str(onnx_encoder.onnx_path), model_type="bert", num_heads=cfg["num_attention_heads"],
                           hidden_size=cfg["hidden_size"]).save_model_to_file(str(fused))
            opts = onnx_encoder.session.get_session_options()
            session = ort.InferenceSession(str(fused), sess_options=opts, providers=["CPUExecutionProvider"])
            self.run = lambda feeds: session.run(["sentence_embedding"], feeds)[0]

    def encode(self, texts) -> np.ndarray:
        out = np.empty((len(texts), 384), dtype=np.float32)
        for idx, feeds in self.enc.batches(texts):
            out[idx] = self.run(feeds)
        return out


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def make_methods(onnx_cache: Path) -> dict:
    """name -> encode(texts) callable, each loaded and warmed up."""
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(default_model_path()), device="cpu")
    methods = {"st.encode": lambda t: st.encode(t, batch_size=ST_DEFAULT_BATCH, normalize_embeddings=True,
                                                convert_to_numpy=True)}
    embedders = {b: SentenceTransformerEmbedder(device="cpu", backend=b, onnx_cache=onnx_cache) for b in BACKENDS}
    for b, e in embedders.items():
        methods[b] = e.encode
    methods["onnx-fused"] = GraphRunner(embedders["onnx"].onnx, "onnx-fused", onnx_cache).encode
    if openvino_available():
        methods["openvino"] = GraphRunner(embedders["onnx"].onnx, "openvino", onnx_cache).encode
    order = ["st.encode", "torch", "onnx", "onnx-fused", "openvino", "onnx-int8", "static"]
    methods = {m: methods[m] for m in order if m in methods}
    for f in methods.values():  # load, export, distil, and run one batch: no round pays a one-time cost
        f(["warm-up text number one", "a second, longer warm-up text for the batch"])
    return methods


TARGET_MIN_COS_FP16 = 0.999


def cuda_bench(args) -> int:
    """The GPU figures (module docstring): wall seconds per 1,000 texts and cosine to fp32 st.encode."""
    import torch
    from sentence_transformers import SentenceTransformer

    from selector.errors import ModelError
    from selector.models.embedders import resolve_device

    try:
        device = resolve_device("cuda")
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    st = SentenceTransformer(str(default_model_path()), device=device)
    methods = {"st.encode (fp32)": lambda t: st.encode(t, batch_size=ST_DEFAULT_BATCH, normalize_embeddings=True,
                                                       convert_to_numpy=True)}
    torch_emb = SentenceTransformerEmbedder(device=device, backend="torch")
    methods[f"torch ({torch_emb.precision})"] = torch_emb.encode
    skipped = {}
    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        try:
            onnx = SentenceTransformerEmbedder(device=device, backend="onnx", onnx_cache=Path(tmp))
            onnx.encode(["export and load the graph"])  # the session (and its provider check) starts here
            methods["onnx, CUDA provider (fp32)"] = onnx.encode
        except ModelError as exc:  # onnxruntime-gpu missing: a figure not measured, said so
            skipped["onnx, CUDA provider (fp32)"] = str(exc)
        rows = []
        for name in args.datasets:
            df = bench_common.load_dataset(name)
            texts = df["text"].drop_duplicates().sample(n=min(args.n, df["text"].nunique()),
                                                       random_state=args.seed).tolist()
            vectors, seconds = {}, {}
            for m, f in methods.items():
                f(texts[:64])  # load and warm up: kernels, allocator
                torch.cuda.synchronize()
                t0 = time.perf_counter()
                vectors[m] = np.asarray(f(texts), dtype=np.float32)
                torch.cuda.synchronize()
                seconds[m] = time.perf_counter() - t0
            base = vectors["st.encode (fp32)"]
            for m in methods:
                cos = float(np.min(np.sum(vectors[m] * base, axis=1)
                                   / (np.linalg.norm(vectors[m], axis=1) * np.linalg.norm(base, axis=1))))
                need = TARGET_MIN_COS_FP16 if "fp16" in m else TARGET_MIN_COS
                rows.append({"dataset": name, "method": m, "n": len(texts), "wall_s_per_1k": 1000 * seconds[m] / len(texts),
                             "x_st": seconds["st.encode (fp32)"] / seconds[m], "cos_min": cos, "cos_target": need,
                             "ok": cos >= need})
    gpu = torch.cuda.get_device_name(torch.device(device))
    print(f"GPU: {gpu}")
    print(f"{'dataset':<10} {'method':<28} {'wall s/1k':>9} {'x st':>6} {'cos min':>9}")
    for r in rows:
        print(f"{r['dataset']:<10} {r['method']:<28} {r['wall_s_per_1k']:>9.3f} {r['x_st']:>6.2f} {r['cos_min']:>9.6f}"
              + ("" if r["ok"] else f"  MISS (cosine target {r['cos_target']})"))
    for m, why in skipped.items():
        print(f"{m}: not measured: {why}")
    out = args.out.with_name("bench_embed_cuda.json") if args.out.name == "bench_embed.json" else args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"gpu": gpu, "rows": rows, "not_measured": skipped}, indent=1))
    print(f"wrote {out}")
    return 0 if all(r["ok"] for r in rows) else 1


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def model_gflop(texts, model_path: Path) -> float:
    """Matmul GFLOPs of the transformer on ``texts``' real tokens (no padding), from its config."""
    from transformers import AutoTokenizer

    cfg = json.loads((model_path / "config.json").read_text())
    h, inter, layers = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"]
    tok = AutoTokenizer.from_pretrained(str(model_path), local_files_only=True)
    lengths = np.array([len(i) for i in tok(list(texts), truncation=True, max_length=256)["input_ids"]], dtype=float)
    per_token = 2 * (4 * h * h + 2 * h * inter) * layers  # Q, K, V, output, two FFN matmuls
    attention = (2 * 2 * lengths * h * layers) * lengths  # scores and weighted sum, per text
    return float((per_token * lengths.sum() + attention.sum()) / 1e9)


def matmul_gflops_per_core() -> float:
    """Measured single-thread fp32 matmul rate (GFLOP per CPU second) at the model's shapes."""
    from threadpoolctl import threadpool_limits

    a = np.random.default_rng(0).random((2048, 384), dtype=np.float32)
    b = np.random.default_rng(1).random((384, 1536), dtype=np.float32)
    with threadpool_limits(limits=1):
        for _ in range(3):
            a @ b
        n, t0 = 40, cpu_seconds()
        for _ in range(n):
            a @ b
        dt = cpu_seconds() - t0
    return 2 * 2048 * 384 * 1536 * n / dt / 1e9


def lr_accuracy(X_train, y_train, X_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=3000, C=10.0)
    clf.fit(X_train, y_train)
    return float((clf.predict(X_test) == y_test).mean() * 100)


def pick_texts(name: str, n: int, seed: int, max_test: int):
    df = bench_common.load_dataset(name)
    train, test = bench_common.train_test(df, seed=seed)
    rng = np.random.default_rng(seed)
    train_texts = df["text"].to_numpy(dtype=object)[train]
    _, first = np.unique(train_texts, return_index=True)  # distinct texts only
    pick = np.sort(rng.choice(first, size=min(n, first.size), replace=False))
    if test.size > max_test:
        test = np.sort(rng.choice(test, size=max_test, replace=False))
    labels = df["label"].to_numpy()
    return (train_texts[pick].tolist(), labels[train][pick],
            df["text"].to_numpy(dtype=object)[test].tolist(), labels[test])


def run_dataset(name: str, methods: dict, args) -> dict:
    texts, y_train, test_texts, y_test = pick_texts(name, args.n, args.seed, args.max_test)
    cpu = dict.fromkeys(methods, 0.0)
    wall = dict.fromkeys(methods, 0.0)
    vecs: dict[str, list] = {m: [None] * args.rounds for m in methods}
    bounds = np.linspace(0, len(texts), args.rounds + 1).astype(int)
    names = list(methods)
    for r in range(args.rounds):
        chunk = texts[bounds[r]: bounds[r + 1]]
        for m in names[r % len(names):] + names[: r % len(names)]:
            c0, w0 = cpu_seconds(), time.perf_counter()
            vecs[m][r] = methods[m](chunk)
            cpu[m] += cpu_seconds() - c0
            wall[m] += time.perf_counter() - w0
        print(f"  {name} round {r + 1}/{args.rounds}: " + ", ".join(f"{m} {cpu[m]:.0f} cpu-s" for m in names),
              file=sys.stderr, flush=True)
    vecs = {m: np.concatenate(v) for m, v in vecs.items()}
    ref = vecs["st.encode"]
    ceiling_cpu = model_gflop(texts, default_model_path()) / args.gflops_per_core
    rows = []
    for m in names:
        test_vecs = methods[m](test_texts)
        same_dim = vecs[m].shape[1] == ref.shape[1]
        cos = (vecs[m] * ref).sum(axis=1) if same_dim else None
        rows.append({
            "dataset": name, "method": m, "texts": len(texts), "exact": m in EXACT,
            "cpu_s_per_1000": round(cpu[m] / len(texts) * 1000, 2),
            "ratio_cpu": round(cpu["st.encode"] / cpu[m], 3),
            "texts_per_s_wall": round(len(texts) / wall[m], 1),
            "cos_mean": round(float(cos.mean()), 6) if cos is not None else None,
            "cos_min": round(float(cos.min()), 6) if cos is not None else None,
            "max_abs_diff": float(np.abs(vecs[m] - ref).max()) if same_dim else None,
            "lr_acc": round(lr_accuracy(vecs[m], y_train, test_vecs, y_test), 2),
        })
    # The cache's ``cache_dtype: float16``: the reference vectors stored at half precision.
    half = ref.astype(np.float16).astype(np.float32)
    half_test = methods["st.encode"](test_texts).astype(np.float16).astype(np.float32)
    cos = (half * ref).sum(axis=1)
    rows.append({"dataset": name, "method": "float16 storage", "texts": len(texts), "exact": False,
                 "cpu_s_per_1000": None, "ratio_cpu": None, "texts_per_s_wall": None,
                 "cos_mean": round(float(cos.mean()), 6), "cos_min": round(float(cos.min()), 6),
                 "max_abs_diff": float(np.abs(half - ref).max()),
                 "lr_acc": round(lr_accuracy(half, y_train, half_test, y_test), 2)})
    base_acc = rows[0]["lr_acc"]
    for row in rows:
        row["acc_delta"] = round(row["lr_acc"] - base_acc, 2)
    return {"dataset": name, "n_test": len(test_texts),
            "fp32_ceiling_ratio": round(cpu["st.encode"] / ceiling_cpu, 2), "rows": rows}


def sweep_max_tokens(name: str, onnx_cache: Path, args) -> list[dict]:
    """CPU seconds per 1,000 texts of the onnx backend per token budget (how DEFAULT_MAX_TOKENS was chosen)."""
    texts = pick_texts(name, args.n, args.seed, 1)[0]
    emb = SentenceTransformerEmbedder(device="cpu", backend="onnx", onnx_cache=onnx_cache)
    emb.encode(texts[:8])
    out = []
    for budget in (256, 512, 1024, 2048, 4096):
        emb.onnx.max_tokens = budget
        c0 = cpu_seconds()
        emb.encode(texts)
        out.append({"dataset": name, "max_tokens": budget,
                    "cpu_s_per_1000": round((cpu_seconds() - c0) / len(texts) * 1000, 2)})
        print(f"  sweep {name} max_tokens {budget}: {out[-1]['cpu_s_per_1000']} cpu-s / 1000 texts", file=sys.stderr)
    return out


def rss_child(backend: str, dataset: str, onnx_cache: str) -> None:
    """Child process: load one backend, embed RSS_TEXTS texts, print the peak RSS in MB as JSON."""
    texts = pick_texts(dataset, RSS_TEXTS, 0, 1)[0]
    if backend == "st.encode":
        from sentence_transformers import SentenceTransformer

        SentenceTransformer(str(default_model_path()), device="cpu").encode(texts, batch_size=ST_DEFAULT_BATCH)
    else:
        SentenceTransformerEmbedder(device="cpu", backend=backend, onnx_cache=onnx_cache).encode(texts)
    # VmHWM is this process image's own peak; ru_maxrss would carry the parent's peak across fork + exec.
    hwm_kb = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                  if line.startswith("VmHWM:"))
    print(json.dumps({"peak_rss_mb": hwm_kb / 1024}))


def peak_rss(dataset: str, onnx_cache: Path) -> dict:
    out = {}
    for b in ("st.encode", *BACKENDS):
        res = subprocess.run([sys.executable, __file__, "--rss-child", b, "--datasets", dataset,
                              "--onnx-cache", str(onnx_cache)], capture_output=True, text=True, check=True)
        out[b] = round(json.loads(res.stdout.strip().splitlines()[-1])["peak_rss_mb"], 1)
        print(f"  peak RSS {b}: {out[b]} MB", file=sys.stderr)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="texts per dataset")
    ap.add_argument("--rounds", type=int, default=4, help="interleaved timing rounds")
    ap.add_argument("--datasets", nargs="+", default=["ag_news", "banking77"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-test", type=int, default=1000, help="cap on test-split rows")
    ap.add_argument("--sweep", action="store_true", help="also sweep the onnx token budget per batch")
    ap.add_argument("--out", type=Path, default=bench_common.REPO / "scripts" / "results" / "bench_embed.json")
    ap.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--onnx-cache", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                    help="cuda: the GPU figures (wall seconds, fp16 and ONNX Runtime's CUDA provider)")
    args = ap.parse_args()
    if args.device == "cuda":
        return cuda_bench(args)
    if args.rss_child:
        rss_child(args.rss_child, args.datasets[0], args.onnx_cache)
        return 0

    with tempfile.TemporaryDirectory(prefix="bench-onnx-") as tmp:
        onnx_cache = Path(tmp)
        args.gflops_per_core = matmul_gflops_per_core()
        methods = make_methods(onnx_cache)
        results = [run_dataset(d, methods, args) for d in args.datasets]
        del methods
        rss = peak_rss(args.datasets[0], onnx_cache)
        sweep = sweep_max_tokens(args.datasets[0], onnx_cache, args) if args.sweep else []
    return report(results, rss, sweep, args)


def report(results: list[dict], rss: dict, sweep: list[dict], args) -> int:
    """Print the table, write the JSON beside it, and return the exit status (1 when a target is missed)."""
    header = (f"{'dataset':<10} {'method':<20} {'cpu s/1k':>8} {'x st':>5} {'texts/s':>7} {'cos min':>8} "
              f"{'max|diff|':>9} {'LR acc':>6} {'d acc':>6} {'peak MB':>7}")
    print(header)
    print("-" * len(header))
    failures = []
    for res in results:
        for r in res["rows"]:
            m = r["method"]
            tag = " (default)" if m == DEFAULT_BACKEND else ("" if r["exact"] else " (approx)")
            cos = f"{r['cos_min']:.6f}" if r["cos_min"] is not None else "-"
            diff = f"{r['max_abs_diff']:.1e}" if r["max_abs_diff"] is not None else "-"
            mem = f"{rss[m]:.0f}" if m in rss else "-"
            timed = r["ratio_cpu"] is not None
            cpu_s = f"{r['cpu_s_per_1000']:.1f}" if timed else "-"
            ratio = f"{r['ratio_cpu']:.2f}" if timed else "-"
            rate = f"{r['texts_per_s_wall']:.0f}" if timed else "-"
            print(f"{r['dataset']:<10} {m + tag:<20} {cpu_s:>8} {ratio:>5} {rate:>7} {cos:>8} {diff:>9} "
                  f"{r['lr_acc']:>6.2f} {r['acc_delta']:>+6.2f} {mem:>7}")
            if m != DEFAULT_BACKEND:
                continue
            if r["ratio_cpu"] < TARGET_DEFAULT_SPEEDUP:
                failures.append(f"{r['dataset']}: default backend {m} is {r['ratio_cpu']:.2f}x st.encode in CPU "
                                f"seconds (target >= {TARGET_DEFAULT_SPEEDUP}; fp32 ceiling here "
                                f"{res['fp32_ceiling_ratio']:.2f}x)")
            if r["cos_min"] is None or r["cos_min"] < TARGET_MIN_COS or r["max_abs_diff"] > TARGET_MAX_DIFF:
                failures.append(f"{r['dataset']}: default backend vectors drift from st.encode (cos min "
                                f"{r['cos_min']}, max |diff| {r['max_abs_diff']})")
            if abs(r["acc_delta"]) > TARGET_MAX_ACC_DROP:
                failures.append(f"{r['dataset']}: default backend accuracy moved {r['acc_delta']:+.2f} points")
        print(f"{res['dataset']:<10} {'fp32 ceiling':<20} {'':>8} {res['fp32_ceiling_ratio']:>5.2f}")
    if DEFAULT_BACKEND in rss and rss[DEFAULT_BACKEND] > rss["torch"]:
        failures.append(f"default backend peak RSS {rss[DEFAULT_BACKEND]:.0f} MB > torch's {rss['torch']:.0f} MB")
    for s in sweep:
        print(f"sweep {s['dataset']}: onnx max_tokens {s['max_tokens']:>5}: {s['cpu_s_per_1000']:.1f} cpu s / 1,000 texts")
    tests = ", ".join(f"{r['dataset']} n={r['n_test']}" for r in results)
    onnx_rates = {r["dataset"]: r["texts_per_s_wall"] for res in results for r in res["rows"] if r["method"] == DEFAULT_BACKEND}
    print(f"\nCPU seconds of the whole process per 1,000 texts, {args.rounds} interleaved rounds of {args.n} texts "
          f"per dataset; 'x st' = st.encode's CPU s / the method's; {cpu_threads()} threads; fp32 matmul "
          f"{args.gflops_per_core:.1f} GFLOP per CPU second; LR acc on the test split ({tests}); peak RSS of a child "
          f"embedding {RSS_TEXTS} {args.datasets[0]} texts.")
    for d, rate in onnx_rates.items():
        print(f"cold pool with {DEFAULT_BACKEND}, {d}-like texts: 100k in {100_000 / rate / 60:.0f} min, "
              f"1M in {1_000_000 / rate / 3600:.1f} h on this machine")
    print(f"default CPU backend: {DEFAULT_BACKEND}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"default_backend": DEFAULT_BACKEND, "n": args.n, "rounds": args.rounds, "threads": cpu_threads(),
               "gflops_per_core": round(args.gflops_per_core, 2), "results": results, "peak_rss_mb": rss,
               "sweep": sweep, "failures": failures}
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")
    for f in failures:
        print(f"TARGET MISSED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
