"""Which first batch, before any label? Test accuracy after round 1 alone, per cold-start rule, on every
cell of the regime grid (``scripts/bench_selection.py --grid``), 3 seeds.

A rule is a registered strategy that needs no classifier (``typiclust``, ``kmeans``, ``random``), or
``mixNN:NAME``: NN% of the batch drawn at random, the rest by NAME. The pool, batch, classifier and
seeds (``seed * 1000`` for the pick, ``seed`` for the classifier) are the grid's, so ``typiclust`` and
``random`` reproduce the grid's round-1 accuracy of ``auto`` and ``random``. Prints, per cell, the mean
accuracy and the mean number of classes in the batch; then the mean accuracy over cells per rule.

    python scripts/first_batch_check.py --rules random typiclust kmeans mix30:typiclust mix50:typiclust

Measured 2026-12-07 (docs/benchmarks/bench_selection_grid.md): typiclust 0.520, kmeans 0.510, random
0.505, mix30:typiclust 0.510, mix50:typiclust 0.502.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_selection import DEFAULT_MAX_POOL, evaluate, grid_settings, prepare  # noqa: E402

from selector.models.classifiers import fit_classifier, make_classifier  # noqa: E402
from selector.strategies import SelectionContext, make_strategy  # noqa: E402


def first_batch(rule: str, X: np.ndarray, batch: int, seed: int) -> np.ndarray:
    """Pool positions of ``rule``'s first batch (no labels), shape (batch,)."""
    ctx = SelectionContext(X, X[:0], np.array([], dtype=object), cold_start_reason="0 labeled rows")
    if rule.startswith("mix"):
        share, _, base = rule[3:].partition(":")
        n_random = int(round(int(share) / 100 * batch))
        picked = make_strategy(base).select(ctx, batch - n_random, random_state=seed).indices
        rest = np.setdiff1d(np.arange(X.shape[0]), picked)
        return np.concatenate([picked, np.random.default_rng(seed).choice(rest, n_random, replace=False)])
    return make_strategy(rule).select(ctx, batch, random_state=seed).indices


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", nargs="+", default=["random", "typiclust", "kmeans"])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cells", nargs="+", default=None, help="grid cells [default: every cell]")
    args = ap.parse_args(argv)
    means = {rule: [] for rule in args.rules}
    for cell in args.cells or grid_settings():
        d = prepare(cell, DEFAULT_MAX_POOL, None)
        line = []
        for rule in args.rules:
            accs, n_classes = [], []
            for seed in range(args.seeds):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # convergence chatter on a handful of rows
                    idx = first_batch(rule, d["X"], d["batch"], seed * 1000)
                y = d["y"][idx]
                model = (fit_classifier(make_classifier(random_state=seed), d["X"][idx], y)
                         if np.unique(y).size > 1 else None)
                accs.append(evaluate(model, d["X_test"], d["y_test"], d["labels"], y)[0])
                n_classes.append(np.unique(y).size)
            means[rule].append(float(np.mean(accs)))
            line.append(f"{rule} {np.mean(accs):.3f} ({np.mean(n_classes):.1f} classes)")
        print(f"{cell:24s} batch {d['batch']:4d}  " + "  ".join(line), flush=True)
    print("mean accuracy after the first batch: " + "  ".join(f"{r} {np.mean(v):.3f}" for r, v in means.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
