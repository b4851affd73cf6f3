"""One labeling round as a library transaction: plan, compute, commit.

:func:`run_round` is the round; ``selector select`` and :func:`selector.select` both call it.

1. **Plan** (:func:`plan_round`): read the table and every input, build the strategy, the
   classifier template (scikit-learn's own parameter validation) and the embedder (device check),
   resolve every output (queue, record, suspects, gold key, ledger) and refuse collisions,
   unwritable folders and unknown formats. Nothing is embedded before the plan passes.
2. **Compute** (:func:`compute_round`): embed through the cache, fit once, out-of-fold
   probabilities once (shared by the suspects and the record's CV figures), score, select, bucket
   priority, gold.
3. **Commit** (:func:`commit_round`): under the ledger's lock take the round number, write every
   output to a temp file, rename them all, append the ledger line. On failure nothing new is visible.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import warnings
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from selector.chat import ChatTable, read_data
from selector.config import SelectConfig
from selector.errors import ConfigError, DataError, EmptyPoolError
from selector.io import file_sha256, read_table, release_arrow_memory, table_sibling
from selector.loop.ledger import (
    ledger_path,
    locked_ledger,
    read_ledger,
    round_records,
    stop_set_ids,
    stop_set_predictions,
)
from selector.models.cache import check_cache_root
from selector.models.embedders import make_embedder
from selector.outputs import OutputPlan, json_file, table
from selector.quality.annotations import prepare_annotations
from selector.quality.consensus import consensus_from_codes
from selector.quality.gold import check_gold_rate, gold_for_round, read_gold
from selector.round.buckets import BUCKET_COL, check_bucket_share, prioritise_buckets
from selector.round.compute import build_context, queue_frame
from selector.round.embed import embed_pool, load_embeddings
from selector.round.model import (
    OutOfFold,
    classifier_template,
    cv_figures,
    labels_problem,
    out_of_fold,
)
from selector.round.multilabel import (
    build_multilabel_context,
    multilabel_classifier,
    multilabel_cv_figures,
    multilabel_out_of_fold,
    multilabel_queue_frame,
    multilabel_template,
)
from selector.round.multilabel_suspects import find_label_suspects, label_suspects_frame
from selector.round.pool import LabeledPool, pool_from_config
from selector.round.record import record_path_for, round_record
from selector.round.relabel import (
    PoolVotes,
    evidence_from_consensus,
    evidence_from_suspects,
    relabel_queue,
    votes_for_pool,
)
from selector.round.two_stage import (decide_two_stage, embed_two_stage, refuse_two_stage, why_not_shortlist,
                                      why_not_two_stage)
from selector.round.suspects import (
    find_suspects,
    select_suspects,
    suspects_frame,
    suspects_path_for,
)
from selector.strategies import Selection, SelectionContext, make_strategy, strategies_for

__all__ = ["RoundPlan", "RoundResult", "plan_round", "compute_round", "commit_round", "run_round", "select",
           "gold_key_path_for"]


def gold_key_path_for(queue: str | Path) -> Path:
    """``queue.csv`` -> ``queue.key.csv``: the answer key of the gold items mixed into the queue."""
    return table_sibling(queue, "key")


@dataclass
class RoundPlan:
    """Everything a round needs, resolved and checked before any expensive work.

    Attributes
    ----------
    config : SelectConfig
    df : DataFrame
        The table as read.
    pool : LabeledPool
    budget : int
        New rows the strategy picks (the pool size when the pool is smaller than ``config.budget``).
    queue_budget : int
        Rows in the queue: ``budget``, or with ``config.relabel`` up to ``config.budget`` new and labeled rows.
    votes : PoolVotes or None
        Annotators' votes (``annotations``): the voted rows train on their consensus.
    oof_template : estimator or None
        Multi-label: the classifier of the out-of-fold pass (the configured one, unweighted), while
        ``template`` (class-weighted by default) scores the pool.
    two_stage_why_not : str or None
        Why this round cannot run in two stages on the static tier (:mod:`selector.round.two_stage`);
        None when it can.
    stream_why_not : str or None
        Why it cannot select from a shortlist of its exact vectors either (a pool of
        ``STREAM_MIN_ROWS`` rows or more otherwise streams them from the cache); None when it can.
    outputs : OutputPlan or None
        None when the round writes nothing (library use without ``out``).
    ledger : Path or None
        The ledger the round is appended to.
    """

    config: SelectConfig
    df: pd.DataFrame
    pool: LabeledPool
    source: str
    data_path: Path | None
    data_sha256: str | None
    budget: int
    strategy: Any
    template: Any
    embedder: Any
    embeddings: np.ndarray | None
    cache_dir: Path | None
    gold_table: pd.DataFrame | None
    gold_path: Path | None
    gold_rate: float | None
    bucket_priority: float | None
    suspects: bool
    outputs: OutputPlan | None
    ledger: Path | None
    command: str | None
    chat: ChatTable | None = None
    queue_budget: int = 0
    votes: PoolVotes | None = None
    oof_template: Any = None
    two_stage_why_not: str | None = None
    stream_why_not: str | None = None


@dataclass
class RoundResult:
    """Everything one round produced.

    Attributes
    ----------
    queue : DataFrame
        The queue as written: ``rank, id, text, score, strategy, reason, predicted_label,
        predicted_proba`` (+ extras such as ``cluster``), best first; with gold mixed in, the
        blind queue (``rank, id, text``).
    consensus : ConsensusResult or None
        The voted rows' consensus (with ``annotations``).
    suspects : DataFrame or None
        The mislabel-suspect list (None when skipped; ``suspects_note`` says why).
    suspects_note : str
        One line for the user about the suspect list.
    gold_key : DataFrame or None
        The answer key of a queue with gold items mixed in.
    gold_ids : list of str or None
    record : dict
        The one round record (``queue.round.json`` and the ledger line).
    selection : Selection
    context : SelectionContext
    pool : LabeledPool
    embeddings : ndarray of float32, shape (pool.n, d)
    oof : OutOfFold or None
        Out-of-fold probabilities of the labeled rows (None at cold start).
    stats : dict
        Counts and timings.
    written : dict of str -> Path
        Files written, by key (``queue``, ``record``, ``suspects``, ``gold_key``).
    """

    queue: pd.DataFrame
    selection: Selection
    context: SelectionContext
    pool: LabeledPool
    embeddings: np.ndarray
    stats: dict = field(default_factory=dict)
    oof: OutOfFold | None = None
    suspects: pd.DataFrame | None = None
    suspects_note: str = ""
    gold_key: pd.DataFrame | None = None
    gold_ids: list | None = None
    record: dict = field(default_factory=dict)
    written: dict = field(default_factory=dict)
    consensus: Any = None


def plan_round(data: str | Path | pd.DataFrame, config: SelectConfig | None = None, *,
               out: str | Path | None = None, embeddings: str | Path | np.ndarray | None = None,
               embedder=None, classifier=None, cache_dir: str | Path | None = None,
               gold: str | Path | pd.DataFrame | None = None, gold_rate: float | None = None,
               bucket_priority: float | None = None, suspects: bool = True,
               ledger: str | Path | bool | None = None, command: str | None = None,
               source: str | None = None, inputs: Sequence[tuple[str, str | Path]] = (),
               annotations: str | Path | pd.DataFrame | None = None, item_col: str = "item_id",
               annotator_col: str = "annotator") -> RoundPlan:
    """Read and check everything a round needs; see :func:`run_round` for the parameters.

    Raises
    ------
    ConfigError, DataError, EmptyPoolError, ModelError
        One message naming what is wrong and where; nothing has been written or embedded.
    """
    config = config or SelectConfig()
    outputs = OutputPlan() if out is not None else None
    data_path, chat = None, None
    if isinstance(data, pd.DataFrame):
        df, source, data_sha256 = data, source or "<DataFrame>", None
    elif isinstance(data, (str, Path)):
        data_path = Path(data)
        df, chat = read_data(data_path, config, skipped_folder=cache_dir)
        source, data_sha256 = source or str(data_path), file_sha256(data_path)
    else:
        raise DataError(f"a round needs a DataFrame or a data file path, got {type(data).__name__}")

    if config.text_col in df.columns and df[config.text_col].dtype != object:
        # The pool holds the texts as Python strings: made here, once, they are shared with the frame,
        # whose own column (Arrow strings when read from a file) would otherwise be a second copy for
        # the whole round (2.5 GB for 10M ag_news texts).
        df = df.assign(**{config.text_col: pd.Series(df[config.text_col].to_numpy(dtype=object), index=df.index,
                                                      dtype=object)})
        release_arrow_memory()
    # The default "id" column is optional (ids are generated); a column the user named must exist.
    pool, detected = pool_from_config(df, config, source=source)
    if detected:
        warnings.warn(f"{source}: column {config.label_col!r} holds label sets ({config.label_sep!r}-joined), so this "
                      f"is a multi-label task with {pool.space.n_labels} labels; declare it with --multi-label "
                      "(task: multi_label) or --single-label to read each cell as one label", stacklevel=3)
    if pool.multi_label:
        unsupported = [what for what, given in (("--annotations", annotations is not None), ("--relabel", config.relabel),
                                                ("--gold", gold is not None),
                                                ("--bucket-priority", bucket_priority is not None)) if given]
        if unsupported:
            raise ConfigError(f"{', '.join(unsupported)} do(es) not work on multi-label tasks yet; run the multi-label "
                              "round without them")
    votes, annotations_path = None, None
    if annotations is not None:
        if isinstance(annotations, pd.DataFrame):
            ann, ann_source = annotations, "annotations"
        else:
            annotations_path = Path(annotations)
            ann, ann_source = read_table(annotations_path), str(annotations_path)
        ann = prepare_annotations(ann, item_col=item_col, annotator_col=annotator_col, label_col=config.label_col,
                                  source=ann_source, keep=())
        pool, votes = votes_for_pool(pool, ann, unsure_labels=config.unsure_labels, source=ann_source)
    n_pool = int((~pool.labeled).sum())
    if config.relabel and (gold is not None or bucket_priority is not None):
        raise ConfigError("--relabel does not mix with --gold or --bucket-priority yet; run the relabel round "
                          "without them")
    if n_pool == 0 and not (config.relabel and pool.labeled.any()):
        raise EmptyPoolError(f"{source}: every row is labeled, so there is nothing to select; "
                             f"add unlabeled rows (an empty {config.label_col!r} cell)")
    strategy = make_strategy(config.strategy, **config.strategy_params)
    task = "multi_label" if pool.multi_label else "single_label"
    if task not in strategy.tasks:  # refused before anything is embedded
        raise ConfigError(f"strategy {config.strategy!r} does not serve {task.replace('_', '-')} tasks; choose one of: "
                          f"{', '.join(strategies_for(task))}")
    oof_template = None
    if pool.multi_label:
        # The suspects judge out-of-fold probabilities of the configured (unweighted) classifier: the
        # class-weighted default that selects better lifts every label above its base rate, which
        # confident learning's thresholds read as missing labels everywhere.
        oof_template = classifier_template(config, classifier)
        if classifier is None:
            classifier = multilabel_classifier(config.classifier, random_state=config.seed, **config.classifier_params)
    template = classifier_template(config, classifier)
    if bucket_priority is not None:
        check_bucket_share(bucket_priority)
        if BUCKET_COL not in df.columns:
            raise DataError(f"{source}: --bucket-priority needs a {BUCKET_COL!r} column "
                            "(added by `selector ingest --bucket COL`)")

    gold_table, gold_path = None, None
    if gold is None and gold_rate is not None:
        raise ConfigError("--gold-rate needs --gold GOLD_FILE (item_id, gold_label[, text])")
    if gold is not None:
        gold_rate = check_gold_rate(0.05 if gold_rate is None else gold_rate)
        if isinstance(gold, pd.DataFrame):
            gold_table = gold
        else:
            gold_path = Path(gold)
            gold_table = read_gold(gold_path)

    X_given = None
    if embeddings is not None:
        if isinstance(embeddings, np.ndarray):
            X_given = embeddings
        else:
            X_given = load_embeddings(embeddings, pool.n)
    elif embedder is None:
        # Cheap: validates model folder, backend and device; the weights load on first use.
        embedder = make_embedder(config.model, device=config.device, batch_size=config.batch_size,
                                 backend=config.backend)

    if cache_dir is not None:
        cache_dir = Path(cache_dir)
    two_stage_why_not = why_not_two_stage(
        multi_label=pool.multi_label, embeddings_given=X_given is not None, engine=config.engine, embedder=embedder,
        votes=votes is not None, relabel=config.relabel, bucket_priority=bucket_priority is not None)
    refuse_two_stage(config.two_stage, two_stage_why_not)  # before anything is read or embedded
    stream_why_not = why_not_shortlist(
        multi_label=pool.multi_label, embeddings_given=X_given is not None, votes=votes is not None,
        relabel=config.relabel, bucket_priority=bucket_priority is not None)
    ledger_file = None
    if outputs is not None:
        outputs.add_input(data_path, "DATA")
        outputs.add_input(gold_path, "--gold")
        outputs.add_input(annotations_path, "--annotations")
        for what, path in inputs:
            outputs.add_input(path, what)
        if embeddings is not None and not isinstance(embeddings, np.ndarray):
            outputs.add_input(embeddings, "--embeddings")
        out = outputs.add_output("queue", out, "--out", table_format=True)
        outputs.add_output("record", record_path_for(out), "round record")
        if suspects:
            outputs.add_output("suspects", suspects_path_for(out), "suspect list")
        if gold_table is not None:
            outputs.add_output("gold_key", gold_key_path_for(out), "gold answer key")
        if ledger is None or ledger is True:
            ledger_file = ledger_path(data_path) if data_path is not None else None
        elif ledger is not False:
            ledger_file = Path(ledger)
        if ledger_file is not None:
            outputs.add_output("ledger", ledger_file, "round ledger")
            read_ledger(ledger_file)  # a damaged ledger is reported now, not after the work
        if cache_dir is not None and X_given is None:
            outputs.add_folder(cache_dir, "--cache-dir")
        outputs.check()
    if cache_dir is not None and X_given is None:
        check_cache_root(cache_dir)

    if config.labels is not None:
        given = ([n for n, c in pool.space.counts(pool.Y).items() if c] if pool.multi_label
                 else pool.labels[pool.labeled].astype(str).tolist())
        outside = sorted(set(given) - set(config.labels))
        if outside:
            warnings.warn(f"{source}: labeled rows carry {len(outside)} label(s) outside the declared labels: "
                          f"{', '.join(outside[:5])}{', ...' if len(outside) > 5 else ''}; correct them or add them "
                          "to `labels` (`selector validate --labels ...` lists the rows)", stacklevel=3)
    budget = config.budget
    n_candidates = n_pool + (int(pool.labeled.sum()) if config.relabel else 0)
    if budget > n_candidates:
        warnings.warn(f"budget {budget} is larger than the pool ({n_pool} unlabeled rows"
                      + (f" and {n_candidates - n_pool} labeled ones" if config.relabel else "")
                      + "); queueing the whole pool", stacklevel=3)
    queue_budget = min(budget, n_candidates)
    budget = min(budget, n_pool)
    return RoundPlan(config=config, df=df, pool=pool, source=source, data_path=data_path, data_sha256=data_sha256,
                     budget=budget, strategy=strategy, template=template, embedder=embedder, embeddings=X_given,
                     cache_dir=cache_dir if X_given is None else None, gold_table=gold_table, gold_path=gold_path,
                     gold_rate=gold_rate, bucket_priority=bucket_priority, suspects=suspects, outputs=outputs,
                     ledger=ledger_file, command=command, chat=chat, queue_budget=queue_budget, votes=votes,
                     oof_template=oof_template, two_stage_why_not=two_stage_why_not,
                     stream_why_not=stream_why_not)


def with_conversation(queue: pd.DataFrame, df: pd.DataFrame, pool: LabeledPool) -> pd.DataFrame:
    """``queue`` with each chat row's ``system`` prompt, reply (``output``) and whole ``conversation``
    (JSON), so a reviewer and the tool exports see the exchange, not only the last user turn."""
    at = {str(i): n for n, i in enumerate(pool.ids)}
    pos = [at.get(str(i)) for i in queue["id"]]
    queue = queue.copy()
    for col in ("system", "output", "conversation"):
        values = df[col].to_numpy(dtype=object)
        queue[col] = [values[p] if p is not None else "" for p in pos]
    return queue


def _with_second_opinions(plan: RoundPlan, pool: LabeledPool, context: SelectionContext, selection: Selection,
                          queue: pd.DataFrame, found, cons) -> tuple[pd.DataFrame, dict]:
    """The queue with second opinions on labeled rows mixed in (``config.relabel``), and what the mix was."""
    lab = pool.labeled_positions
    if not context.has_model or (cons is None and found is None):
        why = context.cold_start_reason or "no out-of-fold evidence on the labeled rows"
        return queue.assign(kind="new"), {"n_new": len(queue), "n_relabel": 0, "skipped": why}
    if cons is not None:
        # Evidence rows follow cons.items; the queue needs them in labeled-position order.
        at = {int(p): n for n, p in enumerate(plan.votes.positions)}
        order = np.array([at[int(p)] for p in lab])
        evidence = evidence_from_consensus(cons, labeled_by=plan.votes.labeled_by).take(order)
    else:
        by = plan.df["annotator"].to_numpy(dtype=object)[lab] if "annotator" in plan.df.columns else None
        labeled_by = None if by is None else np.array(["" if pd.isna(v) else str(v) for v in by], dtype=object)
        evidence = evidence_from_suspects(found, labeled_by=labeled_by)
    new_proba = context.proba_pool[selection.indices] if len(selection) else None
    mixed = relabel_queue(queue, new_proba, context.classes, evidence, pool.ids[lab], pool.texts[lab],
                          plan.queue_budget)
    is_relabel = (mixed["kind"] == "relabel").to_numpy()
    n_relabel = int(is_relabel.sum())
    return mixed, {"n_new": len(mixed) - n_relabel, "n_relabel": n_relabel,
                   "ids": [str(i) for i in mixed["id"][is_relabel]], "vote_accuracy": round(evidence.accuracy, 4),
                   "model_weight": round(evidence.model_weight, 4), "evidence": "votes" if cons is not None else "suspects",
                   "n_thin_classes": 0 if found is None or cons is not None else int(found.thin_classes.size)}


def compute_round(plan: RoundPlan, *, show_progress: bool = False, on_step=None) -> RoundResult:
    """Embed, fit once, out-of-fold once, score, select, suspects, bucket priority and gold (no files).

    ``on_step(message)`` (optional) is told when each long step after embedding starts.
    """
    step = on_step or (lambda message: None)
    config, pool = plan.config, plan.pool
    t_start, c_start = time.perf_counter(), time.process_time()
    X, embed_stats, pool = _embed(plan, show_progress, step)
    if pool.multi_label:
        return _compute_multilabel(plan, X, embed_stats, step, (t_start, c_start))
    cons = None
    if plan.votes is not None:
        # The voted rows train on their consensus: votes weighed with an out-of-fold model.
        step(f"consensus of {plan.votes.codes.item.size} votes on {plan.votes.positions.size} rows")
        cons = consensus_from_codes(plan.votes.codes, X=X[plan.votes.positions], random_state=config.seed,
                                    classifier=plan.template)
        labels = pool.labels.copy()
        labels[plan.votes.positions] = cons.label
        pool = dataclasses.replace(pool, labels=labels)
    lab, unl = pool.labeled_positions, pool.pool_positions
    y = pool.labels[lab].astype(str)
    t_fit, c_fit = time.perf_counter(), time.process_time()
    context = build_context(X[lab], y, X[unl], classifier=plan.template, random_state=config.seed,
                            label_set=config.labels)
    t_oof, c_oof = time.perf_counter(), time.process_time()
    oof = None
    # The one out-of-fold pass, when something reads it: the suspects, or the record's CV figures.
    if context.has_model and (plan.suspects or plan.outputs is not None or config.relabel):
        step(f"cross-validating the classifier on {lab.size} labeled rows (out-of-fold probabilities)")
        oof = out_of_fold(plan.template, X[lab], y, random_state=config.seed)
    t_select, c_select = time.perf_counter(), time.process_time()
    if plan.budget > 0:
        selection = plan.strategy.select(context, plan.budget, random_state=config.seed)
    else:  # --relabel on a table with no unlabeled row: second opinions only
        selection = Selection(np.zeros(0, np.int64), np.zeros(0), np.zeros(0, dtype=object))
    t_suspects, c_suspects = time.perf_counter(), time.process_time()

    suspect_table, note, found = None, "", None
    if plan.suspects or (config.relabel and plan.votes is None):
        if oof is None:
            note = (f"suspect list skipped: {labels_problem(y)}; it needs at least 3 labeled rows of 2 classes")
        else:
            step(f"scoring {lab.size} labeled rows for mislabel suspects")
            found = find_suspects(X[lab], y, oof_proba=oof.proba, texts=pool.texts[lab], random_state=config.seed)
            if plan.suspects:
                suspect_table = suspects_frame(found, select_suspects(found), ids=pool.ids[lab], texts=pool.texts[lab])
                note = "mislabel suspects: " + found.summary(len(suspect_table))
    t_done, c_done = time.perf_counter(), time.process_time()

    classes = context.classes if context.classes is not None else np.unique(y)
    stats = {
        **embed_stats,
        "n_rows": plan.pool.n, "n_labeled": int(lab.size), "n_unlabeled": int(plan.pool.n - lab.size),
        "n_classes": int(classes.size), "n_selected": len(selection), "cold_start": not context.has_model,
        "cold_start_reason": context.cold_start_reason, "ids_generated": pool.ids_generated,
        "n_classifier_fits": (1 + (oof.n_splits if oof is not None else 0)) if context.has_model else 0,
        "strategy_info": selection.info,
        **_step_seconds(embed_stats["embed_seconds"], [(t_start, c_start), (t_fit, c_fit), (t_oof, c_oof),
                                                       (t_select, c_select), (t_suspects, c_suspects), (t_done, c_done)]),
    }
    stats.pop("embed_seconds", None)
    if plan.chat is not None:
        stats["chat"] = {"task": plan.chat.task, "label_from": plan.chat.label_from, "input_turns": config.input_turns,
                         "n_lines": plan.chat.n_lines, "n_skipped": len(plan.chat.skipped),
                         "skipped_lines": [s["line"] for s in plan.chat.skipped[:100]]}
    queue = queue_frame(pool, context, selection, config.strategy)
    if config.relabel:
        queue, stats["relabel"] = _with_second_opinions(plan, pool, context, selection, queue, found, cons)
    if cons is not None:
        stats["consensus"] = cons.summary()
    if plan.chat is not None:
        queue = with_conversation(queue, plan.df, plan.pool)  # plan.df is aligned with the whole pool
    result = RoundResult(queue=queue, selection=selection,
                         context=context, pool=pool, embeddings=X, stats=stats, oof=oof,
                         suspects=suspect_table, suspects_note=note, consensus=cons)
    if plan.bucket_priority is not None:
        result = prioritise_buckets(result, plan.df, share=plan.bucket_priority, strategy=config.strategy,
                                    random_state=config.seed)
    if plan.gold_table is not None:
        mixed = gold_for_round(result, plan.gold_table, plan.gold_rate, random_state=config.seed, pool=plan.pool)
        result = dataclasses.replace(result, queue=mixed.queue, gold_key=mixed.key, gold_ids=mixed.gold_ids)
    return result


def _embed(plan: RoundPlan, show_progress: bool, step) -> tuple[np.ndarray, dict, LabeledPool]:
    """The round's vectors and the pool they belong to: every row (one stage), or, for a cold pool in
    two stages, the labeled, shortlisted, cached and stop-set rows (:mod:`selector.round.two_stage`)."""
    config, pool = plan.config, plan.pool
    t0 = time.perf_counter()
    decision = None
    if plan.embeddings is None:
        decision = decide_two_stage(config.two_stage, pool, embedder=plan.embedder, cache_dir=plan.cache_dir,
                                    cache_dtype=config.cache_dtype, budget=plan.budget, why_not=plan.two_stage_why_not,
                                    stream_why_not=plan.stream_why_not)
    if decision is None or not decision.use:
        X, stats = embed_pool(pool, config, embedder=plan.embedder, embeddings=plan.embeddings,
                              cache_dir=plan.cache_dir, show_progress=show_progress)
        if decision is not None:
            stats["two_stage"] = {"used": False, "reason": decision.reason}
        return X, stats, pool
    records = round_records(read_ledger(plan.ledger, warn_torn=False)) if plan.ledger is not None else []
    at = {str(i): n for n, i in enumerate(pool.ids)}
    # The stop set's predictions are compared between rounds (selector status): its rows are always read.
    keep = np.array([at[str(i)] for i in stop_set_ids(pool.ids, records)], dtype=np.int64)
    rows, X, stats = embed_two_stage(pool, config, decision, embedder=plan.embedder, cache_dir=plan.cache_dir,
                                     budget=plan.budget, classifier=plan.template, keep=keep,
                                     show_progress=show_progress, step=step)
    stats["embed_seconds"] = time.perf_counter() - t0
    return X, stats, pool.take(rows)


def _step_seconds(embed_seconds: float, marks: list[tuple[float, float]]) -> dict:
    """``timings`` (wall) and ``cpu_seconds`` (process CPU, all threads: wall time on a loaded machine
    lies) of a round's steps, from ``(perf_counter, process_time)`` marks taken at the start and before
    fit, oof, select, suspects and at the end. The wall time of ``embed`` is the embedder's own."""
    steps = ("embed", "fit", "oof", "select", "suspects")
    out = {}
    for key, k in (("timings", 0), ("cpu_seconds", 1)):
        out[key] = {name: round(marks[i + 1][k] - marks[i][k], 3) for i, name in enumerate(steps)}
        out[key]["compute"] = round(marks[-1][k] - marks[0][k], 3)
    out["timings"]["embed"] = round(embed_seconds, 3)
    return out


