"""Plan, then commit: the inputs and outputs of one command, checked before any work, written together.

Every command that writes files goes through an :class:`OutputPlan`:

1. **Plan** (:meth:`OutputPlan.check`, before anything expensive): every input and output path is
   resolved; an output that is an input, or another output (the same path, a symbolic link to it
   or a hard link of it), is refused; output folders must be writable (probed with a real temp
   file, so read-only mounts are caught even for root); a path that is a folder is refused; stale
   temp files of dead runs are removed from the output folders.
2. **Commit** (:meth:`OutputPlan.commit`): each output is written to a temp file beside its target;
   only after the last one succeeded are they all renamed into place, then the ``after`` step runs
   (the ledger append). On any failure the temps are removed and nothing new is visible. An output
   named ``-`` is rendered in memory and written to standard output last.

Writers take the temp path to fill: :func:`table`, :func:`json_file`, :func:`text_file` and
:func:`bytes_file` build them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from selector.errors import ConfigError, DataError, SelectorError
from selector.io import (
    STDIO,
    TEMP_SUFFIX,
    append_line,
    atomic_write,
    check_table_path,
    drop_torn_line,
    dump_table,
    pid_alive,
    remove_stale_temps,
    temp_path_for,
)

__all__ = ["OutputPlan", "Writer", "table", "json_file", "text_file", "bytes_file", "same_file",
           "check_writable_folder", "os_error", "recover_commits", "write_journal"]

#: Fills the temp file at the given path.
Writer = Callable[[Path], None]


def table(df: pd.DataFrame, fmt_of: str | os.PathLike, *, unchanged: pd.DataFrame | None = None) -> Writer:
    """A writer of ``df`` in the format of ``fmt_of``'s extension (CSV, Parquet or JSONL).

    ``unchanged``: the table as read raw; its cells are written back untouched (see
    :func:`selector.io.spreadsheet_safe`)."""
    return lambda tmp: dump_table(df, tmp, fmt_of, unchanged=unchanged)


def json_file(obj: Any) -> Writer:
    """A writer of ``obj`` as indented UTF-8 JSON."""
    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=2, default=str, ensure_ascii=False)
            fh.write("\n")
    return write


def text_file(text: str) -> Writer:
    """A writer of ``text`` as UTF-8."""
    return lambda tmp: tmp.write_text(text, encoding="utf-8")


def bytes_file(data: bytes) -> Writer:
    """A writer of raw bytes."""
    return lambda tmp: tmp.write_bytes(data)


def _render(write: Writer) -> bytes:
    """What ``write`` puts in a file, as bytes (for standard output)."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder) / "out"
        write(tmp)
        return tmp.read_bytes()


def same_file(a: Path, b: Path) -> bool:
    """True when ``a`` and ``b`` name one file: equal resolved paths, or one inode (hard link)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def os_error(path: Path, exc: OSError, action: str = "write") -> SelectorError:
    """A one-line user error for an OSError on ``path``."""
    why = exc.strerror or str(exc)
    hint = {errno.ENOSPC: "free some disk space", errno.EDQUOT: "free some disk space",
            errno.EROFS: "choose a folder on a writable disk"}.get(exc.errno, "choose a writable location")
    return DataError(f"cannot {action} {path}: {why}; {hint}")


def check_writable_folder(folder: Path, what: str) -> None:
    """Refuse ``folder`` unless it is (or can be created as) a folder we can write into.

    An existing folder is probed by creating and removing a temp file (permission bits alone say
    nothing for root, and nothing about read-only mounts); a missing one needs a writable ancestor.
    """
    probe_at = folder
    while not probe_at.exists():
        if probe_at.parent == probe_at:
            break
        probe_at = probe_at.parent
    if not probe_at.is_dir():
        raise ConfigError(f"{what}: {probe_at} is a file, not a folder; choose another path")
    if probe_at != folder and not os.access(probe_at, os.W_OK | os.X_OK):
        raise ConfigError(f"{what}: cannot create folder {folder} ({probe_at} is not writable); choose a writable location")
    probe = temp_path_for(probe_at / "probe")
    try:
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{what}: folder {probe_at} is not writable ({exc.strerror}); "
                          "choose a writable location") from None


@dataclass
class _Output:
    key: str
    path: Path
    what: str

    @property
    def stdout(self) -> bool:
        """``-``: written to standard output once every file output is in place."""
        return str(self.path) == STDIO


JOURNAL_GLOB = ".selector-commit.*.json"


def write_journal(folder: Path, renames: list[tuple[Path, Path]], backups: list[Path],
                  append: tuple[Path, str] | None) -> Path:
    """Write (atomically, fsynced: :func:`~selector.io.atomic_write`) the record of a commit about to rename ``renames`` (temp, target)
    and then append ``append`` = (file, line); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f".selector-commit.{os.getpid()}.{uuid.uuid4().hex[:12]}.json"
    body = {"pid": os.getpid(), "renames": [[str(Path(t).resolve()), str(Path(g).resolve())] for t, g in renames],
            "backups": [str(Path(b).resolve()) for b in backups],
            "append": None if append is None else {"path": str(Path(append[0]).resolve()), "line": append[1]}}
    with atomic_write(path) as fh:
        json.dump(body, fh)
    return path


