"""``selector strategies``: the registered query strategies."""

from __future__ import annotations

import typer

from selector.cli.app import app, handle_errors
from selector.strategies import available_strategies


@app.command("strategies")
@handle_errors
def strategies_command() -> None:
    """List the query strategies with a one-line description each."""
    items = available_strategies()
    width = max(len(n) for n in items)
    for name, desc in items.items():
        typer.echo(f"{name.ljust(width)}  {desc}")
