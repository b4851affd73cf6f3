"""``selector ingest DATA NEW_ROWS --source NAME``: add new unlabeled rows without duplicates."""

from __future__ import annotations

import contextlib

from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import Shared, accepts_example, add_inputs, no_stdin, shared_options
from selector.config import cache_dir_for
from selector.errors import DataError
from selector.io import read_table
from selector.locks import data_lock
from selector.loop.ingest import NEAR_DUPLICATE_THRESHOLD, ingest_rows
from selector.loop.merge import data_writers, plan_data_output
from selector.models.cache import CachedEmbedder, check_cache_root
from selector.models.embedders import make_embedder
from selector.outputs import OutputPlan, table


@app.command("ingest")
@handle_errors
@accepts_example(shift="new_rows")
@shared_options("config_file", "text_col", "label_col", "id_col", "model", "device", "batch_size", "backend", "cache_dir", "quiet")
def ingest_command(
    data: Path = typer.Argument(..., help="The data file to add rows to."),
    new_rows: Path = typer.Argument(..., help="New rows (CSV/JSONL/Parquet) with a text column."),
    source: str = typer.Option(..., "--source", help="Where the rows come from (written to the `source` column), e.g. production."),
    bucket: Optional[str] = typer.Option(None, "--bucket", help="Column of NEW_ROWS naming each row's failure bucket (written to `bucket`)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the grown data here (DATA is left untouched)."),
    in_place: bool = typer.Option(False, "--in-place", help="Replace DATA, after writing DATA.bak."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Near-duplicate cosine similarity [default: 0.95]."),
    dropped_out: Optional[Path] = typer.Option(None, "--dropped", help="Write the dropped duplicates (with what they duplicate) here."),
    opts: Shared = None,
) -> None:
    """Add NEW_ROWS to DATA as unlabeled pool rows, dropping exact and near duplicates."""
    no_stdin(data, "ingest")
    config = opts.config()
    threshold = NEAR_DUPLICATE_THRESHOLD if threshold is None else threshold
    plan = OutputPlan()
    add_inputs(plan, opts)
    plan.add_input(data, "DATA")
    plan.add_input(new_rows, "NEW_ROWS")
    plan_data_output(plan, data, out=out, in_place=in_place)
    plan.add_output("dropped", dropped_out, "--dropped", table_format=True)
    cache = plan.add_folder(cache_dir_for(data, config), "--cache-dir")
    plan.check()
    check_cache_root(cache)
    # An in-place ingest holds DATA's lock from the read to the rename: concurrent runs serialise.
    with data_lock(data) if in_place else contextlib.nullcontext():
        df = read_table(data, raw=True)  # raw: untouched cells are written back as they were
        new = read_table(new_rows)
        for col in ("source", "bucket"):  # ingest writes text there: refuse a numeric column before any work
            if col in df.columns and df[col].dtype != object and not pd.api.types.is_string_dtype(df[col]):
                raise DataError(f"{data}: its {col!r} column holds {df[col].dtype} values, but ingest writes text "
                                f"there; make the column text (or rename it) and run again")
        embedder = CachedEmbedder(make_embedder(config.model, device=config.device, batch_size=config.batch_size,
                                                backend=config.backend), cache, dtype=config.cache_dtype)
        result = ingest_rows(df, new, source=source, embed=lambda texts: embedder.encode(texts, show_progress=not opts.quiet),
                             text_col=config.text_col, label_col=config.label_col, id_col=config.id_col,
                             bucket_col=bucket, threshold=threshold, new_source=str(new_rows))
        writers = data_writers(result.data, plan, data, df)
        if dropped_out is not None:
            writers["dropped"] = table(result.dropped, dropped_out)
        written = plan.commit(writers)
    backup = written.get("backup")
    info(f"ingested {result.n_added} of {result.n_new} new rows from {new_rows} (source {source!r}); dropped "
         f"{result.n_exact_duplicates} exact and {result.n_near_duplicates} near duplicates "
         f"(cosine >= {threshold}) -> {written['data']}" + (f" (backup {backup})" if backup else ""), opts.quiet)
