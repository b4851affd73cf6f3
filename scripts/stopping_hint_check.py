"""Does the stopping hint fire, and where? An oracle margin loop on a dataset, round by round.

Runs the same measurements ``selector status`` uses (5-fold CV accuracy / macro-F1 on the labels so
far, Cohen's kappa between successive models on the fixed 500-row stop set, the stopping rule) and,
alongside, the held-out test accuracy the hint cannot see, to show whether "gains have flattened"
comes where the test curve flattens.

Usage:
    SELECTOR_BENCH_CACHE=/work/emb_cache python scripts/stopping_hint_check.py [trec] [--batch 100] [--rounds 30]

Writes ``bench_out/stopping_hint_<name>.json``. Exits 1 when the hint never fires or fires while the
test accuracy is still more than 2 points below its final value (a premature stop).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO, dataset_embeddings, train_test  # noqa: E402

from selector.loop.ledger import stop_set_ids  # noqa: E402
from selector.round.model import cv_metrics  # noqa: E402
from selector.loop.status import MeasurePoint, kappa, stopping_hint  # noqa: E402
from selector.models.classifiers import fit_classifier, make_classifier  # noqa: E402
from selector.round.compute import select_batch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("name", nargs="?", default="trec")
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--strategy", default="margin")
    args = ap.parse_args()

    from threadpoolctl import threadpool_limits

    df, X = dataset_embeddings(args.name)
    train, test = train_test(df)
    y = df["label"].to_numpy(dtype=object).astype(str)
    ids = np.array([f"row{i}" for i in train], dtype=object)
    stop = stop_set_ids(ids, [])
    stop_pos = np.flatnonzero(np.isin(ids, stop))
    Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
    template = make_classifier(random_state=0)
    chosen = np.zeros(train.size, dtype=bool)
    points, rows = [], []
    fired_at = None
    with threadpool_limits(limits=1, user_api="blas"):
        for r in range(1, args.rounds + 1):
            lab, unl = np.flatnonzero(chosen), np.flatnonzero(~chosen)
            sel = select_batch(Xtr[lab], ytr[lab], Xtr[unl], args.batch, strategy=args.strategy,
                               classifier=template, random_state=r)
            chosen[unl[sel.indices]] = True
            lab = np.flatnonzero(chosen)
            model = fit_classifier(template, Xtr[lab], ytr[lab]) if np.unique(ytr[lab]).size > 1 else None
            preds = dict(zip(ids[stop_pos], model.predict(Xtr[stop_pos]))) if model is not None else None
            point = MeasurePoint(f"round {r}", int(lab.size), cv_metrics(Xtr[lab], ytr[lab], random_state=0), preds)
            if points and points[-1].predictions is not None and preds is not None:
                point.kappa_prev = kappa(points[-1].predictions, preds)[0]
            points.append(point)
            flat, hint, _ = stopping_hint(points)
            test_acc = float((model.predict(Xte) == yte).mean()) if model is not None else float("nan")
            rows.append({"round": r, "labels": int(lab.size), "cv_macro_f1": point.cv["macro_f1"] if point.cv else None,
                         "kappa": point.kappa_prev, "test_accuracy": round(test_acc, 4), "flattened": flat})
            if flat and fired_at is None:
                fired_at = r
            k = "-" if point.kappa_prev is None else f"{point.kappa_prev:.3f}"
            f1 = "-" if not point.cv else f"{point.cv['macro_f1']:.3f}"
            print(f"round {r:>2}  labels {lab.size:>5}  cv_macroF1 {f1}  kappa {k}  test_acc {test_acc:.3f}  "
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
