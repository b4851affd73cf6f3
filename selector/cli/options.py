"""Options shared by the label-quality commands (validate, review, card): columns, embedding model and cache.

The ``Annotated`` aliases declare each shared command-line option once; a command uses one as
``text_col: TextColOption = None``. ``None`` means "flag not given", so :func:`resolve_config`
can layer flags over the config file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from selector.errors import ConfigError

ConfigFileOption = Annotated[Optional[Path], typer.Option("--config", help="YAML config (columns, model).")]
TextColOption = Annotated[Optional[str], typer.Option("--text-col", help="Text column [default: text].")]
LabelColOption = Annotated[Optional[str], typer.Option(
    "--label-col", help="Label column [default: label] (also of the annotations, when given).")]
IdColOption = Annotated[Optional[str], typer.Option(
    "--id-col", help="Id column [default: id]; generated when absent; matched to the annotations' item ids.")]
ModelOption = Annotated[Optional[str], typer.Option(
    "--model", help="Embedding model folder, or 'hashing' [default: bundled].")]
DeviceOption = Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda.")]
BatchSizeOption = Annotated[Optional[int], typer.Option("--batch-size", help="Texts per forward pass.")]
CacheDirOption = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Embedding cache [default: .selector/ beside the data].")]
EmbeddingsOption = Annotated[Optional[Path], typer.Option(
    "--embeddings", help=".npy of embeddings aligned with the rows.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No summary line on stderr.")]
SeedOption = Annotated[Optional[int], typer.Option("--seed", help="Random seed [default: 0].")]
ItemColOption = Annotated[str, typer.Option("--item-col", help="Item id column of the annotations.")]
AnnotatorColOption = Annotated[str, typer.Option("--annotator-col", help="Annotator column of the annotations.")]


def resolve_config(config_file: Optional[Path], *, text_col, label_col, id_col, model, device, batch_size,
                   cache_dir: Optional[Path], seed=None):
    """The run config: defaults, then ``--config``, then flags (None = flag not given)."""
    from selector.config import load_config

    return load_config(config_file).replace(
        text_col=text_col, label_col=label_col, id_col=id_col, model=model, device=device, batch_size=batch_size,
        cache_dir=str(cache_dir) if cache_dir is not None else None, seed=seed)


def cache_for(config, data: Path) -> Path:
    """The embedding cache: ``--cache-dir`` / config, else ``.selector/`` beside the data (as ``select``)."""
    from selector.cli.app import default_cache_dir

    return Path(config.cache_dir) if config.cache_dir else default_cache_dir(data)


def check_not_input(out: Optional[Path], *inputs: Optional[Path]) -> None:
    for src in inputs:
        if out is not None and src is not None and out.resolve() == src.resolve():
            raise ConfigError(f"--out {out} is an input file; choose another path (inputs are never modified)")


def split_list(value: Optional[str]) -> Optional[list[str]]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; a path to an existing file -> one item per non-empty line."""
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [v.strip() for v in value.split(",") if v.strip()]
