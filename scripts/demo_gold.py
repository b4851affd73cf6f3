"""Annotator QA proof on snow2008_rte: gold report, flags at 0.7, and a planted drift found.

snow2008_rte: 800 RTE-1 items x 10 MTurk workers, with the RTE-1 expert label (``gold_label``).

1. Golden set = ``gold_label`` of 100 items sampled with a fixed seed; every annotation of the
   dataset is scored against it (``gold_report``): the per-annotator table is printed and the
   number of annotators flagged at accuracy 0.7 counted.
2. Drift: snow2008_rte has no timestamps, so a test copy gets a synthetic ``timestamp`` column
   (seeded, uniform over 8 weeks from 2024-01-01). In that copy the labels of one annotator
   (the reliable one -- gold accuracy >= 0.8 -- with most gold ratings) are flipped (entailment <-> not_entailment) after
   2024-02-05. ``gold_drift(by="week")`` must report drift for that annotator in the week the
   flip starts; the unmodified copy (same timestamps) is run as the control.

3. Adjudication: every contested item (the workers disagree) gets its expert label as the
   reviewer's final label; the rework rate is printed (first label = file order: no timestamps).
4. The drift check is repeated for seeds 0..N-1 (``--sweep``, default 10): each a new gold
   sample, new timestamps and possibly another target annotator. False drifts in the control
   copies (no flip) are counted for every annotator.

Exits non-zero when the planted drift is not found (in the week it starts, for that annotator) in
any run, or when a control copy shows drift for the planted annotator.

Run: python scripts/demo_gold.py [--data PATH] [--seed 0] [--sweep 10] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from selector.quality.adjudicate import adjudicate, format_adjudication, prepare_decisions
from selector.quality.annotations import prepare_annotations
from selector.quality.gold import (
    format_drift_report,
    format_gold_report,
    gold_drift,
    gold_report,
    prepare_gold,
)

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "snow2008_rte" / "data.csv"
FLIP = {"entailment": "not_entailment", "not_entailment": "entailment"}
START = pd.Timestamp("2024-01-01")
FLIP_AFTER = pd.Timestamp("2024-02-05")  # a Monday: ISO week 2024-W06 starts here


def gold_sample(raw: pd.DataFrame, n_gold: int, rng: np.random.Generator, source: str) -> pd.DataFrame:
    items = raw.drop_duplicates("item_id")[["item_id", "gold_label"]]
    return prepare_gold(items.iloc[np.sort(rng.choice(len(items), size=n_gold, replace=False))], source=source)


def planted_run(annotations: pd.DataFrame, gold: pd.DataFrame, report, rng: np.random.Generator) -> dict:
    """Synthetic timestamps, one reliable annotator flipped from FLIP_AFTER; drift on both copies."""
    seconds = rng.integers(0, 8 * 7 * 24 * 3600, size=len(annotations))
    timed = annotations.assign(timestamp=(START + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%dT%H:%M:%S"))
    # A reliable annotator (gold accuracy >= 0.8) with the most gold ratings: flipping a near-chance
    # annotator's labels would change little, so it would not be a drift worth finding.
    good = report.annotators[report.annotators["accuracy"] >= 0.8]
    target = good.sort_values(["n_scored", "annotator"], ascending=[False, True])["annotator"].iloc[0]
    after = (timed["annotator"] == target) & (pd.to_datetime(timed["timestamp"]) >= FLIP_AFTER)
    planted = timed.copy()
    planted.loc[after, "label"] = planted.loc[after, "label"].map(FLIP)
    control = gold_drift(timed, gold, by="week")
    drift = gold_drift(planted, gold, by="week")
    hit = drift.drifts[(drift.drifts["annotator"] == target) & (drift.drifts["to_period"] == "2024-W06")]
    return {"target": target, "n_flipped": int(after.sum()), "control": control, "drift": drift,
            "found": len(hit) == 1, "false_target": int((control.drifts["annotator"] == target).sum()),
            "other_planted": int(len(drift.drifts) - len(hit)), "false_control": int(len(control.drifts))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-gold", type=int, default=100)
    ap.add_argument("--min-accuracy", type=float, default=0.7)
    ap.add_argument("--sweep", type=int, default=10, help="Also repeat the planted-drift check for seeds 0..N-1.")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    raw = pd.read_csv(args.data, dtype=str, keep_default_na=False)
    gold = gold_sample(raw, args.n_gold, rng, str(args.data))
    annotations = prepare_annotations(raw, source=str(args.data))

    print(f"== gold report: snow2008_rte, {len(gold)} gold items (seed {args.seed}), "
          f"{len(annotations)} ratings by {annotations['annotator'].nunique()} annotators ==")
    report = gold_report(annotations, gold, min_accuracy=args.min_accuracy)
    print(format_gold_report(report))
    n_flagged = int(report.annotators["flagged"].sum())
    n_sure = int((report.annotators["ci_high"] < args.min_accuracy).sum())
    print(f"\nannotators flagged at {args.min_accuracy:g}: {n_flagged} of {len(report.annotators)} "
          f"({n_sure} with the whole 95% interval below {args.min_accuracy:g})")

    run = planted_run(annotations, gold, report, rng)
    target, drift, control = run["target"], run["drift"], run["control"]
    print(f"\n== drift: synthetic seeded timestamps over 8 weeks from {START.date()}; labels of {target} "
          f"flipped from {FLIP_AFTER.date()} (ISO week 2024-W06) on: {run['n_flipped']} ratings ==")
    print("-- control (no flip):")
    print(format_drift_report(control))
    print("-- planted copy:")
    print(format_drift_report(drift))
    w = drift.windows[drift.windows["annotator"] == target]
    print(f"\n{target} per week (planted copy):")
    print(w[["period", "n_scored", "n_correct", "accuracy", "ci_low", "ci_high"]].round(3).to_string(index=False))
    print(f"\nplanted drift found for {target} in 2024-W06: {'yes' if run['found'] else 'NO'}; "
          f"drifts reported: {len(drift.drifts)} in planted copy, {len(control.drifts)} in control")
    ok = run["found"] and run["false_target"] == 0

    sweep = []
    if args.sweep:
        print(f"\n== planted-drift check repeated for seeds 0..{args.sweep - 1} (gold sample, timestamps, target) ==")
        print("seed  target           found  false drifts in control (all annotators)  other drifts in planted copy")
        for seed in range(args.sweep):
            r_seed = np.random.default_rng(seed)
            g = gold_sample(raw, args.n_gold, r_seed, str(args.data))
            res = planted_run(annotations, g, gold_report(annotations, g, min_accuracy=args.min_accuracy), r_seed)
            sweep.append({k: v for k, v in res.items() if k not in ("control", "drift")} | {"seed": seed})
            print(f"{seed:>4}  {res['target']:<15}  {'yes' if res['found'] else 'NO':>5}  "
                  f"{res['false_control']:>40}  {res['other_planted']:>28}")
        n_found = sum(r["found"] for r in sweep)
        n_false = sum(r["false_control"] for r in sweep)
        print(f"found {n_found} of {len(sweep)}; {n_false} false drift(s) in {len(sweep)} control copies "
              f"({annotations['annotator'].nunique()} annotators x 8 weeks each)")
        ok = ok and n_found == len(sweep) and all(r["false_target"] == 0 for r in sweep)
    # Adjudication: every contested item (workers disagree) decided by its RTE-1 expert label.
    contested = raw.groupby("item_id")["label"].nunique()
    decisions = (raw[raw["item_id"].isin(contested[contested > 1].index)].drop_duplicates("item_id")
                 [["item_id", "gold_label"]].rename(columns={"gold_label": "final_label"})
                 .assign(reviewer="rte_expert", note="RTE-1 gold label"))
    adjudication = adjudicate(annotations, prepare_decisions(decisions))
    print("\n== adjudication: contested items decided by the RTE-1 expert label (first label = file order) ==")
    print(format_adjudication(adjudication))
    if args.json:
        args.json.write_text(json.dumps({"rework_rate": adjudication.rework_rate,
            "n_gold": len(gold), "n_annotators": len(report.annotators), "n_flagged": n_flagged,
            "n_flagged_whole_interval": n_sure, "planted_annotator": target, "found": run["found"],
            "drifts_planted": drift.drifts.to_dict(orient="records"),
            "drifts_control": control.drifts.to_dict(orient="records"), "sweep": sweep}, indent=2, default=str))
    print(f"\ntarget (planted drift found in every run, never in the planted annotator's control): "
          f"{'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
