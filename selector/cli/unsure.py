"""``selector unsure``: how often annotators answer "unsure", per annotator, class and guideline version."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import (
    AnnotatorColOption,
    ItemColOption,
    Shared,
    UnsureLabelsOption,
    add_inputs,
    annotation_settings,
    shared_options,
)
from selector.io import read_table
from selector.outputs import OutputPlan, table
from selector.quality.annotations import prepare_annotations
from selector.quality.gold import read_gold
from selector.quality.unsure import unsure_items, unsure_report
from selector.tables import text_table


def _table(frame, key: str) -> list[str]:
    rows = [[str(r[key]), str(r["n_ratings"]), str(r["n_unsure"]), f"{r['unsure_rate']:.3f}",
             f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]", "TOO HIGH" if r["too_high"] else ""]
            for _, r in frame.iterrows()]
    return text_table([key, "ratings", "unsure", "rate", "95% interval", ""], rows, right=(1, 2))


@app.command("unsure")
@handle_errors
@shared_options("config_file", "label_col", "quiet")
def unsure_command(
    annotations_file: Path = typer.Argument(..., help="Long-format annotations: item_id, annotator, label [, guideline_version]."),
    unsure_labels: UnsureLabelsOption = None,
    gold_file: Optional[Path] = typer.Option(None, "--gold", help="Gold file: its labels define each item's class."),
    max_rate: float = typer.Option(0.2, "--max-rate", help="Mark rates above this as too high (guideline unclear)."),
    items_out: Optional[Path] = typer.Option(None, "--items-out", help="Write every unsure item (for review, top priority)."),
    item_col: ItemColOption = "item_id",
    annotator_col: AnnotatorColOption = "annotator",
    opts: Shared = None,
) -> None:
    """Unsure rate per annotator, class and guideline version (too high = the guideline is unclear there)."""
    label_col, unsure_labels = annotation_settings(opts, unsure_labels)
    plan = OutputPlan()
    add_inputs(plan, opts)
    plan.add_input(annotations_file, "ANNOTATIONS")
    plan.add_input(gold_file, "--gold")
    plan.add_output("items", items_out, "--items-out", table_format=True)
    plan.check()
    annotations = prepare_annotations(read_table(annotations_file), item_col=item_col, annotator_col=annotator_col,
                                      label_col=label_col, source=str(annotations_file))
    gold = read_gold(gold_file) if gold_file is not None else None
    rep = unsure_report(annotations, unsure_labels, gold=gold, max_rate=max_rate)
    typer.echo(f"{rep.n_unsure} of {rep.n_ratings} ratings unsure ({rep.unsure_rate:.3f}); "
               f"unsure values: {', '.join(rep.unsure_labels)}")
    for title, frame, key in (("per annotator", rep.by_annotator, "annotator"), ("per class", rep.by_class, "class"),
                              ("per guideline version", rep.by_guideline_version, "guideline_version")):
        if frame is not None:
            typer.echo(f"\n{title}:")
            typer.echo("\n".join(_table(frame, key)))
    if items_out is not None:
        items = unsure_items(annotations, unsure_labels)
        plan.commit({"items": table(items, items_out)})
        info(f"wrote {len(items)} unsure item(s) to {items_out}", opts.quiet)
