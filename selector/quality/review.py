"""One prioritized review queue from four sources of doubt.

- **unsure**: items a labeler marked unsure (an unsure value such as ``unsure``/``needs_review`` in
  the annotations or in the data's label column; see :mod:`selector.quality.unsure`), scored by the share
  of unsure ratings (1 for an unsure cell in the data). They always come first: a labeler asked
  for help, so the guideline or the item needs a decision before anything else.
- **contested**: items annotators disagreed on (from long-format annotations), scored by how split
  the vote is: ``split`` (1 - top share) over the largest split ``m`` ratings over ``k`` labels
  allow, ``1 - ceil(m / min(k, m)) / m``; 1 for the most even split possible.
- **suspect**: labeled rows :func:`selector.round.suspects.find_suspects` flags (out-of-fold probabilities,
  nearest labeled neighbours and contradictions point to another label), scored by its rank-ensemble
  suspect score.
- **uncertain**: unlabeled rows the model is least sure about, scored by ``margin`` uncertainty.
- **machine** (with ``machine_annotators``): rows where a machine annotator (an LLM pre-labeler)
  disagrees with the humans (their majority, else the data's label: score 1) or with the model
  (score = the model's probability of its own label). They come right after the unsure items: a
  pre-labeler's disagreements are where it fails, and where its labels must not be trusted blind.
  Machine votes are left out of the unsure and contested sources (those are about people).

Every score lies in [0, 1], higher = review first. A row named by several sources combines them
as a noisy-or, ``1 - prod(1 - w_s * score_s)``, so agreeing evidence raises it without leaving
[0, 1] (equal priorities: the larger sum of ``w_s * score_s`` first); ``weights`` scales a source
(0 drops it).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from selector.config import SelectConfig
from selector.labelsets import table_task
from selector.errors import ConfigError, DataError
from selector.labels import normalise_unsure_labels, unsure_mask
from selector.quality.agreement import contested_items, encode_ratings, majority_vote
from selector.quality.annotations import prepare_annotations
from selector.quality.machine import check_machine_annotators, split_machine
from selector.quality.unsure import UNSURE_PRIORITY, unsure_items
from selector.round.compute import build_context
from selector.round.embed import embed_pool
from selector.round.model import MIN_LABELED_ROWS, classifier_template, labels_problem
from selector.round.pool import prepare_pool
from selector.round.suspects import add_votes, find_suspects
from selector.scoring import margin

__all__ = ["ReviewQueue", "review", "REVIEW_COLUMNS", "SOURCES"]

SOURCES = ("unsure", "machine", "contested", "suspect", "uncertain")
REVIEW_COLUMNS = ["rank", "id", "text", "label", "priority", "sources", "reasons", "suggested_label"]


@dataclass
class ReviewQueue:
    """The review queue and how it was built.

    Attributes
    ----------
    queue : DataFrame
        ``REVIEW_COLUMNS`` (+ one ``score_<source>`` column per source), best first, at most ``budget`` rows.
    candidates : dict of str -> int
        Rows each source offered before the budget cut.
    stats : dict
    """

    queue: pd.DataFrame
    candidates: dict
    stats: dict = field(default_factory=dict)


def _suspect_scores(X: np.ndarray, y: np.ndarray, texts: np.ndarray, *, classifier, random_state: int | None,
                    ids: np.ndarray | None = None, votes: pd.DataFrame | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mislabel evidence for labeled rows: (score in [0, 1], reason, suggested label), each shape (n,).

    From :func:`selector.round.suspects.find_suspects` (out-of-fold probabilities, neighbour votes and
    contradictions): the rank-ensemble score of each row it flags, 0 for rows it does not flag
    (the given label still has the most evidence), so flat probabilities do not make every row
    a suspect.
    """

    r = find_suspects(X, y, classifier=classifier, random_state=random_state, texts=list(texts))
    if votes is not None and ids is not None and votes["item_id"].astype(str).isin(set(ids.astype(str))).any():
        # Labeled rows with several annotators' votes are judged on votes + model (consensus posterior).
        add_votes(r, ids.astype(str), encode_ratings(votes), random_state=random_state)
    score = np.where(r.flagged, r.score, 0.0)
    reasons = np.full(y.size, "", dtype=object)
    flagged = np.flatnonzero(r.flagged)
    reasons[flagged] = r.reasons_for(flagged)
    return score, reasons, np.asarray(r.suggested, dtype=object)


