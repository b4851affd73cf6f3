"""``selector export QUEUE --format FMT --out FILE``: a queue in a labeling tool's import format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import Shared, add_inputs, shared_options, split_list
from selector.errors import ConfigError, DataError
from selector.io import read_table
from selector.labels import normalise_label
from selector.loop.export import (
    EXPORT_FORMATS,
    argilla_settings_path_for,
    check_label_config,
    export_suffix,
    export_writers,
    label_config_path_for,
    predictions_path_for,
)
from selector.labelsets import parse_label_set
from selector.outputs import OutputPlan
from selector.round.record import record_path_for


@app.command("export")
@handle_errors
@shared_options("config_file", "label_col", "quiet", "label_sep", "none_label")
def export_command(
    queue: Path = typer.Argument(..., help="A queue written by `selector select`."),
    fmt: str = typer.Option(..., "--format", "-f", help="label-studio, argilla, prodigy or doccano."),
    out: Path = typer.Option(..., "--out", "-o", help="Output file (.json for label-studio, .jsonl otherwise)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Comma-separated label set (Label Studio config, Prodigy options)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Take the label set from this data file's label column."),
    label_config: Optional[Path] = typer.Option(None, "--label-config", help="Label Studio: the project's labeling "
                                                "config (XML); --from-name/--to-name are checked against it and its "
                                                "choices are the label set."),
    from_name: str = typer.Option("label", "--from-name", help="Label Studio: the Choices control's name."),
    to_name: Optional[str] = typer.Option(None, "--to-name", help="Label Studio: the object the choices label "
                                          "[default: text, or dialogue for chat data]."),
    argilla_nested: bool = typer.Option(False, "--argilla-nested", help="Argilla: nested rg.Record.from_dict dicts "
                                        "instead of the flat records dataset.records.log takes."),
    update_project: bool = typer.Option(False, "--update-project", help="Label Studio: also write FILE.predictions.json, "
                                        "this round's prediction per selector_id, to refresh tasks a project already has."),
    opts: Shared = None,
) -> None:
    """Write QUEUE as tasks a labeling tool imports as is (each carries its id for `selector merge`)."""
    if sum(x is not None for x in (labels, data, label_config)) > 1:
        raise ConfigError("give the label set once: --labels, --data or --label-config")
    if label_config is not None and fmt != "label-studio":
        raise ConfigError("--label-config is a Label Studio labeling config; it goes with --format label-studio")
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    config = opts.config()
    plan = OutputPlan()
    add_inputs(plan, opts, labels=labels)
    plan.add_input(queue, "QUEUE")
    plan.add_input(data, "--data")
    plan.add_input(label_config, "--label-config")
    plan.add_output("export", out, "--out", suffixes=(export_suffix(fmt),))
    if str(out) != "-":  # tasks on standard output: the config, if any, is not written
        plan.add_output("label_config", label_config_path_for(out), "Label Studio config")
    if fmt == "argilla" and str(out) != "-":
        plan.add_output("argilla_settings", argilla_settings_path_for(out), "Argilla settings")
    if update_project:
        if fmt != "label-studio" or str(out) == "-":
            raise ConfigError("--update-project goes with --format label-studio and a file --out")
        plan.add_output("predictions", predictions_path_for(out), "Label Studio predictions")
    # The queue's round (its record beside it) makes each round's model_version distinct.
    record = record_path_for(queue)
    round_number, round_data = None, None
    if record.is_file():
        try:
            rec = json.loads(record.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise DataError(f"{record}: the queue's round record is not valid JSON; re-run the round or move it away") from None
        if isinstance(rec, dict):
            round_number = rec.get("round")
            path = (rec.get("data") or {}).get("path") if isinstance(rec.get("data"), dict) else None
            round_data = Path(path) if isinstance(path, str) else None
    if labels is None and data is None and label_config is None and round_data is not None and round_data.is_file():
        plan.add_input(round_data, "the round's data")
    plan.check()
    label_set = None
    if labels is not None:
        label_set = split_list(labels)
    elif data is not None:
        label_set = _label_set(data, config.label_col)
        if label_set is None:
            raise DataError(f"{data}: no label column {config.label_col!r}; pass --label-col COLUMN")
    queue_table = read_table(queue)
    if label_config is not None:
        chat = "conversation" in queue_table.columns
        label_set = check_label_config(label_config.read_text(encoding="utf-8"), from_name,
                                       to_name or ("dialogue" if chat else "text"), source=str(label_config))
    if label_set is None and label_config is None:
        # No label set given: the round's own data (named in its record) has one.
        if round_data is not None and round_data.is_file():
            label_set = _label_set(round_data, config.label_col) or None
            if label_set:
                info(f"label set: the {len(label_set)} labels of {round_data} (the round's data; "
                     "--labels or --data to choose)", opts.quiet)
        if label_set is None and fmt == "label-studio":
            typer.echo("warning: no label set (--labels, --data or --label-config, and none in the round's data), so "
                       "no labeling config was written beside the tasks: create the project's config by hand",
                       err=True)
    multi = "predicted_labels" in queue_table.columns  # a multi-label round's queue
    if multi and label_set is not None and label_config is None:
        # The data's cells are label sets: its labels are their parts.
        label_set = sorted({v for cell in label_set for v in (parse_label_set(cell, sep=config.label_sep,
                                                                               none_label=config.none_label) or ())}
                           - {config.none_label})
    writers = export_writers(queue_table, fmt, out, labels=label_set, round_number=round_number,
                             from_name=from_name, to_name=to_name, update_project=update_project,
                             argilla_nested=argilla_nested, source=str(queue), label_sep=config.label_sep,
                             none_label=config.none_label)
    if label_config is not None or str(out) == "-":
        writers.pop("label_config", None)  # the project has its config already / nowhere to put it
    if str(out) == "-":
        writers.pop("argilla_settings", None)
    written = plan.commit(writers)
    info(f"exported {queue} as {fmt} -> {', '.join(map(str, written.values()))}", opts.quiet)


def _label_set(path: Path, label_col: str) -> Optional[list[str]]:
    """The sorted distinct labels in ``path``'s ``label_col`` (None without that column)."""
    df = read_table(path)
    if label_col not in df.columns:
        return None
    return sorted({v for v in map(normalise_label, df[label_col]) if v is not None})