def _compute_multilabel(plan: RoundPlan, X: np.ndarray, embed_stats: dict, step, started) -> RoundResult:
    """:func:`compute_round` for a multi-label pool: one-vs-rest fit, per-label out-of-fold pass,
    multi-label strategies, per-(row, label) suspects (:mod:`selector.round.multilabel`)."""
    config, pool, space = plan.config, plan.pool, plan.pool.space
    t_start, c_start = started
    lab, unl = pool.labeled_positions, pool.pool_positions
    Y = pool.Y[lab]
    template = multilabel_template(plan.template)
    t_fit, c_fit = time.perf_counter(), time.process_time()
    context = build_multilabel_context(X[lab], Y, X[unl], space, classifier=template, random_state=config.seed,
                                       label_set=config.labels)
    t_oof, c_oof = time.perf_counter(), time.process_time()
    oof = None
    if context.has_model and (plan.suspects or plan.outputs is not None):
        step(f"cross-validating the per-label classifiers on {lab.size} labeled rows (out-of-fold probabilities)")
        oof = multilabel_out_of_fold(multilabel_template(plan.oof_template), X[lab], Y, random_state=config.seed,
                                     classes=space.names)
    t_select, c_select = time.perf_counter(), time.process_time()
    selection = plan.strategy.select(context, plan.budget, random_state=config.seed)
    t_suspects, c_suspects = time.perf_counter(), time.process_time()
    suspect_table, note = None, ""
    if plan.suspects:
        if oof is None:
            note = f"suspect list skipped: {context.cold_start_reason}"
        else:
            step(f"scoring {lab.size} labeled rows x {space.n_labels} labels for suspects")
            found = find_label_suspects(X[lab], Y, oof.proba, random_state=config.seed)
            suspect_table = label_suspects_frame(found, space, ids=pool.ids[lab], texts=pool.texts[lab])
            note = "label suspects: " + found.summary()
    t_done, c_done = time.perf_counter(), time.process_time()
    stats = {
        **embed_stats,
        "task": "multi_label", "n_rows": pool.n, "n_labeled": int(lab.size), "n_unlabeled": int(unl.size),
        "n_labels": space.n_labels, "label_counts": space.counts(Y), "label_cardinality": round(space.cardinality(Y), 4),
        "n_selected": len(selection), "cold_start": not context.has_model,
        "cold_start_reason": context.cold_start_reason, "ids_generated": pool.ids_generated,
        "n_classifier_fits": (1 + (oof.n_splits if oof is not None else 0)) if context.has_model else 0,
        "strategy_info": selection.info,
        **_step_seconds(embed_stats["embed_seconds"], [(t_start, c_start), (t_fit, c_fit), (t_oof, c_oof),
                                                       (t_select, c_select), (t_suspects, c_suspects), (t_done, c_done)]),
    }
    stats.pop("embed_seconds", None)
    queue = multilabel_queue_frame(pool, context, selection, config.strategy, space)
    if plan.chat is not None:
        queue = with_conversation(queue, plan.df, pool)
    return RoundResult(queue=queue, selection=selection, context=context, pool=pool, embeddings=X, stats=stats,
                       oof=oof, suspects=suspect_table, suspects_note=note)


