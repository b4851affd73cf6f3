"""``selector serve DATA``: run a Label Studio ML backend (pre-annotation, refit on every annotation)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

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
    port: int = typer.Option(9090, "--port", min=1, max=65535, help="Port (Label Studio's ML backend URL is http://HOST:PORT)."),
    token: Optional[str] = typer.Option(None, "--token", envvar="SELECTOR_SERVE_TOKEN", help="Require this token in "
                                        "every request's Authorization header (Bearer TOKEN, or basic auth with TOKEN "
                                        "as the password, as Label Studio's 'Use basic auth' sends); set it whenever "
                                        "--host is not 127.0.0.1 [env SELECTOR_SERVE_TOKEN]."),
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
    if token is not None and not token.strip():
        raise ConfigError("--token is empty; give a token, or leave the option out")
    _check_port_free(host, port)
    config = opts.config()
    info(f"embedding {data} and fitting the classifier ...", opts.quiet)
    state = BackendState(data, config, cache_dir=cache_dir_for(data, config))
    state.port = port
    n = int(state.training_labels()[0].size)
    info(f"ready: {state.pool.n} rows, {n} labeled, model {state.model_version}; "
         f"Label Studio ML backend URL http://{host}:{port} (Ctrl-C stops)", opts.quiet)
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(f"warning: serving on {host} without --token: anyone who can reach it can send labels", err=True)
    uvicorn.run(make_app(state, record_dir=record, token=token), host=host, port=port,
                log_level="warning" if opts.quiet else "info")


def _check_port_free(host: str, port: int) -> None:
    """Refuse, before the model loads, a port that cannot be bound (in use, privileged, bad host)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: not an address this machine can bind ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); "
                              "choose another port, or stop what is using it") from None
