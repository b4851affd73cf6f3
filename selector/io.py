"""Reading and writing tables (CSV, TSV, Parquet, JSONL, JSON by extension; ``.gz`` too) and atomic output.

``.csv``, ``.tsv``, ``.jsonl`` (``.ndjson``) and ``.json`` (an array of objects) may be gzipped
(``data.csv.gz``); Parquet compresses itself.

Every reader returns a DataFrame with the file's columns; errors name the file, the row or line,
and what to do. Writers go through a temp file in the target folder and ``os.replace``, so a crash
never leaves a half-written output. Inputs are opened read-only and never modified.

Temp files are named ``.<target name>.<pid>.<random>.tmp``: the pid lets a later run remove the
temps of a process that died mid-write (:func:`remove_stale_temps`) without touching a live one's.

CSV outputs are spreadsheet-safe: a text cell starting with ``= + - @``, tab or carriage return is
written with a leading ``'`` (OWASP's advice against formula injection), and the CSV reader strips
that one quote again, so ids and labels round-trip unchanged.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import io
import json
import os
import uuid
from pathlib import Path
from typing import Iterator

import pandas as pd

from selector.errors import DataError

__all__ = ["read_table", "write_table", "atomic_write", "write_json", "file_sha256", "FORMATS", "temp_path_for",
           "remove_stale_temps", "pid_alive", "append_line", "drop_torn_line", "check_table_path", "spreadsheet_safe", "needs_guard", "guard_cell", "unguard_cell", "TEMP_SUFFIX", "dump_table",
           "decode_utf8", "read_bytes", "table_extension", "table_sibling", "GZIP_FORMATS", "STDIO", "sniff_extension"]

FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl",
           ".ndjson": "jsonl", ".json": "json"}
#: Formats that may be gzipped (``.csv.gz``).
GZIP_FORMATS = ("csv", "tsv", "jsonl", "json")


TEMP_SUFFIX = ".tmp"
#: First characters that make a spreadsheet read a cell as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def table_extension(path: str | os.PathLike) -> str:
    """The table extension of ``path``, lower case, ``.gz`` included: ``.csv``, ``.csv.gz``, ``.parquet`` ..."""
    suffixes = [x.lower() for x in Path(path).suffixes]
    if len(suffixes) >= 2 and suffixes[-1] == ".gz" and FORMATS.get(suffixes[-2]) in GZIP_FORMATS:
        return suffixes[-2] + ".gz"
    return suffixes[-1] if suffixes else ""


def table_sibling(path: str | os.PathLike, tag: str, extension: str | None = None) -> Path:
    """``queue.csv.gz`` + ``suspects`` -> ``queue.suspects.csv.gz`` (``extension`` replaces the table's)."""
    path = Path(path)
    ext = table_extension(path)
    stem = path.name[: len(path.name) - len(ext)] if ext and path.name.lower().endswith(ext) else path.stem
    return path.with_name(f"{stem}.{tag}{ext if extension is None else extension}")


#: The path that means standard input / output on the command line.
STDIO = "-"


def _format_of(path: Path) -> tuple[str, bool]:
    """(format, gzipped) of ``path`` by extension; a DataError naming the extensions otherwise.

    ``-`` (standard output) is CSV.
    """
    if str(path) == STDIO:
        return "csv", False
    ext = table_extension(path)
    gz = ext.endswith(".gz")
    fmt = FORMATS.get(ext[:-3] if gz else ext)
    if fmt is None:
        shown = ", ".join(sorted(FORMATS)) + " (" + ", ".join(f".{f}" for f in GZIP_FORMATS) + " also as .gz)"
        raise DataError(f"{path}: unknown file format {ext or '(no extension)'!r}; use one of {shown}")
    return fmt, gz


def read_bytes(path: str | os.PathLike) -> bytes:
    """The file's bytes, gunzipped when its name ends in ``.gz`` (a DataError when that fails)."""
    path = Path(path)
    raw = path.read_bytes()
    if path.suffix.lower() == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a readable gzip file ({exc}); re-compress it or drop the .gz") from None
    return raw


def check_table_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path whose extension is a known table format (else DataError naming it)."""
    path = Path(path)
    _format_of(path)
    return path


def temp_path_for(path: str | os.PathLike) -> Path:
    """A fresh temp file name beside ``path``, tagged with this process id."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}{TEMP_SUFFIX}")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (someone else's live process counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike) -> int:
    """Remove temp files of ours in ``folder`` whose writing process is gone; returns how many.

    Only names of the form :func:`temp_path_for` makes are considered, and only when the pid in the
    name is not a running process, so a concurrent writer's temps are left alone.
    """
    folder = Path(folder)
    removed = 0
    if not folder.is_dir():
        return 0
    for tmp in folder.glob(f".*{TEMP_SUFFIX}"):
        parts = tmp.name[: -len(TEMP_SUFFIX)].rsplit(".", 2)
        if len(parts) != 3 or not parts[1].isdigit() or int(parts[1]) == os.getpid():
            continue
        if not pid_alive(int(parts[1])):
            try:
                tmp.unlink()
                removed += 1
            except FileNotFoundError:
                pass
    return removed


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def needs_guard(value) -> bool:
    """Whether a text cell must be written with a leading ``'`` to stay text in a spreadsheet.

    A text that starts like a formula (``= + - @``, tab, carriage return) and is not a number, or a
    text that already starts with quotes followed by such a start (so that reading strips exactly the
    one quote we add, and ``'=x`` written by a user reads back as ``'=x``). Numbers (``-0.5``) never.
    """
    if not isinstance(value, str) or not value:
        return False
    body = value.lstrip("'")
    return bool(body) and body.startswith(_FORMULA_START) and not _is_number(body)


def guard_cell(value):
    """``value`` as written to CSV/TSV: prefixed with ``'`` when :func:`needs_guard`."""
    return "'" + value if needs_guard(value) else value


def unguard_cell(value):
    """The inverse of :func:`guard_cell` on a cell read from CSV/TSV."""
    if isinstance(value, str) and value.startswith("'") and needs_guard(value[1:]):
        return value[1:]
    return value


def spreadsheet_safe(df: pd.DataFrame, unchanged: pd.DataFrame | None = None) -> pd.DataFrame:
    """A copy of ``df`` whose text cells are guarded (:func:`guard_cell`).

    Parameters
    ----------
    unchanged : DataFrame, optional
        The table as it was read, raw (:func:`read_table` with ``raw=True``): a cell of ``df`` equal to
        that table's cell in the same row position and column is written as it was read, untouched.
        Only cells the command wrote (changed or new) are guarded.
    """
    out = df.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            values = out[col].to_numpy(dtype=object)
            before = None
            if unchanged is not None and col in unchanged.columns:
                before = unchanged[col].to_numpy(dtype=object)
            risky = [i for i, v in enumerate(values) if needs_guard(v)
                     and not (before is not None and i < before.shape[0] and before[i] == v)]
            if risky:
                values = values.copy()
                values[risky] = ["'" + values[i] for i in risky]
                out[col] = pd.Series(values, index=out.index, dtype=object)
    return out


def _unescape_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Undo :func:`spreadsheet_safe` on a CSV just read (cells are str)."""
    for col in df.columns:
        # Only a cell starting with ' can be guarded: a column without one is left as read (an
        # Arrow string column is not turned into millions of Python strings for nothing).
        if pd.api.types.is_string_dtype(df[col]) and not df[col].str.startswith("'").any():
            continue
        values = df[col].to_numpy(dtype=object)
        cells = [unguard_cell(v) for v in values]
        if any(c is not v for c, v in zip(cells, values)):
            df[col] = pd.Series(cells, index=df.index, dtype=object)
    return df


def release_arrow_memory() -> None:
    """Return the memory of freed Arrow arrays to the OS: pyarrow's allocator keeps it for reuse, so
    dropping a table's Arrow string column would not lower the process's memory otherwise."""
    try:
        import pyarrow
    except ImportError:  # pandas without pyarrow keeps strings as Python objects: nothing to release
        return
    pyarrow.default_memory_pool().release_unused()


def decode_utf8(path: str | os.PathLike, raw: bytes) -> str:
    """``raw`` as UTF-8 text (a BOM is dropped); a DataError names the line of the first bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "re-save the file as UTF-8"
        ) from None