def commit_round(plan: RoundPlan, result: RoundResult) -> RoundResult:
    """Build the round record and write every output together (see the module docstring).

    Without outputs (library use) the record is built with no round number and nothing is written.
    """
    t0 = time.perf_counter()
    pool, config = result.pool, plan.config
    lab = pool.labeled_positions
    y = pool.labels[lab].astype(str)
    names, counts = np.unique(y, return_counts=True)
    gold_ids = set(result.gold_ids or [])
    queue_ids = [i for i in result.queue["id"].astype(str) if i not in gold_ids]
    if pool.multi_label:
        class_counts = pool.space.counts(pool.Y[lab])
        cv = multilabel_cv_figures(result.oof, pool.Y[lab]) if result.oof is not None else None
    else:
        class_counts = dict(zip(map(str, names), map(int, counts)))
        cv = cv_figures(result.oof, y) if result.oof is not None else None
    outputs = plan.outputs

    def build_record(round_number, records, written):
        gold = None
        if result.gold_ids is not None:
            gold = {"path": str(plan.gold_path) if plan.gold_path else None,
                    "sha256": file_sha256(plan.gold_path) if plan.gold_path else None,
                    "rate": plan.gold_rate, "ids": result.gold_ids}
        stats = dict(result.stats)
        stats["timings"] = dict(stats["timings"], write=round(time.perf_counter() - t0, 3),
                                total=round(stats["timings"]["compute"] + time.perf_counter() - t0, 3))
        return round_record(
            round_number=round_number, config=config.to_dict(), stats=stats,
            data_path=str(plan.data_path.resolve()) if plan.data_path else plan.source, data_sha256=plan.data_sha256,
            queue_ids=queue_ids,
            queue_path=str(Path(written["queue"]).resolve()) if "queue" in written else None, class_counts=class_counts,
            cv=cv, stop_set=stop_set_predictions(pool.ids, result.embeddings, result.context.classifier, records),
            outputs=written, command=plan.command, gold=gold)

    if outputs is None:
        return dataclasses.replace(result, record=build_record(None, [], {}))

    written = {key: str(outputs.path(key)) for key in ("queue", "suspects", "gold_key") if key in outputs.outputs}
    if result.suspects is None:
        written.pop("suspects", None)
    with (locked_ledger(plan.ledger) if plan.ledger is not None else contextlib.nullcontext()) as ledger:
        records = round_records(ledger.records) if ledger is not None else []
        record = build_record(ledger.next_round if ledger is not None else None, records, written)
        writers = {"queue": table(result.queue, outputs.path("queue")), "record": json_file(record)}
        if result.suspects is not None:
            writers["suspects"] = table(result.suspects, outputs.path("suspects"))
        if result.gold_key is not None:
            writers["gold_key"] = table(result.gold_key, outputs.path("gold_key"))
        files = outputs.commit(writers, after=(lambda: ledger.append(record)) if ledger is not None else None,
                               after_target=plan.ledger,
                               after_line=ledger.line_for(record) if ledger is not None else None)
    return dataclasses.replace(result, record=record, written=files)


