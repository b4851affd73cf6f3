"""``selector merge DATA LABELED_FILE``: bring labels back from a labeling tool by id."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import Shared, shared_options
from selector.errors import ConfigError
from selector.io import read_table
from selector.loop.ledger import ledger_path, read_ledger
from selector.loop.merge import (
    MergeConflictError,
    data_writers,
    merge_labels,
    plan_data_output,
    read_labels,
)
from selector.outputs import OutputPlan


@app.command("merge")
@handle_errors
@shared_options("config_file", "label_col", "id_col", "quiet")
def merge_command(
    data: Path = typer.Argument(..., help="The data file whose label column receives the labels."),
    labeled: Path = typer.Argument(..., help="The export: CSV/JSONL/Parquet (id + label), or a Label Studio JSON, Argilla, Prodigy or doccano export."),
    round_number: Optional[int] = typer.Option(None, "--round", help="Round to record for these labels [default: the ledger round whose queue held each id]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the merged data here (DATA is left untouched)."),
    in_place: bool = typer.Option(False, "--in-place", help="Replace DATA, after writing DATA.bak."),
    question: str = typer.Option("label", "--question", help="Argilla question holding the label."),
    opts: Shared = None,
) -> None:
    """Merge labels from a labeling tool's export into DATA's label column (refuses conflicts)."""
    if round_number is not None and round_number < 1:
        raise ConfigError(f"--round must be a positive round number, got {round_number}")
    config = opts.config()
    plan = OutputPlan()
    plan.add_input(data, "DATA")
    plan.add_input(labeled, "LABELED_FILE")
    plan_data_output(plan, data, out=out, in_place=in_place)
    plan.check()
    df = read_table(data)
    labels, skipped, kind = read_labels(labeled, id_col=config.id_col, label_col=config.label_col, question=question)
    round_of_id, gold_ids = {}, set()
    for rec in read_ledger(ledger_path(data)):
        for i in (rec.get("queue") or {}).get("ids", []):
            round_of_id[str(i)] = int(rec["round"])
        gold_ids.update(map(str, rec.get("gold_ids") or []))
    is_gold = labels["id"].isin(gold_ids)
    n_gold = int(is_gold.sum())
    # Gold answers score annotators (`selector gold`); they never become training labels.
    labels = labels[~is_gold].reset_index(drop=True)
    try:
        result = merge_labels(df, labels, label_col=config.label_col, id_col=config.id_col, round_number=round_number,
                              round_of_id=round_of_id, source=str(data))
    except MergeConflictError as exc:
        for row in exc.conflicts.head(20).to_dict("records"):
            existing = f", data has {row['existing']!r}" if row["existing"] else ""
            typer.echo(f"conflict: id {row['id']!r}: {row['problem']} (export says {row['label']!r}{existing})", err=True)
        if len(exc.conflicts) > 20:
            typer.echo(f"conflict: ... and {len(exc.conflicts) - 20} more", err=True)
        raise
    written = plan.commit(data_writers(result.data, plan, data))
    backup = written.get("backup")
    rounds = ", ".join(f"round {k}: {v}" for k, v in sorted(result.rounds.items()))
    info(f"merged {result.n_new} new label(s) from a {kind} export ({result.n_unchanged} already present, "
         f"{skipped} item(s) without a label skipped) -> {written['data']}" + (f" (backup {backup})" if backup else "") +
         (f"; {rounds}" if rounds else "") +
         (f"; set aside {n_gold} answer(s) to gold items (score them with `selector gold`)" if n_gold else ""), opts.quiet)
