"""Options every command shares, declared once, and the helpers that turn them into a run config.

The ``Annotated`` aliases declare each shared option once; a command uses one as
``text_col: TextColOption = None``; :func:`shared_options` adds them to a command. ``None`` means
"flag not given", so :meth:`Shared.config` can layer flags over the config file (defaults, then
``--config``, then flags) the same way everywhere.
"""

from __future__ import annotations

import functools
import inspect
import sys
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import pandas as pd
import typer

from selector.chat import read_data
from selector.cli.app import info
from selector.config import DEFAULT_CACHE_NAME, SelectConfig, cache_dir_for, load_config, read_settings_text
from selector.errors import ConfigError, DataError
from selector.examples import example_copy
from selector.io import STDIO, read_table, sniff_extension
from selector.outputs import OutputPlan
from selector.quality.annotations import prepare_annotations
from selector.round.embed import load_embeddings

__all__ = [
    "ConfigFileOption", "TextColOption", "LabelColOption", "IdColOption", "ModelOption", "DeviceOption",
    "BackendOption", "BatchSizeOption", "CacheDirOption", "EmbeddingsOption", "QuietOption", "SeedOption",
    "ItemColOption", "AnnotatorColOption", "AnnotationLabelColOption", "UnsureLabelsOption",
    "MachineAnnotatorsOption", "split_list", "list_file", "read_checked_annotations", "read_inputs", "add_inputs", "SHARED", "MODEL_COMMAND", "Shared", "shared_options", "plan_table_inputs",
    "read_table_inputs", "annotation_settings", "DataFormatOption", "LabelFromOption", "InputTurnsOption",
    "SkipInvalidOption", "DATA_READING", "stdin_data", "no_stdin", "LABEL_SETS", "MultiLabelOption",
    "LabelSepOption", "NoneLabelOption",
]

ConfigFileOption = Annotated[Optional[Path], typer.Option(
    "--config", help="YAML config (every key: selector/data/default.yaml in the installed package, configs/default.yaml in the repository); flags beat it.")]
TextColOption = Annotated[Optional[str], typer.Option("--text-col", help="Text column [default: text].")]
LabelColOption = Annotated[Optional[str], typer.Option(
    "--label-col", help="Label column [default: label] (also of the annotations, when given).")]
IdColOption = Annotated[Optional[str], typer.Option(
    "--id-col", help="Id column [default: id]; generated when absent.")]
ModelOption = Annotated[Optional[str], typer.Option(
    "--model", help="Local sentence-transformers folder, or 'hashing' [default: bundled all-MiniLM-L6-v2].")]
DeviceOption = Annotated[Optional[str], typer.Option("--device", help="auto, cpu or cuda [default: auto].")]
BackendOption = Annotated[Optional[str], typer.Option(
    "--backend", help="torch, onnx, or the approximate onnx-int8 / static [default: onnx on CPU, torch on CUDA].")]
BatchSizeOption = Annotated[Optional[int], typer.Option(
    "--batch-size", help="Texts per forward pass [default: 64 on CPU, more on CUDA].")]
CacheDirOption = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Embedding cache [default: .selector/ beside the data].")]
EmbeddingsOption = Annotated[Optional[Path], typer.Option(
    "--embeddings", help=".npy of embeddings aligned with the rows; skips the model.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or summary line.")]
SeedOption = Annotated[Optional[int], typer.Option("--seed", help="Random seed [default: 0].")]
ItemColOption = Annotated[str, typer.Option("--item-col", help="Item id column of the annotations.")]
AnnotatorColOption = Annotated[str, typer.Option("--annotator-col", help="Annotator column of the annotations.")]
MachineAnnotatorsOption = Annotated[Optional[str], typer.Option(
    "--machine-annotators", help="Annotators that are models (e.g. an LLM pre-labeler), comma-separated: each weighted "
                                 "on its own in the consensus, left out of the human figures, reported on their own.")]
AnnotationLabelColOption = Annotated[str, typer.Option("--label-col", help="Label column of the annotations.")]
DataFormatOption = Annotated[Optional[str], typer.Option(
    "--format", help="auto, table or chat ({\"messages\": [...]} JSONL; detected) [default: auto].")]