def run_round(data: str | Path | pd.DataFrame, config: SelectConfig | None = None, *, out: str | Path | None = None,
              embeddings: str | Path | np.ndarray | None = None, embedder=None, classifier=None,
              cache_dir: str | Path | None = None, gold: str | Path | pd.DataFrame | None = None,
              gold_rate: float | None = None, bucket_priority: float | None = None, suspects: bool = True,
              ledger: str | Path | bool | None = None, command: str | None = None, source: str | None = None,
              show_progress: bool = False, on_step=None, inputs: Sequence[tuple[str, str | Path]] = (),
              annotations: str | Path | pd.DataFrame | None = None, item_col: str = "item_id",
              annotator_col: str = "annotator") -> RoundResult:
    """Plan, compute and commit one labeling round.

    Parameters
    ----------
    data : path or DataFrame
        The table (CSV, Parquet or JSONL by extension); an empty label means unlabeled. Never modified.
    config : SelectConfig, optional
        Budget, strategy, seed, columns, model, classifier (default :class:`SelectConfig()`).
    out : path, optional
        The queue file. With it the round writes ``out``, ``<out>.round.json``, the suspect list
        ``<out>.suspects.<ext>`` (unless ``suspects=False``), the gold key ``<out>.key.<ext>`` (with
        ``gold``) and appends the ledger line; without it nothing is written.
    embeddings : path to .npy or ndarray of shape (n_rows, d), optional
        Skips the model.
    embedder : object with ``encode(texts) -> (n, d)`` and ``fingerprint``, optional
    classifier : unfitted scikit-learn estimator with predict_proba, optional
        Default: ``config.classifier`` with ``config.classifier_params``.
    cache_dir : path, optional
        Embedding cache folder.
    gold : path or DataFrame, optional
        Gold items (``item_id, gold_label[, text]``) mixed, unmarked, into the queue at ``gold_rate``.
    bucket_priority : float in [0, 1], optional
        Share of the budget reserved for the rarest failure buckets (``bucket`` column).
    suspects : bool
        Compute the mislabel-suspect list (from the round's one out-of-fold pass).
    ledger : path, bool or None
        Where the ledger line goes: None/True = ``.selector/<data name>.rounds.jsonl`` beside a data file
        (none for a DataFrame), False = no ledger line. Only used with ``out``.
    command : str, optional
        The command line, recorded.
    source : str, optional
        Name of the data in messages (default: the path, or ``<DataFrame>``).
    show_progress : bool
        Progress on stderr while embedding (a bar on a terminal, periodic lines otherwise).
    on_step : callable, optional
        ``on_step(message)`` when cross-validation and the suspect scoring start (the CLI prints it).
    inputs : sequence of (what, path)
        Other files the caller read for this round (a config file, a labels file): no output may be one
        of them.
    annotations : path or DataFrame, optional
        Several annotators' votes in long format (``item_col, annotator_col`` and the label column):
        voted rows train on their consensus (votes weighed with an out-of-fold model); a DATA label
        on a row with no votes counts as one vote. With ``config.relabel`` second opinions are
        weighed against these votes.
    item_col, annotator_col : str
        Columns of ``annotations``.

    Returns
    -------
    RoundResult

    Raises
    ------
    SelectorError
        Anything a user can cause, before any work where it can be known then.
    """
    plan = plan_round(data, config=config, out=out, embeddings=embeddings, embedder=embedder, classifier=classifier,
                      cache_dir=cache_dir, gold=gold, gold_rate=gold_rate, bucket_priority=bucket_priority,
                      suspects=suspects, ledger=ledger, command=command, source=source, inputs=inputs,
                      annotations=annotations, item_col=item_col, annotator_col=annotator_col)
    return commit_round(plan, compute_round(plan, show_progress=show_progress, on_step=on_step))


