"""``selector merge DATA [LABELED_FILE] [--accept-corrections FILE]``: bring labels back by id."""

from __future__ import annotations

import contextlib
import datetime as _dt
from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import LABEL_SETS, Shared, accepts_example, add_inputs, no_stdin, shared_options
from selector.errors import ConfigError
from selector.locks import data_lock
from selector.io import read_table
from selector.loop.ledger import LockedLedger, append_record, ledger_path, read_ledger
from selector.loop.merge import (
    MergeConflictError,
    append_votes,
    apply_corrections,
    data_writers,
    export_votes,
    merge_labels,
    plan_data_output,
    read_labels,
    read_votes,
    second_opinion_ids,
)
from selector.labelsets import table_task
from selector.outputs import OutputPlan, table


@app.command("merge")
@handle_errors
@accepts_example(shift="labeled")
@shared_options("config_file", "label_col", "id_col", "quiet", *LABEL_SETS)
def merge_command(
    data: Path = typer.Argument(..., help="The data file whose label column receives the labels."),
    labeled: Optional[Path] = typer.Argument(None, help="The export: CSV/JSONL/Parquet (id + label), or a Label Studio JSON, Argilla, Prodigy or doccano export."),
    round_number: Optional[int] = typer.Option(None, "--round", help="Round to record for these labels [default: the ledger round whose queue held each id]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the merged data here (DATA is left untouched)."),
    in_place: bool = typer.Option(False, "--in-place", help="Replace DATA, after writing DATA.bak."),
    question: str = typer.Option("label", "--question", help="Argilla question holding the label."),
    partial: bool = typer.Option(False, "--partial", help="Merge the clean labels and list the conflicts in a file "
                                 "(default: any conflict stops the merge, nothing written)."),
    conflicts_out: Optional[Path] = typer.Option(None, "--conflicts", help="Where --partial lists the conflicts "
                                                 "[default: <output>.conflicts.csv]."),
    accept_corrections: Optional[Path] = typer.Option(
        None, "--accept-corrections",
        help="A reviewed suspect list: rows with a 'corrected_label' overwrite DATA's label (recorded in the ledger)."),
    annotations: Optional[Path] = typer.Option(
        None, "--annotations",
        help="Votes file (item_id, annotator, label, label_round) every exported label is appended to; a label on a "
             "row that already has one (a second opinion from `select --relabel`) goes only there, never over DATA's."),
    opts: Shared = None,
) -> None:
    """Merge labels from a labeling tool's export into DATA's label column (refuses conflicts).

    An export never overwrites a different existing label; reviewed corrections
    (--accept-corrections) do, deliberately, and the ledger records each old and new label.
    """
    no_stdin(data, "merge")
    if round_number is not None and round_number < 1:
        raise ConfigError(f"--round must be a positive round number, got {round_number}")
    if labeled is None and accept_corrections is None:
        raise ConfigError("give LABELED_FILE (an export to merge), --accept-corrections FILE, or both")
    config = opts.config()
    plan = OutputPlan()
    add_inputs(plan, opts)
    plan.add_input(data, "DATA")
    plan.add_input(labeled, "LABELED_FILE")
    plan.add_input(accept_corrections, "--accept-corrections")
    target = plan_data_output(plan, data, out=out, in_place=in_place)
    if conflicts_out is not None and not partial:
        raise ConfigError("--conflicts goes with --partial (without it, conflicts stop the merge and are printed)")
    if annotations is not None:
        if labeled is None:
            raise ConfigError("--annotations needs LABELED_FILE: the export whose labels become votes")
        plan.add_output("annotations", annotations, "--annotations", table_format=True)
    if partial:
        plan.add_output("conflicts", conflicts_out or target.with_name(target.stem + ".conflicts.csv"), "--conflicts",
                        table_format=True)
    plan.check()
    # An in-place merge holds DATA's lock from the read to the rename: concurrent merges serialise.
    with data_lock(data) if in_place else contextlib.nullcontext():
        _merge(plan, data, labeled, config=config, opts=opts, accept_corrections=accept_corrections,
               round_number=round_number, question=question, partial=partial, annotations=annotations)


