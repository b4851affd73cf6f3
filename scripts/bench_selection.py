"""Selection-quality benchmark: simulated labeling rounds with an oracle, from zero labels.

Settings: the five shared datasets plus two that stress what real pools look like
(``dataset@variant``): ``ag_news@imbalanced`` (two classes resampled to 1.5% of the pool each) and
``trec@large_batch`` (batch = 2% of the pool). For each, the pool is the train split
(``bench_common.train_test``; sub-sampled to ``--max-pool`` rows with a fixed seed when larger), the
test split is fixed, the classifier is logistic regression on all-MiniLM-L6-v2 embeddings (cached).
Every strategy starts from zero labels and runs ``--rounds`` rounds of ``batch = max(20, 5 ×
n_classes)`` rows (2% of the pool for ``@large_batch``); after each round the classifier is refitted
on everything labeled so far and scored on the test split. The task's label set is declared to every
strategy (``SelectionContext.label_set``), as a labeling project's schema is; only ``auto`` reads it. Baselines in the same run: random, top-k
entropy, margin and least-confidence (with the classic random cold start), and modAL's
``uncertainty_batch_sampling`` (ranked batch-mode sampling, Cardoso et al. 2017).

Reports per setting: accuracy and macro-F1 per round, AULC (mean accuracy over rounds 1..R), labels
needed to reach 90 % / 95 % of full-data accuracy, rounds until every class has 5 labels, rare-class
labels per round (``@imbalanced``), median selection time; a leave-one-setting-out table when several
``auto:...`` variants are run (each setting scored with the variant that is best on the others);
writes JSON and one learning-curve PNG per setting. Also times one selection on a synthetic 100k × 384
pool per registered strategy. Exits 1 when a target is missed:

* ``auto`` AULC >= the best of random / entropy / margin / least-confidence on every setting; mean
  AULC gain >= +0.05 over random and >= +0.02 over margin; final-round accuracy not below margin's by
  more than the seed spread (issue 13);
* ``auto`` first-round accuracy (cold start) >= random's + 0.05, averaged over settings (issue 3);
* per-round selection time on the 100k pool <= 10 s for every registered strategy.

Run:  python scripts/bench_selection.py --jobs 2   (embeddings cached in .selector/bench-cache, or
      $SELECTOR_BENCH_CACHE; per-run results in --out DIR/runs, reused by a later call)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import code_fingerprint, dataset_embeddings, parse_strategy_spec, train_test  # noqa: E402

from selector.models.classifiers import fit_classifier, make_classifier  # noqa: E402
from selector.strategies import SelectionContext, make_strategy, strategies_for  # noqa: E402

DATASETS = ("ag_news", "trec", "banking77", "sst2", "emotion", "ag_news@imbalanced", "trec@large_batch")
BASELINES = ("random", "entropy", "margin", "least_confidence", "modal_ranked")
#: The baselines auto must match or beat on every setting (issue 13); modal_ranked is reported beside them.
TARGET_BASELINES = ("random", "entropy", "margin", "least_confidence")
#: Setting variants (``dataset@variant``): how a real pool differs from the balanced published split.
VARIANTS = {
    "imbalanced": "the two alphabetically first classes resampled to 1.5% of the pool each",
    "large_batch": "batch = 2% of the pool (instead of max(20, 5 x classes))",
    # The regime grid (issue 27): the batch as labels per class, or a fixed size; binary sets made from
    # many-class ones; a long run.
    "b1": "batch = 1 label per class",
    "b5": "batch = 5 labels per class",
    "fixed": "batch = 20 below 10 classes, else 100",
    "n10": "batch = 10",
    "n100": "batch = 100",
    "ovr": "binary: the alphabetically first class against the rest",
    "long": "30 rounds",
}
#: The regime grid (issue 27): every shared single-label set at 1 and 5 labels per class a round and at a
#: fixed batch; the binary sets (sst2, sms_spam, ag_news one-vs-rest) also at 10 and 100; an imbalanced
#: pool and a 30-round run on the many-class set. Settings whose batch repeats another's are left out.
GRID_BASES = ("ag_news", "trec", "banking77", "sst2", "emotion", "sms_spam", "ag_news@ovr")
GRID_EXTRA = ("ag_news@imbalanced+b5", "banking77@long+fixed")


def grid_settings(cache_dir=None) -> list[str]:
    """The grid's setting names (``dataset@variant+variant``), one per distinct batch size per dataset."""
    out = []
    for base in GRID_BASES:
        name, _, pre = base.partition("@")
        df, _ = dataset_embeddings(name, cache_dir)
        n_classes = 2 if pre == "ovr" else int(df["label"].nunique())
        regimes = ["b1", "b5", "fixed"] + (["n10", "n100"] if n_classes == 2 else [])
        seen = set()
        for r in regimes:
            size = {"b1": n_classes, "b5": 5 * n_classes, "fixed": 20 if n_classes < 10 else 100, "n10": 10,
                    "n100": 100}[r]
            if size not in seen:
                seen.add(size)
                out.append(f"{name}@{(pre + '+') if pre else ''}{r}")
    return out + list(GRID_EXTRA)


def dataset_of(setting: str) -> str:
    """The dataset a setting is drawn from, for leave-one-dataset-out (a binary set made from a
    many-class one is its own dataset; batch sizes, pools and run lengths are not)."""
    base, _, variants = setting.partition("@")
    return base + ("@ovr" if "ovr" in variants.split("+") else "")


