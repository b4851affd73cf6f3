"""``selector agreement ANNOTATIONS``: inter-annotator agreement and consensus labels.

Three kinds of annotation: labels (nominal, the default), ratings on a scale (``--level ordinal``,
``interval`` or ``ratio``; ``--criteria`` for a rubric) and pairwise preferences (``response_a,
response_b, preferred`` columns; detected, or ``--preferences``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pandas as pd
import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    LabelSepOption,
    MachineAnnotatorsOption,
    MultiLabelOption,
    NoneLabelOption,
    Shared,
    UnsureLabelsOption,
    add_inputs,
    annotation_settings,
    shared_options,
    split_list,
)
from selector.errors import ConfigError
from selector.io import read_table
from selector.labelsets import table_task
from selector.outputs import OutputPlan, table
from selector.quality.agreement import agreement
from selector.quality.multilabel_agreement import multilabel_agreement
from selector.quality.preferences import looks_like_preferences, preference_report
from selector.quality.ratings import LEVELS, format_ratings, ratings_report


@app.command("agreement")
@handle_errors
@shared_options("config_file", "label_col", "quiet")
def agreement_command(
    annotations: Path = typer.Argument(..., help="Long-format ratings: one row per (item, annotator, label)."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    gold_col: Optional[str] = typer.Option(None, "--gold-col", help="Reference label column: adds consensus accuracy."),
    min_shared: int = typer.Option(5, "--min-shared", min=1, help="Annotator pairs sharing fewer items are left out."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON instead of tables."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write consensus labels per item (.csv/.parquet/.jsonl)."),
    rows: int = typer.Option(10, "--rows", min=1, help="Rows per table in the text report."),
    seed: int = typer.Option(0, "--seed", help="Seed for breaking majority-vote ties (ties stay flagged) [default: 0]."),
    unsure_labels: UnsureLabelsOption = None,
    level: str = typer.Option("nominal", "--level", help=f"Level of measurement: {', '.join(LEVELS)}; "
                              "ordinal/interval/ratio read the labels as numeric ratings."),
    criteria: Optional[str] = typer.Option(None, "--criteria", help="Rubric: comma-separated rating columns "
                                           "(e.g. helpful,correct,safe); alpha per criterion and for the total."),
    preferences: bool = typer.Option(False, "--preferences", help="Pairwise preferences (response_a, response_b, "
                                     "preferred); detected from those columns."),
    machine_annotators: MachineAnnotatorsOption = None,
    multi_label: MultiLabelOption = None,
    label_sep: LabelSepOption = None,
    none_label: NoneLabelOption = None,
    opts: Shared = None,
) -> None:
    """Agreement and consensus: labels (Cohen/Fleiss/Krippendorff, Dawid-Skene), ratings and rubrics
    (alpha at any level, weighted kappa, rater bias) or pairwise preferences."""
    label_col, unsure_labels = annotation_settings(opts, unsure_labels)
    if level not in LEVELS:
        raise ConfigError(f"--level must be one of {', '.join(LEVELS)}, got {level!r}")
    plan = OutputPlan()
    add_inputs(plan, opts)
    plan.add_input(annotations, "ANNOTATIONS")
    plan.add_output("consensus", out, "--out", table_format=True)
    plan.check()
    df = read_table(annotations)
    to_err = out is not None and str(out) == "-"  # --out - owns standard output; reports go to stderr

    def show(as_dict, as_text) -> None:
        """The report as JSON (--json) or as text; ``as_dict`` and ``as_text`` are called only when used."""
        typer.echo(json.dumps(as_dict(), indent=2, ensure_ascii=False, default=str) if json_out else as_text(),
                   err=to_err)

    config = opts.config(label_sep=label_sep, none_label=none_label,
                         task=None if multi_label is None else ("multi_label" if multi_label else "single_label"))
    if label_col in df.columns and not preferences and criteria is None and level == "nominal":
        task, detected = table_task(df, label_col, config.task, config.label_sep)
        if task == "multi_label":
            if machine_annotators or gold_col:
                raise ConfigError("--machine-annotators and --gold-col do not work on label sets yet")
            if detected:
                info(f"{annotations}: column {label_col!r} holds label sets, so agreement is measured on sets "
                     "(--single-label reads each cell as one label)", opts.quiet)
            report = multilabel_agreement(df, item_col=item_col, annotator_col=annotator_col, label_col=label_col,
                                          label_sep=config.label_sep, none_label=config.none_label,
                                          unsure_labels=split_list(unsure_labels, "--unsure-labels") or (),
                                          source=str(annotations))
            show(report.to_dict, lambda: report.to_text(max_rows=rows))
            if out is not None:
                plan.commit({"consensus": table(report.consensus, out)})
                info(f"wrote consensus label sets for {report.n_items} items -> {out}", opts.quiet)
            return
    is_preferences = preferences or (looks_like_preferences(df) and criteria is None and level == "nominal")
    if machine_annotators and (is_preferences or criteria is not None or level != "nominal"):
        raise ConfigError("--machine-annotators applies to class labels (--level nominal), not to ratings, rubrics "
                          "or preferences")
    if is_preferences:
        prefs = preference_report(df, annotator_col=annotator_col,
                                  item_col=item_col if item_col in df.columns else None, min_shared=min_shared,
                                  random_state=seed, source=str(annotations))
        show(prefs.to_dict, lambda: prefs.to_text(max_rows=rows))
        if out is not None:
            plan.commit({"consensus": table(prefs.pairs, out)})
            info(f"wrote the consensus preference of {len(prefs.pairs)} pairs -> {out}", opts.quiet)
        return
    if criteria is not None or level != "nominal":
        reports = ratings_report(df, item_col=item_col, annotator_col=annotator_col, rating_col=label_col,
                                 criteria=split_list(criteria, "--criteria"), level="ordinal" if level == "nominal" else level,
                                 min_shared=min_shared, unsure_labels=split_list(unsure_labels, "--unsure-labels") or (),
                                 source=str(annotations))
        show(lambda: {k: r.to_dict() for k, r in reports.items()}, lambda: format_ratings(reports, max_rows=rows))
        if out is not None:
            scores = pd.concat([r.items.assign(criterion=name) for name, r in reports.items()], ignore_index=True)
            plan.commit({"consensus": table(scores, out)})
            info(f"wrote consensus scores (mean, median, bias-corrected) for {reports[next(iter(reports))].n_items} "
                 f"items -> {out}", opts.quiet)
        return
    report = agreement(df, item_col=item_col, annotator_col=annotator_col, label_col=label_col, gold_col=gold_col,
                       min_shared=min_shared, random_state=seed, source=str(annotations),
                       unsure_labels=split_list(unsure_labels, "--unsure-labels") or (),
                       machine_annotators=split_list(machine_annotators, "--machine-annotators") or ())
    show(report.to_dict, lambda: report.to_text(max_rows=rows))
    if out is not None:
        plan.commit({"consensus": table(report.consensus, out)})
        info(f"wrote consensus labels for {report.n_items} items -> {out}", opts.quiet)
