"""``selector ingest DATA NEW_ROWS --source NAME``: add new unlabeled rows without duplicates."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info


@app.command("ingest")
@handle_errors
def ingest_command(
    data: Path = typer.Argument(..., help="The data file to add rows to."),
    new_rows: Path = typer.Argument(..., help="New rows (CSV/JSONL/Parquet) with a text column."),
    source: str = typer.Option(..., "--source", help="Where the rows come from (written to the `source` column), e.g. production."),
    bucket: Optional[str] = typer.Option(None, "--bucket", help="Column of NEW_ROWS naming each row's failure bucket (written to `bucket`)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the grown data here (DATA is left untouched)."),
    in_place: bool = typer.Option(False, "--in-place", help="Replace DATA, after writing DATA.bak."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Near-duplicate cosine similarity [default: 0.95]."),
    dropped_out: Optional[Path] = typer.Option(None, "--dropped", help="Write the dropped duplicates (with what they duplicate) here."),
    text_col: str = typer.Option("text", "--text-col", help="Text column (both files)."),
    label_col: str = typer.Option("label", "--label-col", help="Label column of DATA."),
    id_col: str = typer.Option("id", "--id-col", help="Id column (both files)."),
    model: Optional[str] = typer.Option(None, "--model", help="Embedding model [default: bundled all-MiniLM-L6-v2]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Embedding cache [default: .selector/ beside the data]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No summary line."),
) -> None:
    """Add NEW_ROWS to DATA as unlabeled pool rows, dropping exact and near duplicates."""
    from selector.config import SelectConfig
    from selector.loop.ingest import NEAR_DUPLICATE_THRESHOLD, ingest_rows
    from selector.io import read_table, write_table
    from selector.loop.merge import write_data
    from selector.models.cache import CachedEmbedder
    from selector.models.embedders import make_embedder

    from selector.cli.loop_common import cache_dir_for

    config = SelectConfig().replace(model=model, device=device)
    df = read_table(data)
    new = read_table(new_rows)
    embedder = CachedEmbedder(make_embedder(config.model, device=config.device, batch_size=config.batch_size),
                              cache_dir_for(data, config, cache_dir), dtype=config.cache_dtype)
    result = ingest_rows(df, new, source=source, embed=lambda texts: embedder.encode(texts, show_progress=not quiet),
                         text_col=text_col, label_col=label_col, id_col=id_col, bucket_col=bucket,
                         threshold=NEAR_DUPLICATE_THRESHOLD if threshold is None else threshold,
                         new_source=str(new_rows))
    written, backup = write_data(result.data, data, out=out, in_place=in_place)
    if dropped_out is not None:
        write_table(result.dropped, dropped_out)
    info(f"ingested {result.n_added} of {result.n_new} new rows from {new_rows} (source {source!r}); dropped "
         f"{result.n_exact_duplicates} exact and {result.n_near_duplicates} near duplicates "
         f"(cosine >= {NEAR_DUPLICATE_THRESHOLD if threshold is None else threshold}) -> {written}"
         + (f" (backup {backup})" if backup else ""), quiet)
