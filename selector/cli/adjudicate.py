"""``selector adjudicate``: apply reviewers' final labels, keep the votes, report the rework rate."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    Shared,
    UnsureLabelsOption,
    add_inputs,
    annotation_settings,
    shared_options,
)
from selector.io import read_table
from selector.outputs import OutputPlan, table
from selector.quality.adjudicate import (
    adjudicate,
    format_adjudication,
    prepare_decisions,
)
from selector.quality.annotations import prepare_annotations


@app.command("adjudicate")
@handle_errors
@shared_options("config_file", "label_col", "quiet")
def adjudicate_command(
    annotations_file: Path = typer.Argument(..., help="Long-format annotations: item_id, annotator, label [, timestamp]."),
    decisions_file: Path = typer.Argument(..., help="Decisions: item_id, final_label, reviewer [, note]."),
    out: Path = typer.Option(Path("resolved.csv"), "--out", "-o", help="Resolved label set (one row per item, votes kept)."),
    unsure_labels: UnsureLabelsOption = None,
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    rework_out: Optional[Path] = typer.Option(None, "--rework-out", help="Also write how often each first annotator was overturned."),
    opts: Shared = None,
) -> None:
    """Record reviewers' final labels for contested items and write the resolved label set."""
    label_col, unsure_labels = annotation_settings(opts, unsure_labels)
    plan = OutputPlan()
    add_inputs(plan, opts)
    plan.add_input(annotations_file, "ANNOTATIONS")
    plan.add_input(decisions_file, "DECISIONS")
    plan.add_output("resolved", out, "--out", table_format=True)
    plan.add_output("rework", rework_out, "--rework-out", table_format=True)
    plan.check()
    annotations = prepare_annotations(read_table(annotations_file), item_col=item_col, annotator_col=annotator_col,
                                      label_col=label_col, source=str(annotations_file))
    decisions = prepare_decisions(read_table(decisions_file), source=str(decisions_file), unsure_labels=unsure_labels)
    result = adjudicate(annotations, decisions, unsure_labels=unsure_labels)
    writers = {"resolved": table(result.resolved, out)}
    if rework_out is not None:
        writers["rework"] = table(result.rework_by_annotator, rework_out)
    plan.commit(writers)
    typer.echo(format_adjudication(result))
    info(f"wrote {out}" + (f" and {rework_out}" if rework_out is not None else ""), opts.quiet)
