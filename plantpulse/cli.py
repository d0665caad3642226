"""The `plantpulse` command line."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from plantpulse.cli_dashboard import dashboard as dashboard_command
from plantpulse.cli_flows import flows_app
from plantpulse.settings import Settings, load_settings

app = typer.Typer(
    name="plantpulse",
    help="Streaming predictive maintenance: sensor readings to RUL predictions to maintenance-aware schedules.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
replay_app = typer.Typer(help="Replay recorded data into Kafka.", no_args_is_help=True)
data_app = typer.Typer(help="Find and download the public datasets.", no_args_is_help=True)
app.add_typer(replay_app, name="replay")
app.add_typer(data_app, name="data")
app.add_typer(flows_app, name="flows")

logger = logging.getLogger("plantpulse")

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", help="TOML settings file (default: $PLANTPULSE_CONFIG, if set)."),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Datasets folder (default: $PLANTPULSE_DATA_DIR, ../shared/data, or the user cache).",
    ),
]


def _setup(
    config: Path | None,
    quiet_loggers: tuple[str, ...] = ("kafka", "prefect", "httpx"),
    **overrides: object,
) -> Settings:
    """Load settings, or exit 2 with the reason, and configure logging.

    `quiet_loggers` are raised to WARNING unless the log level is stricter already.
    """
    try:
        settings = load_settings(config, **{k: v for k, v in overrides.items() if v is not None})
    except (FileNotFoundError, ValueError) as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from error
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in quiet_loggers:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    return settings


def _data_dir(settings: Settings, explicit: Path | None) -> Path:
    from ingest.datasets import resolve_data_dir

    return resolve_data_dir(explicit or settings.data_dir)


def _fetch_demo_data_if_default(folder: Path, explicit: Path | None) -> None:
    """Download the demo's datasets into the user cache when they are missing there.

    Only the default folder is filled: a folder the user named (option, setting or
    PLANTPULSE_DATA_DIR) is theirs, and a missing file there stays an error.
    """
    from ingest.datasets import DatasetError, default_cache_dir, fetch_datasets, verify_data_dir

    needed = ["cmapss", "brandimarte"]
    if explicit is not None or os.environ.get("PLANTPULSE_DATA_DIR", "").strip():
        return
    if folder != default_cache_dir() or not verify_data_dir(folder, needed):
        return
    typer.echo(
        f"datasets {', '.join(needed)} missing in {folder}; downloading them from their public "
        "sources and checking their SHA-256"
    )
    try:
        fetch_datasets(folder, needed)
    except (DatasetError, OSError, ValueError) as error:
        raise _fail(
            f"downloading the demo's datasets failed: {error}. Without network access, copy the "
            "data folder here or set PLANTPULSE_DATA_DIR to one (see the README's Data section)."
        ) from error


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@contextmanager
def _kafka_errors(bootstrap_servers: str) -> Iterator[None]:
    """Turn an unreachable or failing broker into one clear error line and exit code 1."""
    from kafka.errors import KafkaError

    try:
        yield
    except KafkaError as error:
        raise _fail(
            f"Kafka at {bootstrap_servers} failed: {error}. Is a broker running there? Start one "
            "with `plantpulse broker` or set PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS."
        ) from error


@app.command()
def demo(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    machines: Annotated[
        int | None,
        typer.Option(min=1, help="Replay only the first N test engines (default: all 100)."),
    ] = None,
    plan: Annotated[
        Path | None,
        typer.Option(help="Plan file to release as jobs (default: Brandimarte mk01.fjs)."),
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Folder for the report files.")] = None,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder.")] = None,
    epochs: Annotated[
        int | None, typer.Option(min=1, help="Training epochs when a first model must be trained.")
    ] = None,
    train_engines: Annotated[
        int | None, typer.Option(min=2, help="Train on only N training engines (quick runs).")
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option(min=0.1, help="Solver time limit in seconds.")
    ] = None,
    dashboard: Annotated[
        bool,
        typer.Option(
            "--dashboard/--no-dashboard",
            help="Serve the dashboard during the demo and keep it, and the broker, up until Ctrl-C.",
        ),
    ] = False,
) -> None:
    """Run the whole pipeline on real data with an embedded broker, and print the results."""
    from ingest.privacy import PseudonymKeyError
    from models.plant import PlantDescriptionError
    from plantpulse.demo import DemoOptions, DemoReport, format_report, run_demo, write_report
    from plantpulse.services import stop_on_signals
    from scheduler.plan import PlanError
    from scheduler.readers import PlanFileError

    settings = _setup(config, registry_dir=registry, output_dir=output)
    if time_limit is not None:
        settings.scheduler.time_limit_s = time_limit
    options = DemoOptions(
        machines=machines,
        plan_file=plan,
        train_epochs=epochs,
        train_max_engines=train_engines,
        dashboard=dashboard,
    )

    def show(report: DemoReport) -> None:
        typer.echo(format_report(report))
        paths = write_report(report, settings.output_dir)
        written = [path.name for path in paths] + [
            name
            for name in ("plan.json", "history/")
            if (settings.output_dir / name.rstrip("/")).exists()
        ]
        typer.echo(f"\nreport written to {settings.output_dir.resolve()}: {', '.join(written)}")
        history = settings.output_dir / "history"
        if history.exists():
            typer.echo(
                f"explain a machine's state: plantpulse explain MACHINE --history {history.resolve()}"
            )
        if dashboard:
            typer.echo("the dashboard and the broker keep running; Ctrl-C stops them")
            with stop_on_signals() as stop:
                stop.wait()

    folder = _data_dir(settings, data_dir)
    _fetch_demo_data_if_default(folder, explicit=data_dir or settings.data_dir)
    try:
        run_demo(
            settings,
            options,
            folder,
            on_report=show,
            on_dashboard=lambda url: typer.echo(f"dashboard on {url}"),
        )
    except (PlantDescriptionError, PseudonymKeyError) as error:
        raise _fail(str(error), code=2) from error
    except (FileNotFoundError, FileExistsError, PlanFileError, PlanError) as error:
        raise _fail(str(error)) from error


@app.command()
def broker(
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1; 0 picks a free one.")] = 9092,
    partitions: Annotated[
        int, typer.Option(min=1, help="Partitions of each PlantPulse topic.")
    ] = 4,
) -> None:
    """Start the embedded Tansu broker on 127.0.0.1, create the topics, and wait for Ctrl-C."""
    from ingest.clients import ensure_topics
    from plantpulse.broker import BrokerError, EmbeddedBroker
    from plantpulse.services import stop_on_signals

    settings = _setup(None)
    try:
        with EmbeddedBroker(port=port) as embedded, stop_on_signals() as stop:
            kafka = settings.kafka.model_copy(
                update={"bootstrap_servers": embedded.bootstrap_servers, "partitions": partitions}
            )
            ensure_topics(kafka)
            typer.echo(
                f"broker ready on {embedded.bootstrap_servers}; memory only, nothing survives a restart"
            )
            typer.echo(f"export PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS={embedded.bootstrap_servers}")
            while not stop.wait(0.5):
                if not embedded.running:
                    raise _fail("the broker process exited")
    except BrokerError as error:
        raise _fail(str(error)) from error


def _announce_kafka(settings: Settings) -> None:
    """Tell the user which broker a service connects to when they did not choose one."""
    if "PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS" not in os.environ:
        typer.echo(
            f"using Kafka at {settings.kafka.bootstrap_servers}; start one with `plantpulse broker` "
            "or set PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS",
            err=True,
        )


@replay_app.command("cmapss")
def replay_cmapss(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    file: Annotated[
        str, typer.Option(help="C-MAPSS file name inside the cmapss folder.")
    ] = "test_FD001.txt",
    machines: Annotated[int | None, typer.Option(min=1, help="Only the first N engines.")] = None,
) -> None:
    """Send C-MAPSS engines to the sensor topic, one reading per cycle, ending now."""
    import numpy as np

    from ingest.clients import EventProducer, ensure_topics
    from ingest.datasets import dataset_path
    from ingest.replay import cmapss_readings, cmapss_units, publish_readings, read_cmapss_rows

    settings = _setup(config)
    _announce_kafka(settings)
    rows = read_cmapss_rows(dataset_path("cmapss", file, _data_dir(settings, data_dir)))
    units = cmapss_units(rows)[:machines] if machines else None
    cycle_minutes = 60.0 / settings.scheduler.cycles_per_hour
    # Every engine's last cycle lands at the present, as in a plant observed up to now.
    # A later end would put readings in the future, and the predictor dead-letters those.
    selected = rows if units is None else rows[np.isin(rows[:, 0], units)]
    longest_run = timedelta(minutes=cycle_minutes * float(selected[:, 1].max()))
    start = datetime.now(UTC).replace(microsecond=0) - longest_run
    with _kafka_errors(settings.kafka.bootstrap_servers):
        ensure_topics(settings.kafka)
        producer = EventProducer(settings.kafka)
        count = publish_readings(producer, cmapss_readings(rows, start, units, cycle_minutes))
        producer.close()
    typer.echo(f"sent {count} readings")


@replay_app.command("plan")
def replay_plan(
    file: Annotated[Path, typer.Argument(help="Plan file: .fjs, JSPLIB or PlantPulse JSON.")],
    machines: Annotated[
        str,
        typer.Option(help="Comma-separated machine ids the plan's machines map onto, in order."),
    ],
    config: ConfigOption = None,
    due_factor: Annotated[
        float | None,
        typer.Option(help="Give jobs without a due date one: release + factor x work."),
    ] = 1.5,
) -> None:
    """Send a plan file's jobs to the plan topic as JobReleased events."""
    from ingest.clients import EventProducer, ensure_topics
    from ingest.topics import PLAN
    from plantpulse.plan_replay import read_plan_events
    from scheduler.plan import PlanError
    from scheduler.readers import PlanFileError

    settings = _setup(config)
    _announce_kafka(settings)
    targets = [m.strip() for m in machines.split(",") if m.strip()]
    try:
        events = read_plan_events(
            file,
            targets,
            datetime.now(UTC).replace(microsecond=0),
            settings.scheduler.time_unit_minutes,
            due_factor,
        )
    except (PlanFileError, PlanError, OSError, ValueError) as error:
        raise _fail(str(error)) from error
    with _kafka_errors(settings.kafka.bootstrap_servers):
        ensure_topics(settings.kafka)
        producer = EventProducer(settings.kafka)
        for event in events:
            producer.send(PLAN, event.job_id, event)
        producer.close()
    typer.echo(f"sent {len(events)} jobs")