def select(df: pd.DataFrame, budget: int, *, strategy: str = "auto", text_col: str = "text",
           label_col: str = "label", id_col: str = "id", random_state: int | None = None,
           strategy_params: dict[str, Any] | None = None, embedder=None, model: str | None = None,
           embeddings: np.ndarray | None = None, classifier=None, cache_dir: str | Path | None = None,
           show_progress: bool = False, relabel: bool = False,
           annotations: pd.DataFrame | None = None, task: str = "auto", label_sep: str = ";",
           none_label: str = "none") -> pd.DataFrame:
    """Choose the next ``budget`` unlabeled rows of ``df`` to label: :func:`run_round`'s queue.

    Parameters
    ----------
    df : DataFrame
        One row per text; an empty/NaN label means unlabeled. Not modified.
    budget : int
        Rows to return (the whole pool, with a warning, when the pool is smaller).
    strategy : str
        A registered strategy name.
    text_col, label_col, id_col : str
        Column names; without an id column ids are generated from the text's hash and row number.
    random_state : int or None
    strategy_params : dict, optional
    embedder : object with ``encode(texts) -> (n, d)`` and ``fingerprint``, optional
        Default: the bundled all-MiniLM-L6-v2 (or ``model``).
    model : str, optional
        A local sentence-transformers folder (ignored when ``embedder`` is given).
    embeddings : ndarray of shape (len(df), d), optional
        Precomputed embeddings aligned with the rows; skips the model.
    classifier : scikit-learn estimator with predict_proba, optional
        Default logistic regression.
    cache_dir : path, optional
        Embedding cache folder; none by default in the API.
    relabel : bool
        One budget for new rows and second opinions: labeled rows whose label one more vote would
        most likely fix join the queue, ranked with the new rows by expected gain
        (:mod:`selector.round.relabel`); adds ``kind, current_label, votes, labeled_by, gain``.
    annotations : DataFrame, optional
        Several annotators' votes (``item_id, annotator, label``); see :func:`run_round`.
    task : {"auto", "single_label", "multi_label"}
        ``multi_label``: each label cell is a set (``label_sep``-joined or a list; ``none_label`` =
        none of these); ``auto`` detects it (:mod:`selector.labelsets`).

    Returns
    -------
    DataFrame
        ``rank, id, text, score, strategy, reason, predicted_label, predicted_proba`` (+ extras),
        best first; a multi-label task has ``predicted_labels, label_probas`` instead of the
        predicted label and its probability. :func:`run_round` returns the whole round (suspects,
        record, ...).
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"select() needs a pandas DataFrame, got {type(df).__name__}")
    config = SelectConfig(budget=budget, strategy=strategy, strategy_params=dict(strategy_params or {}),
                          seed=random_state, text_col=text_col, label_col=label_col, id_col=id_col, model=model,
                          relabel=relabel, task=task, label_sep=label_sep, none_label=none_label)
    return run_round(df, config=config, embedder=embedder, embeddings=embeddings, classifier=classifier,
                     cache_dir=cache_dir, suspects=False, show_progress=show_progress, annotations=annotations).queue
