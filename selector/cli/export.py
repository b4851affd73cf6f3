"""``selector export QUEUE --format FMT --out FILE``: a queue in a labeling tool's import format."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import Shared, shared_options
from selector.errors import ConfigError, DataError
from selector.io import read_table
from selector.labels import normalise_label
from selector.loop.export import (
    EXPORT_FORMATS,
    export_suffix,
    export_writers,
    label_config_path_for,
)
from selector.outputs import OutputPlan


@app.command("export")
@handle_errors
@shared_options("config_file", "label_col", "quiet")
def export_command(
    queue: Path = typer.Argument(..., help="A queue written by `selector select`."),
    fmt: str = typer.Option(..., "--format", "-f", help="label-studio, argilla, prodigy or doccano."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.json for label-studio, .jsonl otherwise)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated label set (Label Studio config, Prodigy options)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Take the label set from this data file's label column."),
    opts: Shared = None,
) -> None:
    """Write QUEUE as tasks a labeling tool imports as is (each carries its id for `selector merge`)."""
    if labels is not None and data is not None:
        raise ConfigError("give the label set once: --labels or --data, not both")
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    config = opts.config()
    plan = OutputPlan()
    plan.add_input(queue, "QUEUE")
    plan.add_input(data, "--data")
    plan.add_output("export", out, "--out", suffixes=(export_suffix(fmt),))
    plan.add_output("label_config", label_config_path_for(out), "Label Studio config")
    plan.check()
    label_set = None
    if labels is not None:
        label_set = [x.strip() for x in labels.split(",") if x.strip()]
    elif data is not None:
        df = read_table(data)
        if config.label_col not in df.columns:
            raise DataError(f"{data}: no label column {config.label_col!r}; pass --label-col COLUMN")
        label_set = sorted({v for v in map(normalise_label, df[config.label_col]) if v is not None})
    written = plan.commit(export_writers(read_table(queue), fmt, out, labels=label_set, source=str(queue)))
    info(f"exported {queue} as {fmt} -> {', '.join(map(str, written.values()))}", opts.quiet)