PlantOption = Annotated[
    Path | None,
    typer.Option(
        "--plant",
        help="Plant description file (TOML or YAML) whose dataset to use "
        "(default: the plant setting, else C-MAPSS FD001).",
    ),
]


@app.command()
def train(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder.")] = None,
    plant: PlantOption = None,
    adapt: Annotated[
        str | None,
        typer.Option(
            "--adapt",
            metavar="FROM_VERSION",
            help="Start from this registered version, freeze its temporal encoder and train "
            "only the context encoder and heads.",
        ),
    ] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Maximum training epochs.")] = None,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    max_engines: Annotated[
        int | None, typer.Option(min=2, help="C-MAPSS: train on only the first N engines.")
    ] = None,
    max_operations: Annotated[
        int | None,
        typer.Option(min=1, help="Tabular data: use only each machine's first N operations."),
    ] = None,
    window: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Cycles per window for C-MAPSS (default 100), so the predictor's first "
            "prediction for a machine comes after that many readings. For tabular data, "
            "consecutive operations per window (default: the plant's dataset.window, else "
            "10). An adapted model keeps the window of the model it starts from.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    promote: Annotated[
        bool | None,
        typer.Option(
            help="Make the new version the champion (default: yes for RUL models; failure-mode "
            "models are never promoted, because the predictor serves RUL)."
        ),
    ] = None,
) -> None:
    """Train a fusion model on the plant's dataset (default C-MAPSS FD001) and register it."""
    from models import Registry, RegistryError
    from models.plant import PlantDescriptionError
    from plantpulse.cli_models import train_cmapss_model, train_tabular_model
    from plantpulse.settings import load_plant_description

    settings = _setup(config, registry_dir=registry, plant=plant)
    data = _data_dir(settings, data_dir)
    try:
        description = load_plant_description(settings)
    except PlantDescriptionError as error:
        raise _fail(str(error), code=2) from error
    reg = Registry(settings.registry_dir)
    try:
        parent = reg.load(adapt) if adapt is not None else None
    except RegistryError as error:
        raise _fail(f"cannot adapt: {error}") from error

    tabular = description.dataset is not None and description.dataset.format == "csv"
    if tabular and promote:
        raise _fail(
            f"plant {description.plant_id!r} has a tabular dataset, which trains a "
            "failure-mode model without RUL. The predictor serves only RUL models, so such "
            "a model cannot be the champion. Drop --promote.",
            code=2,
        )
    if tabular:
        train_tabular_model(
            description, data, reg, parent, seed, device, epochs, max_operations, window
        )
    else:
        train_cmapss_model(
            data, reg, parent, seed, device, epochs, max_engines, window, promote is not False
        )


