"""Are rare classes found? An imbalanced pool, a few labels of each rare class, oracle rounds.

    python scripts/bench_rare_classes.py [--datasets ag_news banking77] [--seeds 3] [--rounds 8]

For each dataset (all-MiniLM-L6-v2 embeddings from the bench cache, logistic regression):

- the pool is the train split resampled so the ``--n-rare`` smallest-id classes are each
  ``--rare-share`` (1.5%) of it and the others share the rest evenly;
- the starting labels are ``--start-common`` rows of each common class and ``--start-rare`` of each
  rare class (a team that has seen a rare class a couple of times);
- each round a strategy picks ``--batch`` rows, the oracle labels them, the model is refitted.

Reported per strategy (mean over seeds): rare-class labels after each round (cumulative, the
starting ones included), rounds until every rare class has >= 5 labels (per seed; - = never), recall
of the rare classes' pool rows after the last round, and macro-F1 on the (balanced) test split. Strategies: random,
margin, ``class_balanced`` as before this change (``explore=False``: a minimum only for classes the
model already predicts) and as now (``explore=True``: explores around the rare classes' labeled rows).
Exits 1 when the exploring class_balanced finds fewer rare labels than margin on any dataset.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import dataset_embeddings, train_test  # noqa: E402

from selector.models.classifiers import fit_classifier, make_classifier  # noqa: E402
from selector.strategies import SelectionContext, make_strategy  # noqa: E402

STRATEGIES = {"random": ("random", {}), "margin": ("margin", {"cold_start": "random"}),
              "class_balanced (before)": ("class_balanced", {"explore": False}),
              "class_balanced (explore)": ("class_balanced", {"explore": True})}


def imbalanced_pool(y: np.ndarray, rare: list, rare_share: float, rng) -> np.ndarray:
    classes = sorted(set(y))
    common = [c for c in classes if c not in rare]
    n_rare_each = int(min((y == c).sum() for c in rare))
    total = int(n_rare_each / rare_share)
    per_common = int(total * (1 - rare_share * len(rare)) / len(common))
    per_common = min(per_common, min(int((y == c).sum()) for c in common))
    n_rare_each = max(1, int(rare_share * (per_common * len(common)) / (1 - rare_share * len(rare))))
    keep = []
    for c in classes:
        rows = np.flatnonzero(y == c)
        keep.append(rng.choice(rows, size=min(rows.size, n_rare_each if c in rare else per_common), replace=False))
    return np.sort(np.concatenate(keep))


def run(X, y, X_test, y_test, rare, spec, args, seed):
    rng = np.random.default_rng(seed)
    pool_rows = imbalanced_pool(y, rare, args.rare_share, rng)
    Xp, yp = X[pool_rows], y[pool_rows]
    start = []
    for c in sorted(set(yp)):
        rows = np.flatnonzero(yp == c)
        start.extend(rng.choice(rows, size=min(rows.size, args.start_rare if c in rare else args.start_common),
                                replace=False).tolist())
    labeled = np.zeros(len(yp), bool)
    labeled[start] = True
    name, params = spec
    strat = make_strategy(name, **params)
    found, f1s, reach = [], [], None
    for r in range(1, args.rounds + 1):
        lab, unl = np.flatnonzero(labeled), np.flatnonzero(~labeled)
        model = fit_classifier(make_classifier(random_state=seed), Xp[lab], yp[lab])
        context = SelectionContext(Xp[unl], Xp[lab], yp[lab], proba_pool=model.predict_proba(Xp[unl]),
                                   classes=np.asarray(model.classes_, dtype=object), classifier=model)
        sel = strat.select(context, min(args.batch, unl.size), random_state=seed)
        labeled[unl[sel.indices]] = True
        found.append(int(np.isin(yp[labeled], rare).sum()))
        if reach is None and all((yp[labeled] == c).sum() >= 5 for c in rare):
            reach = r
        model = fit_classifier(make_classifier(random_state=seed), Xp[labeled], yp[labeled])
        f1s.append(float(f1_score(y_test, model.predict(X_test), average="macro")))
    recall = float(np.isin(yp[labeled], rare).sum() / np.isin(yp, rare).sum())
    return found, f1s, recall, reach


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=["ag_news", "banking77"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--batch", type=int, default=40)
    ap.add_argument("--n-rare", type=int, default=2)
    ap.add_argument("--rare-share", type=float, default=0.015)
    ap.add_argument("--start-common", type=int, default=20)
    ap.add_argument("--start-rare", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("scripts/results/bench_rare_classes.json"))
    args = ap.parse_args()
    results, failed = {}, []
    for ds in args.datasets:
        df, X = dataset_embeddings(ds)
        tr, te = train_test(df)
        y = df["label"].to_numpy(dtype=object)
        classes = sorted(set(y[tr]))
        rare = classes[: args.n_rare] if len(classes) <= 10 else classes[:: max(1, len(classes) // args.n_rare)][: args.n_rare]
        results[ds] = {"rare_classes": rare}
        print(f"\n{ds}: rare classes {rare} at {args.rare_share:.1%} of the pool each; start {args.start_rare} labels each "
              f"(common {args.start_common}); batch {args.batch}, {args.rounds} rounds, {args.seeds} seeds")
        print(f"{'strategy':26s} {'rare labels after each round (mean)':50s} {'rounds to 5 each':>16s} "
              f"{'rare recall':>11s} {'macro-F1':>9s}")
        for label, spec in STRATEGIES.items():
            founds, f1s, recalls, reaches = [], [], [], []
            for seed in range(args.seeds):
                found, f1, recall, reach = run(X[tr], y[tr], X[te], y[te], rare, spec, args, seed)
                founds.append(found)
                f1s.append(f1[-1])
                recalls.append(recall)
                reaches.append(reach)
            mean_found = np.mean(founds, axis=0)
            shown = "/".join("-" if r is None else str(r) for r in reaches)
            results[ds][label] = {"rare_found_per_round": mean_found.round(2).tolist(), "rounds_to_5_each": reaches,
                                  "rare_recall": float(np.mean(recalls)), "macro_f1": float(np.mean(f1s))}
            print(f"{label:26s} {' '.join(f'{v:5.1f}' for v in mean_found):50s} {shown:>16s} "
                  f"{np.mean(recalls):11.3f} {np.mean(f1s):9.3f}")
        if results[ds]["class_balanced (explore)"]["rare_found_per_round"][-1] < \
                results[ds]["margin"]["rare_found_per_round"][-1]:
            failed.append(ds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": {k: str(v) for k, v in vars(args).items()}, "results": results},
                                   indent=2) + "\n")
    if failed:
        print(f"TARGET MISSED: exploring class_balanced finds fewer rare labels than margin on {', '.join(failed)}")
        raise SystemExit(1)
    print("class_balanced (explore) finds at least as many rare-class labels as margin on every dataset")


if __name__ == "__main__":
    main()