LabelFromOption = Annotated[Optional[str], typer.Option(
    "--label-from", help="Chat data: json:KEY.PATH (a key of the JSON reply), reply, or none (replies are outputs).")]
InputTurnsOption = Annotated[Optional[str], typer.Option(
    "--input-turns", help="Chat data: last (the user's last message) or all (the whole prompt) [default: last].")]
SkipInvalidOption = Annotated[bool, typer.Option(
    "--skip-invalid", help="Chat data: leave malformed lines out (counted and listed) instead of stopping.")]
MultiLabelOption = Annotated[Optional[bool], typer.Option(
    "--multi-label/--single-label", help="Each label cell is a set of labels (';'-joined, or a JSON list) / one label "
                                         "[default: detected from the cells; config task].")]
LabelSepOption = Annotated[Optional[str], typer.Option(
    "--label-sep", help="Multi-label: the delimiter between labels in a cell [default: ;].")]
NoneLabelOption = Annotated[Optional[str], typer.Option(
    "--none-label", help="Multi-label: the cell value meaning 'labeled: none of these' (an empty cell is "
                         "'not labeled yet') [default: none].")]
UnsureLabelsOption = Annotated[Optional[str], typer.Option(
    "--unsure-labels", help="Comma-separated values meaning 'no label' [default: config unsure_labels: unsure,needs_review].")]


#: A ``--labels`` value with one of these endings (and no comma) names a file, never a label.
_LIST_FILE_SUFFIXES = (".txt", ".csv", ".tsv", ".lst", ".list", ".labels", ".json", ".yaml", ".yml")


def split_list(value: Optional[str], option: str = "--labels") -> Optional[list[str]]:
    """``"a,b, c"`` -> ``["a", "b", "c"]``; a path to an existing file -> one item per non-empty line.

    Raises
    ------
    ConfigError
        A value that looks like a file name (a path separator or a file ending, no comma) but is no
        file: it would otherwise be read as one label named after the file. Also an empty entry
        (``a,,b``), which is a typo more often than a label.
    """
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        text = read_settings_text(path, f"{option} file", "save it as UTF-8 with one label per line")
        return [line.strip() for line in text.splitlines() if line.strip()]
    looks_like_path = "," not in value and ("/" in value or "\\" in value
                                             or value.lower().endswith(_LIST_FILE_SUFFIXES))
    if looks_like_path:
        what = "is a folder, not a file" if path.is_dir() else "no such file"
        raise ConfigError(f"{value}: {option} file not found ({what}); give an existing file with one "
                          f"label per line, or the labels themselves as 'a,b,c'")
    items = [v.strip() for v in value.split(",")]
    if any(not v for v in items) and len(items) > 1:
        raise ConfigError(f"{option} {value!r} has an empty entry; list labels as 'a,b,c' with no empty items")
    return [v for v in items if v]


#: The shared options by parameter name: (annotation, default). Commands take them through
#: :func:`shared_options`, so each is declared here once.
SHARED = {
    "seed": (SeedOption, None),
    "config_file": (ConfigFileOption, None),
    "text_col": (TextColOption, None),
    "label_col": (LabelColOption, None),
    "id_col": (IdColOption, None),
    "model": (ModelOption, None),
    "device": (DeviceOption, None),
    "batch_size": (BatchSizeOption, None),
    "backend": (BackendOption, None),
    "cache_dir": (CacheDirOption, None),
    "embeddings": (EmbeddingsOption, None),
    "quiet": (QuietOption, False),
    "data_format": (DataFormatOption, None),
    "label_from": (LabelFromOption, None),
    "input_turns": (InputTurnsOption, None),
    "skip_invalid": (SkipInvalidOption, False),
    "multi_label": (MultiLabelOption, None),
    "label_sep": (LabelSepOption, None),
    "none_label": (NoneLabelOption, None),
}
#: The options that say how a data file is read (chat-format JSONL).
DATA_READING = ("data_format", "label_from", "input_turns", "skip_invalid")
#: How a label cell is read as a label set (commands that handle multi-label tasks).
LABEL_SETS = ("multi_label", "label_sep", "none_label")
#: Options of every command that reads a data table and embeds it.
MODEL_COMMAND = tuple(n for n in SHARED if n not in LABEL_SETS)


