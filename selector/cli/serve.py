"""``selector serve DATA``: run a Label Studio ML backend (pre-annotation, refit on every annotation)."""

from __future__ import annotations

from pathlib import Path

import typer

from selector.cli.app import app, handle_errors, info
from selector.cli.options import DATA_READING, Shared, accepts_example, no_stdin, shared_options
from selector.config import cache_dir_for
from selector.errors import ConfigError


@app.command("serve")
@handle_errors
@accepts_example()
@shared_options("config_file", "text_col", "label_col", "id_col", "model", "device", "batch_size", "backend",
                "cache_dir", "quiet", *DATA_READING)
def serve_command(
    data: Path = typer.Argument(..., help="The data file whose rows the Label Studio tasks are (never modified)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; 127.0.0.1 keeps it on this machine."),
    port: int = typer.Option(9090, "--port", help="Port (Label Studio's ML backend URL is http://HOST:PORT)."),
    record: Path = typer.Option(None, "--record", help="Write every request Label Studio sends, and the answer, "
                                "as JSON files in this folder (debugging)."),
    opts: Shared = None,
) -> None:
    """Serve predictions to Label Studio and refit on every annotation (label-studio-ml protocol).

    Connect it in Label Studio (project Settings > Model > Connect model, URL http://127.0.0.1:9090).
    Labels Label Studio sends are kept in .selector/<DATA>.serve-labels.jsonl (merge them with
    `selector merge DATA that-file`); each refit is a round in DATA's ledger.
    """
    no_stdin(data, "serve")
    try:
        import uvicorn

        from selector.loop.serve import BackendState, make_app
    except ImportError as exc:
        raise ConfigError(f"selector serve needs FastAPI and uvicorn ({exc.name} is missing); "
                          "pip install 'selector[serve]'") from None
    config = opts.config()
    info(f"embedding {data} and fitting the classifier ...", opts.quiet)
    state = BackendState(data, config, cache_dir=cache_dir_for(data, config))
    n = int(state.training_labels()[0].size)
    info(f"ready: {state.pool.n} rows, {n} labeled, model {state.model_version}; "
         f"Label Studio ML backend URL http://{host}:{port} (Ctrl-C stops)", opts.quiet)
    uvicorn.run(make_app(state, record_dir=record), host=host, port=port, log_level="warning" if opts.quiet else "info")
