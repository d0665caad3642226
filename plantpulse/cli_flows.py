"""The `plantpulse flows` commands: run the retrain or drift-check flow now, or serve both.

Prefect and the flows are imported inside the commands, so that `plantpulse --help`
stays fast.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from plantpulse.settings import Settings

if TYPE_CHECKING:
    from flows import FlowSettings

flows_app = typer.Typer(
    help="Prefect flows that keep the model fresh: retrain and drift check.",
    no_args_is_help=True,
)
run_app = typer.Typer(help="Run one flow now, in this process.", no_args_is_help=True)
flows_app.add_typer(run_app, name="run")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $PLANTPULSE_CONFIG, if set)."),
]
AnnounceOption = Annotated[
    bool,
    typer.Option(help="Announce a promotion on plantpulse.models at kafka.bootstrap_servers."),
]


def _setup(config: Path | None) -> Settings:
    # Imported here because plantpulse.cli imports this module to mount the commands.
    from plantpulse.cli import _setup as setup_cli

    # Prefect's own log lines stay visible: they report the flow and task runs.
    return setup_cli(config, quiet_loggers=("kafka", "httpx"))


def _flow_settings(settings: Settings, data_dir: Path | None, announce: bool) -> FlowSettings:
    from flows import FlowSettings
    from ingest.datasets import resolve_data_dir

    return FlowSettings(
        registry_dir=settings.registry_dir,
        history=settings.history,
        data_dir=resolve_data_dir(data_dir or settings.data_dir),
        kafka=settings.kafka if announce else None,
    )


def _fail(message: str) -> typer.Exit:
    from plantpulse.cli import _fail as fail_cli

    return fail_cli(message)


@run_app.command("retrain")
def run_retrain(
    config: ConfigOption = None,
    source: Annotated[
        str, typer.Option(help="history: runs ended by reported failures; dataset: C-MAPSS FD001.")
    ] = "history",
    data_dir: Annotated[
        Path | None, typer.Option(help="Datasets folder for --source dataset.")
    ] = None,
    lookback_days: Annotated[
        float, typer.Option(min=0.001, help="History window ending now, in days.")
    ] = 90.0,
    min_improvement: Annotated[
        float,
        typer.Option(min=0.0, max=0.99, help="Relative RMSE decrease needed for promotion."),
    ] = 0.02,
    holdout_fraction: Annotated[
        float, typer.Option(min=0.01, max=0.99, help="Share of machines held out for scoring.")
    ] = 0.2,
    epochs: Annotated[int | None, typer.Option(min=1, help="Maximum training epochs.")] = None,
    max_minutes: Annotated[
        float | None, typer.Option(min=0.01, help="Training time budget in minutes.")
    ] = None,
    max_machines: Annotated[
        int | None, typer.Option(min=2, help="Use only the first N machines (quick runs).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed of the split and the training.")] = 0,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    announce: AnnounceOption = True,
) -> None:
    """Train a challenger and promote it only if it beats the champion on held-out machines."""
    from flows import RetrainOptions, retrain
    from models import TrainConfig

    if source not in ("history", "dataset"):
        raise _fail(f"invalid --source {source!r}; use history or dataset")
    settings = _setup(config)
    train = TrainConfig(seed=seed, device=device)
    if epochs is not None:
        train = dataclasses.replace(train, epochs=epochs)
    if max_minutes is not None:
        train = dataclasses.replace(train, max_minutes=max_minutes)
    selected: Literal["history", "dataset"] = "history" if source == "history" else "dataset"
    options = RetrainOptions(
        source=selected,
        lookback_days=lookback_days,
        min_improvement=min_improvement,
        holdout_fraction=holdout_fraction,
        max_machines=max_machines,
        announce=announce,
        train=train,
    )
    try:
        result = retrain(_flow_settings(settings, data_dir, announce), options)
    except (FileNotFoundError, ValueError) as error:
        raise _fail(str(error)) from error
    verdict = "promoted" if result.promoted else "not promoted"
    typer.echo(f"{result.challenger_version} {verdict}: {result.reason}")
    typer.echo(f"champion now: {result.champion_after or 'none'}")


@run_app.command("drift-check")
def run_drift_check(
    config: ConfigOption = None,
    recent_hours: Annotated[
        float, typer.Option(min=0.001, help="Length of the recent window ending now, in hours.")
    ] = 24.0,
    psi_threshold: Annotated[
        float, typer.Option(min=0.0001, help="PSI a channel must exceed to count as drifted.")
    ] = 0.25,
    error_ratio_threshold: Annotated[
        float,
        typer.Option(min=0.0001, help="Recent over validation RMSE that counts as error drift."),
    ] = 1.5,
    retrain_on_drift: Annotated[
        bool, typer.Option("--retrain/--no-retrain", help="Start retrain when drift is found.")
    ] = True,
    announce: AnnounceOption = True,
) -> None:
    """Compare recent readings and prediction errors with the champion's training reference."""
    from flows import DriftOptions, RetrainOptions, drift_check

    settings = _setup(config)
    options = DriftOptions(
        recent_hours=recent_hours,
        psi_threshold=psi_threshold,
        error_ratio_threshold=error_ratio_threshold,
        retrain_on_drift=retrain_on_drift,
        retrain=RetrainOptions(announce=announce),
    )
    try:
        result = drift_check(_flow_settings(settings, None, announce), options)
    except (FileNotFoundError, ValueError) as error:
        raise _fail(str(error)) from error
    typer.echo(
        f"{'drift found' if result.drifted else 'no drift'} for {result.champion} over "
        f"{result.readings} readings: {'; '.join(result.reasons)}"
    )
    if result.retrain is not None:
        verdict = "promoted" if result.retrain.promoted else "not promoted"
        typer.echo(f"retrain: {result.retrain.challenger_version} {verdict}")


@flows_app.command("serve")
def serve(
    config: ConfigOption = None,
    retrain_cron: Annotated[
        str, typer.Option(help="Cron schedule of retrain, in UTC (default: Sundays 03:00).")
    ] = "0 3 * * 0",
    drift_check_hours: Annotated[
        float, typer.Option(min=0.01, help="Hours between drift checks.")
    ] = 6.0,
    announce: AnnounceOption = True,
) -> None:
    """Serve both flows on their schedules until Ctrl-C; needs a Prefect API to register with."""
    from flows import build_deployments, serve_deployments

    settings = _setup(config)
    deployments = build_deployments(
        _flow_settings(settings, None, announce),
        retrain_cron=retrain_cron,
        drift_check_interval=timedelta(hours=drift_check_hours),
    )
    typer.echo(
        f"serving {', '.join(d.name for d in deployments)} from "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}; Ctrl-C stops"
    )
    serve_deployments(deployments)
