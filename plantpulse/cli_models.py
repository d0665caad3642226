"""The work behind `plantpulse train` and `plantpulse evaluate` for each kind of dataset.

Torch and the models package are imported inside the functions, so that
`plantpulse --help` stays fast.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from models import LoadedModel, Registry
    from models.plant import PlantDescription


def train_cmapss_model(
    data_dir: Path,
    registry: Registry,
    parent: LoadedModel | None,
    seed: int,
    device: str,
    epochs: int | None,
    max_engines: int | None,
    window: int | None,
    promote: bool,
) -> None:
    """Train, or adapt ``parent``, on C-MAPSS FD001, register, and print the test metrics."""
    from models import TrainConfig, evaluate_cmapss_test, train_cmapss
    from models.adaptation import adapt_cmapss

    train_config = TrainConfig(seed=seed, device=device)
    if epochs is not None:
        train_config = dataclasses.replace(train_config, epochs=epochs)
    if max_engines is not None:
        train_config = dataclasses.replace(train_config, max_engines=max_engines)
    if window is not None:
        if parent is not None and window != parent.config.window:
            raise _fail(
                f"invalid --window {window}: {parent.version} reads {parent.config.window}-cycle "
                "windows, and an adapted model keeps the window of the model it starts from. "
                f"Drop --window or pass --window {parent.config.window}."
            )
        train_config = dataclasses.replace(train_config, window=window)
    try:
        if parent is None:
            trained = train_cmapss(data_dir, train_config, progress=True)
        else:
            trained = adapt_cmapss(parent, data_dir, train_config, progress=True)
    except (FileNotFoundError, ValueError) as error:
        raise _fail(str(error)) from error

    version = registry.register(trained)
    if promote:
        registry.promote(version)
    metrics = evaluate_cmapss_test(trained, data_dir)
    adapted = f", adapted from {parent.version}" if parent is not None else ""
    champion = " as champion" if promote else ""
    typer.echo(f"registered {version} in {registry.root}{champion}{adapted}")
    typer.echo(json.dumps(metrics, indent=2))


def train_tabular_model(
    plant: PlantDescription,
    data_dir: Path,
    registry: Registry,
    parent: LoadedModel | None,
    seed: int,
    device: str,
    epochs: int | None,
    max_operations: int | None,
    window: int | None,
) -> None:
    """Train, or adapt ``parent``, on the plant's csv dataset, register, print the test table."""
    from models.tabular import TabularDataError
    from models.tabular_training import TabularTrainConfig, train_tabular

    options: dict[str, Any] = {"seed": seed, "device": device, "max_operations": max_operations}
    if epochs is not None:
        options["epochs"] = epochs
    if window is not None:
        options["window"] = window
    try:
        trained = train_tabular(plant, data_dir, TabularTrainConfig(**options), True, parent)
    except (FileNotFoundError, TabularDataError, ValueError) as error:
        raise _fail(str(error)) from error

    version = registry.register(trained)
    adapted = f", adapted from {parent.version}" if parent is not None else ""
    typer.echo(
        f"registered {version} in {registry.root}{adapted}; not promoted, because the "
        "predictor serves only RUL models"
    )
    typer.echo(f"model {version} on the test blocks of plant {plant.plant_id!r}:")
    typer.echo(failure_table(trained.metrics, trained.config.failure_modes, prefix="test_"))


def evaluate_tabular_model(
    loaded: LoadedModel, plant: PlantDescription, data_dir: Path, output_dir: Path, device: str
) -> None:
    """Score a failure-mode model on its recorded test blocks; print and write the table."""
    from models.tabular import TabularDataError, load_tabular
    from models.tabular_training import evaluate_tabular_test

    if plant.dataset is None or plant.dataset.format != "csv":
        raise _fail(
            f"model {loaded.version} predicts failure modes from a tabular dataset, but plant "
            f"{plant.plant_id!r} has none; pass --plant with the plant description it was "
            "trained on"
        )
    try:
        metrics = evaluate_tabular_test(loaded, load_tabular(plant, data_dir), device=device)
    except (FileNotFoundError, TabularDataError, ValueError) as error:
        raise _fail(str(error)) from error

    typer.echo(
        f"model {loaded.version} on the {int(metrics['windows'])} test windows of plant "
        f"{plant.plant_id!r} (thresholds chosen on validation windows)"
    )
    typer.echo(failure_table(metrics, loaded.config.failure_modes))
    output_dir.mkdir(parents=True, exist_ok=True)
    report = output_dir / f"evaluation-{loaded.version}.json"
    report.write_text(
        json.dumps(
            {"version": loaded.version, "plant": plant.plant_id, "metrics": metrics}, indent=2
        )
    )
    typer.echo(f"report written to {report}")


def failure_table(metrics: dict[str, float], labels: Sequence[str], prefix: str = "") -> str:
    """Format precision, recall, F1, support and threshold per failure label as a table."""
    width = max(len("label"), *(len(label) for label in labels))
    lines = [
        f"{'label':<{width}} {'precision':>9} {'recall':>9} {'F1':>9} {'support':>8} "
        f"{'threshold':>9}"
    ]
    for label in labels:
        key = f"{prefix}{label}"
        lines.append(
            f"{label:<{width}} {metrics[key + '_precision']:>9.3f} "
            f"{metrics[key + '_recall']:>9.3f} {metrics[key + '_f1']:>9.3f} "
            f"{metrics[key + '_support']:>8.0f} {metrics[key + '_threshold']:>9.3f}"
        )
    return "\n".join(lines)


def _fail(message: str) -> typer.Exit:
    # Imported here because plantpulse.cli imports this module inside its commands.
    from plantpulse.cli import _fail as fail_cli

    return fail_cli(message)