#: Pool rows a setting keeps (a seeded sample of the train split when larger; ``--max-pool``).
DEFAULT_MAX_POOL = 10_000
RARE_SHARE = 0.015
# Baselines keep the classic random cold start, whatever the registry's default fallback is.
SPECS = {
    "random": ("random", {}),
    "entropy": ("entropy", {"cold_start": "random"}),
    "margin": ("margin", {"cold_start": "random"}),
    "least_confidence": ("least_confidence", {"cold_start": "random"}),
}
#: auto's rule variants measured beside the default, spelled out in full so a stored run keeps its meaning
#: when the defaults change; the leave-one-setting-out table chooses among them and ``auto``.
AUTO_VARIANTS = (
    # The default before issue 13.
    "auto:switch_per_class=3,rare_share=0,explore=0,cold_explore=0,unseen_share=0,cold_mix=0",
    # The default before the declared-label search (unseen_share).
    "auto:switch_per_class=10,rare_share=0.5,rare_ratio=0.5,explore=0,cold_explore=0,unseen_share=0,cold_mix=0",
    # The declared-label search with a smaller share.
    "auto:switch_per_class=10,rare_share=0.5,rare_ratio=0.5,explore=0,cold_explore=0,unseen_share=0.2,"
    "unseen_after=3,unseen_until=25,cold_mix=0",
    # ... and with rare classes below 0.75 x the median class.
    "auto:switch_per_class=10,rare_share=0.5,rare_ratio=0.75,explore=0,cold_explore=0,unseen_share=0.4,"
    "unseen_after=3,unseen_until=25,cold_mix=0",
    # ... the default of the stop before the neighbour-kappa gate: no uncertain rows in a diverse batch.
    "auto:switch_per_class=10,rare_share=0.5,rare_ratio=0.5,explore=0,cold_explore=0,unseen_share=0.4,"
    "unseen_after=3,unseen_until=25,cold_mix=0",
    # ... and half of each diverse batch after the first from the uncertain+diverse branch, ungated.
    "auto:switch_per_class=10,rare_share=0.5,rare_ratio=0.5,explore=0,cold_explore=0,unseen_share=0.4,"
    "unseen_after=3,unseen_until=25,cold_mix=0.5,mix_below=null",
    # 15% of a first (diverse) batch under 50 rows to the rows farthest from its typical picks (opt-in).
    "auto:switch_per_class=10,rare_share=0.5,rare_ratio=0.5,explore=0,cold_explore=0.15,explore_with=coreset,"
    "cold_explore_batch=50,unseen_share=0,cold_mix=0",
)
DEFAULT_STRATEGIES = ("random", "entropy", "margin", "least_confidence", "modal_ranked", "auto", *AUTO_VARIANTS,
                      "typiclust", "kmeans", "margin_kmeans", "cluster_margin", "badge", "coreset", "class_balanced")


def parse_spec(spec: str) -> tuple[str, dict]:
    """``name`` or ``name:key=value,key=value`` (values parsed as JSON where possible)."""
    if spec in SPECS:
        return SPECS[spec]
    return parse_strategy_spec(spec)


MODAL_CANDIDATES = 3000


def modal_select(X_pool, X_lab, y_lab, model, budget, rng):
    """modAL's ranked batch-mode uncertainty sampling on the same fitted model.

    modAL recomputes the distances from the unpicked pool to every labeled/picked row for each
    pick (O(batch × pool × labeled) per round, and a pool × pool matrix at cold start), which is
    hours per run on the larger sets here; it therefore ranks a seeded random subset of
    ``MODAL_CANDIDATES`` pool rows per round (the whole pool when smaller).
    """
    from modAL.batch import uncertainty_batch_sampling
    from modAL.models import ActiveLearner

    cand = np.arange(X_pool.shape[0])
    if cand.size > MODAL_CANDIDATES:
        cand = np.sort(rng.choice(cand.size, size=MODAL_CANDIDATES, replace=False))
    learner = ActiveLearner(estimator=model if model is not None else make_classifier())
    if len(X_lab):  # without X_training modAL runs its own cold start (most central row first)
        learner.X_training, learner.y_training = X_lab, y_lab
    idx, _ = uncertainty_batch_sampling(learner, X_pool[cand], n_instances=budget)
    return cand[np.asarray(idx, dtype=np.int64)]


def evaluate(model, X_test, y_test, labels, y_lab):
    from sklearn.metrics import accuracy_score, f1_score

    if model is None:  # one class labeled: the only possible prediction
        pred = np.full(y_test.shape[0], y_lab[0], dtype=object)
    else:
        pred = model.predict(X_test)
    return (float(accuracy_score(y_test, pred)),
            float(f1_score(y_test, pred, labels=labels, average="macro", zero_division=0)))


def simulate(spec, X, y, X_test, y_test, labels, batch, rounds, seed, rare=(), narrow=None):
    """One strategy, one seed: accuracy, macro-F1, selection seconds, the fewest labels of any class and the
    labels of the ``rare`` classes, per round.

    ``narrow(unlabeled, labeled, round)`` (optional) returns the unlabeled positions the strategy may pick
    from that round (a two-stage round's candidates, ``scripts/bench_coldpool.py``); default all of them."""
    name, params = parse_spec(spec)
    strategy = None if name == "modal_ranked" else make_strategy(name, **params)
    labeled = np.zeros(X.shape[0], dtype=bool)
    # The task's label set is declared, as in a labeling project's schema (``labels:`` in the config).
    label_set = tuple(str(c) for c in labels)
    order: list[int] = []
    model, acc, f1, secs, min_class, rare_found = None, [], [], [], [], []
    for r in range(rounds):
        unl = np.flatnonzero(~labeled)
        lab = np.asarray(order, dtype=np.int64)
        if narrow is not None:
            unl = narrow(unl, lab, r)
        X_pool, X_lab, y_lab = X[unl], X[lab], y[lab]
        t0 = time.perf_counter()
        if strategy is None:
            picks = modal_select(X_pool, X_lab, y_lab, model, batch, np.random.default_rng(seed * 1000 + r))
        else:
            if model is None:
                why = "0 labeled rows" if lab.size == 0 else "one class labeled"
                ctx = SelectionContext(X_pool, X_lab, y_lab, cold_start_reason=why, label_set=label_set)
            else:
                ctx = SelectionContext(X_pool, X_lab, y_lab, proba_pool=model.predict_proba(X_pool),
                                       classes=np.asarray(model.classes_, dtype=object), classifier=model,
                                       label_set=label_set)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                picks = strategy.select(ctx, batch, random_state=seed * 1000 + r).indices
        secs.append(time.perf_counter() - t0)
        new = unl[picks]
        labeled[new] = True
        order.extend(new.tolist())
        y_lab = y[np.asarray(order)]
        model = (fit_classifier(make_classifier(random_state=seed), X[order], y_lab)
                 if np.unique(y_lab).size > 1 else None)
        a, f = evaluate(model, X_test, y_test, labels, y_lab)
        acc.append(a)
        f1.append(f)
        min_class.append(int(min((y_lab == c).sum() for c in labels)))
        rare_found.append(int(np.isin(y_lab, list(rare)).sum()))
    return {"acc": acc, "f1": f1, "select_s": secs, "seed": seed, "min_class_labels": min_class,
            "rare_found": rare_found}


