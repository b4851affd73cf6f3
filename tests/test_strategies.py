"""Behaviour of individual strategies (the shared contract is in test_strategies_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest

from selector.errors import ConfigError
from selector.round.compute import build_context, select_batch
from selector.scoring import margin
from selector.strategies import SelectionContext, make_strategy
from selector.kmeans import chunked_nearest
from selector.strategies._geometry import round_robin
from selector.strategies.hybrid import gradient_sq_distances, top_by_score


def _blobs(n: int, k: int = 5, d: int = 24, spread: float = 0.15, seed: int = 0):
    """Well-separated clusters: centre ``c`` owns rows with label ``c``."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, d)) * 3
    y = np.arange(n) % k
    X = centres[y] + spread * rng.normal(size=(n, d))
    return X.astype(np.float32), y


def _cold(X):
    return build_context(X[:0], np.array([], dtype=object), X, random_state=0)


def test_chunked_nearest_matches_dense():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 8)).astype(np.float32)
    C = rng.normal(size=(7, 8)).astype(np.float32)
    labels, d2 = chunked_nearest(X, C, chunk=128)
    dense = ((X[:, None, :] - C[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, dense.argmin(1))
    np.testing.assert_allclose(d2, dense.min(1), rtol=1e-4, atol=1e-4)


def test_round_robin_takes_one_per_cluster_per_pass():
    clusters = np.array([0, 0, 0, 1, 1, 2])
    priority = np.array([1.0, 3.0, 2.0, 5.0, 4.0, 0.0])
    picks, pass_no = round_robin(clusters, priority, np.array([2, 0, 1]), 5)
    assert picks.tolist() == [5, 1, 3, 2, 4]
    assert pass_no.tolist() == [0, 0, 0, 1, 1]


@pytest.mark.parametrize("name", ["kmeans", "typiclust"])
def test_diversity_cold_start_covers_every_cluster(name):
    X, y = _blobs(500)
    sel = make_strategy(name).select(_cold(X), 5, random_state=0)
    assert sorted(y[sel.indices].tolist()) == [0, 1, 2, 3, 4]
    assert len(sel.info["cluster"]) == 5


def test_random_cold_start_misses_clusters_sometimes():
    # The check above is not trivially true: random sampling of 5 misses a cluster most of the time.
    X, y = _blobs(500)
    misses = sum(len(set(y[make_strategy("random").select(_cold(X), 5, random_state=s).indices])) < 5
                 for s in range(20))
    assert misses >= 10


def test_typiclust_prefers_uncovered_clusters_and_typical_rows():
    X, y = _blobs(600, k=4)
    covered = np.flatnonzero(y == 0)[:40]
    rest = np.setdiff1d(np.arange(600), covered)
    context = build_context(X[covered], y[covered].astype(str), X[rest], random_state=0)
    sel = make_strategy("typiclust").select(context, 3, random_state=0)
    assert 0 not in y[rest][sel.indices]
    # The typical row of a blob sits near its centre, not on its edge.
    blob = rest[y[rest] == y[rest][sel.indices[0]]]
    dist = np.linalg.norm(X[blob] - X[blob].mean(0), axis=1)
    picked = np.linalg.norm(X[rest][sel.indices[0]] - X[blob].mean(0))
    assert picked <= np.quantile(dist, 0.25)


def test_coreset_picks_far_from_labeled():
    X, y = _blobs(400, k=4)
    lab = np.flatnonzero(y <= 1)[:50]
    rest = np.setdiff1d(np.arange(400), lab)
    context = build_context(X[lab], y[lab].astype(str), X[rest], random_state=0)
    sel = make_strategy("coreset").select(context, 2, random_state=0)
    assert set(y[rest][sel.indices].tolist()) == {2, 3}


def _warm(n=800, k=5, n_lab=50, seed=0, spread=1.2):
    X, y = _blobs(n, k=k, spread=spread, seed=seed)
    return build_context(X[:n_lab], y[:n_lab].astype(str), X[n_lab:], random_state=0), y[n_lab:]


@pytest.mark.parametrize("name", ["margin_kmeans", "cluster_margin"])
def test_hybrids_pick_among_lowest_margin_rows(name):
    context, _ = _warm()
    budget, factor = 10, 4
    sel = make_strategy(name, factor=factor).select(context, budget, random_state=0)
    allowed = set(top_by_score(margin(context.proba_pool), budget * factor).tolist())
    assert set(sel.indices.tolist()) <= allowed
    # Diverse: the picks are not simply the top-10 by margin.
    assert set(sel.indices.tolist()) != set(top_by_score(margin(context.proba_pool), budget).tolist())


def test_margin_kmeans_one_pick_per_cluster():
    context, _ = _warm()
    sel = make_strategy("margin_kmeans").select(context, 12, random_state=0)
    assert np.unique(sel.info["cluster"]).size == 12


def test_margin_kmeans_centre_weight_moves_each_clusters_pick_from_its_most_uncertain_row_to_its_centre():
    """Weight 0: each cluster's most uncertain candidate; weight 1: the candidate nearest its k-means
    centre (Zhdanov's original); the clusters are the same, and bad weights are refused."""
    from selector.kmeans import cluster_pool

    context, _ = _warm()
    budget = 8
    unc = margin(context.proba_pool)
    cand = top_by_score(unc, 10 * budget)
    _, labels, sq_dist = cluster_pool(context.X_pool[cand], budget, np.random.default_rng(0))
    for weight, key in ((0.0, -unc[cand]), (1.0, np.asarray(sq_dist, dtype=np.float64))):
        sel = make_strategy("margin_kmeans", centre_weight=weight).select(context, budget, random_state=0)
        assert sorted(sel.info["cluster"].tolist()) == list(range(budget))
        for pos, c in zip(sel.indices, sel.info["cluster"]):
            members = np.flatnonzero(labels == c)
            assert cand[members[np.argmin(key[members])]] == pos
    between = make_strategy("margin_kmeans", centre_weight=0.5).select(context, budget, random_state=0)
    assert all("uncertain and central (centre weight 0.50)" in r for r in between.reasons)
    for bad in (-0.1, 1.5, True, "x"):
        with pytest.raises((ValueError, ConfigError)):
            make_strategy("margin_kmeans", centre_weight=bad)


def test_auto_leans_its_uncertain_picks_to_the_centre_as_far_as_the_model_is_unsettled():
    """Past the switch, auto's uncertain picks carry centre weight 1 - prediction stability: shuffled
    labels (an unsettled model) give a large weight, separable ones almost none; stability_pick=False
    takes each cluster's most uncertain row."""
    from selector.strategies.auto import prediction_stability

    X, y = _blobs(800, k=4, spread=1.0)
    weights = []
    for labels in (y[:60].astype(str), np.random.default_rng(4).permutation(y[:60]).astype(str)):
        context = build_context(X[:60], labels, X[60:], random_state=0)
        weight = 1.0 - prediction_stability(context, random_state=0)
        weights.append(weight)
        sel = make_strategy("auto", switch_per_class=5).select(context, 8, random_state=0)
        assert sel.info["branch"] == "uncertain+diverse"
        if weight:
            assert all(f"uncertain and central (centre weight {weight:.2f})" in r for r in sel.reasons)
        else:
            assert not any("central" in r for r in sel.reasons)
        plain = make_strategy("margin_kmeans", centre_weight=weight).select(context, 8, random_state=0)
        assert sel.indices.tolist() == plain.indices.tolist()
        off = make_strategy("auto", switch_per_class=5, stability_pick=False).select(context, 8, random_state=0)
        assert not any("central" in r for r in off.reasons)
    assert weights[0] < 0.05 < 0.3 < weights[1]  # separable: settled; shuffled: unsettled
    with pytest.raises((ValueError, ConfigError)):
        make_strategy("auto", stability_pick="yes")


def test_cluster_margin_reuses_its_clustering_across_rounds():
    from selector.strategies import _geometry

    X, y = _blobs(700, spread=1.0, seed=2)
    strat = make_strategy("cluster_margin", n_clusters=20)
    ctx1 = build_context(X[:50], y[:50].astype(str), X[50:], random_state=0)
    strat.select(ctx1, 10, random_state=0)
    keys = set(_geometry._CACHE)
    # Next round: 10 rows moved from the pool to the labeled set; same data, same clustering.
    ctx2 = build_context(X[:60], y[:60].astype(str), X[60:], random_state=0)
    strat.select(ctx2, 10, random_state=0)
    assert set(_geometry._CACHE) == keys


def test_badge_factorised_distances_equal_explicit_gradient_embeddings():
    rng = np.random.default_rng(0)
    P = rng.dirichlet(np.ones(4), size=30)
    X = rng.normal(size=(30, 6)).astype(np.float32)
    A = P.astype(np.float32)
    A[np.arange(30), P.argmax(1)] -= 1
    G = np.einsum("ik,id->ikd", A, np.hstack([X, np.ones((30, 1), np.float32)])).reshape(30, -1)
    g_sq = np.einsum("ij,ij->i", A, A) * (np.einsum("ij,ij->i", X, X) + 1)
    np.testing.assert_allclose(g_sq, (G ** 2).sum(1), rtol=1e-5)
    for j in (0, 7, 29):
        np.testing.assert_allclose(gradient_sq_distances(A, X, g_sq, j), ((G - G[j]) ** 2).sum(1),
                                   rtol=1e-4, atol=1e-4)


def test_badge_first_pick_is_largest_gradient():
    context, _ = _warm()
    P = context.proba_pool
    a = P.copy()
    a[np.arange(len(P)), P.argmax(1)] -= 1
    norms = (a ** 2).sum(1) * ((context.X_pool.astype(np.float64) ** 2).sum(1) + 1)
    sel = make_strategy("badge").select(context, 5, random_state=0)
    assert sel.indices[0] == int(np.argmax(norms))


def test_class_balanced_caps_and_guarantees():
    context, _ = _warm(k=4, spread=2.0)
    pred = context.proba_pool.argmax(1)
    budget = 20
    sel = make_strategy("class_balanced", base="margin", max_share=0.3).select(context, budget, random_state=0)
    counts = np.bincount(pred[sel.indices], minlength=4)
    assert counts.max() <= int(np.ceil(0.3 * budget))
    assert (counts[np.bincount(pred, minlength=4) > 0] >= 1).all()
    assert all("class_balanced" in r for r in sel.reasons)


def _rare_class_context(seed: int):
    """Three labeled rows of a rare class among 80 of each common one (pool: 300 + 300 + 12 rare rows at
    positions 600-611); the rare class sits off to a's side, far from the a/b boundary where margin looks,
    and the fitted model predicts it nowhere."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(seed)
    centers = {"a": [1, 0, 0], "b": [0, 1, 0], "rare": [0.7, -0.2, 0.68]}
    def cloud(c, n, sd=0.08):
        X = np.asarray(centers[c]) + sd * rng.normal(size=(n, 3))
        return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    X_lab = np.vstack([cloud("a", 80), cloud("b", 80), cloud("rare", 3)])
    y_lab = np.array(["a"] * 80 + ["b"] * 80 + ["rare"] * 3, dtype=object)
    X_pool = np.vstack([cloud("a", 300), cloud("b", 300), cloud("rare", 12)])
    model = LogisticRegression(C=0.05).fit(X_lab, y_lab)
    return SelectionContext(X_pool, X_lab, y_lab, proba_pool=model.predict_proba(X_pool),
                            classes=model.classes_.astype(object), classifier=model)


def test_class_balanced_explores_around_a_rare_class_the_model_never_predicts():
    """The model predicts the rare class nowhere, yet the reserved rows sit next to its labeled rows
    and their reasons name it."""
    context = _rare_class_context(0)
    rare_rows = set(range(600, 612))
    old = make_strategy("class_balanced", explore=False, min_per_class=3).select(context, 10, random_state=0)
    new = make_strategy("class_balanced", min_per_class=3).select(context, 10, random_state=0)
    assert "rare" not in set(context.classes[context.proba_pool.argmax(1)])
    explored = [int(p) for p, r in zip(new.indices, new.reasons) if "explores around rare class rare (3 labeled)" in r]
    assert len(explored) == 3 and set(explored) <= rare_rows  # the reserved rows are the rare class's neighbours
    assert len(set(new.indices.tolist()) & rare_rows) >= len(set(old.indices.tolist()) & rare_rows)
    with pytest.raises(ConfigError):
        make_strategy("class_balanced", explore="yes")


def test_auto_reserves_a_share_for_rare_classes_around_their_labels():
    """auto with ``rare_share``: a class with fewer than ``rare_ratio`` x the median class's labels gets
    up to that share of the batch, from the rows around its labeled ones; the reasons name it and its count."""
    context = _rare_class_context(1)
    X_pool, X_lab, y_lab = context.X_pool, context.X_labeled, context.y_labeled
    plain = make_strategy("auto", switch_per_class=10, rare_share=0).select(context, 10, random_state=0)
    rare = make_strategy("auto").select(context, 10, random_state=0)  # the defaults: 10 per class, half for rare
    reserved = [int(p) for p, r in zip(rare.indices, rare.reasons) if r.startswith("auto[rare class: rare has 3 labels")]
    assert len(reserved) == 5 and set(reserved) <= set(range(600, 612))
    assert len(set(rare.indices.tolist())) == 10 and rare.info["n_rare"] == 5
    assert len(set(plain.indices.tolist()) & set(range(600, 612))) < 5
    # Balanced labels: nothing is reserved and the batch is the plain one.
    even = SelectionContext(X_pool, X_lab[:160], y_lab[:160], proba_pool=context.proba_pool[:, :2] /
                            context.proba_pool[:, :2].sum(1, keepdims=True), classes=np.array(["a", "b"], dtype=object))
    assert make_strategy("auto", switch_per_class=10, rare_share=0.5).select(even, 10, random_state=0).info["n_rare"] == 0
    # Shares that add up past the batch: the rare half is reserved first and exploration takes only what is
    # left, so the batch is still exactly its budget (it once returned 12 rows for 10).
    crowded = make_strategy("auto", rare_share=0.6, explore=0.6, explore_with="random").select(context, 10,
                                                                                             random_state=0)
    assert crowded.indices.size == 10 and np.unique(crowded.indices).size == 10
    assert crowded.info["n_rare"] == 6 and crowded.info["n_explore"] == 4
    for bad in ({"rare_share": 1.0}, {"rare_ratio": 0}, {"explore_with": "margin"}):
        with pytest.raises(ConfigError):
            make_strategy("auto", **bad)


def test_class_balanced_rejects_bad_params():
    with pytest.raises(ConfigError):
        make_strategy("class_balanced", max_share=0)
    with pytest.raises(ConfigError, match="unknown strategy"):
        make_strategy("class_balanced", base="margn")


def test_auto_branches_and_reasons():
    X, y = _blobs(600, k=4, spread=1.0)
    cold = make_strategy("auto").select(_cold(X), 8, random_state=0)
    assert all(r.startswith("auto[diverse: 0 labeled rows]") for r in cold.reasons)
    few = build_context(X[:4], y[:4].astype(str), X[4:], random_state=0)  # 1 label per class
    assert make_strategy("auto").branch(few)[0] == "cold"
    many = build_context(X[:80], y[:80].astype(str), X[80:], random_state=0)
    sel = make_strategy("auto", explore=0.25, explore_until=None).select(many, 8, random_state=0)
    assert sum(r.startswith("auto[uncertain+diverse") for r in sel.reasons) == 6
    assert sum(r.startswith("auto[explore") for r in sel.reasons) == 2
    assert np.unique(sel.indices).size == 8
    # Opt-in: 15% core-set exploration (rows far from every label) while labels per class < 15.
    explorer = make_strategy("auto", explore=0.15, explore_with="coreset", explore_until=15)
    early = build_context(X[:48], y[:48].astype(str), X[48:], random_state=0)  # 12 per class: hybrid, exploring
    sel = explorer.select(early, 20, random_state=0)
    explored = [r for r in sel.reasons if r.startswith("auto[explore: up to 15% of the batch] ")]
    assert len(explored) == 3 and all("coreset" in r for r in explored)
    assert explorer.select(many, 20, random_state=0).info["n_explore"] == 0  # 20 per class: over
    assert make_strategy("auto").select(early, 20, random_state=0).info["n_explore"] == 0  # the default: none


def test_neighbour_label_kappa_reads_whether_neighbourhoods_follow_the_labels():
    from selector.strategies.auto import neighbour_label_kappa

    X, y = _blobs(120, k=4, spread=0.3)
    assert neighbour_label_kappa(X, y.astype(str)) == pytest.approx(1.0)  # every nearest row shares the label
    shuffled = np.random.default_rng(1).permutation(y).astype(str)
    assert abs(neighbour_label_kappa(X, shuffled)) < 0.2  # labels unrelated to the clusters
    assert neighbour_label_kappa(X[:2], y[:2].astype(str)) is None  # too few rows
    assert neighbour_label_kappa(X, np.full(120, "a")) is None  # one label
    # Above max_rows a seeded sample is compared: same answer for the same seed.
    assert (neighbour_label_kappa(X, shuffled, max_rows=50, random_state=3)
            == neighbour_label_kappa(X, shuffled, max_rows=50, random_state=3))


def test_auto_mixes_uncertain_rows_into_a_diverse_batch_only_when_labels_ignore_neighbourhoods():
    X, y = _blobs(600, k=4, spread=1.0)
    # 5 labels per class: the diverse branch, with a classifier.
    # (stability_mix=False: the kappa gate alone; the stability share is tested below.)
    aligned = build_context(X[:20], y[:20].astype(str), X[20:], random_state=0)
    sel = make_strategy("auto", stability_mix=False).select(aligned, 10, random_state=0)
    assert sel.info["branch"] == "diverse" and not any(r.startswith("auto[mix") for r in sel.reasons)
    # The same rows with labels unrelated to the clusters (as question types across topics): half the
    # batch comes from the uncertain+diverse branch, and each such row says why.
    y_odd = np.random.default_rng(2).permutation(np.arange(20) % 4).astype(str)
    unaligned = build_context(X[:20], y_odd, X[20:], random_state=0)
    sel = make_strategy("auto", stability_mix=False).select(unaligned, 10, random_state=0)
    mixed = [r for r in sel.reasons if r.startswith("auto[mix: 50% uncertain: labels agree with their nearest "
                                                    "labeled neighbour's at kappa ")]
    assert sel.info["branch"] == "diverse" and len(mixed) == 5 and np.unique(sel.indices).size == 10
    assert "< 0.45]" in mixed[0]
    # mix_below=None mixes whatever the labels; cold_mix=0 never does.
    always = make_strategy("auto", mix_below=None, stability_mix=False).select(aligned, 10, random_state=0)
    assert sum(r.startswith("auto[mix: 50% uncertain]") for r in always.reasons) == 5
    assert not any(r.startswith("auto[mix") for r in make_strategy("auto", cold_mix=0, stability_mix=False)
                   .select(unaligned, 10, random_state=0).reasons)
    for bad in ({"mix_below": 2}, {"mix_below": True}, {"mix_below": "x"}, {"stability_mix": "yes"}):
        with pytest.raises(ConfigError):
            make_strategy("auto", **bad)


def test_prediction_stability_reads_whether_half_the_labels_would_give_the_same_model():
    from selector.strategies.auto import prediction_stability

    X, y = _blobs(600, k=4, spread=1.0)
    settled = build_context(X[:40], y[:40].astype(str), X[40:], random_state=0)  # separable: any half will do
    assert prediction_stability(settled, random_state=0) > 0.95
    noise = np.random.default_rng(3).permutation(np.arange(40) % 4).astype(str)  # labels unrelated to X
    unsettled = build_context(X[:40], noise, X[40:], random_state=0)
    assert prediction_stability(unsettled, random_state=0) < 0.7
    # A half with one class predicts it everywhere: with 1 label per class, each half is a single row.
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit(X[:2], ["a", "b"])
    two = SelectionContext(X[2:], X[:2], np.array(["a", "b"], dtype=object), proba_pool=model.predict_proba(X[2:]),
                           classes=model.classes_, classifier=model)
    share_a = float(np.mean(model.predict(X[2:]) == "a"))
    possible = [(k * share_a + (3 - k) * (1 - share_a)) / 3 for k in range(4)]  # k of the 3 halves drew "a"
    for seed in range(3):
        value = prediction_stability(two, random_state=seed)
        assert any(value == pytest.approx(p, abs=1e-12) for p in possible)
    # Seeded: the same figure for the same seed.
    assert prediction_stability(unsettled, random_state=5) == prediction_stability(unsettled, random_state=5)


def test_auto_takes_the_stability_share_of_a_diverse_batch_from_the_uncertain_rows():
    """5 labels per class (the diverse branch) on separable clusters: a model on half the labels predicts
    the pool as this one does, so the batch's uncertain share follows it, and each such row says why."""
    from selector.strategies.auto import prediction_stability

    X, y = _blobs(600, k=4, spread=1.0)
    aligned = build_context(X[:20], y[:20].astype(str), X[20:], random_state=0)
    stable = prediction_stability(aligned, random_state=0)
    sel = make_strategy("auto").select(aligned, 10, random_state=0)
    mixed = [r for r in sel.reasons if r.startswith(f"auto[mix: {stable:.0%} uncertain: a model on half the "
                                                    "labels predicts")]
    assert sel.info["branch"] == "diverse" and len(mixed) == round(stable * 10) >= 8
    assert np.unique(sel.indices).size == 10
    # The larger share wins: shuffled labels leave the model unsettled (5 of 10 rows at most), and the
    # kappa gate's half is used.
    y_odd = np.random.default_rng(2).permutation(np.arange(20) % 4).astype(str)
    unaligned = build_context(X[:20], y_odd, X[20:], random_state=0)
    assert round(prediction_stability(unaligned, random_state=0) * 10) <= 5
    sel = make_strategy("auto").select(unaligned, 10, random_state=0)
    assert sum(r.startswith("auto[mix: 50% uncertain: labels agree") for r in sel.reasons) == 5


def test_auto_cold_explore_takes_the_rows_farthest_from_the_typical_ones():
    """From zero labels, rows that are never typical (three lone rows, far from two dense groups) are not in
    TypiClust's batch; the opt-in ``cold_explore`` share takes the rows farthest from the typical picks,
    which are those, and says so. (A class at 1.5% of a real pool is in that position:
    docs/benchmarks/bench_selection_settings.md.)"""
    rng = np.random.default_rng(0)
    lone = -np.eye(3, dtype=np.float32)
    X = np.vstack([np.eye(3)[0] + 0.2 * rng.normal(size=(300, 3)), np.eye(3)[1] + 0.2 * rng.normal(size=(300, 3)),
                   lone]).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rare = set(range(600, 603))
    context = _cold(X)
    plain = make_strategy("auto").select(context, 20, random_state=0)
    assert not set(plain.indices.tolist()) & rare and "n_explore" not in plain.info
    explorer = make_strategy("auto", cold_explore=0.15)
    sel = explorer.select(context, 20, random_state=0)
    far = [int(p) for p, r in zip(sel.indices, sel.reasons)
           if r.startswith("auto[explore: 15% of a diverse batch, far from the typical rows] coreset")]
    assert set(far) == rare and sel.info["n_explore"] == 3
    assert np.unique(sel.indices).size == 20 and sel.info["cluster"].size == 20
    # A batch of 50 or more typical rows reaches classes at 2% of the pool on its own: no far picks.
    assert "n_explore" not in explorer.select(context, 60, random_state=0).info
    for bad in ({"cold_explore": 1.0}, {"cold_explore": -0.1}, {"cold_explore_batch": 0}, {"cold_explore_batch": 2.5}):
        with pytest.raises(ConfigError):
            make_strategy("auto", **bad)


def test_auto_looks_for_declared_labels_no_row_has_yet():
    """Two classes labeled, a third declared (``label_set``) but never found: margin looks only at the
    boundary of the two it knows (the third class's lone rows are confidently "a" to the model), and
    ``auto``'s ``unseen_share`` goes to the rows farthest from every label, where those rows are. It names the label it looks for; without a declared
    label set, or once every declared label has a row, nothing is reserved."""
    rng = np.random.default_rng(0)
    X = np.vstack([np.eye(3)[0] + 0.2 * rng.normal(size=(300, 3)), np.eye(3)[1] + 0.2 * rng.normal(size=(300, 3)),
                   np.array([0.5, -0.8, -0.3]) + 0.05 * rng.normal(size=(3, 3))]).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    lab = np.r_[0:15, 300:315]
    y = np.array(["a"] * 15 + ["b"] * 15, dtype=object)
    pool = np.setdiff1d(np.arange(X.shape[0]), lab)
    lone = set(np.flatnonzero(pool >= 600).tolist())
    strategy = make_strategy("auto", switch_per_class=5, unseen_share=0.2)
    context = build_context(X[lab], y, X[pool], random_state=0, label_set=["a", "b", "c"])
    assert context.unseen_labels() == ["c"]
    sel = strategy.select(context, 15, random_state=0)
    unseen = [int(p) for p, r in zip(sel.indices, sel.reasons)
              if r.startswith("auto[unseen class: 1 declared label(s) with no labeled row yet: c] coreset")]
    # Core-set spreads the share: one row of the lone group (the rest of it is then near a pick).
    assert len(set(unseen) & lone) == 1 and len(unseen) == sel.info["n_unseen"] == 3
    assert np.unique(sel.indices).size == 15 and sel.info["cluster"].size == 15
    undeclared = strategy.select(build_context(X[lab], y, X[pool], random_state=0), 15, random_state=0)
    assert not set(undeclared.indices.tolist()) & lone and undeclared.info["n_unseen"] == 0
    all_seen = build_context(X[lab], y, X[pool], random_state=0, label_set=["a", "b"])
    assert strategy.select(all_seen, 15, random_state=0).info["n_unseen"] == 0
    # 30 labels for 3 declared labels: at unseen_until=10 per label, "c" is taken as absent.
    given_up = make_strategy("auto", switch_per_class=5, unseen_share=0.2, unseen_until=10)
    assert given_up.select(context, 15, random_state=0).info["n_unseen"] == 0
    # ... and at unseen_after=12 per label, 10 labels per declared label are too few to call it missed.
    too_early = make_strategy("auto", switch_per_class=5, unseen_share=0.2, unseen_after=12)
    assert too_early.select(context, 15, random_state=0).info["n_unseen"] == 0
    # Still in the diverse branch (few labels per class), the share goes to far rows there too.
    cold = make_strategy("auto", switch_per_class=20, unseen_share=0.2).select(context, 15, random_state=0)
    assert cold.info["branch"] == "diverse" and cold.info["n_unseen"] == 3 and set(cold.indices.tolist()) & lone
    for bad in ({"unseen_share": 1.0}, {"unseen_share": -0.1}, {"unseen_share": True}, {"unseen_until": 0}, {"unseen_after": -1},
                {"cold_mix": 1.0}):
        with pytest.raises(ConfigError):
            make_strategy("auto", **bad)
    with pytest.raises(ConfigError, match="label_set"):
        build_context(X[lab], y, X[pool], label_set="abc")


def test_auto_rejects_a_cold_branch_that_needs_a_model():
    with pytest.raises(ConfigError, match="needs a classifier"):
        make_strategy("auto", cold="margin")


def test_uncertainty_cold_start_warns_and_says_so():
    X, _ = _blobs(200)
    with pytest.warns(UserWarning, match="cold start"):
        sel = make_strategy("margin_kmeans").select(_cold(X), 5, random_state=0)
    assert all("cold start" in r and "typiclust" in r for r in sel.reasons)


def test_select_batch_with_new_strategy():
    X, y = _blobs(300, spread=1.0)
    sel = select_batch(X[:30], y[:30].astype(str), X[30:], 10, strategy="cluster_margin", random_state=0)
    assert len(sel) == 10

