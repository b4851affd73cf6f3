"""Does the stopping hint fire at the plateau? Labeling loops on the shared datasets, round by round.

For each setting and seed an oracle loop runs ``selector``'s default strategy (``auto``) from zero
labels, ``--batch`` rows a round for ``--rounds`` rounds, and records what ``selector status``
measures each round (5-fold CV accuracy / macro-F1 on the labels so far, the model's predictions on
the fixed 500-row stop set, Cohen's kappa against the previous round) and what the hint cannot see:
held-out test accuracy. The traces are stored in ``--out`` and reused while the ``selector`` sources
are unchanged (each trace records a hash of them; a trace from other code is recomputed).

Then, on those traces, each candidate rule (change threshold x ceiling x fall x F1 tolerance x window,
the same ``stopping_hint`` function ``selector status`` and :class:`selector.loop.stopping.StoppingHint`
call) is scored per trace:

* plateau round: the first round whose test accuracy is within 1 point of the final accuracy
  (mean of the last three rounds);
* fire round: the first round the rule says "gains have flattened" (never = a miss);
  the rules: the mean share of stop-set predictions that changed between successive models over the
  last ``window`` comparisons <= a threshold, or <= a ceiling and no longer falling (at least
  ``1 - fall`` times the ``window`` before); and (unless ``-``) the last CV macro-F1 change <= a tolerance;
* error = fire - plateau (rounds; negative = early) and early cost = test accuracy at the plateau
  round minus at the fire round, when the rule fires first.

The kappa rules the hint used before (Bloodgood & Vijay-Shanker's kappa >= 0.99 over 3 comparisons,
and kappa >= 0.98 or >= 0.93 and no longer rising over 2) are scored on the same traces for comparison.

Targets (issue 13): the default rule within +-2 rounds of the plateau on most traces (more than
half) and never more than 1 point of accuracy early. The rule is chosen leave-one-setting-out
(for each setting: the rule best on the others) and that figure is printed beside the in-sample
one. Exits 1 when the default rule misses a target.

Run:  python scripts/bench_stopping.py [--seeds 2] [--jobs 2]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import code_fingerprint, dataset_embeddings, train_test  # noqa: E402

from selector.loop.ledger import stop_set_ids  # noqa: E402
from selector.loop.status import (  # noqa: E402
    CHANGE_CEILING,
    CHANGE_FALL,
    CHANGE_THRESHOLD,
    F1_TOLERANCE,
    WINDOW,
    MeasurePoint,
    kappa,
    stopping_hint,
)
from selector.models.classifiers import fit_classifier, make_classifier  # noqa: E402
from selector.round.compute import select_batch  # noqa: E402
from selector.round.model import cv_metrics  # noqa: E402

SETTINGS = ("ag_news", "trec", "banking77", "sst2", "emotion", "sms_spam")
THRESHOLDS = (0.01, 0.015, 0.02, 0.025)
CEILINGS = (0.0, 0.04, 0.05, 0.06)  # 0.0: the ceiling branch is off (change_threshold alone)
FALLS = (0.0, 0.1, 0.2)
F1_TOLERANCES = (None, 0.01, 0.02)
WINDOWS = (2, 3)
#: The kappa rules before, as (kappa threshold, F1 tolerance, window, kappa floor, epsilon): the rule
#: before issue 13 (Bloodgood & Vijay-Shanker's 0.99 over 3 comparisons, + CV macro-F1) and the rule of
#: the stop before this one (kappa >= 0.98, or >= 0.93 and no more than 0.005 above the window before).
KAPPA_RULES = {"before issue 13": (0.99, 0.01, 3, 1.0, 0.0), "last stop": (0.98, 0.01, 2, 0.93, 0.005)}
PLATEAU_POINTS = 0.01
MAX_POOL = 10_000


def trace(name: str, seed: int, batch: int, rounds: int, cache_dir=None, strategy: str = "auto") -> dict:
    """One oracle loop: per round labels, CV figures, stop-set predictions, kappa and test accuracy."""
    from threadpoolctl import threadpool_limits

    df, X = dataset_embeddings(name, cache_dir)
    train, test = train_test(df)
    if train.size > MAX_POOL:
        train = np.sort(np.random.default_rng(0).choice(train, size=MAX_POOL, replace=False))
    y = df["label"].to_numpy(dtype=object).astype(str)
    ids = np.array([f"row{i}" for i in train], dtype=object)
    stop_pos = np.flatnonzero(np.isin(ids, stop_set_ids(ids, [])))
    Xtr, ytr, Xte, yte = X[train], y[train], X[test], y[test]
    label_set = sorted(set(y.tolist()))
    template = make_classifier(random_state=seed)
    chosen = np.zeros(train.size, dtype=bool)
    rows, prev = [], None
    t0 = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        for r in range(1, rounds + 1):
            lab, unl = np.flatnonzero(chosen), np.flatnonzero(~chosen)
            # The label set is declared, as in bench_selection (a labeling project's schema).
            sel = select_batch(Xtr[lab], ytr[lab], Xtr[unl], batch, strategy=strategy, classifier=template,
                               random_state=seed * 1000 + r, labels=label_set)
            chosen[unl[sel.indices]] = True
            lab = np.flatnonzero(chosen)
            multi = np.unique(ytr[lab]).size > 1
            model = fit_classifier(template, Xtr[lab], ytr[lab]) if multi else None
            preds = dict(zip(ids[stop_pos], model.predict(Xtr[stop_pos]))) if model is not None else None
            k = kappa(prev, preds)[0] if prev is not None and preds is not None else None
            prev = preds if preds is not None else prev
            rows.append({"round": r, "labels": int(lab.size), "cv": cv_metrics(Xtr[lab], ytr[lab], random_state=0),
                         "kappa": k, "predictions": None if preds is None else [preds[i] for i in ids[stop_pos]],
                         "test_accuracy": float((model.predict(Xte) == yte).mean()) if model is not None else None})
    return {"setting": name, "seed": seed, "batch": batch, "rounds": rounds, "strategy": strategy, "rows": rows,
            "wall_s": time.perf_counter() - t0}


def changes(rows: list[dict]) -> list[float | None]:
    """Per round, the share of stop-set predictions that changed since the last round with a model."""
    out, prev = [], None
    for row in rows:
        cur = row["predictions"]
        out.append(None if cur is None or prev is None else float(np.mean(np.asarray(cur) != np.asarray(prev))))
        prev = cur if cur is not None else prev
    return out


def fire_round(rows: list[dict], change_threshold: float, change_ceiling: float, change_fall: float,
               f1_tolerance: float | None, window: int) -> int | None:
    """First round (1-based) at which ``stopping_hint`` says the gains have flattened, or None."""
    points = []
    for row, changed in zip(rows, changes(rows)):
        point = MeasurePoint(f"round {row['round']}", row["labels"], row["cv"], None)
        point.changed_prev = changed
        points.append(point)
        if stopping_hint(points, change_threshold=change_threshold, change_ceiling=change_ceiling,
                         change_fall=change_fall, f1_tolerance=f1_tolerance, window=window)[0]:
            return row["round"]
    return None


def kappa_fire_round(rows: list[dict], kappa_threshold: float, f1_tolerance: float | None, window: int,
                     kappa_floor: float, kappa_epsilon: float) -> int | None:
    """First round at which an earlier kappa rule fired (for comparison only; the hint no longer uses it)."""
    kappas, f1s = [], []
    for row in rows:
        if row["kappa"] is not None:
            kappas.append(row["kappa"])
        if row["cv"]:
            f1s.append(row["cv"]["macro_f1"])
        if len(kappas) < 2 * window or len(f1s) < 2:
            continue
        k, before = np.mean(kappas[-window:]), np.mean(kappas[-2 * window:-window])
        stable = k >= kappa_threshold or (k >= kappa_floor and k - before <= kappa_epsilon)
        if stable and (f1_tolerance is None or f1s[-1] - f1s[-2] <= f1_tolerance):
            return row["round"]
    return None


def score_trace(rows: list[dict], rule: tuple, fire=fire_round) -> dict:
    acc = np.array([np.nan if r["test_accuracy"] is None else r["test_accuracy"] for r in rows])
    final = float(np.nanmean(acc[-3:]))
    plateau = int(np.flatnonzero(np.nan_to_num(acc, nan=-1) >= final - PLATEAU_POINTS)[0]) + 1
    fired = fire(rows, *rule)
    out = {"plateau": plateau, "plateau_labels": rows[plateau - 1]["labels"], "final_accuracy": final,
           "fired": fired, "fired_labels": None if fired is None else rows[fired - 1]["labels"]}
    if fired is None:
        out.update(error=None, early_cost=0.0, within=False)
    else:
        cost = max(0.0, float(acc[plateau - 1] - acc[fired - 1])) if fired < plateau else 0.0
        out.update(error=fired - plateau, early_cost=cost, within=abs(fired - plateau) <= 2)
    return out


def rule_summary(traces: list[dict], rule, fire=fire_round) -> dict:
    scored = [score_trace(t["rows"], rule, fire) for t in traces]
    within = sum(s["within"] for s in scored)
    worst_early = max(s["early_cost"] for s in scored)
    errors = [abs(s["error"]) if s["error"] is not None else len(t["rows"]) for s, t in zip(scored, traces)]
    return {"within": within, "n": len(scored), "worst_early": worst_early, "mean_abs_error": float(np.mean(errors)),
            "scored": scored}


def rank_key(summary: dict):
    """Better rules first: no early stop costing > 1 point, then most traces within +-2 rounds, then closest."""
    return (summary["worst_early"] > PLATEAU_POINTS, -summary["within"], summary["mean_abs_error"])


def fmt_rule(rule) -> str:
    threshold, ceiling, fall, f1, w = rule
    falling = "not falling" if fall == 0 else f"falling <{fall:.0%}"
    settle = f" or <={ceiling:.1%} {falling}" if ceiling > threshold else ""
    return f"changed<={threshold:.1%}{settle}, dF1<={'-' if f1 is None else f'{f1:g}'}, window {w}"


def fmt_kappa_rule(rule) -> str:
    k, f1, w, floor, eps = rule
    plateau = f" or >={floor:g} rising <={eps:g}" if floor < 1 else ""
    return f"kappa>={k:g}{plateau}, dF1<={'-' if f1 is None else f'{f1:g}'}, window {w}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--settings", nargs="+", default=list(SETTINGS))
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", default="bench_out/stopping")
    ap.add_argument("--cache-dir", default=None)
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.settings:  # embed (or read the cache) once, before the workers
        dataset_embeddings(name, args.cache_dir)
    todo, traces, code = [], {}, code_fingerprint()
    for name, seed in itertools.product(args.settings, range(args.seeds)):
        f = out / f"trace_{name}_{seed}_b{args.batch}_r{args.rounds}.json"
        stored = json.loads(f.read_text()) if f.exists() else None
        if stored is not None and stored.get("code") == code:
            traces[name, seed] = stored
        else:  # none yet, or recorded by other code: its picks may differ
            todo.append((name, seed, f))
    stale = sum(f.exists() for *_, f in todo)
    if stale:
        print(f"  recomputing {stale} traces recorded by other selector code", flush=True)
    if todo:
        import concurrent.futures as cf

        os.environ.setdefault("OMP_NUM_THREADS", "1")
        with cf.ProcessPoolExecutor(max_workers=args.jobs) as ex:
            futures = {ex.submit(trace, n, s, args.batch, args.rounds, args.cache_dir): (n, s, f) for n, s, f in todo}
            for fut in cf.as_completed(futures):
                n, s, f = futures[fut]
                traces[n, s] = dict(fut.result(), code=code)
                f.write_text(json.dumps(traces[n, s]))
                print(f"  traced {n} seed {s}: {traces[n, s]['wall_s']:.0f} s", flush=True)
    by_setting = {n: [traces[n, s] for s in range(args.seeds)] for n in args.settings}
    every = [t for ts in by_setting.values() for t in ts]
    rules = sorted({(t, c, fa if c > t else 0.0, f, w)
                    for t, c, fa, f, w in itertools.product(THRESHOLDS, CEILINGS, FALLS, F1_TOLERANCES, WINDOWS)},
                   key=str)
    default = (CHANGE_THRESHOLD, CHANGE_CEILING, CHANGE_FALL, F1_TOLERANCE, WINDOW)
    summaries = {rule: rule_summary(every, rule) for rule in {*rules, default}}  # each rule scored once

    print(f"\nper trace, default rule ({fmt_rule(default)}): batch {args.batch}, {args.rounds} rounds, auto")
    print(f"{'setting':12s} {'seed':>4s} {'plateau':>14s} {'fires':>14s} {'error':>6s} {'acc final':>9s} "
          f"{'acc@fire':>8s} {'early cost':>10s}")
    summary = summaries[default]
    for t, s in zip(every, summary["scored"]):
        acc_fire = "-" if s["fired"] is None else f"{t['rows'][s['fired'] - 1]['test_accuracy']:.3f}"
        fired = "never" if s["fired"] is None else f"r{s['fired']} ({s['fired_labels']})"
        plateau = f"r{s['plateau']} ({s['plateau_labels']})"
        error = "-" if s["error"] is None else f"{s['error']:+d}"
        print(f"{t['setting']:12s} {t['seed']:>4d} {plateau:>14s} {fired:>14s} {error:>6s} "
              f"{s['final_accuracy']:9.3f} {acc_fire:>8s} {s['early_cost']:10.3f}")
    print(f"default rule: {summary['within']}/{summary['n']} traces within +-2 rounds of the plateau; "
          f"worst early cost {summary['worst_early']:.3f}; mean |error| {summary['mean_abs_error']:.2f} rounds")

    befores = {name: rule_summary(every, rule, kappa_fire_round) for name, rule in KAPPA_RULES.items()}
    for name, rule in KAPPA_RULES.items():
        b = befores[name]
        print(f"the kappa rule {name} ({fmt_kappa_rule(rule)}): {b['within']}/{b['n']} within +-2 rounds; worst "
              f"early cost {b['worst_early']:.3f}; errors "
              + ", ".join("never" if s["error"] is None else f"{s['error']:+d}" for s in b["scored"]))
    ranked = sorted(rules, key=lambda r: rank_key(summaries[r]))
    print(f"\nrules on all traces (best 8 of {len(rules)}; in-sample):")
    for rule in ranked[:8]:
        s = summaries[rule]
        print(f"  {fmt_rule(rule):56s} within {s['within']}/{s['n']}  worst early {s['worst_early']:.3f}  "
              f"mean |error| {s['mean_abs_error']:.2f}")
    print("\nleave-one-setting-out: the rule best on the other settings, scored on this one")
    lodo_within, lodo_n, lodo_worst = 0, 0, 0.0
    for name in args.settings:
        others = [t for n, ts in by_setting.items() if n != name for t in ts]
        choice = min(rules, key=lambda r: rank_key(rule_summary(others, r)))
        held = rule_summary(by_setting[name], choice)
        lodo_within += held["within"]
        lodo_n += held["n"]
        lodo_worst = max(lodo_worst, held["worst_early"])
        errs = ", ".join("never" if s["error"] is None else f"{s['error']:+d}" for s in held["scored"])
        print(f"  {name:12s} {fmt_rule(choice):56s} errors {errs:14s} worst early {held['worst_early']:.3f}")
    print(f"leave-one-setting-out: {lodo_within}/{lodo_n} traces within +-2 rounds; worst early cost {lodo_worst:.3f}")

    failures = []
    if summary["within"] * 2 <= summary["n"]:
        failures.append(f"default rule within +-2 rounds on {summary['within']}/{summary['n']} traces (target: most)")
    if summary["worst_early"] > PLATEAU_POINTS:
        failures.append(f"default rule stops {summary['worst_early']:.3f} of accuracy early (target <= {PLATEAU_POINTS})")
    payload = {"command": " ".join(sys.argv), "default_rule": default, "kappa_rules": KAPPA_RULES,
               "kappa_rules_scored": befores, "batch": args.batch, "rounds": args.rounds,
               "seeds": args.seeds, "default": {k: v for k, v in summary.items()},
               "rules": {fmt_rule(r): {k: v for k, v in summaries[r].items() if k != "scored"} for r in rules},
               "lodo": {"within": lodo_within, "n": lodo_n, "worst_early": lodo_worst},
               "targets_missed": failures}
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    print(f"\nJSON: {out / 'results.json'}")
    if failures:
        print("TARGETS MISSED:\n  " + "\n  ".join(failures))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
