"""Does the stopping hint fire, and where? One oracle loop on one dataset, round by round.

The loop of ``scripts/bench_stopping.py`` (5-fold CV accuracy / macro-F1 on the labels so far, the share
of the fixed 500-row stop set's predictions that changed between successive models, the stopping rule
``selector status`` uses) for one dataset and strategy, printed per round beside the held-out test accuracy the hint cannot
see, to show whether "gains have flattened" comes where the test curve flattens.

Usage:
    python scripts/stopping_hint_check.py [trec] [--batch 100] [--rounds 30] [--strategy margin]

Writes ``bench_out/stopping_hint_<name>.json``. Exits 1 when the hint never fires or fires while the
test accuracy is still more than 2 points below its final value (a premature stop).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO  # noqa: E402
from bench_stopping import changes, trace  # noqa: E402

from selector.loop.status import MeasurePoint, stopping_hint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name", nargs="?", default="trec")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--strategy", default="margin")
    args = ap.parse_args()

    points, rows = [], []
    fired_at = None
    traced = trace(args.name, 0, args.batch, args.rounds, strategy=args.strategy)["rows"]
    for row, changed in zip(traced, changes(traced)):
        point = MeasurePoint(f"round {row['round']}", row["labels"], row["cv"], None)
        point.kappa_prev, point.changed_prev = row["kappa"], changed
        points.append(point)
        flat = stopping_hint(points)[0]
        test_acc = float("nan") if row["test_accuracy"] is None else row["test_accuracy"]
        rows.append({"round": row["round"], "labels": row["labels"],
                     "cv_macro_f1": row["cv"]["macro_f1"] if row["cv"] else None, "kappa": row["kappa"],
                     "changed": changed,
                     "test_accuracy": round(test_acc, 4), "flattened": flat})
        if flat and fired_at is None:
            fired_at = row["round"]
        k = "-" if row["kappa"] is None else f"{row['kappa']:.3f}"
        ch = "-" if changed is None else f"{changed:.1%}"
        f1 = "-" if not row["cv"] else f"{row['cv']['macro_f1']:.3f}"
        print(f"round {row['round']:>2}  labels {row['labels']:>5}  cv_macroF1 {f1}  kappa {k}  changed {ch:>5}  test_acc {test_acc:.3f}  "
              f"{'FLATTENED' if flat else 'keep labeling'}", flush=True)
    final = rows[-1]["test_accuracy"]
    out = Path(REPO / "bench_out" / f"stopping_hint_{args.name}.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"dataset": args.name, "batch": args.batch, "strategy": args.strategy,
                               "fired_at_round": fired_at, "rows": rows}, indent=1))
    if fired_at is None:
        print(f"hint never fired within {args.rounds} rounds (final test accuracy {final:.3f}) -> {out}")
        raise SystemExit(1)
    at = rows[fired_at - 1]
    print(f"hint first fired at round {fired_at} ({at['labels']} labels): test accuracy {at['test_accuracy']:.3f} "
          f"vs {final:.3f} at {rows[-1]['labels']} labels -> {out}")
    if at["test_accuracy"] < final - 0.02:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
