"""``selector card DATA``: a data card (Markdown + JSON) with class-balance and agreement plots."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, command_line, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    LABEL_SETS,
    MODEL_COMMAND,
    Shared,
    accepts_example,
    list_file,
    plan_table_inputs,
    read_checked_annotations,
    read_table_inputs,
    shared_options,
    split_list,
    stdin_data,
)
from selector.io import file_sha256
from selector.outputs import OutputPlan
from selector.quality.card import card_paths, data_card


@app.command("card")
@handle_errors
@accepts_example()
@shared_options(*MODEL_COMMAND, *LABEL_SETS)
def card_command(
    data: Path = typer.Argument(..., help="Table of texts (CSV, Parquet or JSONL); empty label = unlabeled."),
    annotations: Optional[Path] = typer.Option(None, "--annotations", help="Long-format ratings (item_id, annotator, label)."),
    out: Path = typer.Option(Path("data_card.md"), "--out", "-o",
                             help="Card path; writes .md and .json plus .class_balance.png / .agreement.png beside it."),
    name: Optional[str] = typer.Option(None, "--name", help="Dataset name in the title [default: the file path]."),
    labels: Optional[str] = typer.Option(None, "--labels", help="Allowed labels for the validator: 'a,b' or a file."),
    no_model: bool = typer.Option(False, "--no-model", help="Skip the out-of-fold label-vs-model agreement."),
    clusters: Optional[int] = typer.Option(None, "--clusters", min=2, help="k-means clusters for coverage."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    level: Optional[str] = typer.Option(None, "--level", help="The annotations are ratings on a scale: ordinal, "
                                        "interval or ratio (alpha at every level, weighted kappa, rater bias)."),
    criteria: Optional[str] = typer.Option(None, "--criteria", help="Rubric rating columns of the annotations, comma-separated."),
    opts: Shared = None,
) -> None:
    """Counts, class balance, agreement, validator findings, coverage, limitations and provenance."""
    data = stdin_data(data, opts)
    config = opts.config()
    plan = OutputPlan()
    cache = plan_table_inputs(plan, data, opts, config, annotations=annotations, labels=list_file(labels))
    # Every file the card may write is checked now; the agreement plot exists only when there is
    # per-class agreement (from annotations or the model), which is known after the work.
    paths = card_paths(out)
    for key, path in paths.items():
        plan.add_output(key, path, "--out" if key == "markdown" else f"--out ({path.name})")
    plan.check()
    df, X_given = read_table_inputs(data, opts)
    ann = read_checked_annotations(annotations, item_col=item_col, annotator_col=annotator_col,
                                   label_col=config.label_col)
    card = data_card(df, annotations=ann, name=name, text_col=config.text_col, label_col=config.label_col,
                     id_col=config.id_col, item_col=item_col, annotator_col=annotator_col,
                     annotation_label_col=config.label_col,
                     labels=split_list(labels) if labels is not None else config.labels,
                     validate_options={"unsure_labels": config.unsure_labels}, embeddings=X_given,
                     cache_dir=cache, config=config, model_agreement=not no_model,
                     n_clusters=clusters, random_state=config.seed, command=command_line(),
                     input_sha256=file_sha256(data), source=str(data),
                     ratings_level=level if level != "nominal" else None, criteria=split_list(criteria, "--criteria"))
    written = plan.commit(card.writers(card.paths_for(out)))
    info("wrote data card: " + ", ".join(str(p) for p in written.values()), opts.quiet)
