"""``selector agreement ANNOTATIONS``: inter-annotator agreement and consensus labels."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    Shared,
    UnsureLabelsOption,
    annotation_settings,
    shared_options,
    split_list,
)
from selector.io import read_table
from selector.outputs import OutputPlan, table
from selector.quality.agreement import agreement


@app.command("agreement")
@handle_errors
@shared_options("config_file", "label_col", "quiet")
def agreement_command(
    annotations: Path = typer.Argument(..., help="Long-format ratings: one row per (item, annotator, label)."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    gold_col: Optional[str] = typer.Option(None, "--gold-col", help="Reference label column: adds consensus accuracy."),
    min_shared: int = typer.Option(5, "--min-shared", min=1, help="Annotator pairs sharing fewer items are left out."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write consensus labels per item (.csv/.parquet/.jsonl)."),
    rows: int = typer.Option(10, "--rows", min=1, help="Rows per table in the text report."),
    seed: int = typer.Option(0, "--seed", help="Seed for breaking majority-vote ties (ties stay flagged) [default: 0]."),
    unsure_labels: UnsureLabelsOption = None,
    opts: Shared = None,
) -> None:
    """Pairwise/Fleiss/Krippendorff agreement, contested items and consensus labels (majority, Dawid-Skene)."""
    label_col, unsure_labels = annotation_settings(opts, unsure_labels)
    plan = OutputPlan()
    plan.add_input(annotations, "ANNOTATIONS")
    plan.add_output("consensus", out, "--out", table_format=True)
    plan.check()
    df = read_table(annotations)
    report = agreement(df, item_col=item_col, annotator_col=annotator_col, label_col=label_col, gold_col=gold_col,
                       min_shared=min_shared, random_state=seed, source=str(annotations),
                       unsure_labels=split_list(unsure_labels) or ())
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str))
    else:
        typer.echo(report.to_text(max_rows=rows))
    if out is not None:
        plan.commit({"consensus": table(report.consensus, out)})
        info(f"wrote consensus labels for {report.n_items} items -> {out}", opts.quiet)
