"""``selector suspects``: labeled rows that are probably mislabeled, with a suggested label."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    LABEL_SETS,
    MODEL_COMMAND,
    Shared,
    accepts_example,
    plan_table_inputs,
    read_checked_annotations,
    read_table_inputs,
    shared_options,
    stdin_data,
)
from selector.errors import ConfigError, DataError
from selector.outputs import OutputPlan, table
from selector.round.embed import embed_pool
from selector.round.model import check_enough_labels, classifier_template
from selector.round.multilabel import multilabel_problem
from selector.round.multilabel_suspects import label_suspects_for_pool
from selector.round.pool import pool_from_config
from selector.round.suspects import (
    check_list_size,
    select_suspects,
    suspect_result_for_pool,
    suspects_frame,
)


@app.command("suspects")
@handle_errors
@accepts_example()
@shared_options(*MODEL_COMMAND, *LABEL_SETS)
def suspects_command(
    data: Path = typer.Argument(..., help="Table of texts (CSV, Parquet or JSONL); rows with an empty label are ignored."),
    out: Path = typer.Option(Path("suspects.csv"), "--out", "-o", help="Suspect list; format by extension (.csv, .parquet, .jsonl)."),
    top: Optional[int] = typer.Option(None, "--top", help="Report the N most suspect rows."),
    threshold: Optional[float] = typer.Option(None, "--threshold",
                                              help="Report rows with suspect_score >= S (a rank in 0-1: 0.99 = top 1%)."),
    annotations: Optional[Path] = typer.Option(None, "--annotations",
                                               help="Several annotators' votes (item_id = the data's id): rows with "
                                                    "votes are judged on the consensus of votes + model."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    opts: Shared = None,
) -> None:
    """List labeled rows that look mislabeled, most suspect first, with a suggested label.

    Without --top or --threshold, the list is never longer than the estimated number of wrong
    labels (the sum of p_mislabeled, the probability that a label is wrong) and holds only rows
    with p_mislabeled >= 0.4. Rows with the same normalised text but different labels are always
    listed (kind contradiction).
    """
    data = stdin_data(data, opts)
    check_list_size(top, threshold)
    t0 = time.perf_counter()
    config = opts.config()
    plan = OutputPlan()
    cache = plan_table_inputs(plan, data, opts, config, annotations=annotations)
    plan.add_output("suspects", out, "--out", table_format=True)
    plan.check()
    df, X_given = read_table_inputs(data, opts)
    pool, detected = pool_from_config(df, config, source=str(data), require_id_col=False)
    if pool.multi_label:
        _multilabel_suspects(pool, detected, X_given, cache, config, opts, plan, out, top, threshold, annotations, t0)
        return
    check_enough_labels(pool.labels[pool.labeled], str(data), config.label_col)
    votes = read_checked_annotations(annotations, item_col=item_col, annotator_col=annotator_col,
                                     label_col=config.label_col)
    template = classifier_template(config)
    X, stats = embed_pool(pool, config, embeddings=X_given, cache_dir=cache, show_progress=not opts.quiet)
    info(f"cross-validating the classifier on {int(pool.labeled.sum())} labeled rows and scoring them", opts.quiet)
    result = suspect_result_for_pool(
        pool, X, random_state=config.seed, classifier=template,
        annotations=votes,
        annotation_columns={"item_col": item_col, "annotator_col": annotator_col, "label_col": config.label_col},
        unsure_labels=config.unsure_labels, source=str(data))
    lab = pool.labeled_positions
    found = suspects_frame(result, select_suspects(result, top=top, threshold=threshold), ids=pool.ids[lab],
                           texts=pool.texts[lab])
    plan.commit({"suspects": table(found, out)})
    votes = f"; {result.n_with_votes} rows judged with annotators' votes" if annotations is not None else ""
    info(f"{result.summary(len(found))}{votes} -> {out} ; embedded {stats['n_embedded']} new texts, "
         f"{stats['n_cached']} from cache; {time.perf_counter() - t0:.1f}s", opts.quiet)


def _multilabel_suspects(pool, detected, X_given, cache, config, opts, plan, out, top, threshold, annotations, t0):
    """``suspects`` on a multi-label table: one row per (row, label) pair that is probably wrong or missing."""
    source = pool.source
    if annotations is not None:
        raise ConfigError("--annotations does not work on multi-label tasks yet; run suspects without it")
    if detected:
        info(f"{source}: column {config.label_col!r} holds label sets, so this is a multi-label task with "
             f"{pool.space.n_labels} labels (--single-label reads each cell as one label)", opts.quiet)
    problem = multilabel_problem(pool.Y[pool.labeled])
    if problem is not None:
        raise DataError(f"{source}: suspects need at least 3 labeled rows with some label both present and absent "
                        f"in column {config.label_col!r}; found {problem}")
    # Unweighted, as the round's out-of-fold pass (selector.round.run.plan_round says why).
    template = classifier_template(config)
    X, stats = embed_pool(pool, config, embeddings=X_given, cache_dir=cache, show_progress=not opts.quiet)
    info(f"cross-validating the per-label classifiers on {int(pool.labeled.sum())} labeled rows and scoring "
         f"{pool.space.n_labels} labels each", opts.quiet)
    found, frame = label_suspects_for_pool(pool, X, classifier=template, random_state=config.seed, top=top,
                                           threshold=threshold)
    plan.commit({"suspects": table(frame, out)})
    info(f"label suspects: {found.summary()} -> {out} ; embedded {stats['n_embedded']} new texts, "
         f"{stats['n_cached']} from cache; {time.perf_counter() - t0:.1f}s", opts.quiet)