@app.command()
def evaluate(
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
    registry: Annotated[Path | None, typer.Option(help="Model registry folder.")] = None,
    version: Annotated[
        str | None, typer.Option(help="Version to evaluate (default: the champion).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Folder for the JSON report and the PNG (default: output_dir)."),
    ] = None,
    engines: Annotated[
        str, typer.Option(help="Comma-separated test engine numbers to plot.")
    ] = "20,31,34,49,81,100",
    plant: PlantOption = None,
) -> None:
    """Score a model on its test data and write a JSON report.

    A RUL model is scored on the FD001 test engines, with a RUL plot. A failure-mode
    model is scored on the test blocks of the plant's dataset it was trained on, with
    precision, recall and F1 per failure label.
    """
    from models import (
        InferenceEngine,
        Registry,
        RegistryError,
        evaluate_cmapss_test,
        load_cmapss,
    )
    from models.plant import PlantDescriptionError
    from models.plots import plot_rul_predictions
    from plantpulse.cli_models import evaluate_tabular_model
    from plantpulse.settings import load_plant_description

    settings = _setup(config, registry_dir=registry, output_dir=output, plant=plant)
    data = _data_dir(settings, data_dir)
    try:
        models_registry = Registry(settings.registry_dir)
        loaded = (
            models_registry.load_champion() if version is None else models_registry.load(version)
        )
    except RegistryError as error:
        raise _fail(f"{error}; train one with `plantpulse train`") from error
    if not loaded.config.predicts_rul:
        try:
            description = load_plant_description(settings)
        except PlantDescriptionError as error:
            raise _fail(str(error), code=2) from error
        evaluate_tabular_model(
            loaded, description, data, settings.output_dir, settings.predictor.device
        )
        return
    engine = InferenceEngine(
        loaded,
        loaded.version,
        device=settings.predictor.device,
        precision=settings.predictor.precision,
    )

    try:
        metrics = evaluate_cmapss_test(engine, data)
    except FileNotFoundError as error:
        raise _fail(f"{error}. Run `plantpulse data fetch` or set PLANTPULSE_DATA_DIR.") from error
    typer.echo(
        f"model {engine.version} (window {engine.window}, {engine.precision}) on the "
        f"{int(metrics['engines'])} FD001 test engines (RUL capped at 125)"
    )
    typer.echo(f"{'metric':<28} {'value':>10}")
    for name, value in metrics.items():
        typer.echo(f"{name:<28} {value:>10.4f}")

    settings.output_dir.mkdir(parents=True, exist_ok=True)
    # A bfloat16 evaluation gets its own file names, so it does not replace the float32 report.
    stem = f"evaluation-{engine.version}"
    if engine.precision != "float32":
        stem += f"-{engine.precision}"
    report = settings.output_dir / f"{stem}.json"
    report.write_text(
        json.dumps(
            {
                "version": engine.version,
                "window": engine.window,
                "precision": engine.precision,
                "metrics": metrics,
            },
            indent=2,
        )
    )
    test = load_cmapss(data).test
    wanted = [int(unit) for unit in engines.split(",") if unit.strip()]
    runs = [run for run in test if run.unit in wanted]
    finals = [float(run.rul[-1]) for run in runs]
    figure = plot_rul_predictions(
        engine,
        runs,
        finals,
        settings.output_dir / f"{stem}.png",
        title=f"Predicted and true RUL, model {engine.version} ({engine.precision}), "
        "FD001 test engines",
    )
    typer.echo(f"report written to {report} and {figure}")


