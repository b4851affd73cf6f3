"""``selector simulate DATA``: oracle labeling loops on a fully labeled file, per strategy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    DATA_READING,
    LABEL_SETS,
    Shared,
    accepts_example,
    plan_table_inputs,
    read_table_inputs,
    shared_options,
    stdin_data,
)
from selector.errors import ConfigError, DataError
from selector.loop.simulate import check_simulation, plot_curves, simulate, verdicts
from selector.outputs import OutputPlan, json_file, table
from selector.round.embed import embed_pool
from selector.round.pool import pool_from_config


@app.command("simulate")
@handle_errors
@accepts_example()
@shared_options("seed", "config_file", "text_col", "label_col", "id_col", "model", "device", "batch_size", "backend", "cache_dir", "embeddings", "quiet", *DATA_READING, *LABEL_SETS)
def simulate_command(
    data: Path = typer.Argument(..., help="A fully labeled file (CSV, Parquet or JSONL)."),
    strategies: str = typer.Option("random,margin", "--strategies", help="Comma-separated strategy names; include random as the baseline."),
    batch: int = typer.Option(50, "--batch", help="Labels per round."),
    rounds: int = typer.Option(10, "--rounds", help="Rounds per loop."),
    seeds: int = typer.Option(3, "--seeds", help="Loops per strategy (seeds seed, seed+1, ...)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for curves.csv, curves.png and summary.json."),
    test_size: float = typer.Option(0.2, "--test-size", help="Held-out share when DATA has no split column with test rows."),
    opts: Shared = None,
) -> None:
    """Simulate labeling loops with each strategy and print one verdict per strategy."""
    data = stdin_data(data, opts)
    names = [s.strip() for s in strategies.split(",") if s.strip()]
    if not names:
        raise ConfigError("--strategies is empty; name at least one strategy, e.g. random,margin")
    if not 0.0 < test_size < 1.0:
        raise ConfigError(f"--test-size must be between 0 and 1, got {test_size}")
    config = opts.config()
    seed = config.seed
    plan = OutputPlan()
    cache = plan_table_inputs(plan, data, opts, config)
    for key, name in (("curves", "curves.csv"), ("plot", "curves.png"), ("summary", "summary.json")):
        plan.add_output(key, out / name, f"--out {out} ({name})")
    plan.check()
    df, X_given = read_table_inputs(data, opts)
    pool, detected = pool_from_config(df, config, source=str(data), require_id_col=False)
    if detected:
        info(f"{data}: column {config.label_col!r} holds label sets, so the loops are multi-label (micro-F1); "
             "--single-label reads each cell as one label", opts.quiet)
    if not pool.labeled.all():
        first = int(np.flatnonzero(~pool.labeled)[0]) + 1
        raise DataError(f"{data}: simulate needs every row labeled, but {int((~pool.labeled).sum())} rows have no "
                        f"{config.label_col!r} (first: data row {first}); drop them or label them")
    split = df["split"].to_numpy(dtype=object) if "split" in df.columns else None
    truth = pool.Y if pool.multi_label else pool.labels.astype(str)
    check_simulation(truth, strategies=names, batch=batch, rounds=rounds, seeds=seeds,
                     split=split, test_size=test_size, random_state=seed)  # before anything is embedded
    X, estats = embed_pool(pool, config, embeddings=X_given, cache_dir=cache, show_progress=not opts.quiet)
    result = simulate(X, truth, strategies=names, batch=batch, rounds=rounds, seeds=seeds,
                      split=split, test_size=test_size, random_state=seed, label_set=config.labels,
                      progress=None if opts.quiet else (lambda line: info(line)))
    lines = verdicts(result)
    title = f"{data.parent.name}/{data.name}: batch {batch}, {seeds} seed(s), test n={result.n_test}"
    written = plan.commit({
        "curves": table(result.curves, out / "curves.csv"),
        "plot": lambda tmp: plot_curves(result, tmp, title=title),
        "summary": json_file({"data": str(data), "strategies": names, "batch": batch, "rounds": rounds,
                              "seeds": seeds, "seed": seed, "n_train": result.n_train, "n_test": result.n_test,
                              "metric": result.metric,
                              f"full_{result.metric}": result.full_accuracy, "full_macro_f1": result.full_macro_f1,
                              "model_fingerprint": estats["model_fingerprint"], "verdicts": lines}),
    })
    for line in lines.values():
        typer.echo(line)
    info("curves -> " + ", ".join(str(p) for p in written.values()), opts.quiet)
