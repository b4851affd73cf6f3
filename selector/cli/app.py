"""The ``selector`` command line (typer). Commands stay thin: parse, call the API, write, report.

User errors (:class:`SelectorError`) print one line on stderr and exit 1; usage errors exit 2.
Warnings print as one ``warning:`` line each on stderr.
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
        def show(message, category, filename, lineno, file=None, line=None):
            typer.echo(f"warning: {message}", err=True)

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
    app()

