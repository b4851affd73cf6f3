"""``selector gold``: annotators against a golden set, with drift per time window or guideline version."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

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
from selector.errors import ConfigError
from selector.io import FORMATS, read_table
from selector.outputs import OutputPlan, json_file, table
from selector.quality.annotations import prepare_annotations
from selector.quality.gold import (
    DRIFT_BY,
    format_drift_report,
    format_gold_report,
    gold_drift,
    gold_report,
    read_gold,
)


def _records(frame):
    return frame.astype(object).where(frame.notna(), None).to_dict(orient="records")


@app.command("gold")
@handle_errors
@shared_options("config_file", "label_col", "quiet")
def gold_command(
    gold_file: Path = typer.Argument(..., help="Gold labels: item_id, gold_label (CSV, Parquet or JSONL)."),
    annotations_file: Path = typer.Argument(..., help="Long-format annotations: item_id, annotator, label "
                                                      "[, timestamp, guideline_version]."),
    min_accuracy: float = typer.Option(0.7, "--min-accuracy", help="Flag annotators whose gold accuracy is below this."),
    by: Optional[List[str]] = typer.Option(None, "--by", help="Drift per week, month (timestamp column) or "
                                           "guideline_version; repeatable [default: guideline_version when present]."),
    min_items: int = typer.Option(5, "--min-items", help="Periods with fewer scored gold ratings are not compared for drift."),
    unsure_labels: UnsureLabelsOption = None,
    out: Optional[Path] = typer.Option(None, "--out", "-o", help=".json: every table; .csv/.parquet/.jsonl: the per-annotator table."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    gold_item_col: str = typer.Option("item_id", "--gold-item-col", help="Item id column of the gold file."),
    gold_col: str = typer.Option("gold_label", "--gold-col", help="Gold label column of the gold file."),
    max_rows: Optional[int] = typer.Option(None, "--max-rows", help="Print at most this many annotators (lowest accuracy first)."),
    opts: Shared = None,
) -> None:
    """Score each annotator against gold labels (accuracy + Wilson 95% interval, per-class precision/recall,
    most confused labels), flag those below --min-accuracy, and report drift."""
    label_col, unsure_labels = annotation_settings(opts, unsure_labels)
    for b in by or []:
        if b not in DRIFT_BY:
            raise ConfigError(f"--by must be one of {', '.join(DRIFT_BY)}, got {b!r}")
    plan = OutputPlan()
    add_inputs(plan, opts)
    plan.add_input(gold_file, "GOLD_FILE")
    plan.add_input(annotations_file, "ANNOTATIONS")
    if out is not None:
        plan.add_output("report", out, "--out", suffixes=(".json", *FORMATS))
    plan.check()
    gold = read_gold(gold_file, item_col=gold_item_col, label_col=gold_col)
    annotations = prepare_annotations(read_table(annotations_file), item_col=item_col, annotator_col=annotator_col,
                                      label_col=label_col, source=str(annotations_file))
    report = gold_report(annotations, gold, min_accuracy=min_accuracy, unsure_labels=unsure_labels)
    typer.echo(format_gold_report(report, max_rows=max_rows))
    drift_by = list(by) if by else (["guideline_version"] if "guideline_version" in annotations.columns else [])
    drifts = {}
    for b in drift_by:
        drifts[b] = gold_drift(annotations, gold, by=b, min_items=min_items, unsure_labels=unsure_labels)
        typer.echo("")
        typer.echo(format_drift_report(drifts[b]))
    if out is not None:
        if out.suffix.lower() == ".json":
            writer = json_file({"min_accuracy": min_accuracy, "n_gold_items": report.n_gold_items,
                        "n_gold_rated": report.n_gold_rated, "annotators": _records(report.annotators),
                        "per_class": _records(report.per_class), "confusions": _records(report.confusions),
                        "drift": {b: {"periods": d.periods, "windows": _records(d.windows),
                                      "per_class": _records(d.per_class), "drifts": _records(d.drifts)}
                                  for b, d in drifts.items()}})
        else:
            writer = table(report.annotators, out)
        plan.commit({"report": writer})
        info(f"wrote {out}", opts.quiet)