def _merge(plan: OutputPlan, data: Path, labeled: Optional[Path], *, config, opts: Shared,
           accept_corrections: Optional[Path], round_number: Optional[int], question: str, partial: bool,
           annotations: Optional[Path] = None) -> None:
    df = original = read_table(data, raw=True)  # raw: untouched cells are written back as they were
    fixes = None
    if accept_corrections is not None:
        fixes = _apply_corrections(df, accept_corrections, config)
        df = fixes.data
    if labeled is None:
        _commit_corrections(plan, data, fixes, accept_corrections, opts, original)
        return
    ledger_records = read_ledger(ledger_path(data))
    multi = _is_multi_label(df, config, ledger_records)
    if multi and annotations is not None:
        raise ConfigError("--annotations does not work on multi-label tasks yet; merge without it")
    labels, skipped, kind = read_labels(labeled, id_col=config.id_col, label_col=config.label_col, question=question,
                                        label_sep=config.label_sep if multi else None, none_label=config.none_label)
    round_of_id, gold_ids = {}, set()
    for rec in ledger_records:
        for i in (rec.get("queue") or {}).get("ids", []):
            round_of_id[str(i)] = int(rec["round"])
        gold_ids.update(map(str, rec.get("gold_ids") or []))
    is_gold = labels["id"].isin(gold_ids)
    n_gold = int(is_gold.sum())
    # Gold answers score annotators (`selector gold`); they never become training labels.
    labels = labels[~is_gold].reset_index(drop=True)
    votes_writer, n_votes = None, 0
    if annotations is not None:
        old = read_votes(annotations, config.label_col) if annotations.exists() else None
        new_votes, labels = export_votes(df, labels, old, label_col=config.label_col, id_col=config.id_col,
                                         round_of_id=round_of_id, round_number=round_number,
                                         unsure_labels=config.unsure_labels, unnamed=labeled.stem)
        combined = append_votes(old, new_votes, source=f"{annotations} (with the new votes)")
        n_votes = len(combined) - (len(old) if old is not None else 0)
        votes_writer = table(combined.rename(columns={"label": config.label_col}), plan.path("annotations"))
    else:
        second = sorted(second_opinion_ids(ledger_records) & set(labels["id"].astype(str)))
        if second:
            raise ConfigError(f"{labeled}: {len(second)} label(s) are second opinions on rows queued by `select --relabel` "
                              f"(e.g. id {second[0]!r}); pass --annotations VOTES_FILE to keep them as votes "
                              "(merge never overwrites a label with a second opinion)")
    try:
        result = merge_labels(df, labels, label_col=config.label_col, id_col=config.id_col, round_number=round_number,
                              round_of_id=round_of_id, partial=partial, unsure_labels=config.unsure_labels,
                              label_sep=config.label_sep if multi else None, none_label=config.none_label,
                              source=str(data))
    except MergeConflictError as exc:
        _echo_conflicts(exc.conflicts)
        raise
    writers = data_writers(result.data, plan, data, original)
    if votes_writer is not None:
        writers["annotations"] = votes_writer
    if partial:
        writers["conflicts"] = table(result.conflicts, plan.path("conflicts"))
        _echo_conflicts(result.conflicts, prefix="left out")
    written = plan.commit(writers, **_ledger_after(data, fixes, accept_corrections, result.from_unsure, labeled))
    backup = written.get("backup")
    rounds = ", ".join(f"round {k}: {v}" for k, v in sorted(result.rounds.items()))
    info(f"merged {result.n_new} new label(s) from a {kind} export ({result.n_unchanged} already present, "
         f"{skipped} item(s) without a label skipped) -> {written['data']}" + (f" (backup {backup})" if backup else "") +
         (f"; {rounds}" if rounds else "") +
         (f"; set aside {n_gold} answer(s) to gold items (score them with `selector gold`)" if n_gold else "")
         + (f"; {len(result.from_unsure)} row(s) labeled unsure took their new label" if result.from_unsure else "")
         + (f"; {len(result.conflicts)} conflict(s) left out -> {written['conflicts']}" if partial else "")
         + (f"; {n_votes} vote(s) appended -> {written['annotations']}" if annotations is not None else "")
         + (f"; {_fixes_line(fixes)}" if fixes is not None else ""), opts.quiet)


def _echo_conflicts(conflicts, prefix: str = "conflict") -> None:
    for row in conflicts.head(20).to_dict("records"):
        typer.echo(f"{prefix}: id {row['id']!r}: {row['problem']}", err=True)
    if len(conflicts) > 20:
        typer.echo(f"{prefix}: ... and {len(conflicts) - 20} more", err=True)


def _apply_corrections(df, path: Path, config):
    try:
        return apply_corrections(df, read_table(path), label_col=config.label_col, id_col=config.id_col,
                                 source=str(path))
    except MergeConflictError as exc:
        for row in exc.conflicts.head(20).to_dict("records"):
            typer.echo(f"conflict: id {row['id']!r}: {row['problem']} (correction says {row['label']!r})", err=True)
        raise


def _fixes_line(fixes) -> str:
    return (f"applied {len(fixes.applied)} reviewed correction(s) ({fixes.n_unchanged} already so, "
            f"{fixes.n_kept} kept as labeled)")


def _ledger_after(data: Path, fixes, source: Optional[Path], relabeled: Optional[list] = None,
                  export: Optional[Path] = None) -> dict:
    """``commit`` arguments that append, once the data is in place, the ledger records of this merge:
    the reviewed corrections, and the rows labeled unsure that took a returned label."""
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    records = []
    if fixes is not None and fixes.applied:
        records.append({"kind": "corrections", "time": now, "data": str(Path(data).resolve()), "source": str(source),
                        "n_applied": len(fixes.applied), "corrections": fixes.applied})
    if relabeled:
        records.append({"kind": "unsure_relabels", "time": now, "data": str(Path(data).resolve()),
                        "source": str(export), "n_relabeled": len(relabeled), "relabels": relabeled})
    if not records:
        return {}
    ledger = ledger_path(data)

    def append() -> None:
        for record in records:
            append_record(ledger, record)
    return {"after": append, "after_target": ledger,
            "after_line": "".join(LockedLedger.line_for(record) for record in records)}


def _commit_corrections(plan: OutputPlan, data: Path, fixes, source: Path, opts: Shared, original) -> None:
    written = plan.commit(data_writers(fixes.data, plan, data, original), **_ledger_after(data, fixes, source))
    backup = written.get("backup")
    info(f"{_fixes_line(fixes)} -> {written['data']}" + (f" (backup {backup})" if backup else "")
         + (f"; recorded in {ledger_path(data)}" if fixes.applied else ""), opts.quiet)


def _is_multi_label(df, config, ledger_records) -> bool:
    """Whether DATA is a multi-label task: declared (--multi-label / task), detected in its label cells,
    or recorded so by an earlier round of this data's ledger."""
    if table_task(df, config.label_col, config.task, config.label_sep)[0] == "multi_label":
        return True
    return config.task == "auto" and any(rec.get("task") == "multi_label" for rec in ledger_records)
