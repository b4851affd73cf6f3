"""``selector validate DATA``: a release gate run before training (exit 1 on a blocker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    DATA_READING,
    LABEL_SETS,
    Shared,
    accepts_example,
    add_inputs,
    list_file,
    plan_table_inputs,
    read_table_inputs,
    shared_options,
    split_list,
    stdin_data,
)
from selector.errors import ConfigError
from selector.labelsets import table_task
from selector.outputs import OutputPlan, table
from selector.quality.validate import DEFAULT_BLOCKERS, DEFAULT_NEGATIVES, validate


@app.command("validate")
@handle_errors
@accepts_example()
@shared_options("config_file", "text_col", "label_col", "id_col", "model", "device", "batch_size", "backend", "cache_dir", "embeddings", "quiet", *DATA_READING, *LABEL_SETS)
def validate_command(
    data: Path = typer.Argument(..., help="Labeled table (CSV, Parquet or JSONL)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Allowed labels: 'a,b,c' or a file with one per line [default: config 'labels']."),
    negatives: str = typer.Option(",".join(DEFAULT_NEGATIVES), "--negatives",
                                  help="Labels of which one should be present (refusal-style replies count too); '' skips the check."),
    reply_agreement: Optional[float] = typer.Option(None, "--reply-agreement", help="Chat data: cosine below which two replies to one input contradict [default: 0.8]."),
    imbalance: float = typer.Option(0.05, "--imbalance", help="Flag classes below this share of the largest class."),
    near_dup: float = typer.Option(0.95, "--near-dup-threshold", help="Cosine at/above which cross-label texts are near-duplicates."),
    no_embed: bool = typer.Option(False, "--no-embed", help="Skip the near-duplicate check (no embedding model)."),
    min_chars: int = typer.Option(3, "--min-chars", min=0, help="Texts with fewer letters/digits are near-empty."),
    blockers: str = typer.Option(",".join(DEFAULT_BLOCKERS), "--blockers",
                                 help="Checks that fail the gate (exit 1); '' never fails."),
    exclusive: Optional[list[str]] = typer.Option(None, "--exclusive",
                                                  help="Multi-label: labels that must not share a row, 'a,b' (repeat for more groups)."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write one row per (finding, row id) to this table."),
    opts: Shared = None,
) -> None:
    """Duplicates, contradictions, near-duplicates across labels, invalid labels, imbalance, missing negatives, empty texts."""
    data = stdin_data(data, opts)
    config = opts.config()
    plan = OutputPlan()
    embeds = not no_embed
    if embeds:
        cache = plan_table_inputs(plan, data, opts, config, labels=list_file(labels))
    else:
        plan.add_input(data, "DATA")
        plan.add_input(list_file(labels), "--labels")
        add_inputs(plan, opts)
        cache = None
    plan.add_output("findings", out, "--out", table_format=True)
    plan.check()
    df, X_given = read_table_inputs(data, opts)
    chat = df.attrs.get("selector_chat")
    task, detected = table_task(df, config.label_col, config.task, config.label_sep)
    if detected and task == "multi_label":
        info(f"{data}: column {config.label_col!r} holds label sets, so the table is checked as a multi-label task "
             "(--single-label reads each cell as one label)", opts.quiet)
    if exclusive and task != "multi_label":
        raise ConfigError("--exclusive applies to multi-label tables; add --multi-label")
    report = validate(df, text_col=config.text_col, label_col=config.label_col, id_col=config.id_col,
                      labels=split_list(labels) if labels is not None else config.labels,
                      negatives=split_list(negatives, "--negatives") or None, imbalance_ratio=imbalance,
                      near_duplicate_threshold=near_dup, min_text_chars=min_chars,
                      blockers=split_list(blockers, "--blockers") or (), embeddings=X_given,
                      cache_dir=cache, config=config, near_duplicates=embeds,
                      unsure_labels=config.unsure_labels, source=str(data),
                      output_col="output" if chat else None, system_col="system" if chat else None,
                      reply_agreement=reply_agreement, multi_label=task == "multi_label",
                      label_sep=config.label_sep, none_label=config.none_label,
                      exclusive=[split_list(g, "--exclusive") for g in exclusive or ()])
    # With --out - the findings table owns standard output; the report goes to stderr.
    to_err = out is not None and str(out) == "-"
    if json_out:
        typer.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str), err=to_err)
    else:
        typer.echo(report.to_text(), err=to_err)
    if out is not None:
        plan.commit({"findings": table(report.rows(), out)})
        info(f"wrote {len(report.rows())} finding rows -> {out}", opts.quiet)
    if not report.passed:
        info(f"validation failed: {', '.join(f.check for f in report.blockers)}", opts.quiet)
        raise typer.Exit(1)