def recover_commits(folder: str | os.PathLike) -> list[str]:
    """Finish the commits that killed runs left unfinished in ``folder`` (their journal is still there).

    Rolls forward: every temp still waiting is renamed over its target (the renames before it
    already happened), then the journal's line is appended to the ledger unless its last line already
    is that line; leftover backups go. Each finished commit is reported as a warning.

    Returns
    -------
    list of str
        One message per commit finished.
    """
    import fcntl
    import warnings

    messages = []
    for journal in sorted(Path(folder).glob(JOURNAL_GLOB)):
        parts = journal.name.split(".")
        pid = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
        if pid is None or pid == os.getpid() or pid_alive(pid):
            continue
        try:
            body = json.loads(journal.read_text(encoding="utf-8"))
            renames = [(Path(t), Path(g)) for t, g in body["renames"]]
            if body.get("append") is not None and not (isinstance(body["append"], dict) and isinstance(
                    body["append"].get("path"), str) and isinstance(body["append"].get("line"), str)):
                raise TypeError("append")
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(f"{journal}: an interrupted commit's journal cannot be read; check the outputs it "
                            "names by hand, then delete it") from None
        done = 0
        for tmp, target in renames:
            # Only our own temp files, beside their targets: a journal never moves anything else.
            ours = (tmp.parent == target.parent and tmp.name.startswith(f".{target.name}.")
                    and tmp.name.endswith(TEMP_SUFFIX))
            if ours and tmp.exists():
                os.replace(tmp, target)
                done += 1
        appended = False
        append = body.get("append")
        if append and not str(append.get("path", "")).endswith(".rounds.jsonl"):
            append = None  # only a round ledger is ever appended to by a journal
        if append:
            ledger, line = Path(append["path"]), append["line"]
            fd = os.open(ledger, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                drop_torn_line(fd, ledger)  # the killed append's torn line, if any
                raw = ledger.read_bytes()
                present = {x.strip() for x in raw.decode("utf-8", errors="replace").splitlines()[-200:]}
                missing = "".join(x for x in line.splitlines(keepends=True) if x.strip() and x.strip() not in present)
                if missing:
                    append_line(fd, missing.encode("utf-8"), ledger)
                    appended = True
            finally:
                os.close(fd)
        for backup in body.get("backups") or []:
            Path(backup).unlink(missing_ok=True)
        journal.unlink()
        message = (f"finished a commit that process {pid} left unfinished when it was stopped: "
                   f"{done} of {len(renames)} output(s) put in place"
                   + (f", its line appended to {append['path']}" if appended else ""))
        warnings.warn(message, stacklevel=2)
        messages.append(message)
    return messages


#: Files of a loop's state (``.selector/<data>.<kind>``) that no command output may replace.
_LOOP_STATE_SUFFIXES = (".rounds.jsonl", ".serve-labels.jsonl", ".skipped.jsonl")


def _refuse_loop_state(path: Path, what: str) -> None:
    """The round ledger and the serve labels beside a data file are never an output (a table written
    over the ledger would lose every round record)."""
    resolved = Path(os.path.realpath(path))
    if resolved.parent.name == ".selector" and resolved.name.endswith(_LOOP_STATE_SUFFIXES):
        raise ConfigError(f"{what} {path}: that is the labeling loop's own record ({resolved.name}), never an "
                          "output; write the output somewhere else")


@dataclass
class OutputPlan:
    """The files one command reads and writes.

    Attributes
    ----------
    inputs : list of (what, Path)
        Files the command reads (never written).
    outputs : dict of key -> _Output
        Files the command writes, by key.
    folders : list of (what, Path)
        Folders the command writes into besides its outputs (cache, ledger folder).
    """

    inputs: list = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    folders: list = field(default_factory=list)

    def add_input(self, path: str | os.PathLike | None, what: str) -> Path | None:
        """Register an input file (None is ignored); returns it as a Path."""
        if path is None:
            return None
        path = Path(path)
        self.inputs.append((what, path))
        return path

    def add_output(self, key: str, path: str | os.PathLike | None, what: str, *,
                   suffixes: tuple[str, ...] | None = None, table_format: bool = False) -> Path | None:
        """Register an output file under ``key`` (None is ignored); returns it as a Path.

        Parameters
        ----------
        suffixes : tuple of str, optional
            Allowed extensions (lower case, with the dot).
        table_format : bool
            The extension must be a table format (CSV, Parquet, JSONL).
        """
        if path is None:
            return None
        path = Path(path)
        if str(path) == STDIO:
            if any(o.stdout for o in self.outputs.values()):
                raise ConfigError(f"{what} -: another output already goes to standard output; give a file path")
            self.outputs[key] = _Output(key, path, what)
            return path
        if path.is_dir():
            raise ConfigError(f"{what} {path} is a folder; give a file path")
        if table_format:
            try:
                check_table_path(path)
            except DataError as exc:
                raise ConfigError(f"{what} {exc}") from None
        if suffixes is not None and path.suffix.lower() not in suffixes:
            raise ConfigError(f"{what} {path}: the file name must end in {' or '.join(suffixes)}; "
                              f"name the output *{suffixes[0]}")
        if key != "ledger":  # the round's own ledger line is appended under its lock, never replaced
            _refuse_loop_state(path, what)
        if key in self.outputs:
            raise ValueError(f"output key {key!r} registered twice")
        self.outputs[key] = _Output(key, path, what)
        return path

    def add_folder(self, path: str | os.PathLike | None, what: str) -> Path | None:
        """Register a folder the command writes into (checked for writability)."""
        if path is None:
            return None
        path = Path(path)
        self.folders.append((what, path))
        return path

    def path(self, key: str) -> Path:
        return self.outputs[key].path

    def check(self) -> None:
        """Refuse collisions, folders, unwritable locations; clear stale temps of dead runs.

        Nothing else is touched: the writability probe is a temp file created and removed at once.

        Raises
        ------
        ConfigError
            One line naming the flag, the path and what to do.
        """
        outs = [o for o in self.outputs.values() if not o.stdout]
        for out in outs:
            for what, src in self.inputs:
                if same_file(out.path, src):
                    raise ConfigError(f"{out.what} {out.path} is an input file ({what} {src}); "
                                      "choose another path (inputs are never modified)")
        for i, a in enumerate(outs):
            for b in outs[i + 1:]:
                if same_file(a.path, b.path):
                    raise ConfigError(f"{a.what} {a.path} and {b.what} {b.path} are the same file; "
                                      "give each output its own path")
        for out in outs:
            if out.path.is_dir():
                raise ConfigError(f"{out.what} {out.path} is a folder; give a file path")
            check_writable_folder(out.path.parent, f"{out.what} {out.path}")
        for what, folder in self.folders:
            if folder.exists() and not folder.is_dir():
                raise ConfigError(f"{what} {folder} is a file, not a folder; choose another path")
            check_writable_folder(folder, f"{what} {folder}")
        for folder in sorted({out.path.parent for out in outs if out.path.parent.is_dir()}):
            # Unfinished commits of killed runs first: their temps are what finishing them renames.
            recover_commits(folder)
            remove_stale_temps(folder)

    def commit(self, writers: dict[str, Writer], *, after: Callable[[], Any] | None = None,
               after_target: Path | None = None, after_line: str | None = None) -> dict[str, Path]:
        """Write every output to a temp file, then rename them all into place, then run ``after``.

        Between the first rename and the end of ``after``, a commit journal
        (``.selector-commit.<pid>.<id>.json`` in the folder of ``after_target``, else of the first
        output) lists every temp -> target and, with ``after_line``, the line ``after`` appends to
        ``after_target``. A process killed in between leaves it behind; the next plan that writes into
        that folder finishes the commit (:func:`recover_commits`), so the outputs and the ledger always
        describe one run.

        Parameters
        ----------
        writers : dict of key -> Writer
            One per output to write now (keys registered with :meth:`add_output`).
        after : callable, optional
            Runs once every output is in place (e.g. the ledger append); if it fails, the outputs
            of this commit are taken back.
        after_target : Path, optional
            The file ``after`` writes, named in the error message when it fails.
        after_line : str, optional
            The exact text ``after`` appends to ``after_target`` (a ledger line), so an interrupted
            commit can be finished without the process that began it.

        Returns
        -------
        dict of key -> Path
            The files written.

        Raises
        ------
        SelectorError
            A write failed (disk full, permission, ...): no output of this commit is visible.
        """
        to_stdout = {k: w for k, w in writers.items() if self.outputs[k].stdout}
        writers = {k: w for k, w in writers.items() if k not in to_stdout}
        temps: dict[str, Path] = {}
        backups: dict[str, Path] = {}
        renamed: list[str] = []
        journal: Path | None = None
        current: Path | None = None
        ok = False
        try:
            # Standard output is filled first (into memory) and sent last, after the files are in place.
            streamed = {k: _render(w) for k, w in to_stdout.items()}
            for key, write in writers.items():
                target = current = self.outputs[key].path
                target.parent.mkdir(parents=True, exist_ok=True)
                temps[key] = temp_path_for(target)
                write(temps[key])
                with open(temps[key], "rb+") as fh:
                    os.fsync(fh.fileno())
            for key in temps:
                target = current = self.outputs[key].path
                if target.exists():
                    # Keep the old file to restore if a later step fails: a hard link costs nothing;
                    # where the filesystem has none, a copy.
                    backups[key] = temp_path_for(target)
                    try:
                        os.link(target, backups[key])
                    except OSError:
                        shutil.copy2(target, backups[key])
            if len(temps) > 1 or after is not None:
                journal = write_journal(
                    Path(after_target).parent if after_target is not None else next(iter(
                        self.outputs[k].path for k in temps)).parent,
                    [(temps[k], self.outputs[k].path) for k in temps], list(backups.values()),
                    (after_target, after_line) if after_target is not None and after_line is not None else None)
            for key, tmp in temps.items():
                current = self.outputs[key].path
                os.replace(tmp, current)
                renamed.append(key)
            current = after_target
            if after is not None:
                after()
            ok = True
        except OSError as exc:
            raise os_error(current or Path(exc.filename or "."), exc) from None
        finally:
            if not ok:
                for key in reversed(renamed):
                    target = self.outputs[key].path
                    if key in backups:
                        os.replace(backups.pop(key), target)
                    elif target.exists():
                        target.unlink()
            for tmp in [*temps.values(), *backups.values()]:
                if tmp.exists():
                    tmp.unlink()
            # Last: the commit is whole (or wholly taken back) only once its journal is gone.
            if journal is not None:
                journal.unlink(missing_ok=True)
        out = sys.stdout.buffer if hasattr(sys.stdout, "buffer") else None
        for key, body in streamed.items():
            if out is not None:
                out.write(body)
                out.flush()
            else:
                sys.stdout.write(body.decode("utf-8"))
        return {key: self.outputs[key].path for key in [*writers, *to_stdout]}
