"""Benchmark: consensus labels from several annotators, against a reference, side by side in one run.

Real crowds (no method sees the reference):

* ``snow2008_rte``: Snow et al. (2008) RTE, 800 items x 10 real MTurk votes (dense), reference = the
  RTE-1 expert label.
* ``snow2008_rte-sparse``: the same real votes, keeping 1-3 randomly drawn votes per item (seeded).
* ``hs_brexit-heldout``, ``md_agreement-heldout``: LeWiDi 2023's HS-Brexit (6 annotators on every
  tweet) and MD-Agreement (5 of 819 MTurk workers per tweet; 4,000 tweets drawn): 1-3 of each item's
  votes are the input, the majority of its other votes the reference (items whose held-out votes tie
  are not scored). There is no expert label; the held-out votes are a noisy reference, so accuracy
  and ECE against it understate a method that is right where the crowd is wrong.

Simulated crowds on real texts (the shared sets' own labels as the reference; :func:`realistic_crowd`):
``banking77-crowd``, ``ag_news-crowd``, ``emotion-crowd``: 1,200 items, 1-3 votes each from 120
annotators with Zipf workloads, accuracies from Beta(5, 2), 5% spammers, and errors that go to the
classes the data find similar (a clean model's confusions, the class centroids).

Methods: ``majority`` (ties at random, seeded), selector ``dawid_skene``, selector ``model`` (the
default: out-of-fold model and one-coin annotators, weighted by how well each predicts the votes),
crowd-kit ``MajorityVote`` and ``DawidSkene``, and cleanlab's ``get_label_quality_multiannotator``
(CROWDLAB) with out-of-fold probabilities of the same classifier trained on majority-vote labels
(cleanlab's documented workflow).

Metrics: accuracy of the consensus vs the reference; the expected calibration error (10 bins) of
each method's consensus-quality score as P(consensus right); the average precision with which the
score (low = suspect) finds the method's own wrong labels; for the default, how many items are
below 0.8 and how many of them are wrong, and how many labels no annotator gave.

Targets (exit 1 when missed), in every setting:
* the default at or above majority vote and CROWDLAB, within the seed spread (the standard
  deviation over seeds of the paired difference; 0 on the one-seed dense set);
* the default's quality ECE at most 0.05;
* selector's Dawid-Skene within 0.005 of crowd-kit's on the dense set.

Run: python scripts/bench_consensus.py   (needs the ``bench`` extra: cleanlab, crowd-kit)
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import average_precision_score  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_common  # noqa: E402
from selector.models.classifiers import make_classifier, out_of_fold_proba  # noqa: E402

from selector.quality.agreement import encode_ratings  # noqa: E402
from selector.quality.annotations import prepare_annotations  # noqa: E402
from selector.quality.consensus import columns_in_order, consensus_from_codes  # noqa: E402

METHODS = ("majority", "selector_dawid_skene", "selector_default", "crowdkit_mv", "crowdkit_ds", "cleanlab_crowdlab")
SHORT = {"majority": "MV", "selector_dawid_skene": "S-DS", "selector_default": "S-default",
         "crowdkit_mv": "CK-MV", "crowdkit_ds": "CK-DS", "cleanlab_crowdlab": "CROWDLAB"}


def snow(seed: int, sparse: bool):
    df = bench_common.load_dataset("snow2008_rte")
    if sparse:
        rng = np.random.default_rng(seed)
        shuffled = df.iloc[rng.permutation(len(df))]
        keep_n = pd.Series(rng.integers(1, 4, size=df["item_id"].nunique()), index=sorted(df["item_id"].unique()))
        rank = shuffled.groupby("item_id").cumcount().to_numpy()
        shuffled = shuffled[rank < keep_n.reindex(shuffled["item_id"]).to_numpy()]
        df = shuffled.sort_values(["item_id", "annotator"], kind="stable")
    ann = df[["item_id", "annotator", "label"]]
    items = df.drop_duplicates("item_id").set_index("item_id")
    return ann, items["text"], items["gold_label"]


def realistic_crowd(name: str, seed: int, n_items: int = 1200, n_annotators: int = 120, spam_share: float = 0.05,
                    votes=(1, 3)):
    """A sparse crowd on a shared single-label set (its own labels as gold), with the faults real crowds have.

    Each item gets 1-3 votes from :class:`bench_common.SimulatedCrowd`'s ``n_annotators`` (Zipf
    workloads, accuracies from Beta(5, 2), ``spam_share`` spammers, errors toward the classes the
    data find similar).

    Returns
    -------
    ann : DataFrame (item_id, annotator, label); texts : Series; gold : Series; X : DataFrame (n_items, d)
    """
    df, X = bench_common.dataset_embeddings(name)
    rng = np.random.default_rng(2000 + seed)
    pos = np.sort(rng.choice(len(df), size=min(n_items, len(df)), replace=False))
    sub, Xs = df.iloc[pos].reset_index(drop=True), X[pos]
    gold = sub["label"].to_numpy()
    classes = np.unique(gold)
    g_idx = np.searchsorted(classes, gold)
    clean_p, clean_cls = out_of_fold_proba(make_classifier(random_state=seed), Xs, gold, random_state=seed)
    clean_p = columns_in_order(clean_p, clean_cls, classes)
    crowd = bench_common.SimulatedCrowd(Xs, g_idx, clean_p, rng, n_annotators=n_annotators, spam_share=spam_share)
    rows = []
    for i in range(len(sub)):
        for a in rng.choice(n_annotators, size=int(rng.integers(votes[0], votes[1] + 1)), replace=False,
                            p=crowd.workload):
            rows.append((f"i{i:05d}", f"w{a:03d}", classes[crowd.vote(i, a, rng)]))
    ann = pd.DataFrame(rows, columns=["item_id", "annotator", "label"])
    ids = np.array([f"i{i:05d}" for i in range(len(sub))])
    return (ann, pd.Series(sub["text"].to_numpy(), index=ids), pd.Series(gold, index=ids),
            pd.DataFrame(Xs, index=ids))


def heldout_votes(name: str, seed: int, max_items: int | None = None, votes=(1, 3)):
    """A real crowd's own votes, split per item: 1-3 drawn as the input, the majority of the rest as the reference.

    LeWiDi's sets have no expert label; an item's held-out votes (3 or more of the same crowd, that no
    method sees) are the nearest thing. Items whose held-out votes tie are kept in the input and left
    out of the scoring (their reference is NaN).
    """
    df = bench_common.load_dataset(name)
    rng = np.random.default_rng(3000 + seed)
    items = np.sort(df["item_id"].unique())
    if max_items is not None and items.size > max_items:
        items = np.sort(rng.choice(items, size=max_items, replace=False))
        df = df[df["item_id"].isin(set(items))]
    df = df.iloc[rng.permutation(len(df))]
    rank = df.groupby("item_id").cumcount().to_numpy()
    take = pd.Series(rng.integers(votes[0], votes[1] + 1, size=items.size), index=items)
    inp = rank < take.reindex(df["item_id"]).to_numpy()
    ann = df[inp].sort_values(["item_id", "annotator"], kind="stable")[["item_id", "annotator", "label"]]
    rest = df[~inp].groupby(["item_id", "label"]).size().unstack(fill_value=0)
    top = rest.max(axis=1)
    tied = (rest.eq(top, axis=0)).sum(axis=1) > 1
    ref = rest.idxmax(axis=1).astype(object)
    ref[tied] = np.nan
    texts = df.drop_duplicates("item_id").set_index("item_id")["text"]
    return ann.reset_index(drop=True), texts, ref.reindex(items)


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> float:
    """ECE with ``n_bins`` equal-width bins on [0, 1]: sum over bins of share x |accuracy - mean confidence|."""
    confidence = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - confidence[m].mean())
    return float(ece)


def evaluate(ann: pd.DataFrame, texts: pd.Series, gold: pd.Series, seed: int, X_by_item=None) -> dict:
    """Every method on one crowd; accuracy, quality AP and ECE on the items with a reference label."""
    from cleanlab.multiannotator import get_label_quality_multiannotator
    from crowdkit.aggregation import DawidSkene, MajorityVote

    codes = encode_ratings(prepare_annotations(ann))
    items = codes.items
    if X_by_item is None:
        X = bench_common.embed(texts.reindex(items).tolist(), show_progress=False)
    else:
        X = X_by_item.reindex(items).to_numpy(dtype=np.float32)
    ref = gold.reindex(items)
    scored = ref.notna().to_numpy()
    g = ref.to_numpy().astype(str)
    labels = codes.labels.astype(str)
    out, quality = {}, {}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small-class and convergence warnings are figures here, not news
        mv = consensus_from_codes(codes, method="majority")
        rng = np.random.default_rng(seed)
        top = mv.counts == mv.counts.max(axis=1, keepdims=True)
        pick = np.array([rng.choice(np.flatnonzero(r)) for r in top])
        out["majority"] = labels[pick]
        quality["majority"] = mv.quality
        ds = consensus_from_codes(codes, method="dawid_skene")
        out["selector_dawid_skene"], quality["selector_dawid_skene"] = ds.label.astype(str), ds.quality
        default = consensus_from_codes(codes, method="model", X=X, random_state=seed)
        out["selector_default"], quality["selector_default"] = default.label.astype(str), default.quality
    seconds = time.perf_counter() - t0
    ck = pd.DataFrame({"worker": ann["annotator"].astype(str), "task": ann["item_id"].astype(str),
                       "label": ann["label"].astype(str)})
    out["crowdkit_mv"] = MajorityVote().fit_predict(ck).reindex(items).to_numpy().astype(str)
    out["crowdkit_ds"] = DawidSkene(n_iter=100).fit_predict(ck).reindex(items).to_numpy().astype(str)
    # CROWDLAB: out-of-fold probabilities of the same classifier trained on majority-vote labels.
    proba_mv, cls_mv = out_of_fold_proba(make_classifier(random_state=seed), X, out["majority"], random_state=seed)
    pred = columns_in_order(proba_mv, cls_mv, labels)
    grid = np.full((items.size, codes.annotators.size), np.nan)
    grid[codes.item, codes.annotator] = codes.label
    wide = pd.DataFrame(grid, columns=codes.annotators)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cl = get_label_quality_multiannotator(wide, pred, verbose=False)
    lq = cl["label_quality"]
    out["cleanlab_crowdlab"] = labels[lq["consensus_label"].to_numpy().astype(int)]
    quality["cleanlab_crowdlab"] = lq["consensus_quality_score"].to_numpy()
    unvoted = (codes.counts[np.arange(items.size), np.searchsorted(labels, out["selector_default"])] == 0)
    res = {"n_items": int(items.size), "n_scored": int(scored.sum()), "n_ratings": int(codes.item.size),
           "n_annotators": int(codes.annotators.size), "n_classes": int(labels.size),
           "ratings_per_item": float(codes.item.size / items.size), "default_seconds": seconds,
           "default_model_accuracy": default.model_accuracy, "default_unvoted_labels": int(unvoted.sum()),
           "default_below_08": int((default.quality[scored] < 0.8).sum()),
           "default_wrong_below_08": int(((default.quality < 0.8) & (out["selector_default"] != g))[scored].sum()),
           "default_wrong": int((out["selector_default"] != g)[scored].sum()),
           "accuracy": {}, "quality_ap": {}, "ece": {}}
    for m in METHODS:
        right = (out[m] == g)[scored]
        res["accuracy"][m] = float(right.mean())
        if m in quality:
            q = quality[m][scored]
            res["quality_ap"][m] = float(average_precision_score(~right, -q)) if (~right).any() else float("nan")
            res["ece"][m] = expected_calibration_error(q, right)
    return res


def suspects_with_votes(seed: int) -> dict:
    """snow2008_rte: one randomly drawn worker's label per item is "the data"; its errors (vs gold) are
    what a suspect list should find, without and with the other workers' votes (--annotations)."""
    from selector.round.suspects import add_votes, find_suspects

    df = bench_common.load_dataset("snow2008_rte")
    rng = np.random.default_rng(seed)
    one = df.iloc[rng.permutation(len(df))].drop_duplicates("item_id").sort_values("item_id", kind="stable")
    X = bench_common.embed(one["text"].tolist(), show_progress=False)
    y, gold, ids = one["label"].to_numpy(), one["gold_label"].to_numpy(), one["item_id"].to_numpy().astype(str)
    wrong = y != gold
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = find_suspects(X, y, random_state=seed, texts=one["text"].tolist())
        voted = add_votes(find_suspects(X, y, random_state=seed, texts=one["text"].tolist()), ids,
                          encode_ratings(prepare_annotations(df[["item_id", "annotator", "label"]])))
    for name, r in (("without votes", plain), ("with votes", voted)):
        f = r.flagged
        tp = int((f & wrong).sum())
        out[name] = {"listed": int(f.sum()), "precision": tp / max(int(f.sum()), 1), "recall": tp / max(int(wrong.sum()), 1),
                     "f1": 2 * tp / max(int(f.sum()) + int(wrong.sum()), 1),
                     "ap": float(average_precision_score(wrong, r.score)), "estimated_rate": float(r.error_rate[0])}
    out["true_errors"] = int(wrong.sum())
    return out


