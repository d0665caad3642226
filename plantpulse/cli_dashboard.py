"""The `plantpulse dashboard` command: serve the planners' web page until Ctrl-C."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def dashboard(
    host: Annotated[
        str | None,
        typer.Option(
            help="Address to bind (default: dashboard.host, 127.0.0.1). Any address other "
            "than loopback needs dashboard.token."
        ),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            min=0, max=65535, help="TCP port (default: dashboard.port, 8080); 0 picks a free one."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", help="TOML settings file (default: $PLANTPULSE_CONFIG, if set)."),
    ] = None,
) -> None:
    """Serve the dashboard: machine health, RUL trends and the live schedule, read-only."""
    # Imported here because plantpulse.cli imports this module to mount the command.
    from plantpulse.cli import _announce_kafka, _fail, _setup
    from plantpulse.dashboard import DashboardError, DashboardServer

    settings = _setup(config)
    options = settings.dashboard.model_copy(
        update={
            name: value for name, value in {"host": host, "port": port}.items() if value is not None
        }
    )
    _announce_kafka(settings)
    try:
        server = DashboardServer(
            options,
            settings.kafka,
            risk_threshold_cycles=settings.scheduler.risk_threshold_cycles,
        )
    except DashboardError as error:
        raise _fail(str(error), code=2) from error

    address = server.url if options.token is None else f"{server.url}?token=<dashboard.token>"
    typer.echo(f"dashboard on {address} (Ctrl-C stops it)")
    server.run()
