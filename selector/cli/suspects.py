"""``selector suspects``: labeled rows that are probably mislabeled, with a suggested label."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, default_cache_dir, handle_errors, info
from selector.errors import ConfigError


@app.command("suspects")
@handle_errors
def suspects_command(
    data: Path = typer.Argument(..., help="Table of texts (CSV, Parquet or JSONL); rows with an empty label are ignored."),
    out: Path = typer.Option(Path("suspects.csv"), "--out", "-o", help="Suspect list; format by extension (.csv, .parquet, .jsonl)."),
    top: Optional[int] = typer.Option(None, "--top", help="Report the N most suspect rows."),
    threshold: Optional[float] = typer.Option(None, "--threshold", help="Report rows with suspect_score >= S (0-1)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Random seed for the folds [default: 0]."),
    text_col: str = typer.Option("text", "--text-col", help="Text column."),
    label_col: str = typer.Option("label", "--label-col", help="Label column."),
    id_col: str = typer.Option("id", "--id-col", help="Id column; generated when absent."),
    model: Optional[str] = typer.Option(None, "--model", help="Local sentence-transformers folder [default: bundled all-MiniLM-L6-v2]."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Embedding cache [default: .selector/ beside the data]."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=".npy of embeddings aligned with the rows; skips the model."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars or summary."),
) -> None:
    """List labeled rows that look mislabeled, most suspect first, with a suggested label.

    Without --top or --threshold the rows whose evidence favours another label are listed.
    Rows with the same normalised text but different labels are always listed (kind contradiction).
    """
    from selector.config import SelectConfig
    from selector.round.pool import prepare_pool
    from selector.io import read_table, write_table
    from selector.round.compute import embed_pool
    from selector.round.suspects import check_enough_labels, pool_suspects

    if top is not None and threshold is not None:
        raise ConfigError("give --top or --threshold, not both")
    if out.resolve() == data.resolve():
        raise ConfigError(f"--out {out} is the input file; choose another path (inputs are never modified)")
    t0 = time.perf_counter()
    config = SelectConfig(seed=0 if seed is None else seed, text_col=text_col, label_col=label_col,
                          id_col=id_col, model=model)
    df = read_table(data)
    pool = prepare_pool(df, text_col=text_col, label_col=label_col, id_col=id_col, source=str(data))
    check_enough_labels(pool.labels[pool.labeled], str(data), label_col)
    X, stats = embed_pool(pool, config, embeddings=embeddings,
                          cache_dir=cache_dir if cache_dir is not None else default_cache_dir(data),
                          show_progress=not quiet)
    table = pool_suspects(pool, X, top=top, threshold=threshold, random_state=config.seed)
    write_table(table, out)
    kinds = table["kind"].value_counts()
    summary = ", ".join(f"{kinds.get(k, 0)} {k}" for k in ("likely_wrong", "ambiguous", "contradiction"))
    info(f"{len(table)} suspects of {int(pool.labeled.sum())} labeled rows ({summary}) -> {out} ; "
         f"embedded {stats['n_embedded']} new texts, {stats['n_cached']} from cache; "
         f"{time.perf_counter() - t0:.1f}s", quiet)
