"""Simulated labeling loops on a fully labeled file: does active learning pay on this data?

Each strategy starts from zero labels and runs ``rounds`` rounds of ``batch`` picks with
:func:`selector.round.compute.select_batch`; an oracle reveals the true labels of the picks; after each
round a classifier is fitted on the labels so far and scored on a held-out split (the file's
``split`` column when it has ``test`` rows, else a seeded stratified share). The same is repeated
over ``seeds`` seeds. Outputs: per-round learning curves (accuracy, macro-F1) as CSV, a PNG plot
and one verdict line per strategy.

A multi-label file (``labels`` an indicator matrix of shape (n, L)) is simulated the same way with
the multi-label classifier and strategies (:mod:`selector.round.multilabel`); its curves are
micro-F1 and macro-F1 over the labels (a label predicted at probability >= 0.5), and the verdicts
read micro-F1.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from selector.errors import ConfigError, DataError
from selector.models.classifiers import fit_classifier, make_classifier
from selector.labelsets import LabelSpace
from selector.round.compute import select_batch
from selector.round.multilabel import build_multilabel_context
from selector.strategies import get_strategy_class, make_strategy

__all__ = ["SimulationResult", "held_out_split", "check_simulation", "simulate", "verdicts", "plot_curves"]


@dataclass
class SimulationResult:
    """Learning curves and the full-data reference.

    Attributes
    ----------
    curves : DataFrame
        One row per (strategy, seed, round): ``strategy, seed, round, n_labels, accuracy, macro_f1``
        (multi-label: ``micro_f1`` in place of ``accuracy``).
    full_accuracy, full_macro_f1 : float
        The classifier trained on every training row, on the same test split (``full_accuracy`` is
        the micro-F1 of a multi-label file: the value of :attr:`metric`).
    n_train, n_test : int
    metric : str
        The curves' main column: ``accuracy``, or ``micro_f1`` for a multi-label file.
    """

    curves: pd.DataFrame
    full_accuracy: float
    full_macro_f1: float
    n_train: int
    n_test: int
    metric: str = "accuracy"


def held_out_split(labels: np.ndarray, split: np.ndarray | None, *, test_size: float = 0.2,
                   random_state: int | None = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training pool and the test split.

    Parameters
    ----------
    labels : ndarray of str, shape (n,)
    split : ndarray of str, shape (n,), or None
        A ``split`` column; its ``test`` rows are the test set when there are any.

    Returns
    -------
    train, test : ndarray of int64
    """
    if split is not None:
        is_test = np.array([str(s).strip().lower() == "test" for s in split])
        if is_test.any() and not is_test.all():
            return np.flatnonzero(~is_test), np.flatnonzero(is_test)
    from sklearn.model_selection import train_test_split

    pos = np.arange(labels.size)
    _, counts = np.unique(labels, return_counts=True)
    stratify = labels if counts.min() >= 2 else None
    train, test = train_test_split(pos, test_size=test_size, random_state=random_state, stratify=stratify)
    return np.sort(train), np.sort(test)


def _evaluate(template, X_tr, y_tr, X_te, y_te) -> tuple[float, float]:
    from sklearn.metrics import accuracy_score, f1_score

    if y_tr.ndim == 2:  # multi-label: micro- and macro-F1 over the labels
        from selector.round.multilabel import PREDICT_THRESHOLD, fit_multilabel, label_proba, multilabel_problem

        if multilabel_problem(y_tr) is not None:
            pred = np.zeros_like(y_te)
        else:
            model = fit_multilabel(template, X_tr, y_tr)
            pred = (label_proba(model, X_te, y_te.shape[1]) >= PREDICT_THRESHOLD).astype(np.int8)
        return (float(f1_score(y_te, pred, average="micro", zero_division=0)),
                float(f1_score(y_te, pred, average="macro", zero_division=0)))

    if np.unique(y_tr).size < 2:
        # One class seen so far: the only possible prediction is that class.
        pred = np.full(y_te.shape, y_tr[0] if y_tr.size else "", dtype=object)
    else:
        pred = fit_classifier(template, X_tr, y_tr).predict(X_te)
    return float(accuracy_score(y_te, pred)), float(f1_score(y_te, pred, average="macro", zero_division=0))


