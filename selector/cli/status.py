"""``selector status DATA``: the rounds so far, labels, model quality and a stopping hint."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors


@app.command("status")
@handle_errors
def status_command(
    data: Path = typer.Argument(..., help="The data file of the loop (its folder holds .selector/rounds.jsonl)."),
    embeddings: Optional[Path] = typer.Option(None, "--embeddings", help=".npy of embeddings aligned with the rows; skips the model."),
    cache_dir: Optional[Path] = typer.Option(None, "--cache-dir", help="Embedding cache [default: as the last round]."),
    model: Optional[str] = typer.Option(None, "--model", help="Embedding model [default: as the last round]."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu or cuda."),
    text_col: Optional[str] = typer.Option(None, "--text-col", help="Text column [default: as the last round]."),
    label_col: Optional[str] = typer.Option(None, "--label-col", help="Label column [default: as the last round]."),
    id_col: Optional[str] = typer.Option(None, "--id-col", help="Id column [default: as the last round]."),
    kappa_threshold: float = typer.Option(0.99, "--kappa-threshold", help="Stop-set kappa at which predictions count as stable (Bloodgood & Vijay-Shanker 2009)."),
    f1_tolerance: float = typer.Option(0.01, "--f1-tolerance", help="CV macro-F1 gain at or below which gains count as flat."),
    live: bool = typer.Option(True, "--live/--no-live", help="Measure labels merged since the last round (embeds from cache)."),
) -> None:
    """Print the labeling loop's rounds, labels per round and class, model quality and a stopping hint."""
    import numpy as np

    from selector.round.pool import prepare_pool
    from selector.errors import DataError
    from selector.io import file_sha256, read_table
    from selector.loop.ledger import cv_metrics, ledger_path, read_ledger, stop_set_predictions
    from selector.loop.status import MeasurePoint, build_status, format_status
    from selector.loop.merge import ROUND_COL

    from selector.cli.loop_common import cache_dir_for, config_from_record

    ledger = ledger_path(data)
    records = read_ledger(ledger)
    if not records:
        raise DataError(f"{ledger}: no rounds recorded yet; run `selector select {data}` first")
    config = config_from_record(records[-1], text_col=text_col, label_col=label_col, id_col=id_col,
                                model=model, device=device)
    df = read_table(data)
    pool = prepare_pool(df, text_col=config.text_col, label_col=config.label_col, id_col=config.id_col,
                        source=str(data), require_label_col=False)
    now = None
    changed = file_sha256(data) != (records[-1].get("data") or {}).get("sha256")
    if live and changed:
        from selector.models.classifiers import fit_classifier, make_classifier
        from selector.round.compute import embed_pool

        X, _ = embed_pool(pool, config, embeddings=embeddings, cache_dir=cache_dir_for(data, config, cache_dir))
        lab = pool.labeled_positions
        y = pool.labels[lab].astype(str)
        template = make_classifier(config.classifier, random_state=config.seed, **config.classifier_params)
        fitted = fit_classifier(template, X[lab], y) if np.unique(y).size >= 2 else None
        stop = stop_set_predictions(pool.ids, X, fitted, records)
        preds = dict(zip(stop["ids"], stop["predictions"])) if stop["predictions"] else None
        now = MeasurePoint(name="now", n_labeled=int(lab.size),
                           cv=cv_metrics(X[lab], y, classifier=template, random_state=config.seed), predictions=preds)
    round_col = df[ROUND_COL].to_numpy(dtype=object) if ROUND_COL in df.columns else None
    report = build_status(records, pool.ids, pool.labels, data=str(data), ledger=str(ledger), now=now,
                          round_col=round_col, kappa_threshold=kappa_threshold, f1_tolerance=f1_tolerance)
    typer.echo(format_status(report))
