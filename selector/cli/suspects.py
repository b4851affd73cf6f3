"""``selector suspects``: labeled rows that are probably mislabeled, with a suggested label."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    MODEL_COMMAND,
    Shared,
    plan_table_inputs,
    read_table_inputs,
    shared_options,
)
from selector.errors import ConfigError
from selector.outputs import OutputPlan, table
from selector.round.embed import embed_pool
from selector.round.model import check_enough_labels, classifier_template
from selector.round.pool import prepare_pool
from selector.round.suspects import pool_suspects


@app.command("suspects")
@handle_errors
@shared_options(*MODEL_COMMAND)
def suspects_command(
    data: Path = typer.Argument(..., help="Table of texts (CSV, Parquet or JSONL); rows with an empty label are ignored."),
    out: Path = typer.Option(Path("suspects.csv"), "--out", "-o", help="Suspect list; format by extension (.csv, .parquet, .jsonl)."),
    top: Optional[int] = typer.Option(None, "--top", help="Report the N most suspect rows."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Report rows with suspect_score >= S (0-1)."),
    opts: Shared = None,
) -> None:
    """List labeled rows that look mislabeled, most suspect first, with a suggested label.

    Without --top or --threshold the rows whose evidence favours another label are listed.
    Rows with the same normalised text but different labels are always listed (kind contradiction).
    """
    if top is not None and threshold is not None:
        raise ConfigError("give --top or --threshold, not both")
    t0 = time.perf_counter()
    config = opts.config()
    plan = OutputPlan()
    cache = plan_table_inputs(plan, data, opts, config)
    plan.add_output("suspects", out, "--out", table_format=True)
    plan.check()
    df, X_given = read_table_inputs(data, opts)
    pool = prepare_pool(df, text_col=config.text_col, label_col=config.label_col, id_col=config.id_col,
                        source=str(data), unsure_labels=config.unsure_labels)
    check_enough_labels(pool.labels[pool.labeled], str(data), config.label_col)
    template = classifier_template(config)
    X, stats = embed_pool(pool, config, embeddings=X_given, cache_dir=cache, show_progress=not opts.quiet)
    found = pool_suspects(pool, X, top=top, threshold=threshold, random_state=config.seed, classifier=template)
    plan.commit({"suspects": table(found, out)})
    kinds = found["kind"].value_counts()
    summary = ", ".join(f"{kinds.get(k, 0)} {k}" for k in ("likely_wrong", "ambiguous", "contradiction"))
    info(f"{len(found)} suspects of {int(pool.labeled.sum())} labeled rows ({summary}) -> {out} ; "
         f"embedded {stats['n_embedded']} new texts, {stats['n_cached']} from cache; "
         f"{time.perf_counter() - t0:.1f}s", opts.quiet)
