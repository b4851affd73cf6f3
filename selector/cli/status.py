"""``selector status DATA``: the rounds so far, labels, model quality and a stopping hint."""

from __future__ import annotations

from pathlib import Path

import typer

from selector.chat import read_data
from selector.cli.app import app, handle_errors
from selector.cli.options import DATA_READING, Shared, accepts_example, no_stdin, shared_options
from selector.config import cache_dir_for, config_from_record, load_config
from selector.errors import DataError
from selector.io import file_sha256
from selector.loop.ledger import (
    ledger_path,
    read_ledger,
    round_records,
    stop_set_predictions,
)
from selector.loop.merge import ROUND_COL
from selector.loop.status import (
    CHANGE_CEILING,
    CHANGE_FALL,
    CHANGE_THRESHOLD,
    F1_TOLERANCE,
    WINDOW,
    MeasurePoint,
    build_status,
    format_status,
)
from selector.models.classifiers import fit_classifier
from selector.outputs import recover_commits
from selector.round.embed import embed_pool, load_embeddings
from selector.round.model import classifier_template, cv_metrics, labels_problem
from selector.round.pool import pool_from_config


@app.command("status")
@handle_errors
@accepts_example()
@shared_options("config_file", "text_col", "label_col", "id_col", "model", "device", "batch_size", "backend", "cache_dir", "embeddings", "quiet", *DATA_READING)
def status_command(
    data: Path = typer.Argument(..., help="The data file of the loop (its ledger is .selector/<file name>.rounds.jsonl beside it)."),
    change_threshold: float = typer.Option(CHANGE_THRESHOLD, "--change-threshold", min=0.0, max=1.0, help="Mean share of stop-set predictions that changed between successive models (last --window comparisons) at or below which predictions count as stable (stabilizing predictions, after Bloodgood & Vijay-Shanker 2009)."),
    change_ceiling: float = typer.Option(CHANGE_CEILING, "--change-ceiling", min=0.0, max=1.0, help="Above --change-threshold, a mean share at or below this that has stopped falling also counts as stable."),
    change_fall: float = typer.Option(CHANGE_FALL, "--change-fall", min=0.0, max=1.0, help="Largest relative fall from the --window comparisons before that still counts as no longer falling."),
    window: int = typer.Option(WINDOW, "--window", min=1, help="Model-to-model comparisons averaged."),
    f1_tolerance: float = typer.Option(F1_TOLERANCE, "--f1-tolerance", help="CV macro-F1 gain at or below which gains count as flat."),
    live: bool = typer.Option(True, "--live/--no-live", help="Measure labels merged since the last round (embeds from cache)."),
    opts: Shared = None,
) -> None:
    """Print the labeling loop's rounds, labels per round and class, model quality and a stopping hint.

    Settings default to the last round's (from the ledger), then --config, then flags.
    """
    no_stdin(data, "status")
    ledger = ledger_path(data)
    if ledger.parent.is_dir():
        recover_commits(ledger.parent)  # a round killed mid-commit is finished before it is reported
    records = round_records(read_ledger(ledger))
    if not records:
        raise DataError(f"{ledger}: no rounds recorded yet; run `selector select {data}` first")
    # The last round's settings unless --config is given; flags beat both.
    base = config_from_record(records[-1]) if opts.config_file is None else load_config(opts.config_file)
    config = base.replace(**opts.flags())
    if config.task == "auto" and any(rec.get("task") == "multi_label" for rec in records):
        config = config.replace(task="multi_label")  # the loop's rounds ran as a multi-label task
    df, _ = read_data(data, config)
    pool, _ = pool_from_config(df, config, source=str(data), require_id_col=False, require_label_col=False)
    now = None
    changed = file_sha256(data) != (records[-1].get("data") or {}).get("sha256")
    if live and changed:
        X_given = load_embeddings(opts.embeddings, pool.n) if opts.embeddings is not None else None
        X, embed_stats = embed_pool(pool, config, embeddings=X_given, cache_dir=cache_dir_for(data, config),
                          show_progress=not opts.quiet)
        lab = pool.labeled_positions
        y = pool.labels[lab].astype(str)
        template = classifier_template(config)
        if pool.multi_label:
            fitted, cv = _multilabel_now(template, X[lab], pool.Y[lab], config.seed)
        else:
            fitted = fit_classifier(template, X[lab], y) if labels_problem(y) is None else None
            cv = cv_metrics(X[lab], y, classifier=template, random_state=config.seed)
        stop = stop_set_predictions(pool.ids, X, fitted, records)
        preds = dict(zip(stop["ids"], stop["predictions"])) if stop["predictions"] else None
        now = MeasurePoint(name="now", n_labeled=int(lab.size), cv=cv, predictions=preds,
                           model=embed_stats.get("model_fingerprint"))
    round_col = df[ROUND_COL].to_numpy(dtype=object) if ROUND_COL in df.columns else None
    report = build_status(records, pool.ids, pool.labels, data=str(data), ledger=str(ledger), now=now,
                          round_col=round_col, change_threshold=change_threshold, change_ceiling=change_ceiling,
                          change_fall=change_fall, f1_tolerance=f1_tolerance, window=window)
    typer.echo(format_status(report))


def _multilabel_now(template, X, Y, seed):
    """A multi-label loop's current model and its cross-validated figures (None, None when too few labels)."""
    from selector.round.multilabel import (
        fit_multilabel,
        multilabel_cv_figures,
        multilabel_out_of_fold,
        multilabel_problem,
        multilabel_template,
    )

    if multilabel_problem(Y) is not None:
        return None, None
    template = multilabel_template(template)
    oof = multilabel_out_of_fold(template, X, Y, random_state=seed)
    return fit_multilabel(template, X, Y), multilabel_cv_figures(oof, Y)
