"""The end-to-end demo on real data: broker, model, replay, predictor, scheduler, report."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.datasets import dataset_path
from ingest.events import MachineState, Schedule
from ingest.history import HistoryConfig
from ingest.replay import (
    cmapss_machine_id,
    cmapss_readings,
    cmapss_units,
    publish_readings,
    read_cmapss_rows,
)
from ingest.topics import MACHINE_STATE, PLAN, SCHEDULE
from models import Registry, TrainConfig, train_cmapss
from plantpulse.dashboard import DashboardServer
from plantpulse.plan_replay import read_plan_events
from plantpulse.services import (
    build_predictor,
    build_pseudonymiser,
    build_scheduler,
    kafka_for,
    run_until_stopped,
)
from plantpulse.settings import Settings, load_plant_description
from scheduler import check_schedule, read_plan, write_plan_json
from scheduler.service import SchedulerService

logger = logging.getLogger(__name__)

# Replayed readings start here, so that two runs of the demo produce the same events.
DEMO_ORIGIN = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class DemoOptions:
    machines: int | None = None
    plan_file: Path | None = None
    train_epochs: int | None = None
    train_max_engines: int | None = None
    due_factor: float = 1.5
    seed: int = 0
    dashboard: bool = False


@dataclass
class MachineResult:
    machine_id: str
    predicted_p10: float
    predicted_p50: float
    predicted_p90: float
    state: str
    true_rul: float
    top_channels: list[str]
    likely_cause: str = ""  # "component/failure-mode" of the most likely cause
    recommended_action: str = ""


@dataclass
class DemoReport:
    model_version: str
    machines: list[MachineResult]
    rmse: float
    rmse_capped: float
    schedule: Schedule
    violations: list[str]
    readings: int
    machine_states: int
    dead_letters: int
    seconds: dict[str, float] = field(default_factory=dict)


def _ensure_champion(settings: Settings, options: DemoOptions, data_dir: Path) -> str:
    registry = Registry(settings.registry_dir)
    champion = registry.champion()
    if champion is not None:
        logger.info(
            "registry %s has champion %s; training skipped", settings.registry_dir, champion
        )
        return champion

    logger.info(
        "registry %s has no champion; training a first model on FD001", settings.registry_dir
    )
    # The demo replays FD001 test engines, 30 of them shorter than the default 100-cycle
    # window, and the predictor waits for a full window, so the demo's model reads
    # 30-cycle windows.
    config = TrainConfig(seed=options.seed, device=settings.predictor.device, window=30)
    if options.train_epochs is not None:
        config = dataclasses.replace(config, epochs=options.train_epochs)
    if options.train_max_engines is not None:
        config = dataclasses.replace(config, max_engines=options.train_max_engines)
    trained = train_cmapss(data_dir, config, progress=True)
    version = registry.register(trained)
    registry.promote(version)
    return version


def _replay(
    kafka: KafkaConfig, data_dir: Path, options: DemoOptions, settings: Settings
) -> tuple[int, list[int]]:
    rows = read_cmapss_rows(dataset_path("cmapss", "test_FD001.txt", data_dir))
    units = cmapss_units(rows)
    if options.machines is not None:
        units = units[: options.machines]
    cycle_minutes = 60.0 / settings.scheduler.cycles_per_hour
    producer = EventProducer(kafka)
    try:
        readings = publish_readings(
            producer, cmapss_readings(rows, DEMO_ORIGIN, units, cycle_minutes)
        )

        replayed = rows[np.isin(rows[:, 0], units)]
        last_cycle = int(replayed[:, 1].max())
        plan_origin = DEMO_ORIGIN + timedelta(minutes=(last_cycle - 1) * cycle_minutes)
        plan_path = options.plan_file or dataset_path("brandimarte", "mk01.fjs", data_dir)
        targets = [cmapss_machine_id(unit) for unit in units]
        jobs = read_plan_events(
            plan_path,
            targets,
            plan_origin,
            settings.scheduler.time_unit_minutes,
            options.due_factor,
        )
        for job in jobs:
            producer.send(PLAN, job.job_id, job)
        producer.flush()
        logger.info(
            "released %d jobs of %s onto %d of the %d replayed machines",
            len(jobs),
            plan_path.name,
            len({o.machine_id for job in jobs for op in job.operations for o in op.options}),
            len(targets),
        )
    finally:
        producer.close()
    return readings, units


def _true_rul(data_dir: Path) -> np.ndarray:
    return np.loadtxt(dataset_path("cmapss", "RUL_FD001.txt", data_dir), ndmin=1)


HISTORY_MARKER = ".plantpulse-demo-history"


def _fresh_history_dir(output_dir: Path) -> Path:
    """Return an empty history folder for this run inside `output_dir`.

    The embedded broker keeps nothing between runs, so the demo's history must not either,
    because the predictor would otherwise warm its windows from an earlier run's
    readings. Only a folder that an earlier demo created (it has a marker file) is removed.
    """
    folder = output_dir / "history"
    if folder.exists():
        if not (folder / HISTORY_MARKER).is_file():
            raise FileExistsError(
                f"{folder} exists and was not created by the demo; move it or choose another --output"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / HISTORY_MARKER).touch()
    return folder


def run_demo(
    settings: Settings,
    options: DemoOptions,
    data_dir: Path,
    on_report: Callable[[DemoReport], None] | None = None,
    on_dashboard: Callable[[str], None] | None = None,
) -> DemoReport:
    """Run the whole pipeline once on real data and return what it produced.

    `on_report` runs while the broker (and the dashboard, when asked for) still serve,
    so a caller can keep both up after the results are in.
    """
    seconds: dict[str, float] = {}
    started = time.monotonic()
    plan_path = options.plan_file or dataset_path("brandimarte", "mk01.fjs", data_dir)
    read_plan(plan_path)  # a broken plan file fails here, before any training or replay
    # A broken plant description or pseudonym key fails here too.
    build_pseudonymiser(settings, load_plant_description(settings))
    version = _ensure_champion(settings, options, data_dir)
    seconds["model"] = time.monotonic() - started

    settings.output_dir.mkdir(parents=True, exist_ok=True)
    settings = settings.model_copy(
        update={
            "history": HistoryConfig(
                backend="parquet", path=_fresh_history_dir(settings.output_dir)
            )
        }
    )
    with kafka_for(settings) as kafka, ExitStack() as stack:
        ensure_topics(kafka)
        if options.dashboard:
            server = DashboardServer(
                settings.dashboard,
                kafka,
                risk_threshold_cycles=settings.scheduler.risk_threshold_cycles,
            )
            server.start()
            stack.callback(server.stop)
            if on_dashboard is not None:
                on_dashboard(server.url)

        mark = time.monotonic()
        readings, units = _replay(kafka, data_dir, options, settings)
        seconds["replay"] = time.monotonic() - mark

        mark = time.monotonic()
        predictor = build_predictor(settings, kafka)
        run_until_stopped(predictor, threading.Event(), idle_stop_s=1.0)
        seconds["predictor"] = time.monotonic() - mark
        dead_letters = sum(predictor.dead_letters.counts.values())

        mark = time.monotonic()
        scheduler = build_scheduler(settings, kafka)
        service = scheduler.handler
        assert isinstance(service, SchedulerService)
        run_until_stopped(scheduler, threading.Event(), idle_stop_s=1.0)
        if service.last_plan is None or service.last_solved is None:
            raise RuntimeError("the scheduler solved no plan")
        violations = check_schedule(service.last_plan, service.last_solved)
        write_plan_json(service.last_plan, settings.output_dir / "plan.json")
        seconds["scheduler"] = time.monotonic() - mark

        states = [
            MachineState.model_validate_json(r.value) for r in read_topic(kafka, MACHINE_STATE)
        ]
        schedules = [Schedule.model_validate_json(r.value) for r in read_topic(kafka, SCHEDULE)]
        if not schedules:
            raise RuntimeError("the scheduler published no schedule")

        seconds["total"] = time.monotonic() - started
        report = _build_report(
            version,
            units,
            states,
            schedules[-1],
            violations,
            readings,
            dead_letters,
            seconds,
            data_dir,
        )
        if on_report is not None:
            on_report(report)
    return report


def _build_report(
    version: str,
    units: list[int],
    states: list[MachineState],
    schedule: Schedule,
    violations: list[str],
    readings: int,
    dead_letters: int,
    seconds: dict[str, float],
    data_dir: Path,
) -> DemoReport:
    latest: dict[str, MachineState] = {}
    for state in states:
        if state.machine_id not in latest or state.seq > latest[state.machine_id].seq:
            latest[state.machine_id] = state

    true_rul = _true_rul(data_dir)
    results = []
    for unit in units:
        machine_id = cmapss_machine_id(unit)
        last = latest.get(machine_id)
        if last is None:
            logger.warning(
                "no prediction for %s (fewer readings than the model's window)", machine_id
            )
            continue
        results.append(
            MachineResult(
                machine_id=machine_id,
                predicted_p10=last.rul.p10,
                predicted_p50=last.rul.p50,
                predicted_p90=last.rul.p90,
                state=last.state,
                true_rul=float(true_rul[unit - 1]),
                top_channels=last.top_channels,
                likely_cause=(
                    f"{last.likely_causes[0].component}/{last.likely_causes[0].failure_mode}"
                    if last.likely_causes
                    else ""
                ),
                recommended_action=last.recommended_action.name if last.recommended_action else "",
            )
        )
    errors = np.array([r.predicted_p50 - r.true_rul for r in results])
    capped = np.array([r.predicted_p50 - min(r.true_rul, 125.0) for r in results])
    return DemoReport(
        model_version=version,
        machines=results,
        rmse=float(math.sqrt(np.mean(errors**2))) if len(results) else float("nan"),
        rmse_capped=float(math.sqrt(np.mean(capped**2))) if len(results) else float("nan"),
        schedule=schedule,
        violations=violations,
        readings=readings,
        machine_states=len(states),
        dead_letters=dead_letters,
        seconds=seconds,
    )


def format_report(report: DemoReport) -> str:
    """Render the report as the plain-text tables the demo prints."""
    lines = [
        f"model {report.model_version}: {report.readings} readings in, "
        f"{report.machine_states} machine states out, {report.dead_letters} dead letters",
        "",
        f"{'machine':<12} {'p10':>6} {'p50':>6} {'p90':>6} {'true':>6}  {'state':<10} "
        f"{'top channels':<16} likely cause -> recommended action",
    ]
    for r in report.machines:
        cause = f"{r.likely_cause} -> {r.recommended_action}" if r.likely_cause else "none"
        lines.append(
            f"{r.machine_id:<12} {r.predicted_p10:6.1f} {r.predicted_p50:6.1f} {r.predicted_p90:6.1f} "
            f"{r.true_rul:6.0f}  {r.state:<10} {', '.join(r.top_channels):<16} {cause}"
        )
    lines += [
        "",
        f"RMSE of RUL p50 over {len(report.machines)} machines: {report.rmse:.2f} cycles "
        f"(true RUL capped at 125: {report.rmse_capped:.2f})",
        "",
    ]
    schedule = report.schedule
    kpis = schedule.kpis
    gap = "n/a" if schedule.gap is None else f"{schedule.gap:.2%}"
    lines += [
        f"schedule {schedule.schedule_id} for {schedule.plant_id} (plan {schedule.plan_version}), "
        f"created {schedule.created.isoformat()}",
        f"  solver status {schedule.solver_status}, objective {schedule.objective}, bound {schedule.bound}, "
        f"gap {gap}, {schedule.solve_seconds:.1f} s",
        f"  makespan {kpis.makespan_minutes / 60:.1f} h, weighted tardiness {kpis.weighted_tardiness_minutes / 60:.1f} h, "
        f"maintenance windows {kpis.maintenance_count}, maintenance cost {kpis.maintenance_cost:.0f}",
        "  independent feasibility check: "
        + ("passed" if not report.violations else "; ".join(report.violations)),
        "  maintenance windows:",
    ]
    for window in schedule.maintenance_windows:
        lines.append(
            f"    {window.machine_id:<12} {window.start:%Y-%m-%d %H:%M} - {window.end:%H:%M}  {window.reason}"
        )
    if not schedule.maintenance_windows:
        lines.append("    none")
    lines.append("  operations by machine:")
    by_machine: dict[str, list[str]] = {}
    for op in sorted(schedule.operations, key=lambda o: (o.machine_id, o.start)):
        by_machine.setdefault(op.machine_id, []).append(
            f"{op.job_id}/{op.operation} {op.start:%d %H:%M}-{op.end:%H:%M}"
        )
    for machine, ops in by_machine.items():
        lines.append(f"    {machine:<12} " + "; ".join(ops))
    lines.append("")
    lines.append(
        "time: " + ", ".join(f"{name} {value:.1f} s" for name, value in report.seconds.items())
    )
    return "\n".join(lines)


def write_report(report: DemoReport, output_dir: Path) -> list[Path]:
    """Write the predictions (CSV), the schedule (JSON) and a summary (JSON)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    predictions = output_dir / "predictions.csv"
    with predictions.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "machine_id",
                "rul_p10",
                "rul_p50",
                "rul_p90",
                "true_rul",
                "state",
                "top_channels",
                "likely_cause",
                "recommended_action",
            ]
        )
        for r in report.machines:
            writer.writerow(
                [
                    r.machine_id,
                    f"{r.predicted_p10:.2f}",
                    f"{r.predicted_p50:.2f}",
                    f"{r.predicted_p90:.2f}",
                    f"{r.true_rul:.0f}",
                    r.state,
                    " ".join(r.top_channels),
                    r.likely_cause,
                    r.recommended_action,
                ]
            )
    schedule = output_dir / "schedule.json"
    schedule.write_text(report.schedule.model_dump_json(indent=2))
    summary = output_dir / "summary.json"
    summary.write_text(
        json.dumps(
            {
                "model_version": report.model_version,
                "machines": len(report.machines),
                "rmse": report.rmse,
                "rmse_true_rul_capped_125": report.rmse_capped,
                "readings": report.readings,
                "machine_states": report.machine_states,
                "dead_letters": report.dead_letters,
                "schedule_id": report.schedule.schedule_id,
                "solver_status": report.schedule.solver_status,
                "gap": report.schedule.gap,
                "violations": report.violations,
                "kpis": report.schedule.kpis.model_dump(),
                "seconds": report.seconds,
            },
            indent=2,
        )
    )
    text = output_dir / "report.txt"
    text.write_text(format_report(report) + "\n")
    return [predictions, schedule, summary, text]