class Shared:
    """The shared options a command was given (attributes by option name; None = not given)."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)

    def flags(self) -> dict:
        """The given options that are config settings (``cache_dir`` as text)."""
        # skip_invalid is a plain flag: absent (False) leaves the config file's setting alone.
        out = {k: v for k, v in vars(self).items()
               if k not in ("config_file", "embeddings", "quiet") and v is not None
               and not (k == "skip_invalid" and v is False)}
        if "cache_dir" in out:
            out["cache_dir"] = str(out["cache_dir"])
        if "multi_label" in out:
            out["task"] = "multi_label" if out.pop("multi_label") else "single_label"
        return out

    def config(self, **more) -> SelectConfig:
        """Defaults, then ``--config``, then the shared flags given, then ``more`` (None = not given)."""
        return load_config(vars(self).get("config_file")).replace(**self.flags(), **more)


def shared_options(*names: str):
    """Add the shared options ``names`` to a typer command; it receives them as ``opts: Shared``.

    The command's own parameters keep their order; the shared ones follow, declared once in
    :data:`SHARED` so every command spells, documents and defaults them the same way.
    """
    def decorate(func):
        sig = inspect.signature(func, eval_str=True)
        own = [p for p in sig.parameters.values() if p.name != "opts"]
        extra = [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, annotation=SHARED[n][0], default=SHARED[n][1])
                 for n in names]

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            opts = Shared({n: kwargs.pop(n) for n in names})
            return func(*args, opts=opts, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=own + extra)
        wrapper.__annotations__ = {p.name: p.annotation for p in own + extra}
        return wrapper
    return decorate


def accepts_example(data: str = "data", shift: str | None = None):
    """Add ``--example`` to a command whose argument ``data`` is a data table.

    With ``--example`` the command runs on ``./banking77_sample.csv``, a copy of the bundled example
    written on first use (:func:`selector.examples.example_copy`), so ``select``, ``status``,
    ``export``, ``merge`` ... follow one loop on a fresh install. ``shift`` names the argument after
    DATA (``merge``'s LABELED_FILE): given ``--example``, the one positional argument is that one.
    Apply it above :func:`shared_options`.
    """
    def decorate(func):
        sig = inspect.signature(func, eval_str=True)
        params = []
        for prm in sig.parameters.values():
            if prm.name == data:
                argument = prm.default
                prm = prm.replace(annotation=Optional[Path], default=typer.Argument(
                    None, help=f"{argument.help} Optional with --example.", show_default=False))
            params.append(prm)
        example_param = inspect.Parameter("example", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
            False, "--example", help="Use ./banking77_sample.csv, a copy of the bundled example (2,002 banking77 "
                                     "questions) written there on first use, as DATA."))
        keyword = [q for q in params if q.kind == inspect.Parameter.KEYWORD_ONLY]
        positional = [q for q in params if q.kind != inspect.Parameter.KEYWORD_ONLY]
        params = positional + [example_param] + keyword

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            example = kwargs.pop("example")
            given = kwargs.get(data)
            if example:
                if shift is not None and given is not None and kwargs.get(shift) is None:
                    kwargs[shift], given = given, None
                if given is not None:
                    raise ConfigError(f"give either DATA ({given}) or --example, not both")
                quiet = bool(kwargs.get("quiet"))
                path, created = example_copy()
                info((f"--example: wrote the bundled example to {path} (2,002 banking77 questions, 385 labeled); "
                      "later --example runs use this copy") if created
                     else f"--example: using {path} (the example's copy; delete it to start over)", quiet)
                kwargs[data] = path
            elif given is None:
                raise ConfigError("give a DATA file (or --example to use the bundled example)")
            return func(*args, **kwargs)

        wrapper.__signature__ = sig.replace(parameters=params)
        wrapper.__annotations__ = {q.name: q.annotation for q in params}
        return wrapper
    return decorate


def list_file(value: Optional[str]) -> Optional[Path]:
    """The file a list option (``--labels``) names, when it names one (see :func:`split_list`)."""
    return Path(value) if value is not None and Path(value).is_file() else None


def read_inputs(opts: Shared, **lists: Optional[str]) -> list[tuple[str, Path]]:
    """Files a command reads besides its arguments: ``--config`` and list options given as a file
    (flag name -> value), as ``(flag, path)`` for an :class:`OutputPlan`'s inputs."""
    found = []
    config_file = vars(opts).get("config_file")
    if config_file is not None:
        found.append(("--config", Path(config_file)))
    for flag, value in lists.items():
        path = list_file(value)
        if path is not None:
            found.append((f"--{flag.replace('_', '-')}", path))
    return found


def add_inputs(plan: OutputPlan, opts: Shared, **lists: Optional[str]) -> None:
    """Register :func:`read_inputs` on ``plan``."""
    for what, path in read_inputs(opts, **lists):
        plan.add_input(path, what)


def plan_table_inputs(plan: OutputPlan, data: Path, opts: Shared, config: SelectConfig,
                      **inputs: Optional[Path]) -> Optional[Path]:
    """Register DATA, ``--embeddings`` and the other ``inputs`` (flag name -> path) as inputs of ``plan``,
    and the embedding cache as a folder it writes into unless ``--embeddings`` is given.

    Returns
    -------
    Path or None
        The embedding cache folder (None with ``--embeddings``).
    """
    plan.add_input(data, "DATA")
    plan.add_input(opts.embeddings, "--embeddings")
    add_inputs(plan, opts)
    for flag, path in inputs.items():
        plan.add_input(path, f"--{flag.replace('_', '-')}")
    if opts.embeddings is not None:
        return None
    return plan.add_folder(cache_dir_for(data, config), "--cache-dir")


_STDIN_FOLDERS: list = []


def stdin_data(data: Path, opts: Shared) -> Path:
    """DATA as a file path: ``-`` reads standard input into a temp file (format sniffed: JSONL, a JSON
    array, TSV or CSV) and puts the embedding cache in ``./.selector`` unless ``--cache-dir`` says."""
    if str(data) != STDIO:
        return data
    raw = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8")
    if not raw.strip():
        raise DataError("-: standard input is empty; pipe a table in (CSV, TSV, JSONL or a JSON array) or give a file")
    folder = tempfile.TemporaryDirectory(prefix="selector-stdin-")
    _STDIN_FOLDERS.append(folder)  # removed when the process ends
    path = Path(folder.name) / f"stdin{sniff_extension(raw)}"
    path.write_bytes(raw)
    if vars(opts).get("cache_dir") is None:
        opts.cache_dir = Path.cwd() / DEFAULT_CACHE_NAME
    return path


def no_stdin(data: Path, command: str) -> None:
    """Refuse ``-`` as DATA for a command whose loop state is keyed by the data file."""
    if str(data) == STDIO:
        raise ConfigError(f"`selector {command}` keeps its round ledger beside DATA, so it needs a file; "
                          "save the data to a file first (`-` works for validate, suspects, card, review, simulate)")


def read_table_inputs(data: Path, opts: Shared) -> tuple[pd.DataFrame, Optional[np.ndarray]]:
    """The data table (a chat file flattened) and the ``--embeddings`` it came with, checked against it.

    A chat file's one-line note (what was read, how labels were taken, lines skipped) goes to stderr.
    """
    config = opts.config()
    df, chat = read_data(data, config, skipped_folder=cache_dir_for(data, config))
    if chat is not None:
        info(chat.note, vars(opts).get("quiet", False))
    return df, (load_embeddings(opts.embeddings, len(df)) if opts.embeddings is not None else None)


def read_checked_annotations(path: Optional[Path], *, item_col: str, annotator_col: str,
                             label_col: str) -> Optional[pd.DataFrame]:
    """``--annotations``' table as read (None without the flag), its shape checked before anything is
    embedded (:func:`selector.quality.annotations.prepare_annotations` names the file and column)."""
    if path is None:
        return None
    ann = read_table(path)
    prepare_annotations(ann, item_col=item_col, annotator_col=annotator_col, label_col=label_col, source=str(path))
    return ann


def annotation_settings(opts: Shared, unsure_labels: Optional[str]) -> tuple[str, str]:
    """The annotations' label column and unsure values: flags, else ``--config``, else the defaults."""
    config = opts.config()
    return config.label_col, unsure_labels if unsure_labels is not None else ",".join(config.unsure_labels)
