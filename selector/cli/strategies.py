"""``selector strategies``: the registered query strategies."""

from __future__ import annotations

import typer

from selector.cli.app import app, handle_errors
from selector.strategies import available_strategies
from selector.tables import text_table


@app.command("strategies")
@handle_errors
def strategies_command() -> None:
    """List the query strategies with a one-line description each."""
    for line in text_table(["strategy", "what it does"], list(available_strategies().items())):
        typer.echo(line)