def _machine_disagreements(machine_votes: pd.DataFrame, human_votes: pd.DataFrame | None, pool, at: dict,
                           model_label: dict, *, note, suggested: dict, extra_text: dict) -> int:
    """Note each machine vote that disagrees with the humans or the model; returns how many rows were noted.

    ``at`` maps an id of the data to its position; ``model_label`` an id to the model's (label,
    probability), empty without a model.
    """
    # The human majority per item; a tie names no label (None).
    human = (majority_vote(human_votes, tie_break="none").set_index("item_id")["label"]
             if human_votes is not None and len(human_votes) else pd.Series(dtype=object))
    noted = set()
    for rid, who, said, text in zip(machine_votes["item_id"].astype(str), machine_votes["annotator"],
                                    machine_votes["label"].astype(str),
                                    machine_votes["text"] if "text" in machine_votes.columns else [None] * len(machine_votes)):
        ref = human.get(rid)
        ref = None if ref is None or pd.isna(ref) else ref  # a tie among the humans names no label
        if ref is None and rid in at and pool.labels[at[rid]] is not None:
            ref = str(pool.labels[at[rid]])
        m = model_label.get(rid)
        if ref is not None and said != str(ref):
            note(rid, "machine", 1.0, f"{who} says {said!r}, the humans {str(ref)!r}")
            suggested[rid] = str(ref)
        elif m is not None and said != m[0]:
            note(rid, "machine", m[1], f"{who} says {said!r}, the model {m[0]!r} ({m[1]:.2f})")
            suggested.setdefault(rid, m[0])
        else:
            continue
        noted.add(rid)
        if text is not None and rid not in at:
            extra_text[rid] = str(text)
    return len(noted)


def _multilabel_sources(pool, X: np.ndarray, w: dict, budget: int, note, suggested: dict, *, config, classifier,
                        random_state: int | None, source: str) -> dict[str, int]:
    """The model-based sources of a multi-label table: labeled rows with (row, label) suspects (score:
    their most likely wrong pair's ``p_wrong``; suggestion: the corrected set) and the unlabeled rows
    of highest mean per-label entropy (suggestion: the predicted set). Returns the candidates per source."""
    from selector.round.multilabel import (
        PREDICT_THRESHOLD,
        build_multilabel_context,
        multilabel_classifier,
        multilabel_problem,
    )
    from selector.round.multilabel_suspects import label_suspects_for_pool
    from selector.scoring import label_entropy

    lab, unl = pool.labeled_positions, pool.pool_positions
    space, found = pool.space, {"suspect": 0, "uncertain": 0}
    problem = multilabel_problem(pool.Y[lab])
    if problem is not None:
        if w["suspect"] > 0 or w["uncertain"] > 0:
            warnings.warn(f"{source}: {problem}; the model-based sources (suspect, uncertain) are skipped", stacklevel=3)
        return found
    if w["suspect"] > 0:
        sus, _ = label_suspects_for_pool(pool, X, classifier=classifier_template(config, classifier),
                                         random_state=random_state)
        names = np.asarray(space.names, dtype=object)
        fixed = sus.suggested
        for n in np.flatnonzero(sus.flagged_rows):
            cols = np.flatnonzero(sus.flagged[n])
            why = ", ".join(f"{names[j]} {'probably wrong' if sus.Y[n, j] else 'probably missing'} "
                            f"(p_wrong {sus.p_wrong[n, j]:.2f})" for j in cols)
            note(str(pool.ids[lab[n]]), "suspect", float(sus.p_wrong[n, cols].max()), why)
            suggested[str(pool.ids[lab[n]])] = space.join(names[fixed[n] == 1])
            found["suspect"] += 1
    if w["uncertain"] > 0 and unl.size:
        template = classifier if classifier is not None else multilabel_classifier(
            config.classifier, random_state=random_state, **config.classifier_params)
        ctx = build_multilabel_context(X[lab], pool.Y[lab], X[unl], space, classifier=template,
                                       random_state=random_state)
        u = label_entropy(ctx.proba_pool)
        names = np.asarray(space.names, dtype=object)
        for t in np.argsort(-u, kind="stable")[:budget]:
            p = ctx.proba_pool[t]
            near = np.argsort(np.abs(p - 0.5), kind="stable")[:3]
            note(str(pool.ids[unl[t]]), "uncertain", float(u[t]), "unlabeled; model unsure about "
                 + ", ".join(f"{names[j]} {p[j]:.2f}" for j in near))
            suggested.setdefault(str(pool.ids[unl[t]]), space.join(names[p >= PREDICT_THRESHOLD]))
            found["uncertain"] += 1
    return found


