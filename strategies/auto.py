"""``auto``: the default strategy — typical/diverse picks while labels are few, then uncertainty × diversity."""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from selector.strategies.base import (
    Selection,
    SelectionContext,
    Strategy,
    UncertaintyStrategy,
    _number,
)
from selector.strategies.balanced import explore_rare_classes, labeled_class_counts
from selector.strategies.registry import make_strategy, register

from selector.kmeans import subsample
from selector.models.classifiers import fit_classifier

__all__ = ["AutoStrategy", "neighbour_label_kappa", "prediction_stability"]

#: Labeled rows compared by :func:`neighbour_label_kappa` (a seeded sample above it: O(n^2) similarities).
NEIGHBOUR_MAX_ROWS = 2000
#: Median labels per labeled class below which the neighbour kappa is not read: with one or two rows a
#: class, a row's nearest labeled row is rarely of its class even where neighbourhoods follow the labels
#: (banking77 at 100 labels for 77 intents: 0.40-0.62; at 385 labels: 0.68-0.72).
NEIGHBOUR_MIN_PER_CLASS = 3


#: Pool rows on which :func:`prediction_stability` compares predictions (a seeded sample above it).
STABILITY_MAX_ROWS = 5000
#: Random halves of the labeled rows refitted by :func:`prediction_stability`.
STABILITY_HALVES = 3


def prediction_stability(context: SelectionContext, *, halves: int = STABILITY_HALVES,
                         max_rows: int = STABILITY_MAX_ROWS, random_state: int | None = None) -> float:
    """How settled the classifier is: the mean share of pool rows on which a model refitted on a random
    half of the labeled rows predicts the same class as the model fitted on all of them.

    Low while each label still moves the model (too few labels for the task: typical, diverse rows teach
    most); near 1 once it has settled, where the uncertain rows teach most (Hacohen, Dekel & Weinshall
    2022). It is read on the unlabeled pool, so it needs no held-out labels. A half with a single class
    predicts that class everywhere.

    Parameters
    ----------
    context : SelectionContext
        With a fitted classifier: ``proba_pool`` (n_pool, n_classes), ``classes`` and ``classifier``.
    halves : int
        Random halves averaged over.
    max_rows : int
        Pool rows compared (a seeded sample when the pool is larger).
    random_state : int or None
        Seeds the pool sample and the halves.

    Returns
    -------
    float
        In [0, 1].
    """
    rng = np.random.default_rng(random_state)
    rows = subsample(context.n_pool, max_rows, rng)
    # One BLAS thread: these fits are small, and threads cost them several times the CPU time
    # (0.1 CPU s against 2.2 for 3 halves of 2,000 labels on 2 cores).
    with threadpool_limits(1):
        return _stability(context, rows, halves, rng)


