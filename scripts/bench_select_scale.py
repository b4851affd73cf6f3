"""`selector select` on 100k- and 1M-row pools with cached embeddings: wall time, peak memory, growth.

The pools are synthetic but shaped like real data: each row's text is an ag_news text plus a row
number (so every text is distinct and must be looked up on its own), 2,000 rows carry the source
text's label, and each row's cached embedding is that text's real all-MiniLM-L6-v2 vector plus a
little Gaussian noise, re-normalised. The vectors are written straight into the embedding cache
under the default embedder's fingerprint (embedding 1M texts with the model would take hours on
this machine; the model is not what this benchmark measures), so ``selector select`` embeds
nothing and times reading, hashing, cache lookup, fitting, scoring and selection.

Each size runs the real CLI under ``/usr/bin/time -v`` (peak RSS, wall clock). The largest
one-stage queue is then compared with an unchunked run of the same command (scoring in one block),
which must give the identical queue. Pools of ``STREAM_MIN_ROWS`` rows or more are shortlisted on
their exact vectors streamed from the cache (:mod:`selector.round.two_stage`); each smaller size
also runs that way (the threshold set to 0) beside its one-stage run: with ``--strategy margin``
the two queues must hold the same rows in the same order up to rows of equal margin (to 1e-6), and
the streamed run's memory is the point.

Targets (exit 1 when missed): 1M rows in <= 120 s with peak memory <= 6 GB; growth from the
smallest to the largest size no worse than linear (time and memory ratios <= the row ratio); every
streamed run <= 6 GB peak, its queue the one-stage queue (up to ties) where both ran.

Usage::

    SELECTOR_BENCH_CACHE=/work/emb_cache python scripts/bench_select_scale.py [--sizes 100000 1000000 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402

from selector.models import EmbeddingCache, SentenceTransformerEmbedder, text_digests  # noqa: E402
from selector.round.two_stage import STREAM_MIN_ROWS  # noqa: E402

N_LABELED = 2000
NOISE = 0.05
SHARD_ROWS = 100_000
TARGET_SECONDS = 120.0
TARGET_PEAK_GB = 6.0
SELECTOR = [str(Path(sys.executable).parent / "selector")]
UNCHUNKED = ("import sys; import selector.round.compute as p; p.SCORE_CHUNK_ROWS = 1 << 62; "
             "from selector.cli import main; sys.argv[0] = 'selector'; main()")
STREAMED = ("import sys; import selector.round.two_stage as t; t.STREAM_MIN_ROWS = 0; "
            "from selector.cli import main; sys.argv[0] = 'selector'; main()")


def make_pool(n: int, folder: Path, seed: int) -> Path:
    """Write ``pool.csv`` with n rows and fill ``folder/cache`` with their embeddings."""
    base, base_vecs = bench_common.dataset_embeddings("ag_news")
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(base), size=n)
    texts = [f"{base['text'].iat[s]} [{i}]" for i, s in enumerate(src)]
    labels = np.full(n, "", dtype=object)
    labeled = rng.choice(n, size=N_LABELED, replace=False)
    labels[labeled] = base["label"].to_numpy()[src[labeled]]
    path = folder / "pool.csv"
    pd.DataFrame({"id": np.arange(n), "text": texts, "label": labels}).to_csv(path, index=False)

    fingerprint = SentenceTransformerEmbedder(device="cpu").fingerprint
    cache = EmbeddingCache(folder / "cache", fingerprint, base_vecs.shape[1], "float32")
    for start in range(0, n, SHARD_ROWS):
        stop = min(n, start + SHARD_ROWS)
        vec = base_vecs[src[start:stop]] + rng.normal(0, NOISE, (stop - start, base_vecs.shape[1])).astype(np.float32)
        vec /= np.linalg.norm(vec, axis=1, keepdims=True)
        cache.add(text_digests(texts[start:stop]), vec)
    return path


def timed_select(pool: Path, out: Path, unchunked: bool = False, streamed: bool = False) -> dict:
    cmd = ["/usr/bin/time", "-v"]
    cmd += [sys.executable, "-c", UNCHUNKED] if unchunked else [sys.executable, "-c", STREAMED] if streamed \
        else SELECTOR
    cmd += ["select", str(pool), "--budget", "1000", "--strategy", "margin", "--cache-dir",
            str(pool.parent / "cache"), "--out", str(out), "--quiet", "--device", "cpu"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"selector select failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([\d.]+)", proc.stderr).group(1))
              for kind in ("User", "System"))
    elapsed = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", proc.stderr).group(1)
    parts = [float(x) for x in elapsed.split(":")]
    seconds = sum(v * 60 ** i for i, v in enumerate(reversed(parts)))
    record = json.loads(out.with_name(out.stem + ".round.json").read_text())
    counts = record["counts"]
    two = record.get("two_stage") or {}
    return {"wall_s": round(seconds, 1), "cpu_s": round(cpu, 1), "peak_gb": round(peak_kb / 1e6, 2),
            "n_embedded": counts.get("n_embedded"), "n_cached": counts.get("n_cached"),
            "timings": record.get("timings_seconds"), "streamed": two.get("source") == "exact" and two.get("used"),
            "first_stage_cpu_s": (two.get("cpu_seconds") or {}).get("first_stage"),
            "shortlist_cpu_s": (two.get("cpu_seconds") or {}).get("shortlist")}


def same_queue(a: Path, b: Path) -> bool:
    return pd.read_csv(a, dtype=str, keep_default_na=False).equals(pd.read_csv(b, dtype=str, keep_default_na=False))


def same_rows(a: Path, b: Path) -> tuple[bool, int]:
    """Whether two queues hold the same rows in the same order up to ties, and how many places hold
    another row of the same strategy score (to 1e-6: the two runs score different candidate sets in
    different chunks, which moves a probability's last bits)."""
    qa, qb = pd.read_csv(a, keep_default_na=False), pd.read_csv(b, keep_default_na=False)
    if len(qa) != len(qb) or set(qa["id"]) != set(qb["id"]):
        return False, 0
    moved = (qa["id"] != qb["id"]).to_numpy()
    tied = np.abs(qa["strategy_score"].to_numpy(float) - qb["strategy_score"].to_numpy(float)) <= 1e-6
    return bool(np.all(tied[moved])), int(moved.sum())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=bench_common.REPO / "scripts" / "results" / "bench_select_scale.json")
    args = ap.parse_args()

    rows = []
    largest_one_stage = max([m for m in args.sizes if m < STREAM_MIN_ROWS], default=None)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for n in args.sizes:
            folder = Path(tmp) / str(n)
            folder.mkdir()
            t0 = time.perf_counter()
            pool = make_pool(n, folder, args.seed)
            print(f"  built {n:,}-row pool + cache in {time.perf_counter() - t0:.0f}s", file=sys.stderr, flush=True)
            res = timed_select(pool, folder / "queue.csv")
            print(f"  {n:,}: {res}", file=sys.stderr, flush=True)
            if n == largest_one_stage:
                ref = timed_select(pool, folder / "queue_unchunked.csv", unchunked=True)
                res["identical_to_unchunked"] = same_queue(folder / "queue.csv", folder / "queue_unchunked.csv")
                res["unchunked_peak_gb"] = ref["peak_gb"]
                res["unchunked_wall_s"] = ref["wall_s"]
            if not res["streamed"]:
                st = timed_select(pool, folder / "queue_streamed.csv", streamed=True)
                st["identical_to_one_stage"], st["tied_places_swapped"] = same_rows(folder / "queue.csv",
                                                                                     folder / "queue_streamed.csv")
                print(f"  {n:,} streamed: {st}", file=sys.stderr, flush=True)
                res["streamed_run"] = st
            rows.append({"rows": n, **res})

    header = (f"{'rows':>9} {'wall s':>7} {'cpu s':>6} {'peak GB':>8} {'embedded':>9} {'cached':>9} {'embed s':>8} "
              f"{'fit s':>6} {'select s':>8}  same queue as unchunked")
    print(header)
    print("-" * len(header))
    runs = []  # (label, run): each size's default run, then its streamed run where it is one stage
    for r in rows:
        runs.append(r)
        if r.get("streamed_run"):
            runs.append({"rows": r["rows"], **r["streamed_run"]})
    for r in runs:
        t = r["timings"] or {}
        same = r.get("identical_to_unchunked")
        extra = "-" if same is None else (f"{same} (unchunked: {r['unchunked_wall_s']} s, "
                                          f"{r['unchunked_peak_gb']} GB)")
        if r["streamed"]:
            one = r.get("identical_to_one_stage")
            extra = (f"streamed (first stage {r['first_stage_cpu_s']:.1f} cpu s, "
                     f"shortlist {r['shortlist_cpu_s']:.1f} cpu s)"
                     + ("" if one is None else f"; same rows as one stage: {one}, "
                                               f"{r['tied_places_swapped']} places swapped between equal scores"))
        print(f"{r['rows']:>9,} {r['wall_s']:>7.1f} {r['cpu_s']:>6.1f} {r['peak_gb']:>8.2f} {r['n_embedded']:>9} "
              f"{r['n_cached']:>9} {t.get('embed', float('nan')):>8.1f} {t.get('fit', float('nan')):>6.1f} "
              f"{t.get('select', float('nan')):>8.1f}  {extra}")
    failures = []
    big = rows[-1]
    for r in rows:
        if r["rows"] == 1_000_000 and r["wall_s"] > TARGET_SECONDS:
            failures.append(f"{r['rows']:,} rows took {r['wall_s']} s (target <= {TARGET_SECONDS:.0f})")
        if r.get("identical_to_unchunked") is False:
            failures.append("chunked queue differs from the unchunked run")
    for r in runs:
        if r["peak_gb"] > TARGET_PEAK_GB:
            failures.append(f"{r['rows']:,} rows{' streamed' if r['streamed'] else ''} peaked at {r['peak_gb']} GB "
                            f"(target <= {TARGET_PEAK_GB})")
        if r.get("identical_to_one_stage") is False:
            failures.append(f"{r['rows']:,} rows: the streamed queue holds other rows than the one-stage queue, or "
                            "in another order beyond ties")
    if any(r["n_embedded"] for r in runs):
        failures.append("some rows were embedded: the cache was not used")
    if len(rows) >= 2:
        small = rows[0]
        scale = big["rows"] / small["rows"]
        t_growth = big["wall_s"] / small["wall_s"]
        m_growth = big["peak_gb"] / small["peak_gb"]
        print(f"\ngrowth {small['rows']:,} -> {big['rows']:,} rows ({scale:.0f}x): time x{t_growth:.2f}, "
              f"peak memory x{m_growth:.2f} (linear = x{scale:.0f})")
        if t_growth > scale or m_growth > scale:
            failures.append(f"growth worse than linear (time x{t_growth:.2f}, memory x{m_growth:.2f}, rows x{scale:.0f})")
    print(f"targets: 1,000,000 rows <= {TARGET_SECONDS:.0f} s; every run <= {TARGET_PEAK_GB} GB peak; "
          f"growth <= linear; queue identical to unchunked; streamed: the same rows as one stage, in its order "
          f"up to equal scores. cpu s = user + system time of the command; "
          f"cpu count {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "failures": failures}, indent=2))
    print(f"wrote {args.out}")
    for f in failures:
        print(f"TARGET MISSED: {f}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
