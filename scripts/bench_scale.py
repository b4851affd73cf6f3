"""Scale benchmark: every registered strategy on a 1,000,000 × 384 float32 pool.

A synthetic clustered pool (100 Gaussian blobs, L2-normalised, float32) with 2,000 labeled rows
(10 classes) is written once to a temporary .npy file. Each strategy then runs in its own
subprocess that loads the arrays, fits logistic regression on the labeled rows, scores the pool
(chunked), and selects ``--budget`` rows; the subprocess reports the selection's wall time, and
its own peak resident memory (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` at exit). Peak
memory therefore includes the 1.5 GB pool itself, the classifier and its pool scores.

Targets (exit 1 when missed): selection <= 60 s and peak memory <= 6 GB for every strategy. The
time is judged on the child's CPU seconds (all its threads; at most wall time × cores), because
on a shared machine the wall time measures the other tenants' load as much as the strategy; both
are printed, with the load average.

Run:  python scripts/bench_scale.py [--n 1000000] [--budget 1000] [--out bench_out/scale]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TIME_LIMIT_S = 60.0
MEMORY_LIMIT_GB = 6.0

CHILD = r"""
import json, resource, sys, time, warnings
import numpy as np
from selector.models.classifiers import fit_classifier, make_classifier
from selector.strategies import SelectionContext, make_strategy
name, path_x, path_y, n_labeled, budget = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
X = np.load(path_x)                       # fully in memory, not memory-mapped
y = np.load(path_y, allow_pickle=False).astype(object)
t0 = time.perf_counter()
model = fit_classifier(make_classifier(random_state=0), X[:n_labeled], y[:n_labeled])
pool = X[n_labeled:]
proba = np.empty((pool.shape[0], len(model.classes_)))
for s in range(0, pool.shape[0], 65536):  # chunked: predict_proba upcasts its input to float64
    proba[s:s + 65536] = model.predict_proba(pool[s:s + 65536])
t1, c1 = time.perf_counter(), time.process_time()
ctx = SelectionContext(pool, X[:n_labeled], y[:n_labeled], proba_pool=proba,
                       classes=np.asarray(model.classes_, dtype=object), classifier=model)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    sel = make_strategy(name).select(ctx, budget, random_state=0)
t2, c2 = time.perf_counter(), time.process_time()
assert len(sel) == budget and np.unique(sel.indices).size == budget
peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is in KiB on Linux
print(json.dumps({"fit_score_s": t1 - t0, "select_s": t2 - t1, "select_cpu_s": c2 - c1, "peak_rss_gb": peak_gb}))
"""


def make_pool(path_x: Path, path_y: Path, n: int, d: int, n_labeled: int, seed: int = 0) -> None:
    """Write a clustered, L2-normalised float32 pool (n + n_labeled rows) and labels, in chunks."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(100, d)).astype(np.float32)
    X = np.lib.format.open_memmap(path_x, mode="w+", dtype=np.float32, shape=(n + n_labeled, d))
    for start in range(0, n + n_labeled, 100_000):
        m = min(100_000, n + n_labeled - start)
        block = centres[rng.integers(0, 100, m)] + rng.normal(scale=0.8, size=(m, d)).astype(np.float32)
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        X[start : start + m] = block
    X.flush()
    # 10 classes: the nearest of the first 10 centres.
    y = np.array([f"c{i}" for i in (np.asarray(X[:n_labeled]) @ centres[:10].T).argmax(1)])
    np.save(path_y, y)
    del X


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--n-labeled", type=int, default=2000)
    ap.add_argument("--budget", type=int, default=1000)
    ap.add_argument("--strategies", nargs="+", default=None, help="default: every registered strategy")
    ap.add_argument("--out", default="bench_out/scale")
    args = ap.parse_args(argv)
    from selector.strategies import available_strategies

    names = args.strategies or list(available_strategies())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, failures = [], []
    with tempfile.TemporaryDirectory(prefix="selector-scale-") as tmp:
        px, py = Path(tmp) / "X.npy", Path(tmp) / "y.npy"
        t0 = time.perf_counter()
        make_pool(px, py, args.n, args.d, args.n_labeled)
        print(f"pool: {args.n} x {args.d} float32 ({args.n * args.d * 4 / 1e9:.2f} GB) + {args.n_labeled} labeled, "
              f"budget {args.budget}; generated in {time.perf_counter() - t0:.0f} s", flush=True)
        for name in names:
            # Each strategy in a fresh process, so its peak RSS is its own.
            proc = subprocess.run([sys.executable, "-c", CHILD, name, str(px), str(py), str(args.n_labeled),
                                   str(args.budget)], capture_output=True, text=True)
            if proc.returncode != 0:
                failures.append(f"{name}: failed: {proc.stderr.strip().splitlines()[-1] if proc.stderr else proc.returncode}")
                rows.append({"strategy": name, "error": proc.stderr[-2000:]})
                print(f"  {name:18s} FAILED", flush=True)
                continue
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            rows.append({"strategy": name, **res})
            print(f"  {name:18s} select {res['select_s']:6.1f} s wall, {res['select_cpu_s']:6.1f} s CPU   "
                  f"(fit+score {res['fit_score_s']:4.1f} s)   peak {res['peak_rss_gb']:4.2f} GB", flush=True)
    print()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'strategy':18s} {'wall_s':>7s} {'cpu_s':>7s} {'peak_GB':>8s}  ok   (targets: <= {TIME_LIMIT_S:.0f} s, <= {MEMORY_LIMIT_GB:.0f} GB)")
    for r in rows:
        if "error" in r:
            print(f"{r['strategy']:18s} {'error':>9s}")
            continue
        ok = r["select_cpu_s"] <= TIME_LIMIT_S and r["peak_rss_gb"] <= MEMORY_LIMIT_GB
        print(f"{r['strategy']:18s} {r['select_s']:7.1f} {r['select_cpu_s']:7.1f} {r['peak_rss_gb']:8.2f}  "
              f"{'yes' if ok else 'NO'}")
        if r["select_cpu_s"] > TIME_LIMIT_S:
            failures.append(f"{r['strategy']}: {r['select_cpu_s']:.1f} CPU s > {TIME_LIMIT_S:.0f} s")
        if r["peak_rss_gb"] > MEMORY_LIMIT_GB:
            failures.append(f"{r['strategy']}: peak {r['peak_rss_gb']:.2f} GB > {MEMORY_LIMIT_GB:.0f} GB")
    payload = {"n": args.n, "d": args.d, "n_labeled": args.n_labeled, "budget": args.budget, "rows": rows,
               "targets_missed": failures, "command": " ".join(sys.argv)}
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    print(f"JSON: {out / 'results.json'}")
    if failures:
        print("TARGETS MISSED:\n  " + "\n  ".join(failures))
        return 1
    print(f"all strategies within {TIME_LIMIT_S:.0f} s and {MEMORY_LIMIT_GB:.0f} GB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
