"""The ``selector`` command line: one thin module per command, registered on one typer app.

Each command module parses its options, builds a plan of its inputs and outputs
(:func:`selector.outputs.OutputPlan`), calls the library, and reports; no logic beyond that.
"""

from selector.cli import (  # noqa: F401  each module registers its command on ``app``
    adjudicate,
    agreement,
    card,
    consensus,
    export,
    gold,
    ingest,
    merge,
    review,
    select,
    serve,
    simulate,
    status,
    strategies,
    suspects,
    unsure,
    validate,
)
from selector.cli.app import app, main

__all__ = ["app", "main"]


def __getattr__(name: str):
    """``click_command``: the typer app as a click command, for the generated command reference
    (``docs/reference/cli.md``, mkdocs-click); built on first use so the console script does not pay for it."""
    if name == "click_command":
        import typer.main

        return typer.main.get_command(app)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