def labels_to_reach(curve, target, batch):
    hit = np.flatnonzero(np.asarray(curve) >= target)
    return int((hit[0] + 1) * batch) if hit.size else None


def prepare(name, max_pool, cache_dir):
    """Pool and test arrays of one setting (``dataset`` or ``dataset@variant[+variant...]``), its batch size,
    rare classes and (for ``long``) its number of rounds."""
    base, _, variant_text = name.partition("@")
    variants = [v for v in variant_text.split("+") if v]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown setting variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    df, X_all = dataset_embeddings(base, cache_dir)
    train, test = train_test(df)
    note = ""
    if train.size > max_pool:
        train = np.sort(np.random.default_rng(0).choice(train, size=max_pool, replace=False))
        note = f"pool sub-sampled to {max_pool} rows (seed 0)"
    y_all = df["label"].to_numpy(dtype=object)
    if "ovr" in variants:
        first = sorted(np.unique(y_all))[0]
        y_all = np.where(y_all == first, first, "other").astype(object)
        note = (note + "; " if note else "") + f"binary: {first} vs the rest"
    labels = np.unique(y_all)
    rare = []
    if "imbalanced" in variants:
        rare = [str(c) for c in labels[:2]]
        rng = np.random.default_rng(0)
        common = train[~np.isin(y_all[train], rare)]
        n_rare = max(5, int(round(RARE_SHARE * common.size / (1 - RARE_SHARE * len(rare)))))
        keep = [common] + [rng.choice(train[y_all[train] == c], size=n_rare, replace=False) for c in rare]
        train = np.sort(np.concatenate(keep))
        note = (note + "; " if note else "") + f"{', '.join(rare)} resampled to {n_rare} rows each ({RARE_SHARE:.1%})"
    batch = max(20, 5 * labels.size)
    if "large_batch" in variants:
        batch = max(batch, int(round(0.02 * train.size)))
        note = (note + "; " if note else "") + f"batch {batch} = 2% of the pool"
    for v, size in (("b1", labels.size), ("b5", 5 * labels.size), ("fixed", 20 if labels.size < 10 else 100),
                    ("n10", 10), ("n100", 100)):
        if v in variants:
            batch = int(size)
    rounds = 30 if "long" in variants else None
    return {"X": X_all[train], "y": y_all[train], "X_test": X_all[test], "y_test": y_all[test],
            "labels": labels, "batch": batch, "note": note, "rare": rare, "rounds": rounds, "train": train}


MODAL_MAX_FLOPS = 2e12


def modal_flops(batch, rounds, n_pool, d=384):
    """modAL's distance work for one run: every pick compares the candidates with every labeled row."""
    cand = min(MODAL_CANDIDATES, n_pool)
    return float(sum(batch * cand * (r * batch + batch / 2) * d * 2 for r in range(rounds)))


def task(name, spec, seed, rounds, max_pool, cache_dir):
    """One (dataset, strategy, seed) simulation; run in a worker process."""
    d = prepare(name, max_pool, cache_dir)
    rounds = d["rounds"] or rounds
    if spec == "modal_ranked" and modal_flops(d["batch"], rounds, d["X"].shape[0]) > MODAL_MAX_FLOPS:
        return name, spec, seed, None
    t0 = time.perf_counter()
    res = simulate(spec, d["X"], d["y"], d["X_test"], d["y_test"], d["labels"], d["batch"], rounds, seed,
                   rare=d["rare"])
    res["wall_s"] = time.perf_counter() - t0
    return name, spec, seed, res


def curve_stats(acc: np.ndarray) -> dict:
    """Accuracy curves over seeds, shape (seeds, rounds), reduced to what the targets read: acc_mean and
    acc_std (per round), aulc (mean of the mean curve) and aulc_std (std over seeds of each seed's AULC)."""
    mean_acc = acc.mean(axis=0)
    return {"acc_mean": mean_acc.tolist(), "acc_std": acc.std(axis=0).tolist(), "aulc": float(mean_acc.mean()),
            "aulc_std": float(acc.mean(axis=1).std())}