@app.command()
def predictor(config: ConfigOption = None) -> None:
    """Run the predictor until SIGINT or SIGTERM: readings in, machine states out."""
    from ingest.privacy import PseudonymKeyError
    from models import NoChampionError
    from models.plant import PlantDescriptionError
    from plantpulse.services import build_predictor, run_until_stopped, stop_on_signals

    settings = _setup(config)
    _announce_kafka(settings)
    with _kafka_errors(settings.kafka.bootstrap_servers):
        try:
            processor = build_predictor(settings, settings.kafka)
        except NoChampionError as error:
            raise _fail(f"{error}; train one with `plantpulse train`") from error
        except (PlantDescriptionError, PseudonymKeyError) as error:
            raise _fail(str(error), code=2) from error
        with stop_on_signals() as stop:
            run_until_stopped(processor, stop)


@app.command()
def scheduler(config: ConfigOption = None) -> None:
    """Run the scheduler until SIGINT or SIGTERM: plan and machine states in, schedules out."""
    from ingest.privacy import PseudonymKeyError
    from models.plant import PlantDescriptionError
    from plantpulse.services import build_scheduler, run_until_stopped, stop_on_signals

    settings = _setup(config)
    _announce_kafka(settings)
    with _kafka_errors(settings.kafka.bootstrap_servers):
        try:
            processor = build_scheduler(settings, settings.kafka)
        except (PlantDescriptionError, PseudonymKeyError) as error:
            raise _fail(str(error), code=2) from error
        with stop_on_signals() as stop:
            run_until_stopped(processor, stop)


