"""``selector export QUEUE --format FMT --out FILE``: a queue in a labeling tool's import format."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info


@app.command("export")
@handle_errors
def export_command(
    queue: Path = typer.Argument(..., help="A queue written by `selector select`."),
    fmt: str = typer.Option(..., "--format", "-f", help="label-studio, argilla, prodigy or doccano."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.json for label-studio, .jsonl otherwise)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated label set (Label Studio config, Prodigy options)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Take the label set from this data file's label column."),
    label_col: str = typer.Option("label", "--label-col", help="Label column of --data."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line."),
) -> None:
    """Write QUEUE as tasks a labeling tool imports as is (each carries its id for `selector merge`)."""
    from selector.labels import normalise_label
    from selector.errors import ConfigError, DataError
    from selector.loop.export import write_export
    from selector.io import read_table

    if labels is not None and data is not None:
        raise ConfigError("give the label set once: --labels or --data, not both")
    label_set = None
    if labels is not None:
        label_set = [x.strip() for x in labels.split(",") if x.strip()]
    elif data is not None:
        df = read_table(data)
        if label_col not in df.columns:
            raise DataError(f"{data}: no label column {label_col!r}; pass --label-col COLUMN")
        label_set = sorted({v for v in map(normalise_label, df[label_col]) if v is not None})
    written = write_export(read_table(queue), fmt, out, labels=label_set, source=str(queue))
    info(f"exported {queue} as {fmt} -> {', '.join(map(str, written))}", quiet)