def read_table(path: str | os.PathLike, *, raw: bool = False) -> pd.DataFrame:
    """Read a CSV, TSV, Parquet, JSONL or JSON (array of objects) file chosen by extension (``.gz`` too).

    CSV and TSV cells are read as text (no type guessing, empty cells stay empty strings), so
    ids like ``007`` keep their zeros and an empty label means "unlabeled". The spreadsheet guard of
    our own outputs is undone (:func:`unguard_cell`) unless ``raw``: a command that rewrites the
    user's table (``merge``, ``ingest``) reads it raw, so the cells it does not change are written
    back byte for byte.

    Raises
    ------
    DataError
        Missing or empty file, unknown extension, bad encoding or unparsable content.
    """
    path = Path(path)
    fmt, _ = _format_of(path)
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
        data = read_bytes(path)
        text = decode_utf8(path, data)  # validates the whole file, naming the line of a bad byte
        if fmt == "json":
            try:
                items = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); fix the file") from None
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise DataError(f"{path}: a .json table must be an array of objects, one per row "
                                "(use .jsonl for one object per line)")
            if not items:
                raise DataError(f"{path}: has no data rows")
            df = pd.DataFrame(items)
        elif fmt in ("csv", "tsv"):
            sep = "\t" if fmt == "tsv" else ","
            header = _header_cells(text, sep)
            # pandas parses the bytes: an io.StringIO of the text would hold the table again at 4 bytes
            # a character (1.3 GB more for a 260 MB CSV of 1M rows).
            del text
            try:
                df = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype=str, keep_default_na=False,
                                 na_filter=False, sep=sep)
            except pd.errors.EmptyDataError:
                raise DataError(f"{path}: file is empty; it needs a header row and at least one data row") from None
            except pd.errors.ParserError as exc:
                raise DataError(f"{path}: malformed CSV ({str(exc).strip()}); fix the quoting on that line") from None
            del data  # the parsed table holds the cells now
            _refuse_duplicate_columns(header, path)
            if not raw:
                df = _unescape_formulas(df)
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