def check_simulation(labels: np.ndarray, *, strategies: Sequence[str], batch: int, rounds: int, seeds: int = 1,
                     split: np.ndarray | None = None, test_size: float = 0.2,
                     random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Check a simulation's settings against its labels, before anything is embedded.

    Parameters
    ----------
    labels : ndarray of str, shape (n,)

    Returns
    -------
    train, test : ndarray of int64
        The training pool's and the test split's positions (:func:`held_out_split`).

    Raises
    ------
    ConfigError
        An unknown strategy, a count that is not a positive integer, or more labels asked for than
        the training pool has.
    """
    for name in strategies:
        get_strategy_class(name)  # unknown names fail before any work, with a suggestion
    for arg, value in (("batch", batch), ("rounds", rounds), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"{arg} must be a positive integer, got {value!r}")
    labels = np.asarray(labels)
    # A multi-label indicator matrix splits by its rows' sets (stratified where each set recurs).
    labels = (np.array(["".join(map(str, r)) for r in labels], dtype=object) if labels.ndim == 2
              else labels.astype(object).astype(str))
    train, test = held_out_split(labels, split, test_size=test_size, random_state=random_state)
    if batch * rounds > train.size:
        raise ConfigError(f"batch {batch} x rounds {rounds} = {batch * rounds} labels, but the training pool has "
                          f"only {train.size} rows; lower --batch or --rounds")
    return train, test


def simulate(X: np.ndarray, labels: np.ndarray, *, strategies: Sequence[str], batch: int, rounds: int,
             seeds: int = 1, split: np.ndarray | None = None, test_size: float = 0.2, classifier=None,
             random_state: int = 0, progress=None, label_set: Sequence[str] | None = None) -> SimulationResult:
    """Run oracle labeling loops for each strategy and seed.

    Parameters
    ----------
    X : ndarray of float32, shape (n, d)
        Embeddings of every row.
    labels : ndarray of str, shape (n,), or of 0/1, shape (n, L)
        The true label of every row (all rows labeled), or a multi-label file's indicator matrix.
    strategies : sequence of str
        Registered strategy names.
    batch, rounds, seeds : int
    split : ndarray, shape (n,), optional
        A ``split`` column (``test`` rows are held out).
    classifier : unfitted scikit-learn estimator, optional (default logistic regression)
    progress : callable(str), optional
        Called with one line per finished (strategy, seed).
    label_set : sequence of str, optional
        The declared labels (the config's ``labels``), passed to each selection as ``select`` would.

    Returns
    -------
    SimulationResult
    """

    labels = np.asarray(labels)
    multi = labels.ndim == 2
    labels = labels.astype(np.int8) if multi else labels.astype(object).astype(str)
    if X.shape[0] != labels.shape[0]:
        raise DataError(f"embeddings have {X.shape[0]} rows but there are {labels.shape[0]} labels")
    train, test = check_simulation(labels, strategies=strategies, batch=batch, rounds=rounds, seeds=seeds,
                                   split=split, test_size=test_size, random_state=random_state)
    if multi:
        from selector.round.multilabel import multilabel_classifier

        template = classifier if classifier is not None else multilabel_classifier(random_state=random_state)
    else:
        template = classifier if classifier is not None else make_classifier(random_state=random_state)
    # Hundreds of small fits: BLAS thread hand-offs cost more than they save (35x slower measured
    # on a busy 2-core machine), so the loop runs single-threaded.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _simulate(X, labels, train, test, template, strategies, batch, rounds, seeds, random_state, progress,
                         label_set)


def _simulate(X, labels, train, test, template, strategies, batch, rounds, seeds, random_state, progress, label_set):

    X_tr, y_tr, X_te, y_te = X[train], labels[train], X[test], labels[test]
    metric = "micro_f1" if labels.ndim == 2 else "accuracy"
    space = LabelSpace(tuple(f"label{j}" for j in range(labels.shape[1]))) if labels.ndim == 2 else None
    full_acc, full_f1 = _evaluate(template, X_tr, y_tr, X_te, y_te)
    rows = []
    for name in strategies:
        for seed in range(seeds):
            s = random_state + seed
            chosen = np.zeros(train.size, dtype=bool)
            for r in range(1, rounds + 1):
                lab = np.flatnonzero(chosen)
                unl = np.flatnonzero(~chosen)
                with warnings.catch_warnings():
                    # The cold-start fallback warning repeats every simulated loop; the curve shows it.
                    warnings.filterwarnings("ignore", message="cold start.*")
                    if y_tr.ndim == 2:
                        ctx = build_multilabel_context(X_tr[lab], y_tr[lab], X_tr[unl], space, classifier=template,
                                                       random_state=s * 1000 + r, label_set=label_set)
                        sel = make_strategy(name).select(ctx, batch, random_state=s * 1000 + r)
                    else:
                        sel = select_batch(X_tr[lab], y_tr[lab], X_tr[unl], batch, strategy=name, classifier=template,
                                           random_state=s * 1000 + r, labels=label_set)
                chosen[unl[sel.indices]] = True
                lab = np.flatnonzero(chosen)
                acc, f1 = _evaluate(template, X_tr[lab], y_tr[lab], X_te, y_te)
                rows.append({"strategy": name, "seed": s, "round": r, "n_labels": int(lab.size),
                             metric: round(acc, 6), "macro_f1": round(f1, 6)})
            if progress is not None:
                last = rows[-1]
                progress(f"{name} seed {s}: {last['n_labels']} labels -> {metric.replace('_', '-')} "
                         f"{last[metric]:.3f}, macro-F1 {last['macro_f1']:.3f}")
    return SimulationResult(curves=pd.DataFrame(rows), full_accuracy=full_acc, full_macro_f1=full_f1,
                            n_train=int(train.size), n_test=int(test.size), metric=metric)


def _labels_to_reach(n: np.ndarray, acc: np.ndarray, target: float) -> float | None:
    """Labels at which a mean curve first reaches ``target`` (linear between points), or None."""
    hit = np.flatnonzero(acc >= target - 1e-12)
    if not hit.size:
        return None
    k = hit[0]
    if k == 0:
        return float(n[0])
    # Interpolate between the last point below and the first at/above the target.
    return float(n[k - 1] + (target - acc[k - 1]) / (acc[k] - acc[k - 1]) * (n[k] - n[k - 1]))


def verdicts(result: SimulationResult, baseline: str = "random") -> dict[str, str]:
    """One line per strategy: labels needed to reach the baseline's best accuracy, vs the baseline.

    The target is the best mean (over seeds) accuracy the ``baseline`` reaches within the simulated
    budget, stated as a share of the full-data accuracy. For each strategy, N is the labels at which
    its mean curve first reaches that target (linear between rounds) and M = the baseline's labels
    minus N. Each line ends with the strategy's own accuracy at the largest budget. Without the
    baseline among the strategies, each line states the strategy's best accuracy instead.
    """
    metric = result.metric
    word = "accuracy" if metric == "accuracy" else "micro-F1"
    mean = result.curves.groupby(["strategy", "n_labels"], sort=True)[metric].mean().reset_index()
    curves = {s: (g["n_labels"].to_numpy(), g[metric].to_numpy()) for s, g in mean.groupby("strategy")}
    full = result.full_accuracy

    def pct(a: float) -> str:
        return f"{100.0 * a / full:.1f}%" if full > 0 else "n/a"

    out = {}
    have_base = baseline in curves
    if have_base:
        bn, bacc = curves[baseline]
        target = float(bacc.max())
        n_base = _labels_to_reach(bn, bacc, target)
    for name in dict.fromkeys(result.curves["strategy"]):
        n, acc = curves[name]
        final = f"at {int(n[-1])} labels: {acc[-1]:.3f} ({pct(acc[-1])})"
        if not have_base:
            k = int(np.argmax(acc))
            out[name] = (f"{name}: reaches {pct(acc[k])} of full-data {word} ({acc[k]:.3f} vs {full:.3f}) "
                         f"with {int(n[k])} labels; {final}")
            continue
        need = _labels_to_reach(n, acc, target)
        if name == baseline:
            out[name] = (f"{name}: reaches {pct(target)} of full-data {word} ({target:.3f} vs {full:.3f}) "
                         f"with {int(round(n_base))} labels (baseline)")
        elif need is None:
            out[name] = (f"{name}: does not reach {baseline}'s best {pct(target)} of full-data {word} "
                         f"({target:.3f}) within {int(n[-1])} labels; {final}")
        else:
            diff = int(round(n_base)) - int(round(need))
            cmp = f"{diff} fewer than {baseline}" if diff >= 0 else f"{-diff} more than {baseline}"
            out[name] = (f"{name}: reaches {pct(target)} of full-data {word} ({target:.3f}) with "
                         f"{int(round(need))} labels, {cmp} ({int(round(n_base))}); {final}")
    return out


def plot_curves(result: SimulationResult, path: str | Path, *, title: str = "") -> Path:
    """Mean +- std learning curves (accuracy and macro-F1) per strategy, with the full-data lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    stats = result.curves.groupby(["strategy", "n_labels"], sort=True)[[result.metric, "macro_f1"]].agg(["mean", "std"])
    for ax, metric, full in ((axes[0], result.metric, result.full_accuracy), (axes[1], "macro_f1", result.full_macro_f1)):
        for name in dict.fromkeys(result.curves["strategy"]):
            g = stats.loc[name]
            n = g.index.to_numpy()
            m = g[(metric, "mean")].to_numpy()
            sd = np.nan_to_num(g[(metric, "std")].to_numpy())
            ax.plot(n, m, marker="o", ms=3, label=name)
            ax.fill_between(n, m - sd, m + sd, alpha=0.15)
        ax.axhline(full, color="black", ls="--", lw=1, label=f"all {result.n_train} labels")
        ax.set_xlabel("labels")
        ax.set_ylabel(metric.replace("_", "-"))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle(title or f"learning curves (test n={result.n_test})")
    fig.tight_layout()
    path = Path(path)
    # ``path`` may be a commit's temp file: the format is explicit.
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)
    return path
