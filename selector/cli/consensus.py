"""``selector consensus ANNOTATIONS``: one label per item from several annotators (and a model)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    MachineAnnotatorsOption,
    Shared,
    UnsureLabelsOption,
    add_inputs,
    shared_options,
    split_list,
)
from selector.config import cache_dir_for
from selector.errors import ConfigError
from selector.io import read_table
from selector.labelsets import table_task
from selector.quality.multilabel_agreement import multilabel_consensus
from selector.outputs import OutputPlan, table
from selector.quality.consensus import METHODS, consensus


def annotators_path_for(out: Path) -> Path:
    """``consensus.csv`` -> ``consensus.annotators.csv`` (beside it, same format)."""
    return out.with_name(f"{out.stem}.annotators{out.suffix}")


def machines_path_for(out: Path) -> Path:
    """``consensus.csv`` -> ``consensus.machines.csv``: machine annotators' per-class accuracy."""
    return out.with_name(f"{out.stem}.machines{out.suffix}")


@app.command("consensus")
@handle_errors
@shared_options("seed", "config_file", "text_col", "label_col", "id_col", "model", "device", "batch_size",
                "backend", "cache_dir", "quiet", "multi_label", "label_sep")
def consensus_command(
    annotations: Path = typer.Argument(..., help="Long-format ratings: one row per (item, annotator, label)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Table with the items' texts (its id column = the item id) "
                                                             "[default: a text column in ANNOTATIONS]."),
    out: Path = typer.Option(Path("consensus.csv"), "--out", "-o",
                             help="Consensus per item; per-annotator quality goes beside it (.annotators.csv)."),
    method: str = typer.Option("model", "--method", help=f"One of {', '.join(METHODS)}: model = out-of-fold model "
                                                          "x annotator-weighted votes (needs texts)."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    unsure_labels: UnsureLabelsOption = None,
    machine_annotators: MachineAnnotatorsOption = None,
    opts: Shared = None,
) -> None:
    """Consensus label per item with the probability it is right, and a quality score per annotator."""
    if method not in METHODS:
        raise ConfigError(f"unknown --method {method!r}; choose from {', '.join(METHODS)}")
    config = opts.config()
    unsure = unsure_labels if unsure_labels is not None else ",".join(config.unsure_labels)
    plan = OutputPlan()
    add_inputs(plan, opts)
    plan.add_input(annotations, "ANNOTATIONS")
    plan.add_input(data, "--data")
    cache = plan.add_folder(cache_dir_for(data or annotations, config), "--cache-dir") if method == "model" else None
    plan.add_output("consensus", out, "--out", table_format=True)
    plan.add_output("annotators", annotators_path_for(out), "--out (annotator quality)", table_format=True)
    machines = split_list(machine_annotators, "--machine-annotators") or ()
    if machines:
        plan.add_output("machines", machines_path_for(out), "--out (machine annotators)", table_format=True)
    plan.check()
    ann = read_table(annotations)
    frame = read_table(data) if data is not None else None
    if config.label_col in ann.columns and \
            table_task(ann, config.label_col, config.task, config.label_sep)[0] == "multi_label":
        if machines:
            raise ConfigError("--machine-annotators does not work on label sets yet")
        result = multilabel_consensus(ann, data=frame, method=method, item_col=item_col, annotator_col=annotator_col,
                                      label_col=config.label_col, text_col=config.text_col, id_col=config.id_col,
                                      unsure_labels=split_list(unsure, "--unsure-labels") or (), config=config,
                                      cache_dir=cache, show_progress=not opts.quiet, source=str(annotations))
        written = plan.commit({"consensus": table(result, out)})
        col = "model" if method == "model" else "ds" if method == "dawid_skene" else "majority"
        info(f"consensus label sets for {len(result)} items ({method}: columns {col}_labels, {col}_quality; "
             f"mean quality {result[f'{col}_quality'].mean():.3f}) -> {', '.join(map(str, written.values()))}",
             opts.quiet)
        return
    result = consensus(ann, data=frame, method=method, item_col=item_col, annotator_col=annotator_col,
                       label_col=config.label_col, text_col=config.text_col, id_col=config.id_col,
                       unsure_labels=split_list(unsure, "--unsure-labels") or (), random_state=config.seed, cache_dir=cache,
                       config=config, show_progress=not opts.quiet, source=str(annotations),
                       machine_annotators=machines)
    writers = {"consensus": table(result.frame(), out),
               "annotators": table(result.annotator_frame(), annotators_path_for(out))}
    if machines:
        writers["machines"] = table(result.machine_report, machines_path_for(out))
    written = plan.commit(writers)
    info(f"{result.summary()} -> {', '.join(str(p) for p in written.values())}", opts.quiet)
