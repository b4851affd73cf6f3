"""``selector simulate DATA``: oracle labeling loops on a fully labeled file, per strategy."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info


@app.command("simulate")
@handle_errors
def simulate_command(
    data: Path = typer.Argument(..., help="A fully labeled file (CSV, Parquet or JSONL)."),
    strategies: str = typer.Option("random,margin", "--strategies", help="Comma-separated strategy names; include random as the baseline."),
    batch: int = typer.Option(50, "--batch", help="Labels per round."),
    rounds: int = typer.Option(10, "--rounds", help="Rounds per loop."),
    seeds: int = typer.Option(3, "--seeds", help="Loops per strategy (seeds seed, seed+1, ...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for curves.csv, curves.png and summary.json."),
    seed: int = typer.Option(0, "--seed", help="First seed (also seeds the held-out split)."),
    test_size: float = typer.Option(0.2, "--test-size", help="Held-out share when DATA has no split column with test rows."),
    text_col: str = typer.Option("text", "--text-col", help="Text column."),
    label_col: str = typer.Option("label", "--label-col", help="Label column."),
    id_col: str = typer.Option("id", "--id-col", help="Id column."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=".npy of embeddings aligned with the rows; skips the model."),
    model: Optional[str] = typer.Option(None, "--model", help="Embedding model [default: bundled all-MiniLM-L6-v2]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Embedding cache [default: .selector/ beside the data]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress lines."),
) -> None:
    """Simulate labeling loops with each strategy and print one verdict per strategy."""
    import numpy as np

    from selector.config import SelectConfig
    from selector.round.pool import prepare_pool
    from selector.errors import ConfigError, DataError
    from selector.io import read_table, write_json, write_table
    from selector.round.compute import embed_pool
    from selector.loop.simulate import plot_curves, simulate, verdicts

    from selector.cli.loop_common import cache_dir_for

    names = [s.strip() for s in strategies.split(",") if s.strip()]
    if not names:
        raise ConfigError("--strategies is empty; name at least one strategy, e.g. random,margin")
    if not 0.0 < test_size < 1.0:
        raise ConfigError(f"--test-size must be between 0 and 1, got {test_size}")
    config = SelectConfig(seed=seed, text_col=text_col, label_col=label_col, id_col=id_col).replace(
        model=model, device=device)
    df = read_table(data)
    pool = prepare_pool(df, text_col=text_col, label_col=label_col, id_col=id_col, source=str(data))
    if not pool.labeled.all():
        first = int(np.flatnonzero(~pool.labeled)[0]) + 1
        raise DataError(f"{data}: simulate needs every row labeled, but {int((~pool.labeled).sum())} rows have no "
                        f"{label_col!r} (first: data row {first}); drop them or label them")
    X, estats = embed_pool(pool, config, embeddings=embeddings, cache_dir=cache_dir_for(data, config, cache_dir),
                           show_progress=not quiet)
    split = df["split"].to_numpy(dtype=object) if "split" in df.columns else None
    result = simulate(X, pool.labels.astype(str), strategies=names, batch=batch, rounds=rounds, seeds=seeds,
                      split=split, test_size=test_size, random_state=seed,
                      progress=None if quiet else (lambda line: info(line)))
    lines = verdicts(result)
    out.mkdir(parents=True, exist_ok=True)
    write_table(result.curves, out / "curves.csv")
    png = plot_curves(result, out / "curves.png", title=f"{data.parent.name}/{data.name}: batch {batch}, {seeds} seed(s), "
                      f"test n={result.n_test}")
    write_json({"data": str(data), "strategies": names, "batch": batch, "rounds": rounds, "seeds": seeds,
                "seed": seed, "n_train": result.n_train, "n_test": result.n_test,
                "full_accuracy": result.full_accuracy, "full_macro_f1": result.full_macro_f1,
                "model_fingerprint": estats["model_fingerprint"], "verdicts": lines}, out / "summary.json")
    for line in lines.values():
        typer.echo(line)
    info(f"curves -> {out / 'curves.csv'}, {png}, {out / 'summary.json'}", quiet)