def review(df: pd.DataFrame, *, annotations: pd.DataFrame | None = None, budget: int = 100,
           text_col: str = "text", label_col: str = "label", id_col: str = "id",
           item_col: str = "item_id", annotator_col: str = "annotator", annotation_label_col: str = "label",
           weights: Mapping[str, float] | None = None, embeddings=None, embedder=None,
           cache_dir: str | Path | None = None, config=None, classifier=None, random_state: int | None = 0,
           source: str = "<DataFrame>", unsure_labels=None, machine_annotators=()) -> ReviewQueue:
    """Merge unsure and contested items, mislabel suspects and uncertain unlabeled rows into one queue.

    Parameters
    ----------
    df : DataFrame
        The data table (labeled and unlabeled rows).
    annotations : DataFrame, optional
        Long-format ratings; their item ids are matched against the data's ids. Contested items
        not in the data still enter the queue (with the annotation text when there is one).
    budget : int
        Queue length.
    weights : dict, optional
        Per-source multiplier in [0, 1] (keys of :data:`SOURCES`); default 1 each.
    embeddings, embedder, cache_dir, config
        As for :func:`selector.round.compute.embed_pool` (the cache is shared with ``select``).
    classifier : scikit-learn estimator with predict_proba, optional
    random_state : int or None
    unsure_labels : iterable of str, optional
        Label values meaning "unsure" (default ``unsure``, ``needs_review``); unsure items head
        the queue.
    machine_annotators : iterable of str
        Annotators that are models; the rows where they disagree with the humans or the model come
        right after the unsure items (source ``machine``).

    Returns
    -------
    ReviewQueue
    """

    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"budget must be a positive integer, got {budget!r}")
    w = {s: 1.0 for s in SOURCES}
    for key, value in (weights or {}).items():
        if key not in w:
            raise ConfigError(f"unknown review source {key!r}; choose from {', '.join(SOURCES)}")
        if not 0.0 <= float(value) <= 1.0:
            raise ConfigError(f"weight for {key!r} must be in [0, 1], got {value!r}")
        w[key] = float(value)

    unsure_set = normalise_unsure_labels(unsure_labels)
    config = config or SelectConfig()
    multi = table_task(df, label_col, config.task, config.label_sep)[0] == "multi_label"
    if multi and (annotations is not None or machine_annotators):
        raise ConfigError("a multi-label review does not read --annotations yet; review the data alone, and measure "
                          "agreement on label sets with `selector agreement --multi-label`")
    pool = prepare_pool(df, text_col=text_col, label_col=label_col, id_col=id_col, source=source,
                        unsure_labels=tuple(unsure_set), multi_label=multi, label_sep=config.label_sep,
                        none_label=config.none_label, warn_label_sets=config.task == "single_label")
    X, embed_stats = embed_pool(pool, config, embedder=embedder, embeddings=embeddings, cache_dir=cache_dir)

    # Per-row evidence, keyed by id; rows outside the data (annotation-only items) come after.
    scores: dict[str, dict[str, float]] = {}
    reasons: dict[str, list[str]] = {}
    suggested: dict[str, str] = {}
    extra_text: dict[str, str] = {}

    def note(rid: str, src: str, score: float, reason: str) -> None:
        scores.setdefault(rid, {})[src] = float(score)
        reasons.setdefault(rid, []).append(f"{src}: {reason}")

    candidates = {s: 0 for s in SOURCES}
    ann = None
    if annotations is not None:

        ann = prepare_annotations(annotations, item_col=item_col, annotator_col=annotator_col,
                                  label_col=annotation_label_col, source=f"{source} (annotations)")
    machines = check_machine_annotators(ann, machine_annotators, source=f"{source} (annotations)") \
        if ann is not None else ()
    if machine_annotators and ann is None:
        raise ConfigError("--machine-annotators needs --annotations (the machine's labels are votes there)")
    machine_votes = None
    if machines:
        ann, machine_votes = split_machine(ann, machines)
        machine_votes = machine_votes[~unsure_mask(machine_votes["label"].to_numpy(dtype=object), tuple(unsure_set))]
    if w["unsure"] > 0:
        if ann is not None:
            flagged = unsure_items(ann, tuple(unsure_set))
            share = flagged["priority"].to_numpy(dtype=float) - UNSURE_PRIORITY
            texts = flagged["text"] if "text" in flagged.columns else [None] * len(flagged)
            for rid, sh, n_u, n_r, who, text in zip(flagged["item_id"], share, flagged["n_unsure"],
                                                    flagged["n_ratings"], flagged["unsure_by"], texts):
                note(str(rid), "unsure", float(sh), f"{n_u} of {n_r} ratings unsure ({who})")
                if text is not None:
                    extra_text[str(rid)] = str(text)
            candidates["unsure"] += int(len(flagged))
        if label_col in df.columns:
            raw = df[label_col].to_numpy(dtype=object)
            for pos in np.flatnonzero(unsure_mask(raw, tuple(unsure_set))):
                note(str(pool.ids[pos]), "unsure", 1.0, f"labeled {str(raw[pos]).strip()!r} in the data")
                candidates["unsure"] += 1
    # An unsure vote is a request for help, not a competing label, so it is left out of the split.
    decided = None
    decided_votes = ann[~unsure_mask(ann["label"].to_numpy(dtype=object), tuple(unsure_set))] if ann is not None else None
    if decided_votes is not None and decided_votes.empty:
        decided_votes = None
    if ann is not None and w["contested"] > 0:
        decided = ann[~unsure_mask(ann["label"].to_numpy(dtype=object), tuple(unsure_set))]
    if decided is not None and len(decided):

        codes = encode_ratings(decided)
        contested = contested_items(codes)
        k = codes.labels.size
        m = contested["n_ratings"].to_numpy()
        max_split = 1.0 - np.ceil(m / np.minimum(k, m)) / m  # the most even split m ratings allow
        s = np.clip(contested["split"].to_numpy() / max_split, 0.0, 1.0)
        texts = decided.drop_duplicates("item_id").set_index("item_id")["text"] if "text" in decided.columns else None
        for rid, sc, votes, top in zip(contested["item_id"], s, contested["votes"], contested["top_label"]):
            note(str(rid), "contested", sc, f"annotators split ({votes})")
            if top is not None and not pd.isna(top):
                suggested.setdefault(str(rid), str(top))
            if texts is not None:
                extra_text[str(rid)] = str(texts.get(rid, ""))
        candidates["contested"] = int(len(contested))

    lab, unl = pool.labeled_positions, pool.pool_positions
    y = pool.labels[lab].astype(str)
    if multi:
        candidates.update(_multilabel_sources(pool, X, w, budget, note, suggested, config=config, classifier=classifier,
                                              random_state=random_state, source=source))
    problem = labels_problem(y) if not multi else "multi-label"
    model_ok = problem is None
    if not model_ok and not multi and (w["suspect"] > 0 or w["uncertain"] > 0):
        warnings.warn(f"{source}: {problem}; the model-based sources (suspect, uncertain) need at least "
                      f"{MIN_LABELED_ROWS} labeled rows of 2 classes and are skipped", stacklevel=2)
    classifier = classifier_template(config, classifier)
    if model_ok and w["suspect"] > 0:
        s, why, sugg = _suspect_scores(X[lab], y, pool.texts[lab], classifier=classifier,
                                       random_state=random_state, ids=pool.ids[lab], votes=decided_votes)
        # A row enters as a suspect when the model prefers another label (score > 0).
        for pos, sc, r, g in zip(lab, s, why, sugg):
            if sc > 0:
                note(str(pool.ids[pos]), "suspect", sc, r)
                suggested[str(pool.ids[pos])] = str(g)
                candidates["suspect"] += 1
    # One fit of the classifier on the labeled rows scores every row a source asks about: the
    # unlabeled rows (uncertain) and the rows a machine annotator labeled (machine).
    use_machine = machine_votes is not None and w["machine"] > 0 and len(machine_votes)
    index = {str(i): p for p, i in enumerate(pool.ids)}
    machine_rows = (np.unique([index[str(i)] for i in machine_votes["item_id"] if str(i) in index]).astype(np.int64)
                    if use_machine else np.zeros(0, np.int64))
    use_uncertain = model_ok and w["uncertain"] > 0 and unl.size
    scored = np.union1d(unl if use_uncertain else np.zeros(0, np.int64), machine_rows)
    ctx = build_context(X[lab], y, X[scored], classifier=classifier, random_state=random_state) \
        if model_ok and scored.size else None
    if use_uncertain:
        proba = ctx.proba_pool[np.searchsorted(scored, unl)]
        u = margin(proba)
        # Only the most uncertain unlabeled rows compete for the budget: enough to fill it alone.
        top = np.argsort(-u, kind="stable")[:budget]
        for t in top:
            p = proba[t]
            a, b = np.argsort(-p, kind="stable")[:2]
            note(str(pool.ids[unl[t]]), "uncertain", u[t],
                 f"unlabeled; model unsure: {ctx.classes[a]} {p[a]:.2f} vs {ctx.classes[b]} {p[b]:.2f}")
            suggested.setdefault(str(pool.ids[unl[t]]), str(ctx.classes[a]))
        candidates["uncertain"] = int(top.size)

    if use_machine:
        model_label = {}
        if ctx is not None and machine_rows.size:
            proba = ctx.proba_pool[np.searchsorted(scored, machine_rows)]
            best = proba.argmax(axis=1)
            model_label = {str(pool.ids[pos]): (str(ctx.classes[b]), float(proba[n, b]))
                           for n, (pos, b) in enumerate(zip(machine_rows, best))}
        candidates["machine"] = _machine_disagreements(machine_votes, decided_votes, pool, index, model_label, note=note,
                                                       suggested=suggested, extra_text=extra_text)

    if not scores:
        raise DataError(f"{source}: nothing to review: no unsure or contested items, no suspects and no unlabeled rows "
                        "(give --annotations, or a table with labeled and unlabeled rows)")
    rows = []
    for rid, by_src in scores.items():
        priority = 1.0 - np.prod([1.0 - w[s] * v for s, v in by_src.items()])
        evidence = sum(w[s] * v for s, v in by_src.items())
        pos = index.get(rid)
        rows.append({
            "id": rid,
            "text": pool.texts[pos] if pos is not None else extra_text.get(rid, ""),
            "label": (pool.labels[pos] if pos is not None else None),
            "priority": round(float(priority), 6),
            "sources": "+".join(s for s in SOURCES if s in by_src),
            "reasons": "; ".join(reasons[rid]),
            "suggested_label": suggested.get(rid),
            "in_data": pos is not None,
            "_evidence": evidence,
            "_unsure": "unsure" in by_src,
            "_machine": "machine" in by_src,
            **{f"score_{s}": round(by_src[s], 6) if s in by_src else np.nan for s in SOURCES},
        })
    # Unsure items first; then equal priorities (a saturated noisy-or) go to the row with more evidence.
    out = pd.DataFrame(rows).sort_values(["_unsure", "_machine", "priority", "_evidence", "id"],
                                         ascending=[False, False, False, False, True], kind="stable")
    out = out.head(budget).drop(columns=["_evidence", "_unsure", "_machine"]).reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    stats = {"n_rows": pool.n, "n_labeled": int(lab.size), "n_unlabeled": int(unl.size), "budget": budget,
             "n_queued": int(len(out)), "weights": w, "candidates": candidates,
             "queued_by_source": {s: int(out["sources"].str.contains(s).sum()) for s in SOURCES},
             "model_fingerprint": embed_stats["model_fingerprint"], "n_embedded": embed_stats["n_embedded"],
             "n_cached": embed_stats["n_cached"]}
    return ReviewQueue(queue=out, candidates=candidates, stats=stats)