def with_machine(name: str, seed: int) -> dict:
    """The realistic crowd of ``name`` plus a machine annotator ``prelabeler`` that labels every item.

    The pre-labeler stands in for an LLM: another model family (TF-IDF words + logistic regression)
    trained on 2,000 rows of the same set that are not crowd items, so its errors are its own, not
    the consensus model's. Consensus accuracy vs gold without it, with it among the voters
    (``--machine-annotators prelabeler``), and the machine alone; the report's accuracy estimate
    (vs the human consensus) beside its true accuracy.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    from selector.quality.consensus import consensus

    ann, texts, gold, X = realistic_crowd(name, seed)
    df = bench_common.load_dataset(name)
    rng = np.random.default_rng(7000 + seed)
    outside = df[~df["text"].isin(set(texts))]
    train = outside.iloc[rng.permutation(len(outside))[:2000]]
    model = make_pipeline(TfidfVectorizer(min_df=2, ngram_range=(1, 2)), LogisticRegression(C=10, max_iter=2000))
    model.fit(train["text"].tolist(), train["label"].astype(str))
    said = model.predict(texts.tolist())
    machine = pd.DataFrame({"item_id": texts.index, "annotator": "prelabeler", "label": said})
    both = pd.concat([ann, machine], ignore_index=True)
    out = {"machine_true_accuracy": float((said == gold.reindex(texts.index).to_numpy()).mean())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for what, votes, machines in (("humans only", ann, ()), ("with the machine", both, ("prelabeler",))):
            items = np.sort(votes["item_id"].unique())
            res = consensus(votes, embeddings=X.reindex(items).to_numpy(dtype=np.float32), random_state=seed,
                            machine_annotators=machines)
            out[what] = float((res.label.astype(str) == gold.reindex(res.items).to_numpy().astype(str)).mean())
            if machines:
                rep = res.machine_report
                out["machine_reported_accuracy"] = float(rep.loc[rep["label"] == "(all)", "accuracy"].iloc[0])
    out["machine alone"] = out["machine_true_accuracy"]
    return out


def settings(seeds: int):
    """(name, what it is, seeds, loader(seed) -> (annotations, texts, reference, embeddings or None))."""
    return [
        ("snow2008_rte", "real MTurk, 10 votes, expert gold", 1, lambda s: (*snow(s, sparse=False), None)),
        ("snow2008_rte-sparse", "real MTurk, 1-3 votes, expert gold", seeds, lambda s: (*snow(s, sparse=True), None)),
        ("hs_brexit-heldout", "real, 1-3 of 6 votes, held-out votes", seeds,
         lambda s: (*heldout_votes("lewidi_hs_brexit", s), None)),
        ("md_agreement-heldout", "real MTurk, 1-3 of 5 votes, held-out votes", seeds,
         lambda s: (*heldout_votes("lewidi_md_agreement", s, max_items=4000), None)),
        ("banking77-crowd", "simulated sparse crowd, 77 classes", seeds, lambda s: realistic_crowd("banking77", s)),
        ("ag_news-crowd", "simulated sparse crowd, 4 classes", seeds, lambda s: realistic_crowd("ag_news", s)),
        ("emotion-crowd", "simulated sparse crowd, 6 classes", seeds, lambda s: realistic_crowd("emotion", s)),
    ]


def paired_spread(runs: list[dict], a: str, b: str) -> float:
    """Seed standard deviation of accuracy(a) - accuracy(b) (0 with one seed)."""
    d = [r["accuracy"][a] - r["accuracy"][b] for r in runs]
    return float(np.std(d, ddof=1)) if len(d) > 1 else 0.0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench_out/consensus.json"))
    ap.add_argument("--settings", nargs="*", default=None, help="run only these settings (checks need all)")
    ap.add_argument("--skip-suspects", action="store_true", help="leave out the suspect-list section")
    ap.add_argument("--skip-machine", action="store_true", help="leave out the machine-annotator section")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    runs = []
    chosen = settings(args.seeds)
    if args.settings:
        chosen = [s for s in chosen if s[0] in args.settings]
    for name, what, n_seeds, load in chosen:
        for seed in range(n_seeds):
            ann, texts, gold, X = load(seed)
            r = evaluate(ann, texts, gold, seed, X_by_item=X)
            runs.append({"setting": name, "what": what, "seed": seed, **r})
            print(f"  {name} seed {seed}: " + " ".join(f"{SHORT[m]} {r['accuracy'][m]:.3f}" for m in METHODS)
                  + f"  | default ECE {r['ece']['selector_default']:.3f}, labels no voter gave "
                    f"{r['default_unvoted_labels']}, {r['default_seconds']:.1f} s", flush=True)
    table = {}
    for name, what, _, _ in chosen:
        rs = [r for r in runs if r["setting"] == name]
        table[name] = {"what": what, "n_items": rs[0]["n_items"], "n_classes": rs[0]["n_classes"],
                       "n_annotators": float(np.mean([r["n_annotators"] for r in rs])),
                       "n_scored": float(np.mean([r["n_scored"] for r in rs])),
                       "ratings_per_item": float(np.mean([r["ratings_per_item"] for r in rs])), "seeds": len(rs),
                       "accuracy": {m: float(np.mean([r["accuracy"][m] for r in rs])) for m in METHODS},
                       "spread_vs": {b: paired_spread(rs, "selector_default", b) for b in ("majority", "cleanlab_crowdlab")},
                       "quality_ap": {m: float(np.mean([r["quality_ap"][m] for r in rs])) for m in rs[0]["quality_ap"]},
                       "ece": {m: float(np.mean([r["ece"][m] for r in rs])) for m in rs[0]["ece"]},
                       "below_08": float(np.mean([r["default_below_08"] for r in rs])),
                       "wrong_below_08": float(np.mean([r["default_wrong_below_08"] for r in rs])),
                       "wrong": float(np.mean([r["default_wrong"] for r in rs])),
                       "unvoted": float(np.mean([r["default_unvoted_labels"] for r in rs]))}
    print("\nConsensus accuracy vs the reference (mean over seeds; spread = seed std of default - baseline)")
    head = (f"{'setting':<22}{'items':>6}{'k':>4}{'ann':>5}{'r/item':>7}" + "".join(f"{SHORT[m]:>10}" for m in METHODS)
            + f"{'spr(MV)':>9}{'spr(CL)':>9}")
    print(head)
    for name, t in table.items():
        print(f"{name:<22}{t['n_items']:>6}{t['n_classes']:>4}{t['n_annotators']:>5.0f}{t['ratings_per_item']:>7.2f}"
              + "".join(f"{t['accuracy'][m]:>10.3f}" for m in METHODS)
              + f"{t['spread_vs']['majority']:>9.3f}{t['spread_vs']['cleanlab_crowdlab']:>9.3f}")
    qm = ["majority", "selector_dawid_skene", "selector_default", "cleanlab_crowdlab"]
    print("\nConsensus-quality score: expected calibration error (10 bins; lower is better)")
    print(f"{'setting':<22}" + "".join(f"{SHORT[m]:>10}" for m in qm))
    for name, t in table.items():
        print(f"{name:<22}" + "".join(f"{t['ece'][m]:>10.3f}" for m in qm))
    print("\nConsensus-quality score: average precision at finding wrong consensus labels (each method's own)")
    print(f"{'setting':<22}" + "".join(f"{SHORT[m]:>10}" for m in qm))
    for name, t in table.items():
        print(f"{name:<22}" + "".join(f"{t['quality_ap'][m]:>10.3f}" for m in qm))
    print("\nThe default's 'items below 0.8': how many, how many of them are wrong, of all wrong; labels no voter gave")
    for name, t in table.items():
        print(f"{name:<22} below 0.8 {t['below_08']:>7.1f}  wrong among them {t['wrong_below_08']:>7.1f}  "
              f"wrong in all {t['wrong']:>7.1f}  unvoted labels {t['unvoted']:>6.1f}")
    if args.settings:
        print("\n(subset of settings: no target checks)")
        return 0
    sv = [] if args.skip_suspects else [suspects_with_votes(seed) for seed in range(args.seeds)]
    if sv:
        print("\nSuspect list on snow2008_rte (one random worker's label per item as the data; errors vs gold), "
              "`selector suspects` without and with `--annotations` (all 10 workers' votes)")
        print(f"{'':<15}{'listed':>8}{'precision':>11}{'recall':>8}{'F1':>7}{'AP':>7}{'est. rate':>11}  (true rate "
              f"{np.mean([r['true_errors'] for r in sv]) / 800:.3f})")
        for name in ("without votes", "with votes"):
            print(f"{name:<15}" + "".join(f"{np.mean([r[name][m] for r in sv]):>{w}.3f}" if m != "listed" else
                                          f"{np.mean([r[name][m] for r in sv]):>{w}.0f}"
                                          for m, w in (("listed", 8), ("precision", 11), ("recall", 8), ("f1", 7),
                                                       ("ap", 7), ("estimated_rate", 11))))
    mach = [] if args.skip_machine else [dict(with_machine(n, seed), setting=n) for n in ("banking77", "ag_news")
                                         for seed in range(args.seeds)]
    if mach:
        print("\nA machine annotator (TF-IDF + logistic regression pre-labeler, every item) beside the realistic crowd: "
              "consensus accuracy vs gold, and its accuracy as reported (vs the human consensus) and true")
        print(f"{'':<12}{'humans only':>13}{'+ machine':>11}{'machine':>9}{'reported':>10}{'true':>7}")
        for n in ("banking77", "ag_news"):
            rs = [r for r in mach if r["setting"] == n]
            print(f"{n:<12}" + "".join(f"{np.mean([r[k] for r in rs]):>{w}.3f}" for k, w in (
                ("humans only", 13), ("with the machine", 11), ("machine alone", 9), ("machine_reported_accuracy", 10),
                ("machine_true_accuracy", 7))))
    checks = {}
    for n in ("banking77", "ag_news") if mach else ():
        rs = [r for r in mach if r["setting"] == n]
        best_alone = max(np.mean([r["humans only"] for r in rs]), np.mean([r["machine alone"] for r in rs]))
        checks[f"{n}-crowd + machine annotator: consensus >= the better of humans only and the machine alone"] = (
            np.mean([r["with the machine"] for r in rs]) >= best_alone - 1e-12)
    for name, t in table.items():
        acc = t["accuracy"]
        for base in ("majority", "cleanlab_crowdlab"):
            checks[f"{name}: default >= {SHORT[base]} within the spread"] = (
                acc["selector_default"] >= acc[base] - t["spread_vs"][base] - 1e-12)
        checks[f"{name}: quality ECE <= 0.05"] = t["ece"]["selector_default"] <= 0.05
    checks["snow2008_rte: selector Dawid-Skene within 0.005 of crowd-kit's"] = abs(
        table["snow2008_rte"]["accuracy"]["selector_dawid_skene"] - table["snow2008_rte"]["accuracy"]["crowdkit_ds"]) <= 0.005
    print()
    for what, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {what}")
    worst = min(table, key=lambda n: table[n]["accuracy"]["selector_default"]
                - max(table[n]["accuracy"]["majority"], table[n]["accuracy"]["cleanlab_crowdlab"]))
    t = table[worst]
    print(f"worst setting for the default vs the better of MV and CROWDLAB: {worst} "
          f"({t['accuracy']['selector_default'] - max(t['accuracy']['majority'], t['accuracy']['cleanlab_crowdlab']):+.3f}); "
          f"worst ECE: {max(table, key=lambda n: table[n]['ece']['selector_default'])} "
          f"({max(t2['ece']['selector_default'] for t2 in table.values()):.3f})")
    print(f"total benchmark time {time.perf_counter() - t_start:.0f} s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": runs, "table": table, "checks": checks, "suspects_with_votes": sv, "machine_annotator": mach,
                                    "command": "python scripts/bench_consensus.py " + " ".join(sys.argv[1:])},
                                   indent=2, default=float))
    print(f"wrote {args.out}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
