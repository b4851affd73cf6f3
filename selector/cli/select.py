"""``selector select``: one labeling round (queue, suspects, round record, ledger line)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from selector.chat import skipped_path_for
from selector.cli.app import app, command_line, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    LABEL_SETS,
    MODEL_COMMAND,
    Shared,
    accepts_example,
    no_stdin,
    read_inputs,
    shared_options,
    split_list,
)
from selector.config import cache_dir_for
from selector.round.run import run_round


@app.command("select")
@handle_errors
@accepts_example()
@shared_options(*MODEL_COMMAND, *LABEL_SETS)
def select_command(
    data: Optional[Path] = typer.Argument(None, help="Table of texts (CSV, Parquet or JSONL); empty label = unlabeled."),
    budget: Optional[int] = typer.Option(None, "--budget", "-b", help="Rows to queue for labeling [default: 100]."),
    strategy: Optional[str] = typer.Option(None, "--strategy", "-s", help="Query strategy (see `selector strategies`)."),
    out: Path = typer.Option(Path("queue.csv"), "--out", "-o", help="Queue file; format by extension (.csv, .parquet, .jsonl)."),
    engine: Optional[str] = typer.Option(None, "--engine", help="local or ray: where missing embeddings are computed [default: local]."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address for --engine ray [default: local Ray]."),
    two_stage: Optional[str] = typer.Option(None, "--two-stage", help="auto, on or off: embed a cold pool with the static tier, shortlist 10 rows per queued row, embed only those exactly [default: auto = on from 50,000 rows not yet cached; from 1.5M rows a shortlist on exact vectors streamed from the cache]."),
    gold_file: Optional[Path] = typer.Option(None, "--gold", help="Gold file (item_id, gold_label[, text]) to mix into the queue."),
    gold_rate: Optional[float] = typer.Option(None, "--gold-rate", help="Share of the queue that is gold, with --gold [default: 0.05]."),
    bucket_priority: Optional[float] = typer.Option(None, "--bucket-priority", help="Share of the budget (0-1) reserved for unlabeled rows of the rarest failure buckets (`bucket` column, see `selector ingest`)."),
    no_suspects: bool = typer.Option(False, "--no-suspects", help="Skip the mislabel-suspect list beside the queue."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Every label the task allows: 'a,b,c' or a file with one per line; auto looks for the ones no row has yet [default: config 'labels']."),
    relabel: Optional[bool] = typer.Option(None, "--relabel/--no-relabel", help="One budget for new rows and second opinions: labeled rows another vote would most likely fix join the queue (kind = relabel) [default: config 'relabel', off]."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help="Several annotators' votes (item_id, annotator, label): voted rows train on their consensus, and --relabel weighs second opinions against them."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    opts: Shared = None,
) -> None:
    """Choose the next rows to label and write them as a ranked queue (+ a mislabel-suspect list)."""
    no_stdin(data, "select")
    config = opts.config(budget=budget, strategy=strategy, engine=engine, ray_address=address, two_stage=two_stage,
                         labels=split_list(labels), relabel=relabel)
    t0 = time.perf_counter()
    result = run_round(data, config=config, out=out, embeddings=opts.embeddings, cache_dir=cache_dir_for(data, config),
                       gold=gold_file, gold_rate=gold_rate, bucket_priority=bucket_priority,
                       suspects=not no_suspects, command=command_line(), show_progress=not opts.quiet,
                       on_step=lambda message: info(message, opts.quiet), inputs=read_inputs(opts, labels=labels),
                       annotations=annotations, item_col=item_col, annotator_col=annotator_col)
    if "chat" in result.stats:
        c = result.stats["chat"]
        info(f"chat data: {c['n_lines']} lines, {c['task']} set, labels from {c['label_from']}"
             + (f"; skipped {c['n_skipped']} malformed line(s) (listed in "
                  f"{skipped_path_for(data, cache_dir_for(data, config))})"
                if c["n_skipped"] else ""), opts.quiet)
    if result.suspects_note:
        info(result.suspects_note + (f" -> {result.written['suspects']}" if "suspects" in result.written else ""), opts.quiet)
    if "consensus" in result.stats:
        info(result.stats["consensus"], opts.quiet)
    if "relabel" in result.stats:
        r = result.stats["relabel"]
        info(f"relabel: {r['n_relabel']} second opinion(s) and {r['n_new']} new row(s) in one queue (kind column)"
             + (f"; no second opinions: {r['skipped']}" if "skipped" in r else
                f"; an average vote is right {r['vote_accuracy']:.0%} of the time ({r['evidence']})")
             + (f"; rows of the {r['n_thin_classes']} classes with too few labels to judge are offered only on the "
                "suspect list's strong evidence" if r.get("n_thin_classes") else ""), opts.quiet)
    if result.gold_ids is not None:
        info(f"mixed {len(result.gold_ids)} gold items into the queue (ids in {result.written['record']}, "
             f"answer key {result.written['gold_key']})", opts.quiet)
    s = result.stats
    n_unseen = s.get("strategy_info", {}).get("n_unseen", 0)
    if n_unseen:
        info(f"auto: {n_unseen} of {s['n_selected']} queued rows look for declared labels that no row has yet "
             "(reason 'auto[unseen class: ...]')", opts.quiet)
    two = s.get("two_stage") or {}
    if two.get("used"):
        info(f"two-stage round ({two['reason']}): static vectors for {s['n_rows']} rows, {two['shortlist']} rows "
             f"shortlisted + {two['cached_candidates']} already cached; the queue was chosen among "
             f"{two['candidates']} exactly embedded rows (two_stage: off embeds every row)", opts.quiet)
    info(f"round {result.record['round']}: queued {s['n_selected']} of {s['n_unlabeled']} unlabeled rows "
         f"({s['n_labeled']} labeled) with {config.strategy!r} -> {out} ; embedded {s['n_embedded']} new texts, "
         f"{s['n_cached']} from cache; {time.perf_counter() - t0:.1f}s", opts.quiet)