def summarise(name, d, runs_by_spec, rounds, seeds):
    rounds = d["rounds"] or rounds
    full = fit_classifier(make_classifier(random_state=0), d["X"], d["y"])
    full_acc, full_f1 = evaluate(full, d["X_test"], d["y_test"], d["labels"], d["y"])
    batch = d["batch"]
    out = {"dataset": name, "n_pool": int(d["X"].shape[0]), "n_test": int(d["X_test"].shape[0]),
           "n_classes": int(d["labels"].size), "batch": batch, "rounds": rounds, "seeds": list(seeds),
           "full_accuracy": full_acc, "full_macro_f1": full_f1, "note": d["note"], "strategies": {},
           "not_finished": []}
    for spec, runs in runs_by_spec.items():
        if spec == "modal_ranked" and modal_flops(batch, rounds, d["X"].shape[0]) > MODAL_MAX_FLOPS:
            out["not_finished"].append(
                f"modal_ranked not run: about {modal_flops(batch, rounds, d['X'].shape[0]) / 1e12:.0f} TFLOP of "
                f"distance work per run (> {MODAL_MAX_FLOPS / 1e12:.0f}), hours per seed on this shared 2-core machine")
            continue
        if len(runs) < len(seeds):
            out["not_finished"].append(f"{spec} ({len(runs)}/{len(seeds)} seeds done)")
            continue
        acc = np.array([r["acc"] for r in runs])
        f1 = np.array([r["f1"] for r in runs])
        stats = curve_stats(acc)
        mean_acc = np.asarray(stats["acc_mean"])
        out["strategies"][spec] = {
            **stats, "f1_mean": f1.mean(axis=0).tolist(), "acc_per_seed": acc.tolist(), "f1_per_seed": f1.tolist(),
            "first_round_acc": float(mean_acc[0]),
            "labels_to_90": labels_to_reach(mean_acc, 0.9 * full_acc, batch),
            "labels_to_95": labels_to_reach(mean_acc, 0.95 * full_acc, batch),
            "median_select_s": float(np.median([s for r in runs for s in r["select_s"]])),
            "wall_s": float(sum(r["wall_s"] for r in runs)),
        }
        if all("min_class_labels" in r for r in runs):
            # Rounds until every class has >= 5 labels (None = not within the run), per seed.
            out["strategies"][spec]["rounds_to_5_per_class"] = [
                next((i + 1 for i, m in enumerate(r["min_class_labels"]) if m >= 5), None) for r in runs]
            if d["rare"]:
                out["strategies"][spec]["rare_found_mean"] = np.mean([r["rare_found"] for r in runs], axis=0).tolist()
    out["rare_classes"] = d["rare"]
    return out


def _run_file(runs_dir, name, spec, seed):
    safe = spec.replace(":", "_").replace("=", "-").replace(",", "_")
    return Path(runs_dir) / f"{name}__{safe}__{seed}.json"


def import_results(path, runs_dir, rounds):
    """Seed the per-run store from an earlier results.json (runs with every seed finished).

    Only per-round accuracy/F1 per seed and the median selection time were kept there, so the
    imported runs carry that median as their selection time.
    """
    payload = json.loads(Path(path).read_text())
    n = 0
    for name, res in payload["datasets"].items():
        n_rounds = res.get("rounds", rounds)  # a cell's own run length (30 for the long run)
        for spec, st in res["strategies"].items():
            for seed, (acc, f1) in enumerate(zip(st["acc_per_seed"], st["f1_per_seed"])):
                f = _run_file(runs_dir, name, spec, res["seeds"][seed])
                if not f.exists() and len(acc) == n_rounds:
                    f.write_text(json.dumps({"acc": acc, "f1": f1, "select_s": [st["median_select_s"]] * n_rounds,
                                             "seed": res["seeds"][seed], "wall_s": st["wall_s"] / len(res["seeds"]),
                                             "imported_from": str(path)}))
                    n += 1
    return payload.get("speed_100k"), n


def run_all(datasets, strategies, seeds, rounds, max_pool, cache_dir, jobs, deadline_s, runs_dir):
    """Every (dataset, strategy, seed) in ``jobs`` worker processes; unfinished runs at the deadline are dropped.

    Each finished run is stored in ``runs_dir``; a later call reuses the stored runs. A run that raises is
    reported and left out (its cell then counts as unfinished), so one failure does not lose the others.
    Returns the runs by setting and strategy, and one line per failed run.
    """
    import concurrent.futures as cf
    import os

    # These reach only libraries loaded from here on: numpy's BLAS is loaded already, so the forked
    # workers keep the machine's default BLAS threads, as every stored run here was measured. A
    # different thread count changes floating-point sums, and on trec a run's picks diverge from there
    # (auto, seed 0: final accuracy 0.808 with one BLAS thread, 0.840 with two).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    for name in {d.partition("@")[0] for d in datasets}:  # embed (or read the cache) once, before the workers
        dataset_embeddings(name, cache_dir)
    runs = {name: {spec: [] for spec in strategies} for name in datasets}
    todo, code, other_code = [], code_fingerprint(), 0
    for n, sp, s in [(n, sp, s) for sp in strategies for n in datasets for s in seeds]:
        f = _run_file(runs_dir, n, sp, s)
        if f.exists():
            runs[n][sp].append(json.loads(f.read_text()))
            other_code += runs[n][sp][-1].get("code") != code
        else:
            todo.append((n, sp, s))
    if other_code:
        # Not recomputed automatically: the full set is hours of CPU here. Said, so a figure is never
        # taken for the current code's without that being checked.
        print(f"  {other_code} stored runs were recorded by other selector code (or before runs recorded it); "
              f"delete {runs_dir} to recompute them", flush=True)
    # modAL first; then strategy by strategy in the order given (so a deadline leaves whole strategies
    # unfinished, not a few seeds of every one), the slowest (banking77) settings first within each.
    todo.sort(key=lambda t: (t[1] != "modal_ranked", strategies.index(t[1]), not t[0].startswith("banking77"),
                             t[0], t[2]))
    ex = cf.ProcessPoolExecutor(max_workers=jobs)
    futures = {ex.submit(task, n, sp, s, rounds, max_pool, cache_dir): (n, sp, s) for n, sp, s in todo}
    pending = set(futures)
    errors = []
    try:
        for f in cf.as_completed(futures, timeout=deadline_s):
            pending.discard(f)
            try:
                name, spec, seed, res = f.result()
            except Exception as exc:  # noqa: BLE001 - a script: report the run, keep the others
                n, sp, s = futures[f]
                errors.append(f"{n} {sp} seed {s}: {type(exc).__name__}: {exc}")
                print(f"  FAILED {errors[-1]}", file=sys.stderr, flush=True)
                continue
            if res is None:  # too expensive to run here (see modal_flops)
                continue
            res["code"] = code
            runs[name][spec].append(res)
            _run_file(runs_dir, name, spec, seed).write_text(json.dumps(res))
            print(f"  done {name:10s} {spec:28s} seed {seed}: AULC {np.mean(res['acc']):.4f} ({res['wall_s']:.0f}s)",
                  flush=True)
    except cf.TimeoutError:
        pass
    if pending:
        print(f"deadline of {deadline_s:.0f} s reached: {len(pending)} runs not finished", file=sys.stderr)
        for p in list(ex._processes.values()):  # scripts only: stop the workers still running
            p.terminate()
    ex.shutdown(wait=False, cancel_futures=True)
    for name in runs:
        for spec in runs[name]:
            runs[name][spec].sort(key=lambda r: r.get("seed", 0))
    return runs, errors


def plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    x = np.arange(1, result["rounds"] + 1) * result["batch"]
    for spec, s in result["strategies"].items():
        m, sd = np.array(s["acc_mean"]), np.array(s["acc_std"])
        style = "-" if spec.startswith("auto") else ("--" if spec in BASELINES else ":")
        ax.plot(x, m, style, label=f"{spec} ({s['aulc']:.3f})", linewidth=2.2 if spec == "auto" else 1.3)
        ax.fill_between(x, m - sd, m + sd, alpha=0.08)
    ax.axhline(result["full_accuracy"], color="k", linewidth=0.8, label=f"full data ({result['full_accuracy']:.3f})")
    ax.set_xlabel("labeled rows")
    ax.set_ylabel("test accuracy")
    ax.set_title(f"{result['dataset']}: pool {result['n_pool']}, batch {result['batch']}, "
                 f"{len(result['seeds'])} seeds (legend: AULC)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def speed_100k(n=100_000, d=384, n_labeled=2000, budget=1000, k=10, seed=0, extra=()):
    """Seconds for one selection per registered strategy (and each ``extra`` spec, e.g. an auto variant)
    on a synthetic clustered pool."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, d)).astype(np.float32)
    X = centres[rng.integers(0, 50, n + n_labeled)] + rng.normal(scale=0.8, size=(n + n_labeled, d)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    y = (np.arange(n + n_labeled) % k).astype(str).astype(object)
    y[:n_labeled] = np.array([f"c{i}" for i in (X[:n_labeled] @ centres[:k].T).argmax(1)], dtype=object)
    model = fit_classifier(make_classifier(random_state=0), X[:n_labeled], y[:n_labeled])
    X_pool = X[n_labeled:]
    ctx = SelectionContext(X_pool, X[:n_labeled], y[:n_labeled], proba_pool=model.predict_proba(X_pool),
                           classes=np.asarray(model.classes_, dtype=object), classifier=model)
    times, cpu = {}, {}
    for name in [*strategies_for("single_label"), *extra]:  # the pool is single-label
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            spec_name, params = parse_spec(name)
            make_strategy(spec_name, **params).select(ctx, budget, random_state=0)
        times[name] = time.perf_counter() - t0
        cpu[name] = time.process_time() - c0
    return {"n_pool": n, "d": d, "n_labeled": n_labeled, "budget": budget, "seconds": times, "cpu_seconds": cpu,
            "load_average": os.getloadavg()}


def rare_table(results):
    """Per setting with rare classes: rare labels after each round and rounds until every class has 5."""
    for ds, res in results.items():
        if not res.get("rare_classes"):
            continue
        print(f"\n{ds}: rare classes {', '.join(res['rare_classes'])}; rare-class labels after each round (mean), "
              "rounds until every class has >= 5 labels (per seed; - = never)")
        for spec, st in res["strategies"].items():
            if "rare_found_mean" in st:
                reach = "/".join("-" if r is None else str(r) for r in st["rounds_to_5_per_class"])
                print(f"  {spec:28s} " + " ".join(f"{v:5.1f}" for v in st["rare_found_mean"]) + f"   {reach}")


def auto_targets(results):
    """Issue 13's targets: auto >= the best of random/entropy/margin/least_confidence on every setting;
    mean AULC gain >= +0.05 over random and >= +0.02 over margin; first-round gain >= +0.05 (issue 3)."""
    failures, gains_r, gains_m, cold, final_rows = [], [], [], [], []
    print(f"\n{'setting':20s} {'auto AULC':>9s} {'best baseline':>24s} {'vs random':>9s} {'vs margin':>9s} "
          f"{'acc@1 gain':>10s}")
    for ds, res in results.items():
        st = res["strategies"]
        present = [b for b in TARGET_BASELINES if b in st]
        if "auto" not in st or len(present) < len(TARGET_BASELINES):
            failures.append(f"{ds}: auto or a target baseline did not finish")
            continue
        best = max(present, key=lambda b: st[b]["aulc"])
        gains_r.append(st["auto"]["aulc"] - st["random"]["aulc"])
        gains_m.append(st["auto"]["aulc"] - st["margin"]["aulc"])
        cold.append(st["auto"]["first_round_acc"] - st["random"]["first_round_acc"])
        print(f"{ds:20s} {st['auto']['aulc']:9.3f} {best:>16s} {st[best]['aulc']:7.3f} {gains_r[-1]:+9.3f} "
              f"{gains_m[-1]:+9.3f} {cold[-1]:+10.3f}")
        if st["auto"]["aulc"] < st[best]["aulc"]:
            failures.append(f"{ds}: auto AULC {st['auto']['aulc']:.4f} < {best} {st[best]['aulc']:.4f}")
        last_a, last_m, spread = final_round_vs_margin(st, "auto")
        final_rows.append(f"  {ds:20s} auto {last_a:.3f} vs margin {last_m:.3f} ({last_a - last_m:+.3f}; "
                          f"seed spread {spread:.3f})")
        if last_a < last_m - spread:
            failures.append(f"{ds}: auto final-round accuracy {last_a:.4f} < margin's {last_m:.4f} by more than "
                            f"the seed spread {spread:.4f}")
    if final_rows:
        print("final-round accuracy, auto vs margin (target: not below by more than the seed spread):")
        print("\n".join(final_rows))
    if gains_r:
        print(f"mean AULC gain over random {np.mean(gains_r):+.4f} (target >= +0.05), over margin "
              f"{np.mean(gains_m):+.4f} (target >= +0.02); mean first-round gain {np.mean(cold):+.4f} (target >= +0.05)")
        if np.mean(gains_r) < 0.05:
            failures.append(f"mean AULC gain over random {np.mean(gains_r):.4f} < 0.05")
        if np.mean(gains_m) < 0.02:
            failures.append(f"mean AULC gain over margin {np.mean(gains_m):.4f} < 0.02")
        if np.mean(cold) < 0.05:
            failures.append(f"mean first-round accuracy gain over random {np.mean(cold):.4f} < 0.05")
    return failures


#: The baselines auto must match, within the seed spread, in every cell of the grid (issue 27).
GRID_BASELINES = ("random", "entropy", "margin", "least_confidence", "typiclust")
#: The grid's strategies by default: the baselines its targets name, then auto.
GRID_STRATEGIES = (*GRID_BASELINES, "auto")


def cell_verdict(st: dict, spec: str) -> tuple[str, float, float, float]:
    """``spec`` against the best grid baseline in one cell: (best baseline, its AULC, the gap, the seed
    spread: the larger AULC standard deviation over seeds of the two). At or above within the spread:
    ``gap >= -spread``."""
    best = max(GRID_BASELINES, key=lambda b: st[b]["aulc"])
    spread = max(st[spec]["aulc_std"], st[best]["aulc_std"])
    return best, st[best]["aulc"], st[spec]["aulc"] - st[best]["aulc"], spread


def grid_ok(st: dict, spec: str) -> bool:
    """In one cell: at or above the best baseline within the seed spread, and the final round not below
    margin's by more than the seed spread."""
    _, _, gap, spread = cell_verdict(st, spec)
    last, last_m, fspread = final_round_vs_margin(st, spec)
    return gap >= -spread and last >= last_m - fspread


def choose_by_dataset(results, variants, names):
    """The variant passing the most of ``names``' cells (:func:`grid_ok`), then the best mean AULC gain
    over margin there."""
    return max(variants, key=lambda v: (sum(grid_ok(results[n]["strategies"], v) for n in names),
                                        np.mean([results[n]["strategies"][v]["aulc"] -
                                                 results[n]["strategies"]["margin"]["aulc"] for n in names])))


def grid_targets(results, variants):
    """Issue 27's targets on the grid, for ``auto`` (the default) and, leave-one-dataset-out, for the
    variant chosen on the other datasets: at or above the best of random/entropy/margin/least-confidence/
    typiclust in every cell within the seed spread; final round never below margin's by more than the
    spread; mean gain +0.05 over random and +0.02 over margin."""
    names = [n for n in results if all(v in results[n]["strategies"] for v in (*variants, *GRID_BASELINES))]
    failures = [f"{n}: auto, a variant or a grid baseline did not finish" for n in results if n not in names]
    datasets = sorted({dataset_of(n) for n in names})
    lodo_choice = {}
    for ds in datasets:
        train = [n for n in names if dataset_of(n) != ds]
        lodo_choice[ds] = choose_by_dataset(results, variants, train) if len(variants) > 1 else "auto"
    print(f"\nregime grid: {len(names)} cells over {len(datasets)} datasets; auto vs the best of "
          f"{', '.join(GRID_BASELINES)} (within the seed spread = the larger AULC std over seeds)")
    print(f"{'cell':28s} {'batch':>5s} {'auto':>6s} {'best baseline':>24s} {'gap':>7s} {'spread':>6s} "
          f"{'final-margin':>12s} {'LODO':>6s}  LODO choice")
    gains = {"auto": ([], []), "lodo": ([], [])}
    worst = (None, np.inf)
    worst_final = (None, np.inf)
    for n in names:
        st = results[n]["strategies"]
        best, best_aulc, gap, spread = cell_verdict(st, "auto")
        last, last_m, fspread = final_round_vs_margin(st, "auto")
        choice = lodo_choice[dataset_of(n)]
        ok = "" if grid_ok(st, "auto") else "  MISSED"
        print(f"{n:28s} {results[n]['batch']:5d} {st['auto']['aulc']:6.3f} {best:>16s} {best_aulc:7.3f} {gap:+7.3f} "
              f"{spread:6.3f} {last - last_m:+12.3f} {st[choice]['aulc']:6.3f}  {choice}{ok}")
        for key, spec in (("auto", "auto"), ("lodo", choice)):
            gains[key][0].append(st[spec]["aulc"] - st["random"]["aulc"])
            gains[key][1].append(st[spec]["aulc"] - st["margin"]["aulc"])
        if gap + spread < worst[1]:
            worst = (n, gap + spread)
        if last - last_m + fspread < worst_final[1]:
            worst_final = (n, last - last_m + fspread)
        if gap < -spread:
            failures.append(f"{n}: auto AULC {st['auto']['aulc']:.4f} < {best} {best_aulc:.4f} by more than the "
                            f"seed spread {spread:.4f}")
        if last < last_m - fspread:
            failures.append(f"{n}: auto final-round accuracy {last:.4f} < margin's {last_m:.4f} by more than the "
                            f"seed spread {fspread:.4f}")
    for key, label in (("auto", "default auto (in-sample)"), ("lodo", "leave-one-dataset-out choice")):
        r, m = gains[key]
        if r:
            print(f"{label}: mean AULC gain over random {np.mean(r):+.4f} (target +0.05), over margin "
                  f"{np.mean(m):+.4f} (target +0.02); cells passed {sum(grid_ok(results[n]['strategies'], 'auto' if key == 'auto' else lodo_choice[dataset_of(n)]) for n in names)} of {len(names)}")
    for label, pool in (("the baselines and auto", (*GRID_BASELINES, "auto")),
                        ("every strategy run", tuple(results[names[0]]["strategies"]) if names else ())):
        r, m = hindsight_gains(results, names, pool)
        if r is not None:
            print(f"ceiling, the best of {label} in each cell chosen in hindsight: mean AULC gain over random "
                  f"{r:+.4f}, over margin {m:+.4f}")
    if worst[0] is not None:
        print(f"worst cell for auto vs the best baseline: {worst[0]} ({worst[1]:+.4f} beyond the spread); "
              f"worst final-round gap to margin: {worst_final[0]} ({worst_final[1]:+.4f} beyond the spread)")
    r, m = gains["auto"]
    if r and np.mean(r) < 0.05:
        failures.append(f"mean AULC gain over random {np.mean(r):.4f} < 0.05")
    if m and np.mean(m) < 0.02:
        failures.append(f"mean AULC gain over margin {np.mean(m):.4f} < 0.02")
    return failures


def hindsight_gains(results, names, pool) -> tuple[float | None, float | None]:
    """Mean AULC gains over random and margin of a chooser that knew each cell's results: the best of
    ``pool`` (strategy specs every cell ran) per cell. No rule picked before the labels can beat it, so
    it says how far the mean-gain targets are reachable on this grid. (None, None) without cells."""
    pool = [p for p in pool if all(p in results[n]["strategies"] for n in names)]
    if not names or not pool:
        return None, None
    best = [max(results[n]["strategies"][p]["aulc"] for p in pool) for n in names]
    return (float(np.mean([b - results[n]["strategies"]["random"]["aulc"] for b, n in zip(best, names)])),
            float(np.mean([b - results[n]["strategies"]["margin"]["aulc"] for b, n in zip(best, names)])))


def final_round_vs_margin(st: dict, spec: str) -> tuple[float, float, float]:
    """``spec``'s and margin's final-round accuracy, and the seed spread (the larger of the two stds)
    within which ``spec`` may trail margin."""
    v, m = st[spec], st["margin"]
    return v["acc_mean"][-1], m["acc_mean"][-1], max(v["acc_std"][-1], m["acc_std"][-1])


def never_below_margin(st: dict, variant: str) -> bool:
    """The variant's AULC >= margin's, and its final-round accuracy not below margin's by more than the
    seed spread: "auto never below plain margin"."""
    last_v, last_m, spread = final_round_vs_margin(st, variant)
    return st[variant]["aulc"] >= st["margin"]["aulc"] and last_v >= last_m - spread


def choose_variant(results, variants, settings):
    """Among the variants never below margin on every one of ``settings``, the one with the best mean
    AULC there (all variants compete when none qualifies)."""
    ok = [v for v in variants if all(never_below_margin(results[s]["strategies"], v) for s in settings)]
    return max(ok or variants, key=lambda v: np.mean([results[s]["strategies"][v]["aulc"] for s in settings]))


def lodo_table(results, variants):
    """Leave-one-setting-out: for each setting, the auto variant chosen on the *other* settings (never
    below margin there, then the best mean AULC), and its AULC on this one, beside the default's."""
    if len(variants) < 2:
        print("\nleave-one-setting-out: only one auto variant run (add e.g. auto:switch_per_class=1 and "
              "auto:switch_per_class=10 to --strategies); the in-sample figure is the only one")
        return
    names = [ds for ds in results if all(v in results[ds]["strategies"] for v in variants) and
             "margin" in results[ds]["strategies"]]
    print(f"\nleave-one-setting-out over {len(variants)} auto variants (chosen on the other settings: never below "
          "margin's AULC or, beyond the seed spread, its final-round accuracy; then the best mean AULC)")
    width = max(len(v) for v in variants)
    print(f"  {'variant':{width}s} {'mean AULC':>9s} {'never below margin on':>22s}")
    for v in variants:
        n_ok = sum(never_below_margin(results[d]["strategies"], v) for d in names)
        print(f"  {v:{width}s} {np.mean([results[d]['strategies'][v]['aulc'] for d in names]):9.4f} "
              f"{n_ok:>17d} of {len(names)}")
    print(f"in-sample choice (all settings): {choose_variant(results, variants, names)}")
    print(f"{'setting':20s} {'default auto':>12s} {'LODO AULC':>9s}  LODO choice")
    lodo = []
    for ds in names:
        choice = choose_variant(results, variants, [o for o in names if o != ds])
        lodo.append(results[ds]["strategies"][choice]["aulc"])
        print(f"{ds:20s} {results[ds]['strategies']['auto']['aulc']:12.3f} {lodo[-1]:9.3f}  {choice}")
    print(f"mean: default auto {np.mean([results[d]['strategies']['auto']['aulc'] for d in names]):.4f}, "
          f"leave-one-setting-out {np.mean(lodo):.4f}")


def fmt(v, spec="{:.3f}"):
    return "-" if v is None else spec.format(v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--datasets", nargs="+", default=None,
                    help=f"settings [default: the seven of issue 13: {' '.join(DATASETS)}; with --grid, the grid]")
    ap.add_argument("--grid", action="store_true",
                    help="the regime grid (issue 27): every shared set at 1 and 5 labels per class a round and a fixed "
                         "batch, binary sets also at 10 and 100, an imbalanced pool and a 30-round run; targets judged "
                         "per cell within the seed spread, the default chosen leave-one-dataset-out")
    ap.add_argument("--strategies", nargs="+", default=None,
                    help="names or name:key=value,... (auto must be included for the targets) [default: the "
                         "seven settings' full list; with --grid, the baselines the targets name and auto: "
                         f"{' '.join(GRID_STRATEGIES)}]")
    ap.add_argument("--seeds", type=int, default=None,
                    help="seeds per cell [default: 8 with --grid, where 3 proved too few to rank rules; else 3]")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--max-pool", type=int, default=DEFAULT_MAX_POOL)
    ap.add_argument("--out", default=None, help="[default: bench_out/selection; with --grid, bench_out/grid]")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--deadline", type=float, default=None,
                    help="seconds; runs unfinished by then are dropped and reported")
    ap.add_argument("--modal-max-tflop", type=float, default=MODAL_MAX_FLOPS / 1e12,
                    help="modAL runs estimated above this much distance work are not run (reported)")
    ap.add_argument("--import-results", nargs="*", default=None,
                    help="earlier results.json files whose finished runs are reused (and their 100k timing, "
                         "with --skip-speed)")
    ap.add_argument("--skip-speed", action="store_true", help="skip the 100k-pool timing (then it is not a target)")
    args = ap.parse_args(argv)
    if args.datasets is None:
        args.datasets = grid_settings(args.cache_dir) if args.grid else list(DATASETS)
    if args.strategies is None:
        args.strategies = list(GRID_STRATEGIES if args.grid else DEFAULT_STRATEGIES)
    if args.out is None:
        args.out = "bench_out/grid" if args.grid else "bench_out/selection"
    globals()["MODAL_MAX_FLOPS"] = args.modal_max_tflop * 1e12  # read by task() in the forked workers
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    missing = [s for s in TARGET_BASELINES + ("auto",) if s not in args.strategies]
    if missing:
        print(f"warning: {', '.join(missing)} not in --strategies; targets need them", file=sys.stderr)
    if "modal_ranked" in args.strategies:
        try:
            import modAL  # noqa: F401
        except ImportError as exc:
            print(f"modAL baseline cannot run ({exc}); install the bench extra: pip install -e '.[bench]'",
                  file=sys.stderr)
            return 2

    seeds = list(range(args.seeds if args.seeds is not None else (8 if args.grid else 3)))
    t0 = time.perf_counter()
    runs_dir = out / "runs"
    runs_dir.mkdir(exist_ok=True)
    imported_speed = None
    for path in args.import_results or []:
        speed_here, n_imported = import_results(path, runs_dir, args.rounds)
        imported_speed = imported_speed or speed_here
        print(f"imported {n_imported} finished runs from {path}")
    runs, run_errors = run_all(args.datasets, args.strategies, seeds, args.rounds, args.max_pool, args.cache_dir,
                               args.jobs, args.deadline, runs_dir)
    print(f"simulations: {time.perf_counter() - t0:.0f} s with {args.jobs} worker(s)")
    results = {}
    for ds in args.datasets:
        results[ds] = summarise(ds, prepare(ds, args.max_pool, args.cache_dir), runs[ds], args.rounds, seeds)
        plot(results[ds], out / f"curve_{ds}.png")

    print()
    head = (f"{'dataset':20s} {'strategy':28s} {'AULC':>6s} {'±':>5s} {'acc@1':>6s} {'acc@R':>6s} {'F1@R':>6s} "
            f"{'lab90%':>6s} {'lab95%':>6s} {'sel_s':>6s}")
    print(head)
    print("-" * len(head))
    for ds, res in results.items():
        for spec, s in res["strategies"].items():
            print(f"{ds:20s} {spec:28s} {s['aulc']:6.3f} {s['aulc_std']:5.3f} {s['first_round_acc']:6.3f} "
                  f"{s['acc_mean'][-1]:6.3f} {s['f1_mean'][-1]:6.3f} {fmt(s['labels_to_90'], '{:d}'):>6s} "
                  f"{fmt(s['labels_to_95'], '{:d}'):>6s} {s['median_select_s']:6.2f}")
        print(f"{ds:20s} {'(full data)':28s} {res['full_accuracy']:6.3f}  pool {res['n_pool']}, batch {res['batch']}"
              + (f"; {res['note']}" if res["note"] else ""))
        if res["not_finished"]:
            print(f"{ds:20s} NOT FINISHED (left out): {', '.join(res['not_finished'])}")
    if "modal_ranked" in args.strategies:
        print(f"modal_ranked = modAL uncertainty_batch_sampling on a seeded {MODAL_CANDIDATES}-row candidate "
              "subset of the pool per round (its cost is O(batch x pool x labeled)); entropy/margin start "
              "from a random first batch")
    failures = [f"run failed (left out): {e}" for e in run_errors]
    rare_table(results)
    variants = [sp for sp in args.strategies if sp == "auto" or sp.startswith("auto:")]
    if args.grid:
        if "auto" in args.strategies and all(b in args.strategies for b in GRID_BASELINES):
            failures += grid_targets(results, variants)
        else:
            failures.append(f"auto and every grid baseline ({', '.join(GRID_BASELINES)}) must be in --strategies")
    elif "auto" in args.strategies and all(b in args.strategies for b in TARGET_BASELINES):
        failures += auto_targets(results)
        lodo_table(results, variants)
    else:
        failures.append("auto and every target baseline must be in --strategies to check the targets")
    speed = imported_speed if args.skip_speed else speed_100k(
        extra=[sp for sp in args.strategies if sp.startswith("auto:")])
    if speed is not None:
        print(f"\nselection time, one round, synthetic pool {speed['n_pool']} x {speed['d']}, "
              f"{speed['n_labeled']} labeled, budget {speed['budget']} "
              f"(load average {speed['load_average'][0]:.1f} on {os.cpu_count()} cores):")
        print(f"  {'strategy':18s} {'wall_s':>7s} {'cpu_s':>7s}")
        for name, s in speed["seconds"].items():
            c = speed["cpu_seconds"][name]
            print(f"  {name:18s} {s:7.2f} {c:7.2f}" + ("   > 10 s: MISSED" if c > 10 else ""))
            # Judged on the process's CPU seconds (all threads): on a shared machine wall time
            # measures the other tenants' load as much as the strategy.
            if c > 10:
                failures.append(f"{name} takes {c:.1f} CPU s on the 100k pool (> 10 s)")
    payload = {"datasets": results, "speed_100k": speed, "targets_missed": failures,
               "command": " ".join(sys.argv)}
    (out / "results.json").write_text(json.dumps(payload, indent=1))
    print(f"\nJSON: {out / 'results.json'}; curves: " + ", ".join(str(out / f"curve_{d}.png") for d in results))
    if failures:
        print("TARGETS MISSED:\n  " + "\n  ".join(failures))
        return 1
    print("all targets met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