def _stability(context: SelectionContext, rows: np.ndarray, halves: int, rng: np.random.Generator) -> float:
    classes = np.asarray(context.classes, dtype=object).astype(str)
    full = classes[np.asarray(context.proba_pool)[rows].argmax(axis=1)]
    y = np.asarray(context.y_labeled, dtype=object).astype(str)
    agree = []
    for _ in range(halves):
        half = rng.choice(y.size, size=max(1, y.size // 2), replace=False)
        kinds = np.unique(y[half])
        if kinds.size < 2:
            pred = np.full(rows.size, kinds[0], dtype=object)
        else:
            model = fit_classifier(context.classifier, context.X_labeled[half], y[half])
            pred = np.asarray(model.predict(context.X_pool[rows]), dtype=object).astype(str)
        agree.append(float(np.mean(pred == full)))
    return float(np.mean(agree))


def neighbour_label_kappa(X: np.ndarray, y, *, max_rows: int = NEIGHBOUR_MAX_ROWS,
                          random_state: int | None = None) -> float | None:
    """Cohen's kappa between each labeled row's label and its nearest other labeled row's label.

    Near 1 when the embedding's neighbourhoods follow the labels (topics: a typical row stands for
    its neighbours' label), near 0 when they do not (question types or emotions across shared
    topics: the typical rows teach the classifier little).

    Parameters
    ----------
    X : ndarray, shape (n, d)
        Embeddings of the labeled rows (cosine similarity; rows are normalised here).
    y : array-like, shape (n,)
        Their labels.
    max_rows : int
        Above this many rows a seeded sample of ``max_rows`` is compared.

    Returns
    -------
    float or None
        None with fewer than 3 rows whose label another row shares, or fewer than 2 such labels.
    """
    from sklearn.metrics import cohen_kappa_score

    labels = np.asarray(y, dtype=object).astype(str)
    if labels.size > max_rows:
        keep = np.sort(np.random.default_rng(random_state).choice(labels.size, size=max_rows, replace=False))
        X, labels = X[keep], labels[keep]
    # A row whose label no other row has cannot agree with any neighbour: only rows of labels with
    # two or more rows are asked (a 77-intent task at one label per intent says nothing yet).
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    asked = np.flatnonzero(counts[inverse] >= 2)
    if asked.size < 3 or np.unique(labels[asked]).size < 2:
        return None
    Z = np.asarray(X, dtype=np.float32)
    Z = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
    sim = Z[asked] @ Z.T
    sim[np.arange(asked.size), asked] = -np.inf
    return float(cohen_kappa_score(labels[asked], labels[sim.argmax(axis=1)]))


@register
class AutoStrategy(Strategy):
    """The default: a low-budget diversity strategy first, uncertainty × diversity once labels suffice.

    Following Hacohen, Dekel & Weinshall (2022), "Active Learning on a Budget: Opposite Strategies
    Suit High and Low Budgets" (ICML): with few labels the most *typical*, diverse rows help most
    (``cold``, TypiClust by default), and once the classifier is informative the most uncertain,
    diverse rows do (``hybrid``, margin + k-means by default; Zhdanov 2019). The switch: the
    diversity branch runs while no classifier can be fitted (zero labels, one class) or while the
    labeled rows per labeled class are fewer than ``switch_per_class``. After that, in each batch:
    first a ``rare_share`` is reserved for classes with fewer than ``rare_ratio`` x the median
    class's labels (split evenly among them, fewest labels first), taken from the pool rows around
    their labeled rows (similarity to them + the model's probability of the class, one-vs-rest:
    :func:`~selector.strategies.balanced.explore_rare_classes`), so a rare class margin never looks
    at is still found; then an optional ``explore`` share goes to ``explore_with`` picks (``cold``
    by default; ``coreset`` looks far from every label, where an unseen class would be) while the
    labels per labeled class are fewer than ``explore_until``; the hybrid fills the rest. Balanced
    labels reserve nothing.

    When the task's labels are declared (``context.label_set``: ``labels:`` in the config, ``--labels``)
    and some declared label has no labeled row once there are ``unseen_after`` labels per declared
    label, ``unseen_share`` of the batch (either branch) goes to the core-set rows farthest from every
    label, where a class the typical and uncertain picks never reach would be; it stops once every
    declared label has a row, or at ``unseen_until`` labels per declared label (the class is then
    absent or too rare to chase).

    Typical rows help when the embedding's neighbourhoods follow the labels (topics, intents) and
    teach little when they do not (question types or emotions that cut across topics). So once a
    classifier exists, a diverse batch takes ``cold_mix`` of its rows from the ``hybrid`` branch while
    the labeled rows agree with their nearest labeled neighbour's label below ``mix_below`` (Cohen's
    kappa, :func:`neighbour_label_kappa`, read once the labeled classes have a median of
    ``NEIGHBOUR_MIN_PER_CLASS`` = 3 rows; measured after the first batch: 0.52-0.86 on ag_news,
    banking77 and the imbalanced pool, 0.10-0.36 on trec, emotion and sst2).

    With ``stability_mix`` (the default), a diverse batch takes at least the share of uncertain rows that
    :func:`prediction_stability` reads from the labeled rows: a model refitted on a random half of them
    predicts that share of the pool as the round's model does. Few labels for the task leave the model
    unsettled (a small share: typical rows), a settled one trusts its uncertain rows (Hacohen, Dekel &
    Weinshall 2022). This reads the budget regime from the data instead of the label count alone: one
    label per intent on 77 intents, or 2 rows a round on a binary set, reaches the uncertain rows long
    before 10 labels per class (issue 27's regime grid, docs/benchmarks/bench_selection_grid.md).

    The defaults (switch at 10 labels per class, up to half the batch for classes below half the
    median, 40% for unseen declared labels, half of a diverse batch uncertain below kappa 0.45, no
    other exploration) were chosen on ``scripts/bench_selection.py``'s seven settings, with a
    leave-one-setting-out check (docs/benchmarks/bench_selection_settings.md): the declared-label search wins the
    imbalanced pool and leaves the other six settings as they were; the gated mix wins trec and
    emotion and leaves the other five as they were (ungated it cost ag_news and banking77); 15%
    core-set exploration throughout cost final accuracy on banking77 and sst2; the opt-in
    ``cold_explore`` (far rows in a small first batch) costs sst2 and emotion. ``stability_mix`` was
    chosen leave-one-dataset-out on the regime grid among the eleven rules measured there (every held-out
    dataset chose a rule of its kind: the larger of the kappa and stability shares).
    With ``stability_pick`` (the default), the same stability also chooses the row each uncertain
    cluster gives: an unsettled model's uncertainty is least trusted, so its picks lean to the
    cluster's centre (representative rows, as Zhdanov 2019 takes); a settled model's go to the most
    uncertain. Chosen leave-one-dataset-out on the regime grid at 8 seeds (every held-out dataset chose
    it; docs/benchmarks/bench_selection_grid.md).
    Every row's reason starts with ``auto[<branch>]``.

    Parameters
    ----------
    switch_per_class : float
        Labeled rows per labeled class below which the diversity branch is used.
    explore : float
        Share of the batch given to ``explore_with`` in the hybrid branch, in [0, 1).
    cold : str
        Registered diversity strategy (no classifier needed).
    hybrid : str
        Registered strategy used once the classifier is informative.
    rare_share : float
        Most of the batch reserved for under-represented classes, in [0, 1); 0 turns it off.
    rare_ratio : float
        A class is under-represented below this share of the median class's labels, in (0, 1].
    explore_with : str or None
        Registered diversity strategy for the ``explore`` share (default: ``cold``).
    explore_until : float or None
        Labels per labeled class from which the ``explore`` share stops (None: it never stops).
    cold_explore : float
        Share of a diversity-branch batch given to core-set picks, the rows farthest from every
        labeled row and from the batch's typical picks, in [0, 1); 0 (the default) turns it off.
        A class at 1-2% of the pool is never among the typical rows, and these far rows are where
        it is found (opt-in: it costs accuracy on some balanced sets, docs/benchmarks/bench_selection_settings.md).
    cold_explore_batch : int
        ``cold_explore`` applies to batches under this many rows only: each typical pick stands for
        about 1/batch of the pool, so a larger batch already reaches classes above 1/batch of it.
    unseen_share : float
        Share of the batch given to core-set picks while a declared label has no labeled row, in
        [0, 1); 0 turns it off. Nothing happens without a declared label set.
    unseen_after : float
        Labels per declared label from which an unseen label is looked for (fewer labels than that
        miss classes of ordinary size by chance).
    unseen_until : float
        Labels per declared label from which an unseen label is no longer looked for.
    cold_mix : float
        Share of a diversity-branch batch (once a classifier exists) taken from the ``hybrid``
        branch instead of ``cold``, in [0, 1); 0 turns it off.
    mix_below : float or None
        ``cold_mix`` applies only while the labeled rows' labels agree with their nearest labeled
        neighbour's less than this (Cohen's kappa, :func:`neighbour_label_kappa`): the embedding's
        neighbourhoods do not follow the labels, so typical rows teach little; None mixes always.
    stability_mix : bool
        Once a classifier exists, a diverse batch takes at least the :func:`prediction_stability` share
        from the ``hybrid`` branch (3 refits of the classifier on half the labels a round); False keeps
        only the ``cold_mix`` gate.
    stability_pick : bool
        With the ``margin_kmeans`` hybrid, each uncertain cluster gives the row that is best by a blend
        of uncertainty and nearness to the cluster's centre, with the centre's weight
        1 - :func:`prediction_stability`; False takes each cluster's most uncertain row.
    multilabel : str
        Multi-label tasks (``context.multi_label``): the registered multi-label strategy used once
        the labels suffice (default ``mmc``, Yang et al. 2009).
    multilabel_switch : float
        Multi-label tasks: ``cold`` runs while no classifier can be fitted or the labeled rows per
        label seen so far are fewer than this (5). Chosen on ``scripts/bench_multilabel.py``
        (goemotions at 28 labels and at the Ekman grouping, batches 50 and 200): leave-one-cell-out
        picked this pair for every held-out cell among nine rules (label_entropy / mmc, with
        k-means diversity or not, switches 0 / 5 / 10); see docs/benchmarks/bench_multilabel.md.
    """

    name = "auto"
    description = ("default: typical/diverse picks while labels are few, then uncertainty x diversity "
                   "(multi-label: TypiClust, then MMC)")
    uses_model = True
    tasks = ("single_label", "multi_label")

    def __init__(self, switch_per_class: float = 10.0, explore: float = 0.0, cold: str = "typiclust",
                 hybrid: str = "margin_kmeans", rare_share: float = 0.5, rare_ratio: float = 0.5,
                 explore_with: str | None = None, explore_until: float | None = None,
                 cold_explore: float = 0.0, cold_explore_batch: int = 50, unseen_share: float = 0.4,
                 unseen_after: float = 3.0, unseen_until: float = 25.0, cold_mix: float = 0.5,
                 mix_below: float | None = 0.45, stability_mix: bool = True, multilabel: str = "mmc",
                 multilabel_switch: float = 5.0, stability_pick: bool = True) -> None:
        self.switch_per_class = _number("switch_per_class", switch_per_class, lambda v: v >= 0, "a number >= 0")
        self.explore = _number("explore", explore, lambda v: 0 <= v < 1, "in [0, 1)")
        if isinstance(make_strategy(cold), UncertaintyStrategy) or make_strategy(cold).uses_model:
            raise ValueError(f"cold strategy {cold!r} needs a classifier; choose e.g. 'typiclust' or 'kmeans'")
        if hybrid in (self.name,):
            raise ValueError("auto cannot use itself as its hybrid branch")
        make_strategy(hybrid)
        self.cold = cold
        self.hybrid = hybrid
        self.rare_share = _number("rare_share", rare_share, lambda v: 0 <= v < 1, "in [0, 1)")
        self.rare_ratio = _number("rare_ratio", rare_ratio, lambda v: 0 < v <= 1, "in (0, 1]")
        explore_with = explore_with or cold
        if make_strategy(explore_with).uses_model:
            raise ValueError(f"explore_with strategy {explore_with!r} needs a classifier; choose e.g. 'coreset' or "
                             "'typiclust'")
        self.explore_with = explore_with
        self.explore_until = (None if explore_until is None else
                              _number("explore_until", explore_until, lambda v: v > 0, "a number > 0 or None"))
        self.cold_explore = _number("cold_explore", cold_explore, lambda v: 0 <= v < 1, "in [0, 1)")
        if isinstance(cold_explore_batch, bool) or not isinstance(cold_explore_batch, int) or cold_explore_batch < 1:
            raise ValueError(f"cold_explore_batch must be an integer >= 1, got {cold_explore_batch!r}")
        self.cold_explore_batch = cold_explore_batch
        self.unseen_share = _number("unseen_share", unseen_share, lambda v: 0 <= v < 1, "in [0, 1)")
        self.unseen_until = _number("unseen_until", unseen_until, lambda v: v > 0, "a number > 0")
        self.unseen_after = _number("unseen_after", unseen_after, lambda v: v >= 0, "a number >= 0")
        self.cold_mix = _number("cold_mix", cold_mix, lambda v: 0 <= v < 1, "in [0, 1)")
        self.mix_below = (None if mix_below is None else
                          _number("mix_below", mix_below, lambda v: -1 <= v <= 1, "in [-1, 1] or None"))
        if not isinstance(stability_mix, bool):
            raise ValueError(f"stability_mix must be true or false, got {stability_mix!r}")
        self.stability_mix = stability_mix
        if not isinstance(stability_pick, bool):
            raise ValueError(f"stability_pick must be true or false, got {stability_pick!r}")
        self.stability_pick = stability_pick
        if "multi_label" not in make_strategy(multilabel).tasks:
            raise ValueError(f"multilabel strategy {multilabel!r} does not serve multi-label tasks")
        self.multilabel = multilabel
        self.multilabel_switch = _number("multilabel_switch", multilabel_switch, lambda v: v >= 0, "a number >= 0")

    def branch(self, context: SelectionContext) -> tuple[str, str]:
        """Which branch a context gets, and why in words: ``("cold" | "hybrid", why)``."""
        if not context.has_model:
            return "cold", context.cold_start_reason or "no classifier"
        n_classes = max(1, len(set(np.asarray(context.y_labeled).astype(str).tolist())))
        per_class = context.n_labeled / n_classes
        if per_class < self.switch_per_class:
            return "cold", f"{per_class:.1f} labels per class < {self.switch_per_class:g}"
        return "hybrid", f"{per_class:.1f} labels per class >= {self.switch_per_class:g}"

    def _select_multilabel(self, context: SelectionContext, budget: int, random_state: int | None) -> Selection:
        """A multi-label task: ``cold`` while no classifier exists or the labeled rows per seen label are
        fewer than ``multilabel_switch``, then the ``multilabel`` strategy."""
        if context.has_model:
            seen = int((np.asarray(context.y_labeled).sum(axis=0) > 0).sum())
            per_label = context.n_labeled / max(seen, 1)
            use_model = per_label >= self.multilabel_switch
            why = f"{per_label:.1f} labeled rows per seen label {'>=' if use_model else '<'} {self.multilabel_switch:g}"
        else:
            use_model, why = False, context.cold_start_reason or "no classifier"
        name, branch = (self.multilabel, "uncertain") if use_model else (self.cold, "diverse")
        picked = make_strategy(name).select(context, budget, random_state=random_state)
        reasons = np.array([f"auto[{branch}: {why}] {r}" for r in picked.reasons], dtype=object)
        return Selection(picked.indices, picked.scores, reasons, dict(picked.info, branch=branch, why=why))

    def _select(self, context: SelectionContext, budget: int, *, random_state: int | None) -> Selection:
        if context.multi_label:
            return self._select_multilabel(context, budget, random_state)
        which, why = self.branch(context)
        unseen = context.unseen_labels() if context.n_labeled else []
        # A declared label still without a row once there are unseen_after labels per declared label
        # is a class the picks so far missed (a class of average size is then missed with chance
        # e^-3 = 5%): margin never looks for it, so a share goes to the rows far from every label.
        # Fewer labels than that say nothing (77 intents, 100 labels); past unseen_until labels per
        # declared label the class is absent or too rare to chase.
        per_declared = context.n_labeled / len(context.label_set) if unseen else 0.0
        if unseen and not self.unseen_after <= per_declared < self.unseen_until:
            unseen = []
        n_unseen = int(round(self.unseen_share * budget)) if unseen and budget > 1 else 0
        unseen_why = (f"{len(unseen)} declared label(s) with no labeled row yet: "
                      f"{', '.join(unseen[:3])}{', ...' if len(unseen) > 3 else ''}")
        if which == "cold":
            # Each typical pick stands for about 1/budget of the pool, so a class smaller than that
            # share is never typical: only batches under cold_explore_batch rows need far picks.
            n_cold = int(round(self.cold_explore * budget)) if 1 < budget < self.cold_explore_batch else 0
            n_far = max(n_cold, n_unseen)
            n_far = min(n_far, max(0, context.n_pool - (budget - n_far)))
            far_why = (f"auto[unseen class: {unseen_why}] far from the labeled and typical rows" if n_far > n_cold
                       else f"auto[explore: {self.cold_explore:.0%} of a diverse batch, far from the typical rows]")
            picked = make_strategy(self.cold).select(context, budget - n_far, random_state=random_state)
            reasons = [f"auto[diverse: {why}] {r}" for r in picked.reasons]
            n_mix, mix_why, stable = self._mix_size(context, budget - n_far, random_state)
            if n_mix:
                keep_n = budget - n_far - n_mix
                typical = picked.indices[:keep_n]
                main, ok = self._hybrid_picks(context, n_mix, typical, random_state, stable=stable)
                info = dict(picked.info)
                if "cluster" in info:
                    info["cluster"] = np.concatenate([np.asarray(info["cluster"], dtype=np.int64)[:keep_n],
                                                      np.full(int(ok.sum()), -1, dtype=np.int64)])
                picked = Selection(np.concatenate([typical, main.indices[ok]]),
                                   np.concatenate([picked.scores[:keep_n], main.scores[ok]]),
                                   np.array(reasons[:keep_n] + [f"auto[mix: {mix_why}] {r}"
                                                                for r in main.reasons[ok]], dtype=object), info)
                reasons = list(picked.reasons)
            if not n_far:
                return Selection(picked.indices, picked.scores, np.array(reasons, dtype=object),
                                 dict(picked.info, branch="diverse", why=why))
            # The typical picks count as labeled for the far ones: far from both, where an unseen class
            # would be (a class at 1-2% of the pool is never typical).
            far = self._novel_picks(context, n_far, set(picked.indices.tolist()), random_state,
                                    with_picked=picked.indices, strategy="coreset")
            indices = np.concatenate([picked.indices, np.array([f[0] for f in far], dtype=np.int64)])
            scores = np.concatenate([picked.scores, np.array([f[1] for f in far], dtype=np.float64)])
            reasons += [f"{far_why} {f[2]}" for f in far]
            info = dict(picked.info)
            if "cluster" in info:  # far picks belong to no cluster of the diverse branch
                info["cluster"] = np.concatenate([np.asarray(info["cluster"], dtype=np.int64),
                                                  np.full(len(far), -1, dtype=np.int64)])
            return Selection(indices, scores, np.array(reasons, dtype=object),
                             dict(info, branch="diverse", why=why, n_explore=len(far) if n_far == n_cold else 0,
                                  n_unseen=len(far) if n_far > n_cold else 0))
        rare_picks, counts = self._rare_picks(context, budget)
        n_unseen_taken = 0
        names = np.asarray(context.classes).astype(str)
        indices, scores, reasons, clusters = [], [], [], []
        for pos, c, sim, pr in rare_picks:
            indices.append(pos)
            scores.append(pr)
            reasons.append(f"auto[rare class: {names[c]} has {counts[c]} labels, < {self.rare_ratio:g} x the "
                           f"median class] explores around its labeled rows: similarity {sim:.2f}, P({names[c]}) {pr:.2f}")
            clusters.append(-1)
        if n_unseen:
            for pos, score, why_row in self._novel_picks(context, min(n_unseen, budget - len(indices)), set(indices),
                                                         random_state, strategy="coreset"):
                indices.append(pos)
                scores.append(score)
                reasons.append(f"auto[unseen class: {unseen_why}] {why_row}")
                clusters.append(-1)
                n_unseen_taken += 1
        n_explore = int(round(self.explore * budget)) if budget > 1 else 0
        if self.explore_until is not None and context.n_labeled / max(1, counts.size) >= self.explore_until:
            n_explore = 0  # enough labels per known class: the exploration phase is over
        # The rare and unseen shares may already fill most of the batch: explore only what is left.
        n_explore = min(n_explore, budget - len(indices))
        if n_explore:
            for pos, score, why_row in self._novel_picks(context, n_explore, set(indices), random_state):
                indices.append(pos)
                scores.append(score)
                reasons.append(f"auto[explore: up to {self.explore:.0%} of the batch] {why_row}")
                clusters.append(-1)
        n_main = budget - len(indices)
        main, keep = self._hybrid_picks(context, n_main, np.asarray(indices, dtype=np.int64), random_state)
        cluster = main.info.get("cluster")
        # Uncertain rows first (the batch's ranking), then the reserved ones; reserved rows carry cluster -1.
        out_idx = np.concatenate([main.indices[keep], np.asarray(indices, dtype=np.int64)]).astype(np.int64)
        out_scores = np.concatenate([main.scores[keep], np.asarray(scores, dtype=np.float64)])
        out_reasons = [f"auto[uncertain+diverse: {why}] {r}" for r in main.reasons[keep]] + reasons
        info = {"branch": "uncertain+diverse", "why": why,
                "n_explore": len(indices) - len(rare_picks) - n_unseen_taken, "n_rare": len(rare_picks),
                "n_unseen": n_unseen_taken}
        if cluster is not None:
            info["cluster"] = np.concatenate([np.asarray(cluster, dtype=np.int64)[keep],
                                              np.asarray(clusters, dtype=np.int64)])
        return Selection(out_idx, out_scores, np.array(out_reasons, dtype=object), info)

    def _mix_size(self, context: SelectionContext, n: int, random_state: int | None
                  ) -> tuple[int, str, float | None]:
        """How many of a diverse batch's ``n`` rows the hybrid gives, why in words, and the
        :func:`prediction_stability` read for it (None when not read): the larger of the neighbour-kappa
        share (``cold_mix``) and, with ``stability_mix``, the share that stability measures."""
        if not context.has_model or n < 2:
            return 0, "", None
        n_gated, gated_why = self._kappa_mix(context, n, random_state)
        if self.stability_mix and context.classifier is not None:
            stable = prediction_stability(context, random_state=random_state)
            n_stable = int(round(stable * n))
            if n_stable > n_gated:
                return n_stable, (f"{stable:.0%} uncertain: a model on half the labels predicts "
                                  f"{stable:.0%} of the pool as this one does"), stable
            return n_gated, gated_why, stable
        return n_gated, gated_why, None

    def _kappa_mix(self, context: SelectionContext, n: int, random_state: int | None) -> tuple[int, str]:
        """``cold_mix`` of a diverse batch's ``n`` rows while the labels agree with their nearest labeled
        neighbour's below ``mix_below`` (always with ``mix_below=None``), else 0; and why in words."""
        if not self.cold_mix:
            return 0, ""
        if self.mix_below is None:
            return int(round(self.cold_mix * n)), f"{self.cold_mix:.0%} uncertain"
        if np.median(labeled_class_counts(context)) < NEIGHBOUR_MIN_PER_CLASS:
            return 0, ""
        agreement = neighbour_label_kappa(context.X_labeled, context.y_labeled, random_state=random_state)
        if agreement is None or agreement >= self.mix_below:
            return 0, ""
        return int(round(self.cold_mix * n)), (f"{self.cold_mix:.0%} uncertain: labels agree with their nearest "
                                               f"labeled neighbour's at kappa {agreement:.2f} < {self.mix_below:g}")

    def _hybrid_picks(self, context: SelectionContext, n: int, taken: np.ndarray, random_state: int | None,
                      stable: float | None = None) -> tuple[Selection, np.ndarray]:
        """The ``hybrid`` strategy's selection and a mask of its first ``n`` picks not in ``taken``
        (pool positions already in the batch), shape (len(selection),). ``stable``: the round's
        :func:`prediction_stability` when already read."""
        params = {}
        if self.stability_pick and context.classifier is not None and self.hybrid == "margin_kmeans":
            # An unsettled model's uncertainty is least trusted: its picks lean to each cluster's centre.
            if stable is None:
                stable = prediction_stability(context, random_state=random_state)
            params["centre_weight"] = 1.0 - stable
        main = make_strategy(self.hybrid, **params).select(context, min(context.n_pool, n + taken.size),
                                                           random_state=random_state)
        keep = ~np.isin(main.indices, taken)
        keep &= np.cumsum(keep) <= n
        return main, keep

    def _novel_picks(self, context: SelectionContext, n: int, taken: set[int], random_state: int | None,
                     with_picked: np.ndarray | None = None,
                     strategy: str | None = None) -> list[tuple[int, float, str]]:
        """Up to ``n`` rows picked by ``strategy`` (default ``explore_with``) among the rows not
        ``taken``, as ``(position, score, reason)``; ``with_picked`` pool positions count as labeled."""
        rng = np.random.default_rng(random_state)
        rest = np.setdiff1d(np.arange(context.n_pool), np.fromiter(taken, dtype=np.int64, count=len(taken)))
        # A seeded sample of the remaining rows keeps the exploration step cheap on huge pools.
        rest = rest[subsample(rest.size, 200_000, rng)]
        X_lab, y_lab = context.X_labeled, context.y_labeled
        if with_picked is not None and with_picked.size:
            X_lab = np.concatenate([X_lab, context.X_pool[with_picked]]).astype(context.X_pool.dtype, copy=False)
            y_lab = np.concatenate([np.asarray(y_lab, dtype=object), np.full(with_picked.size, "", dtype=object)])
        sub = SelectionContext(context.X_pool[rest], X_lab, y_lab, cold_start_reason="exploration")
        extra = make_strategy(strategy or self.explore_with).select(sub, min(n, rest.size), random_state=random_state)
        return [(int(rest[i]), float(sc), r) for i, sc, r in zip(extra.indices, extra.scores, extra.reasons)]

    def _rare_picks(self, context: SelectionContext,
                    budget: int) -> tuple[list[tuple[int, int, float, float]], np.ndarray]:
        """The ``rare_share`` of the batch for classes with fewer than ``rare_ratio`` x the median
        class's labels, fewest labels first, found around their labeled rows
        (:func:`~selector.strategies.balanced.explore_rare_classes`); and the labeled counts per class."""
        counts = labeled_class_counts(context)
        n_rare = int(round(self.rare_share * budget))
        median = float(np.median(counts))
        rare = [int(c) for c in np.lexsort((np.arange(counts.size), counts)) if counts[c] < self.rare_ratio * median]
        if not n_rare or not rare:
            return [], counts
        per_class = max(1, -(-n_rare // len(rare)))
        return explore_rare_classes(context, {c: per_class for c in rare}, n_rare), counts
