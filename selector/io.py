"""Reading and writing tables (CSV, Parquet, JSONL by extension) and atomic output.

Every reader returns a DataFrame with the file's columns; errors name the file, the row or line,
and what to do. Writers go through a temp file in the target folder and ``os.replace``, so a crash
never leaves a half-written output. Inputs are opened read-only and never modified.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import Iterator

import pandas as pd

from selector.errors import DataError

__all__ = ["read_table", "write_table", "atomic_write", "write_json", "file_sha256", "FORMATS"]

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"{path}: unknown file format {path.suffix or '(no extension)'!r}; "
            f"use one of {', '.join(sorted(FORMATS))}"
        )
    return fmt


def _decode_utf8(path: Path, raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "re-save the file as UTF-8"
        ) from None


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV, Parquet or JSONL file chosen by extension.

    CSV and JSONL cells are read as text (no type guessing, empty cells stay empty strings), so
    ids like ``007`` keep their zeros and an empty label means "unlabeled".

    Raises
    ------
    DataError
        Missing or empty file, unknown extension, bad encoding or unparsable content.
    """
    path = Path(path)
    fmt = _format_of(path)
    if not path.exists():
        raise DataError(f"{path}: file not found; check the path")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a data file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty; it needs a header row and at least one data row")
    if fmt == "parquet":
        try:
            df = pd.read_parquet(path)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: not a readable Parquet file ({exc}); check the file") from None
    else:
        text = _decode_utf8(path, path.read_bytes())
        if fmt == "csv":
            try:
                df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False)
            except pd.errors.EmptyDataError:
                raise DataError(f"{path}: file is empty; it needs a header row and at least one data row") from None
            except pd.errors.ParserError as exc:
                raise DataError(f"{path}: malformed CSV ({str(exc).strip()}); fix the quoting on that line") from None
        else:
            rows = []
            for lineno, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path}: line {lineno} is not valid JSON ({exc.msg}); fix that line") from None
                if not isinstance(obj, dict):
                    raise DataError(f"{path}: line {lineno} is not a JSON object; each line must be one record")
                rows.append(obj)
            df = pd.DataFrame(rows)
    if df.shape[0] == 0:
        raise DataError(f"{path}: has a header but no data rows")
    df.columns = [str(c) for c in df.columns]
    return df


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temp file beside ``path``; on success rename it over ``path``, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    kwargs = {"encoding": "utf-8", "newline": ""} if "b" not in mode else {}
    try:
        with open(tmp, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` atomically as CSV, Parquet or JSONL (by extension); returns the path."""
    path = Path(path)
    fmt = _format_of(path)
    if fmt == "parquet":
        with atomic_write(path, "wb") as fh:
            df.to_parquet(fh, index=False)
    elif fmt == "csv":
        with atomic_write(path) as fh:
            df.to_csv(fh, index=False)
    else:
        with atomic_write(path) as fh:
            df.to_json(fh, orient="records", lines=True, force_ascii=False)
    return path


def write_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_write(path) as fh:
        json.dump(obj, fh, indent=2, default=str, ensure_ascii=False)
        fh.write("\n")
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
