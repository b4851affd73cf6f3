"""Embedding throughput per backend vs plain ``SentenceTransformer.encode``, in one run.

For each dataset (ag_news, banking77) it takes 5,000 texts of the train pool and embeds them with

* ``st.encode``      plain sentence-transformers (the baseline, ratio 1.00)
* ``torch``          selector's CachedEmbedder over SentenceTransformerEmbedder(backend="torch"), cold cache
* ``onnx``           the same with the fp32 ONNX Runtime backend
* ``onnx-int8``      the same with the dynamically int8-quantised ONNX graph

Timing is interleaved: the texts are cut into rounds and every method embeds each round in a
rotating order, so load from other processes on a shared machine hits all methods alike; the
table reports texts/s and the ratio to ``st.encode`` summed over all rounds. Every cache is cold
(a fresh folder per method and round), so the cached rows time the model plus the cache's own
work (hashing, dedup, writing shards).

Quality: cosine of each backend's vectors to ``st.encode``'s, and the accuracy of a logistic
regression trained on the 5,000 texts' embeddings and scored on the dataset's test split. The
storage check does the same for the reference vectors rounded to float16 (the cache's
``cache_dtype: float16``).

Targets (exit 1 when missed):
* the default CPU backend (``selector.models.embedders.DEFAULT_BACKEND``) >= 1.3x ``st.encode``
  with downstream accuracy within 0.5 points of it;
* the torch row (the foundation's embedder path) >= 0.9x ``st.encode``.

Usage::

    SELECTOR_BENCH_CACHE=/work/emb_cache python scripts/bench_embed.py [--n 5000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402

from selector.models import CachedEmbedder, SentenceTransformerEmbedder  # noqa: E402
from selector.models.embedders import DEFAULT_BACKEND, default_model_path  # noqa: E402

BACKENDS = ("torch", "onnx", "onnx-int8")
TARGET_DEFAULT_SPEEDUP = 1.3
TARGET_MAX_ACC_DROP = 0.5
TARGET_TORCH_RATIO = 0.9


def lr_accuracy(X_train, y_train, X_test, y_test) -> float:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(max_iter=2000, C=10.0)
    clf.fit(X_train, y_train)
    return float((clf.predict(X_test) == y_test).mean() * 100)


def run_dataset(name: str, n: int, rounds: int, batch_size: int, onnx_cache: Path, seed: int,
                max_test: int | None = None) -> dict:
    from sentence_transformers import SentenceTransformer

    df = bench_common.load_dataset(name)
    train, test = bench_common.train_test(df, seed=seed)
    if max_test is not None and test.size > max_test:
        test = np.sort(np.random.default_rng(seed).choice(test, size=max_test, replace=False))
    rng = np.random.default_rng(seed)
    # Distinct texts only: a duplicate would be a free cache hit for the cached rows.
    train_texts = df["text"].to_numpy(dtype=object)[train]
    _, first = np.unique(train_texts, return_index=True)
    pick = np.sort(rng.choice(first, size=min(n, first.size), replace=False))
    texts = train_texts[pick].tolist()
    y_train = df["label"].to_numpy()[train][pick]
    test_texts = df["text"].to_numpy(dtype=object)[test].tolist()
    y_test = df["label"].to_numpy()[test]

    st = SentenceTransformer(str(default_model_path()), device="cpu")
    embedders = {b: SentenceTransformerEmbedder(device="cpu", batch_size=batch_size, backend=b, onnx_cache=onnx_cache)
                 for b in BACKENDS}
    # Warm-up: load/export every model and run one batch, so no row pays a one-time cost.
    warm = texts[:batch_size]
    st.encode(warm, batch_size=batch_size, normalize_embeddings=True)
    for e in embedders.values():
        e.encode(warm)

    methods = ("st.encode", *BACKENDS)
    seconds = dict.fromkeys(methods, 0.0)
    vecs = {m: np.zeros((len(texts), 384), dtype=np.float32) for m in methods}
    bounds = np.linspace(0, len(texts), rounds + 1).astype(int)
    with tempfile.TemporaryDirectory(prefix="bench-embed-") as tmp:
        for r in range(rounds):
            sl = slice(bounds[r], bounds[r + 1])
            chunk = texts[sl]
            order = methods[r % len(methods):] + methods[: r % len(methods)]
            for m in order:
                t0 = time.perf_counter()
                if m == "st.encode":
                    out = st.encode(chunk, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
                else:
                    cached = CachedEmbedder(embedders[m], Path(tmp) / f"{m}-{r}", dtype="float32")
                    out = cached.encode(chunk)
                    assert cached.last_stats["n_embedded"] == len(chunk), "cache was not cold"
                seconds[m] += time.perf_counter() - t0
                vecs[m][sl] = out
            print(f"  {name} round {r + 1}/{rounds}: " + ", ".join(f"{m} {seconds[m]:.1f}s" for m in methods),
                  file=sys.stderr, flush=True)

    # Test-split embeddings: the reference from the shared cache (torch fingerprint), the ONNX
    # backends computed directly (their own vectors, not the cache's).
    ref_test = bench_common.embed(test_texts, show_progress=False)
    test_vecs = {"st.encode": ref_test, "torch": ref_test}
    for b in ("onnx", "onnx-int8"):
        test_vecs[b] = embedders[b].encode(test_texts)
    test_vecs["float16 storage"] = ref_test.astype(np.float16).astype(np.float32)
    vecs["float16 storage"] = vecs["st.encode"].astype(np.float16).astype(np.float32)

    ref = vecs["st.encode"]
    rows = []
    base_rate = len(texts) / seconds["st.encode"]
    for m in (*methods, "float16 storage"):
        cos = (vecs[m] * ref).sum(axis=1)
        rate = len(texts) / seconds[m] if m in seconds else float("nan")
        rows.append({
            "dataset": name, "method": m, "texts": len(texts),
            "texts_per_s": round(rate, 1), "ratio": round(rate / base_rate, 3) if m in seconds else None,
            "cos_mean": round(float(cos.mean()), 5), "cos_min": round(float(cos.min()), 5),
            "max_abs_diff": float(np.abs(vecs[m] - ref).max()),
            "lr_acc": round(lr_accuracy(vecs[m], y_train, test_vecs[m], y_test), 2),
        })
    base_acc = rows[0]["lr_acc"]
    for row in rows:
        row["acc_delta"] = round(row["lr_acc"] - base_acc, 2)
    return {"dataset": name, "n_test": len(test_texts), "rows": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="texts per dataset")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--datasets", nargs="+", default=["ag_news", "banking77"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-test", type=int, default=None, help="cap on test-split rows (default: all)")
    ap.add_argument("--report", nargs="+", default=None, metavar="JSON",
                    help="only print the combined table of earlier runs' JSON files (one per dataset)")
    ap.add_argument("--out", type=Path, default=bench_common.REPO / "scripts" / "results" / "bench_embed.json")
    args = ap.parse_args()

    if args.report:
        # Combine per-dataset runs (e.g. run in parallel, one dataset each) into one table.
        runs = [json.loads(Path(f).read_text()) for f in args.report]
        results = [r for run in runs for r in run["results"]]
        args.n, args.rounds, args.batch_size = runs[0]["n"], runs[0]["rounds"], runs[0]["batch_size"]
    else:
        with tempfile.TemporaryDirectory(prefix="bench-onnx-") as onnx_cache:
            results = [run_dataset(d, args.n, args.rounds, args.batch_size, Path(onnx_cache), args.seed,
                                   args.max_test)
                       for d in args.datasets]
    return report(results, args)


def report(results: list[dict], args) -> int:
    """Print the table, write the JSON, and return the exit status (1 when a target is missed)."""
    header = (f"{'dataset':<10} {'method':<16} {'texts/s':>8} {'x st':>6} {'cos mean':>9} {'cos min':>8} "
              f"{'max|diff|':>9} {'LR acc':>7} {'d acc':>6}")
    print(header)
    print("-" * len(header))
    failures = []
    for res in results:
        for r in res["rows"]:
            ratio = f"{r['ratio']:.2f}" if r["ratio"] is not None else "-"
            rate = f"{r['texts_per_s']:.0f}" if r["ratio"] is not None else "-"
            tag = " (default)" if r["method"] == DEFAULT_BACKEND else ""
            print(f"{r['dataset']:<10} {r['method'] + tag:<16} {rate:>8} {ratio:>6} {r['cos_mean']:>9.5f} "
                  f"{r['cos_min']:>8.5f} {r['max_abs_diff']:>9.1e} {r['lr_acc']:>7.2f} {r['acc_delta']:>+6.2f}")
            if r["method"] == DEFAULT_BACKEND and DEFAULT_BACKEND != "torch":
                if r["ratio"] < TARGET_DEFAULT_SPEEDUP:
                    failures.append(f"{r['dataset']}: default backend {DEFAULT_BACKEND} is {r['ratio']:.2f}x "
                                    f"st.encode (target >= {TARGET_DEFAULT_SPEEDUP})")
                if abs(r["acc_delta"]) > TARGET_MAX_ACC_DROP:
                    failures.append(f"{r['dataset']}: default backend accuracy moved {r['acc_delta']:+.2f} points "
                                    f"(target within {TARGET_MAX_ACC_DROP})")
            if r["method"] == "torch" and r["ratio"] < TARGET_TORCH_RATIO:
                failures.append(f"{r['dataset']}: cached torch embedder is {r['ratio']:.2f}x st.encode "
                                f"(target >= {TARGET_TORCH_RATIO})")
    tests = ", ".join(f"{r['dataset']} n={r['n_test']}" for r in results)
    print(f"\ntexts/s and 'x st' over {args.rounds} interleaved rounds of {args.n} texts, batch {args.batch_size}, "
          f"cold caches; LR acc on the test split ({tests}).")
    print(f"default CPU backend: {DEFAULT_BACKEND}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"default_backend": DEFAULT_BACKEND, "n": args.n, "rounds": args.rounds,
                                    "batch_size": args.batch_size, "results": results,
                                    "failures": failures}, indent=2))
    print(f"wrote {args.out}")
    for f in failures:
        print(f"TARGET MISSED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
