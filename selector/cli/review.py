"""``selector review DATA``: one prioritized queue of rows a person should look at."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    MachineAnnotatorsOption,
    LABEL_SETS,
    MODEL_COMMAND,
    Shared,
    accepts_example,
    plan_table_inputs,
    read_checked_annotations,
    read_table_inputs,
    shared_options,
    split_list,
    stdin_data,
)
from selector.outputs import OutputPlan, table
from selector.quality.review import review


@app.command("review")
@handle_errors
@accepts_example()
@shared_options(*MODEL_COMMAND, *LABEL_SETS)
def review_command(
    data: Path = typer.Argument(..., help="Table of texts (labeled and unlabeled rows)."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help="Long-format ratings (item_id, annotator, label)."),
    budget: int = typer.Option(100, "--budget", "-b", min=1, help="Rows in the queue."),
    out: Path = typer.Option(Path("review.csv"), "--out", "-o", help="Queue file (.csv, .parquet, .jsonl)."),
    w_unsure: float = typer.Option(1.0, "--weight-unsure", help="Weight of items labelers marked unsure (they head the queue), 0..1."),
    w_contested: float = typer.Option(1.0, "--weight-contested", help="Weight of annotator disagreement, 0..1."),
    w_suspect: float = typer.Option(1.0, "--weight-suspect", help="Weight of mislabel suspicion, 0..1."),
    w_uncertain: float = typer.Option(1.0, "--weight-uncertain", help="Weight of model uncertainty on unlabeled rows, 0..1."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    machine_annotators: MachineAnnotatorsOption = None,
    opts: Shared = None,
) -> None:
    """Merge unsure and contested items, mislabel suspects and uncertain unlabeled rows into one ranked queue."""
    data = stdin_data(data, opts)
    config = opts.config()
    plan = OutputPlan()
    cache = plan_table_inputs(plan, data, opts, config, annotations=annotations)
    plan.add_output("queue", out, "--out", table_format=True)
    plan.check()
    df, X_given = read_table_inputs(data, opts)
    ann = read_checked_annotations(annotations, item_col=item_col, annotator_col=annotator_col,
                                   label_col=config.label_col)
    result = review(df, annotations=ann, budget=budget, text_col=config.text_col, label_col=config.label_col,
                    id_col=config.id_col, item_col=item_col, annotator_col=annotator_col,
                    annotation_label_col=config.label_col,
                    weights={"unsure": w_unsure, "contested": w_contested, "suspect": w_suspect, "uncertain": w_uncertain},
                    embeddings=X_given, cache_dir=cache, config=config,
                    random_state=config.seed, source=str(data),
                    machine_annotators=split_list(machine_annotators, "--machine-annotators") or ())
    plan.commit({"queue": table(result.queue, out)})
    q = result.stats["queued_by_source"]
    info(f"queued {len(result.queue)} rows for review -> {out} (unsure {q['unsure']}, "
         + (f"machine {q['machine']}, " if machine_annotators else "")
         + f"contested {q['contested']}, suspect {q['suspect']}, "
         f"uncertain {q['uncertain']}; candidates {result.candidates})", opts.quiet)