@app.command()
def schedule(
    file: Annotated[Path, typer.Argument(help="Plan file: .fjs, JSPLIB or PlantPulse JSON.")],
    time_limit: Annotated[
        float | None,
        typer.Option(
            min=0.01, help="Solver time limit in seconds (default: scheduler.time_limit_s)."
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="CP-SAT search workers (default: scheduler.workers)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(help="Schedule JSON file to write (default: FILE's stem + .schedule.json)."),
    ] = None,
    gantt: Annotated[
        Path | None,
        typer.Option(help="Gantt chart PNG to write (default: the JSON path, ending .png)."),
    ] = None,
    time_unit: Annotated[
        str, typer.Option(help="Unit of the plan's times, for the chart's x axis.")
    ] = "time units",
) -> None:
    """Solve one plan file, print makespan, bound, gap and time, and write JSON and a Gantt PNG.

    The files go to the current folder unless --output or --gantt name other paths.
    """
    from scheduler.check import check_schedule
    from scheduler.gantt import write_gantt_png
    from scheduler.plan import PlanError
    from scheduler.readers import PlanFileError, read_plan
    from scheduler.solver import SolverSettings, solve

    settings = _setup(None)
    try:
        plan = read_plan(file)
    except (PlanFileError, PlanError, OSError) as error:
        raise _fail(str(error)) from error

    result = solve(
        plan,
        SolverSettings(
            time_limit_s=time_limit or settings.scheduler.time_limit_s,
            workers=workers or settings.scheduler.workers,
        ),
    )
    violations = check_schedule(plan, result)
    if violations:
        raise _fail(f"the solver returned an infeasible schedule: {'; '.join(violations[:5])}")

    bound = "n/a" if result.bound is None else f"{result.bound:g}"
    gap = "n/a" if result.gap is None else f"{result.gap:.2%}"
    typer.echo(
        f"{file.name}: {len(plan.jobs)} jobs, {len(plan.machines)} machines; "
        f"status {result.status}, makespan {result.makespan}, bound {bound}, gap {gap}, "
        f"{result.solve_seconds:.2f} s"
    )
    typer.echo(
        f"maintenance: {result.maintenance_count} windows costing {result.maintenance_cost:g}; "
        f"objective {'n/a' if result.objective is None else f'{result.objective:g}'}"
    )
    if plan.maintenance:
        crews = ", ".join(f"{skill} {size}" for skill, size in sorted(plan.crew_capacity().items()))
        typer.echo(f"crews (people per skill): {crews}")
    if result.status == "fallback":
        typer.echo("CP-SAT found no schedule in time, so this is the dispatching-rule schedule")

    output = output or Path(f"{file.stem}.schedule.json")
    gantt = gantt or output.with_name(f"{output.name.removesuffix('.json')}.png")
    try:
        output.write_text(json.dumps({"plan": plan.name, **result.to_dict()}, indent=2) + "\n")
        write_gantt_png(plan, result, gantt, time_unit=time_unit)
    except OSError as error:
        raise _fail(f"cannot write the results: {error}") from error
    typer.echo(f"schedule written to {output}")
    typer.echo(f"Gantt chart written to {gantt}")


@app.command()
def explain(
    machine: Annotated[str, typer.Argument(help="Machine id, e.g. engine-031.")],
    config: ConfigOption = None,
    history: Annotated[
        Path | None,
        typer.Option(
            help="Parquet history folder (default: history.path; the demo writes OUTPUT/history).",
        ),
    ] = None,
    plant: Annotated[
        Path | None,
        typer.Option(
            help="Plant description file, TOML or YAML (default: the plant setting, or the "
            "shipped C-MAPSS example)."
        ),
    ] = None,
) -> None:
    """Explain a machine's latest state: channels, components, failure modes and the action."""
    from ingest.history import HistoryConfig, HistoryError, open_history
    from models.knowledge import diagnose
    from models.plant import PlantDescriptionError
    from plantpulse.explain import format_explanation, latest_machine_state, missing_state_message
    from plantpulse.settings import load_plant_description

    settings = _setup(config, plant=plant)
    try:
        description = load_plant_description(settings)
    except PlantDescriptionError as error:
        raise _fail(str(error), code=2) from error
    plant_source = str(settings.plant) if settings.plant else "the shipped C-MAPSS example"

    store_config = settings.history
    if history is not None:
        store_config = HistoryConfig(backend="parquet", path=history)
    if store_config.backend == "parquet":
        assert store_config.path is not None  # Settings fills in the default folder
        history_name = f"the history at {store_config.path}"
        if not store_config.path.is_dir():
            raise _fail(
                f"no history at {store_config.path}: run `plantpulse predictor` or "
                "`plantpulse demo` first, or pass the folder they wrote with --history"
            )
    else:
        history_name = f"InfluxDB bucket {store_config.bucket!r} at {store_config.url}"

    try:
        with open_history(store_config) as store:
            state = latest_machine_state(store, machine)
    except HistoryError as error:
        raise _fail(f"reading {history_name} failed: {error}") from error
    if state is None:
        raise _fail(missing_state_message(machine, description, history_name))

    diagnosis = diagnose(state.channel_scores, description)
    typer.echo(format_explanation(state, diagnosis, description, plant_source))


@data_app.command("fetch")
def data_fetch(
    dest: Annotated[
        Path | None, typer.Option(help="Folder to download into (default: the user cache).")
    ] = None,
    dataset: Annotated[
        list[str] | None, typer.Option("--dataset", help="Only this dataset; repeat for several.")
    ] = None,
) -> None:
    """Download the public datasets, check their SHA-256 sums, and show each licence."""
    from ingest.datasets import ChecksumError, default_cache_dir, fetch_datasets

    _setup(None)
    target = dest or default_cache_dir()
    try:
        fetched = fetch_datasets(target, dataset or None)
    except (ChecksumError, OSError, ValueError) as error:
        raise _fail(str(error)) from error
    for item in fetched:
        typer.echo(f"{item.relative_path}: ok ({item.licence})")
    typer.echo(f"data in {target}; set PLANTPULSE_DATA_DIR={target} if it is not the default")


@data_app.command("where")
def data_where(data_dir: DataDirOption = None) -> None:
    """Print the datasets folder PlantPulse would use."""
    settings = _setup(None)
    folder = _data_dir(settings, data_dir)
    typer.echo(str(folder))
    if not folder.is_dir():
        typer.echo(
            "that folder does not exist yet: run `plantpulse data fetch`, or point "
            "PLANTPULSE_DATA_DIR at a folder that has the datasets",
            err=True,
        )


app.command()(dashboard_command)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
