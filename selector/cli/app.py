"""The ``selector`` command line (typer). Commands stay thin: parse, call the API, write, report.

User errors (:class:`SelectorError`) print one line on stderr and exit 1; usage errors exit 2.
Warnings print as one ``warning:`` line each on stderr, each distinct message once per command.
"""

from __future__ import annotations

import functools
import shlex
import sys
import warnings
from typing import Callable

import typer

from selector.errors import SelectorError

app = typer.Typer(
    name="selector",
    help="Active-learning sample selector: choose what to label next, find what was labeled wrong.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Help texts say "[default: ...]" literally; rich markup would swallow the brackets.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib import metadata

        typer.echo(f"selector {metadata.version('selector')}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """Active-learning sample selector: choose what to label next, find what was labeled wrong."""


def fail(message: str) -> None:
    """Print one error line on stderr and exit 1."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def info(message: str, quiet: bool = False) -> None:
    """One progress/summary line on stderr (silent with --quiet)."""
    if not quiet:
        typer.echo(message, err=True)


def handle_errors(func: Callable) -> Callable:
    """Turn SelectorError into one stderr line + exit 1, and warnings into one-line notices."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        seen: set[str] = set()

        def show(message, category, filename, lineno, file=None, line=None):
            # Once per distinct message: a warning raised inside a loop (one per CV fold, per
            # simulated round) is one line, not twelve.
            text = str(message)
            if text not in seen:
                seen.add(text)
                typer.echo(f"warning: {text}", err=True)

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            # Third-party deprecation chatter is not the user's business.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=FutureWarning)
            warnings.showwarning = show
            try:
                return func(*args, **kwargs)
            except SelectorError as exc:
                fail(str(exc))

    return wrapper


def command_line() -> str:
    return "selector " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def main() -> None:
    """Console-script entry point."""
    import signal

    # selector/__init__ caught Ctrl-C during the imports; from here on it is Python's KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    app()

