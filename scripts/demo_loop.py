"""A scripted three-round labeling loop on trec, through the Label Studio format.

select -> export (Label Studio tasks) -> simulated annotation (Label Studio's JSON export, filled
with trec's true labels) -> merge -> status, three times; then the flywheel: 300 trec rows held out
of the data come back as "production failures" (failure bucket = their fine-grained trec class) with
20 duplicates of pool rows mixed in, are ingested, and a fourth select gives rare buckets 20% of the
budget. Every step is the real ``selector`` CLI; only the annotator and production are simulated.

Usage:
    python scripts/demo_loop.py [--workdir DIR] [--budget 100] [--cache-dir /work/emb_cache]

Exits non-zero when any command fails or the loop's invariants do not hold (labels per round,
ledger rounds, nothing queued twice).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd

from selector.loop.ledger import ledger_path, read_ledger

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
SELECTOR = str(Path(sys.executable).parent / "selector")


def run(*args: str) -> str:
    """Run one selector command, echo it and its output, fail loudly on a non-zero exit."""
    print(f"\n$ selector {' '.join(args)}", flush=True)
    proc = subprocess.run([SELECTOR, *args], capture_output=True, text=True)
    out = proc.stdout + "".join(f"  [stderr] {line}\n" for line in proc.stderr.splitlines())
    print(out, end="", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"command failed with exit code {proc.returncode}")
    return proc.stdout


def annotate_like_label_studio(tasks_path: Path, gold: dict[str, str], export_path: Path, round_number: int) -> None:
    """Turn imported tasks into what Label Studio's "JSON" export gives once they are annotated."""
    tasks = json.loads(tasks_path.read_text(encoding="utf-8"))
    exported = []
    for n, task in enumerate(tasks, start=1):
        task_id = round_number * 10000 + n
        exported.append({
            "id": task_id,
            "data": {**task["data"], "guideline_version": "trec-guide-v1"},
            "annotations": [{
                "id": task_id, "completed_by": 1 + n % 2, "was_cancelled": False, "ground_truth": False,
                "lead_time": 4.2, "task": task_id,
                "result": [{"id": f"res{task_id}", "from_name": "label", "to_name": "text", "type": "choices",
                            "origin": "manual", "value": {"choices": [gold[task["data"]["selector_id"]]]}}],
            }],
            "predictions": task["predictions"],
            "project": 1,
        })
    export_path.write_text(json.dumps(exported, ensure_ascii=False), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/selector_demo_loop"))
    ap.add_argument("--budget", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--strategy", default="margin")
    ap.add_argument("--cache-dir", default="/work/emb_cache")
    args = ap.parse_args()

    work = args.workdir
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    src = pd.read_csv(DATASETS / "trec" / "data.csv", dtype=str, keep_default_na=False)
    src.insert(0, "id", [f"trec-{i:05d}" for i in range(len(src))])
    gold = dict(zip(src["id"], src["label"]))
    held_out = src.sample(n=300, random_state=0)
    pool = src.drop(held_out.index)
    data = work / "trec_unlabeled.csv"
    pool.assign(label="")[["id", "text", "label", "split"]].to_csv(data, index=False)
    label_set = ",".join(sorted(set(gold.values())))
    print(f"trec: {len(pool)} rows, labels blanked -> {data} ({len(held_out)} more held out as future "
          f"production rows); label set {label_set}")

    queued: set[str] = set()
    for r in range(1, args.rounds + 1):
        print(f"\n======== round {r} ========")
        queue = work / f"queue_r{r}.csv"
        run("select", str(data), "--budget", str(args.budget), "--strategy", args.strategy, "--seed", "0",
            "--out", str(queue), "--cache-dir", args.cache_dir, "-q")
        ids = pd.read_csv(queue, dtype=str)["id"].tolist()
        if queued & set(ids):
            raise SystemExit(f"round {r} queued {len(queued & set(ids))} rows already queued before")
        queued |= set(ids)
        tasks = work / f"tasks_r{r}.json"
        run("export", str(queue), "--format", "label-studio", "--out", str(tasks), "--labels", label_set)
        ls_export = work / f"label_studio_export_r{r}.json"
        annotate_like_label_studio(tasks, gold, ls_export, r)
        print(f"(simulated annotation: {len(ids)} tasks labeled with trec's true labels -> {ls_export.name})")
        run("merge", str(data), str(ls_export), "--in-place")
        run("status", str(data), "--cache-dir", args.cache_dir)

    print("\n======== production failures come back: ingest, then a round with bucket priority ========")
    dupes = pool.sample(n=20, random_state=1)["text"]
    dupes = [t.upper() if k % 2 else t.replace(" ?", "").replace(",", "") for k, t in enumerate(dupes)]
    production = pd.concat([held_out[["text", "label_fine"]].rename(columns={"label_fine": "failure"}),
                            pd.DataFrame({"text": dupes, "failure": "duplicate-report"})], ignore_index=True)
    production_path = work / "production_failures.csv"
    production.to_csv(production_path, index=False)
    n_before = len(pd.read_csv(data, dtype=str, keep_default_na=False))
    run("ingest", str(data), str(production_path), "--source", "production", "--bucket", "failure", "--in-place",
        "--cache-dir", args.cache_dir, "--dropped", str(work / "ingest_dropped.csv"))
    grown = pd.read_csv(data, dtype=str, keep_default_na=False)
    final_queue = work / f"queue_r{args.rounds + 1}.csv"
    run("select", str(data), "--budget", str(args.budget), "--strategy", args.strategy, "--seed", "0",
        "--bucket-priority", "0.2", "--out", str(final_queue), "--cache-dir", args.cache_dir, "-q")
    q = pd.read_csv(final_queue, dtype=str, keep_default_na=False)
    bucket_of = dict(zip(grown["id"], grown["bucket"]))
    sizes = grown.loc[grown["bucket"] != "", "bucket"].value_counts()
    picked = [bucket_of.get(i, "") for i in q["id"][: int(0.2 * args.budget)]]
    print(f"bucket-priority slots went to buckets: {', '.join(f'{b} ({sizes[b]} rows)' for b in picked)}")
    status = run("status", str(data), "--cache-dir", args.cache_dir)

    merged = pd.read_csv(data, dtype=str, keep_default_na=False)
    per_round = merged.loc[merged["label"] != "", "label_round"].value_counts().to_dict()
    expected = {str(r): args.budget for r in range(1, args.rounds + 1)}
    wrong = (merged["label"] != "") & (merged["label"] != merged["id"].map(gold))
    ledger = read_ledger(ledger_path(data))
    problems = []
    per_round = {k: v for k, v in per_round.items() if k}
    if per_round != expected:
        problems.append(f"labels per round {per_round} != {expected}")
    if wrong.any():
        problems.append(f"{int(wrong.sum())} merged labels differ from the true labels")
    if [rec["round"] for rec in ledger] != list(range(1, args.rounds + 2)):
        problems.append(f"ledger rounds {[rec['round'] for rec in ledger]}")
    added = len(grown) - n_before
    dropped = pd.read_csv(work / "ingest_dropped.csv", dtype=str, keep_default_na=False)
    if added != len(production) - len(dropped):
        problems.append(f"ingest added {added} rows but dropped {len(dropped)} of {len(production)}")
    if not set(dupes) <= set(dropped["text"]):
        problems.append(f"{len(set(dupes) - set(dropped['text']))} of the 20 planted duplicates were not dropped")
    if not all(picked) or len(set(picked)) < len(picked) // 2:
        problems.append(f"bucket-priority slots not spread over buckets: {picked}")
    if "stopping hint:" not in status:
        problems.append("status printed no stopping hint")
    if problems:
        raise SystemExit("loop check failed: " + "; ".join(problems))
    print(f"\nloop check passed: {per_round} labels per round, {len(ledger)} ledger rounds, "
          f"backup {data.name}.bak kept, every merged label equals trec's; ingest dropped all 20 planted "
          f"duplicates ({len(dropped)} dropped in all), bucket-priority slots over {len(set(picked))} buckets")


if __name__ == "__main__":
    main()