def _header_cells(text: str, sep: str) -> list[str]:
    """The first record of a CSV/TSV ``text``, read line by line (never a copy of the whole text)."""
    import csv

    def lines():
        start = 0
        while start < len(text):
            end = text.find("\n", start)
            end = len(text) if end < 0 else end + 1
            yield text[start:end]
            start = end

    return next(csv.reader(lines(), delimiter=sep), [])


def _refuse_duplicate_columns(header: list[str], path) -> None:
    """A header naming one column twice is an error: pandas would rename the second (``label.1``) and
    one of the two would be silently ignored."""
    seen, dupes = set(), []
    for name in (h.strip() for h in header):
        if name in seen and name not in dupes:
            dupes.append(name)
        seen.add(name)
    if dupes:
        raise DataError(f"{path}: the header names column(s) {', '.join(map(repr, dupes))} more than once; "
                        "rename or remove the extra column so each name is used once")


def drop_torn_line(fd: int, path: str | os.PathLike) -> None:
    """Cut an append-only file open at ``fd`` back to its last newline when its last line is incomplete
    (the torn line of a killed writer; it never was a record). The caller holds the file's lock."""
    size = os.fstat(fd).st_size
    if size and os.pread(fd, 1, size - 1) != b"\n":
        os.ftruncate(fd, Path(path).read_bytes().rfind(b"\n") + 1)


def append_line(fd: int, data: bytes, path: Path) -> None:
    """Append ``data`` to the open file ``fd`` whole, flushed to disk, or not at all.

    A short write (a full disk writes what fits and says nothing) or a failed ``fsync`` truncates the
    file back to its size before the append, so no torn line is left, and raises ``OSError``.
    """
    before = os.fstat(fd).st_size
    try:
        done = 0
        while done < len(data):
            n = os.write(fd, data[done:])
            if n <= 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
            done += n
        os.fsync(fd)
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, before)
            os.fsync(fd)
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w") -> Iterator:
    """Open a temp file beside ``path``; on success rename it over ``path``, on error remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(path)
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


def dump_table(df: pd.DataFrame, file: str | os.PathLike, fmt_of: str | os.PathLike | None = None, *,
               unchanged: pd.DataFrame | None = None) -> None:
    """Write ``df`` to ``file`` (not atomically) in the format of ``fmt_of``'s extension (default ``file``'s).

    CSV cells that start like a formula are made spreadsheet-safe (:func:`spreadsheet_safe`; with
    ``unchanged``, only the cells that differ from it).
    """
    fmt, gz = _format_of(Path(fmt_of if fmt_of is not None else file))
    if fmt == "parquet":
        import pyarrow as pa

        try:
            df.to_parquet(file, index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            bad = next((str(c) for c in df.columns if df[c].dtype == object
                        and len({type(v) for v in df[c] if v is not None and v == v}) > 1), None)
            where = f"column {bad!r} mixes numbers and text" if bad else f"a column cannot be stored ({exc})"
            raise DataError(f"{fmt_of or file}: cannot write Parquet: {where}; make that column text in the input "
                            "(or write .csv)") from None
        return
    if fmt in ("csv", "tsv"):
        body = spreadsheet_safe(df, unchanged).to_csv(index=False, sep="\t" if fmt == "tsv" else ",", lineterminator="\n")
    else:
        body = df.to_json(orient="records", lines=fmt == "jsonl", force_ascii=False)
        body += "\n" if fmt == "json" or (body and not body.endswith("\n")) else ""
    data = body.encode("utf-8")
    # mtime=0: the same table gives the same bytes (deterministic outputs).
    with open(file, "wb") as fh:
        fh.write(gzip.compress(data, mtime=0) if gz else data)


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` atomically as CSV, TSV, Parquet, JSONL or JSON (by extension, ``.gz`` too); returns the path."""
    path = Path(path)
    _format_of(path)
    with atomic_write(path, "wb") as fh:
        dump_table(df, fh.name, path)
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


def sniff_extension(raw: bytes) -> str:
    """The table extension ``raw`` (data read from standard input) looks like.

    ``{`` first: JSONL; ``[``: a JSON array; a header with tabs and no commas: TSV; else CSV.
    """
    text = raw.lstrip(b"\xef\xbb\xbf \t\r\n")[:4096]
    if text.startswith(b"{"):
        return ".jsonl"
    if text.startswith(b"["):
        return ".json"
    header = text.split(b"\n", 1)[0]
    return ".tsv" if b"\t" in header and b"," not in header else ".csv"
