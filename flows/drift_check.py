"""The `drift_check` flow: has the plant moved away from what the champion learned?

Two checks over a recent window of history. Channel drift compares each sensor
channel's recent readings with the champion's training reference (PSI, with the KS
statistic reported beside it). Error drift scores the champion's stored predictions on
machines that failed in the window, where the true remaining useful life is known, and
compares their RMSE with the champion's validation RMSE. Past a threshold the flow
starts `retrain`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from flows.drift import (
    ChannelDrift,
    ReferenceProfile,
    build_reference,
    channel_drift,
    load_reference,
    rmse_ratio,
    save_reference,
)
from flows.reports import markdown_table
from flows.retrain import (
    IO_RETRIES,
    IO_RETRY_DELAYS_S,
    RetrainOptions,
    RetrainResult,
    retrain,
)
from flows.settings import FlowSettings
from ingest.events import SensorReading
from ingest.history import FAILURE, MACHINE_STATE, MAINTENANCE, Point, open_history
from models import RUL_CAP, Registry, load_cmapss
from models.lineage import sha256_file


class DriftOptions(BaseModel):
    """The recent window and the thresholds past which the champion counts as stale."""

    recent_hours: float = Field(default=24.0, gt=0, description="length of the recent window")
    stop: datetime | None = Field(default=None, description="end of the window (default: now)")
    psi_threshold: float = Field(default=0.25, gt=0, description="PSI a channel must exceed")
    baseline_factor: float = Field(
        default=2.0, ge=0, description="and this multiple of the channel's training baseline PSI"
    )
    ks_threshold: float | None = Field(
        default=None, gt=0, lt=1, description="also flag a channel whose KS statistic exceeds this"
    )
    min_readings: int = Field(default=200, ge=1, description="fewer readings skip channel drift")
    error_ratio_threshold: float = Field(
        default=1.5, gt=0, description="recent RMSE over validation RMSE that counts as drift"
    )
    min_labelled_states: int = Field(
        default=20, ge=1, description="fewer failure-labelled predictions skip error drift"
    )
    retrain_on_drift: bool = Field(default=True, description="start retrain when drift is found")
    retrain: RetrainOptions = Field(default_factory=RetrainOptions)


class ChannelDriftRow(BaseModel):
    channel: str
    psi: float
    psi_limit: float
    ks: float
    recent_mean: float
    reference_mean: float
    readings: int
    drifted: bool


class DriftResult(BaseModel):
    """Measurements and decision of one drift check."""

    champion: str
    start: datetime
    stop: datetime
    readings: int
    channels: list[ChannelDriftRow]
    prediction_rmse: float | None
    labelled_states: int
    reference_rmse: float | None
    error_ratio: float | None
    drifted: bool
    reasons: list[str]
    retrain: RetrainResult | None = None


@dataclass(frozen=True)
class RecentHistory:
    readings: list[SensorReading]
    states: list[Point]
    failures: dict[str, list[datetime]]
    maintenance: dict[str, list[datetime]]


@dataclass(frozen=True)
class ErrorDrift:
    rmse: float | None
    states: int
    ratio: float | None


@flow(name="drift-check", description="Compare recent readings and errors with the champion's.")
def drift_check(settings: FlowSettings, options: DriftOptions | None = None) -> DriftResult:
    options = options or DriftOptions()
    stop = options.stop or datetime.now(UTC)
    start = stop - timedelta(hours=options.recent_hours)

    version, profile = load_champion_reference(settings.registry_dir)
    recent = read_recent_history(settings, start, stop)
    channels = measure_channel_drift(profile, recent, options)
    errors = measure_error_drift(recent, version, profile.validation_rmse)
    drifted, reasons = decide_drift(channels, errors, len(recent.readings), options)

    result = DriftResult(
        champion=version,
        start=start,
        stop=stop,
        readings=len(recent.readings),
        channels=[_row(channel) for channel in channels],
        prediction_rmse=errors.rmse,
        labelled_states=errors.states,
        reference_rmse=profile.validation_rmse,
        error_ratio=errors.ratio,
        drifted=drifted,
        reasons=reasons,
    )
    publish_drift_report(result)
    if drifted and options.retrain_on_drift:
        result.retrain = retrain(settings, options.retrain)
    return result


@task(retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS_S, cache_policy=NO_CACHE)
def load_champion_reference(registry_dir: Path) -> tuple[str, ReferenceProfile]:
    """Load the champion's drift reference, building it from its lineage if none was saved."""
    registry = Registry(registry_dir)
    champion = registry.load_champion()
    profile = load_reference(registry_dir, champion.version)
    if profile is None:
        profile = _reference_from_lineage(champion.version, registry_dir)
        save_reference(registry_dir, profile)
        get_run_logger().info(
            "built the drift reference of %s from its training files", champion.version
        )
    return champion.version, profile


@task(retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS_S, cache_policy=NO_CACHE)
def read_recent_history(settings: FlowSettings, start: datetime, stop: datetime) -> RecentHistory:
    with open_history(settings.history) as store:
        readings = store.readings(start, stop)
        states = store.read(MACHINE_STATE, start, stop)
        failures = _times_by_machine(store.read(FAILURE, start, stop))
        maintenance = _times_by_machine(store.read(MAINTENANCE, start, stop))
    get_run_logger().info(
        "%d readings, %d machine states and %d failures between %s and %s",
        len(readings),
        len(states),
        sum(len(times) for times in failures.values()),
        start.isoformat(),
        stop.isoformat(),
    )
    return RecentHistory(readings, states, failures, maintenance)


@task(cache_policy=NO_CACHE)
def measure_channel_drift(
    profile: ReferenceProfile, recent: RecentHistory, options: DriftOptions
) -> list[ChannelDrift]:
    values: dict[str, list[float]] = defaultdict(list)
    for reading in recent.readings:
        for name, value in reading.channels.items():
            if name in profile.channels:
                values[name].append(value)
    arrays = {name: np.array(found) for name, found in values.items()}
    return channel_drift(profile, arrays, options.psi_threshold, options.baseline_factor)


@task(cache_policy=NO_CACHE)
def measure_error_drift(
    recent: RecentHistory, version: str, reference_rmse: float | None
) -> ErrorDrift:
    errors = failure_labelled_errors(recent, version)
    if not errors:
        return ErrorDrift(rmse=None, states=0, ratio=None)
    rmse = float(np.sqrt(np.mean(np.square(errors))))
    return ErrorDrift(rmse=rmse, states=len(errors), ratio=rmse_ratio(rmse, reference_rmse))


@task(cache_policy=NO_CACHE)
def decide_drift(
    channels: Sequence[ChannelDrift], errors: ErrorDrift, readings: int, options: DriftOptions
) -> tuple[bool, list[str]]:
    """Return whether the champion is stale, and every reason found (or why it is not)."""
    reasons: list[str] = []
    drifted = False
    if readings < options.min_readings:
        reasons.append(
            f"channel drift not checked: {readings} readings, fewer than {options.min_readings}"
        )
    else:
        shifted = [c for c in channels if c.drifted]
        if shifted:
            drifted = True
            reasons.append(
                "PSI above its limit on "
                + ", ".join(f"{c.channel} ({c.psi:.2f} > {c.psi_limit:.2f})" for c in shifted)
            )
        if options.ks_threshold is not None:
            far = [c for c in channels if c.ks > options.ks_threshold]
            if far:
                drifted = True
                reasons.append(
                    f"KS statistic above {options.ks_threshold} on "
                    + ", ".join(f"{c.channel} ({c.ks:.2f})" for c in far)
                )

    if errors.states < options.min_labelled_states or errors.ratio is None:
        reasons.append(
            f"error drift not checked: {errors.states} predictions before reported failures, "
            f"at least {options.min_labelled_states} and a validation RMSE needed"
        )
    elif errors.ratio > options.error_ratio_threshold:
        drifted = True
        reasons.append(
            f"RUL RMSE {errors.rmse:.2f} cycles on {errors.states} predictions before "
            f"reported failures is {errors.ratio:.2f} x the validation RMSE "
            f"(limit {options.error_ratio_threshold})"
        )

    if not drifted:
        reasons.append("no drift past the thresholds")
    get_run_logger().info("drift check: %s", "; ".join(reasons))
    return drifted, reasons


@task(cache_policy=NO_CACHE)
def publish_drift_report(result: DriftResult) -> None:
    rows = [row.model_dump() for row in result.channels]
    verdict = "drift found" if result.drifted else "no drift"
    error_line = (
        "Error drift: not measured."
        if result.prediction_rmse is None
        else f"Error drift: RMSE {result.prediction_rmse:.2f} cycles on "
        f"{result.labelled_states} predictions before reported failures, validation RMSE "
        f"{result.reference_rmse if result.reference_rmse is not None else 'unknown'}."
    )
    markdown = "\n\n".join(
        [
            f"# Drift check of {result.champion}: {verdict}",
            "**Decision:** "
            + ("retrain requested" if result.drifted else "keep the champion")
            + ". **Reasons:** "
            + "; ".join(result.reasons),
            f"Window: {result.start.isoformat()} to {result.stop.isoformat()}, "
            f"{result.readings} readings.",
            error_line,
            markdown_table(rows),
        ]
    )
    create_markdown_artifact(markdown, key="drift-report", description=verdict)
    create_table_artifact(rows, key="drift-channels", description=verdict)


def failure_labelled_errors(
    recent: RecentHistory, version: str, rul_cap: float = RUL_CAP
) -> list[float]:
    """Errors of `version`'s RUL p50 before each reported failure, true RUL capped at `rul_cap`.

    A failure's cycle is the highest `seq` the machine reported up to the failure. A
    prediction at `seq` s then had a true RUL of that cycle minus s. Predictions before
    the machine's previous failure or maintenance belong to an earlier run and are skipped.
    """
    seqs: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    for reading in recent.readings:
        seqs[reading.machine_id].append((reading.ts, reading.seq))
    states: dict[str, list[Point]] = defaultdict(list)
    for state in recent.states:
        if state.fields.get("model_version") == version:
            states[state.tags.get("machine_id", "")].append(state)

    errors: list[float] = []
    for machine_id, failures in recent.failures.items():
        resets = sorted([*failures, *recent.maintenance.get(machine_id, [])])
        for failure in sorted(failures):
            earlier = [moment for moment in resets if moment < failure]
            begin = earlier[-1] if earlier else None
            in_run = [
                seq
                for ts, seq in seqs[machine_id]
                if ts <= failure and (begin is None or ts > begin)
            ]
            if not in_run:
                continue
            failure_seq = max(in_run)
            for state in states[machine_id]:
                if state.time > failure or (begin is not None and state.time <= begin):
                    continue
                true_rul = min(failure_seq - int(state.fields["seq"]), rul_cap)
                predicted = float(state.fields["rul_p50"])
                if math.isfinite(predicted):
                    errors.append(predicted - true_rul)
    return errors


def _reference_from_lineage(version: str, registry_dir: Path) -> ReferenceProfile:
    """Rebuild a reference from the C-MAPSS training file and units named in the lineage."""
    loaded = Registry(registry_dir).load(version)
    lineage = loaded.lineage
    for name, expected_sha in lineage.data_files.items():
        path = Path(name)
        if not (path.name.startswith("train_") and path.suffix == ".txt"):
            continue
        if not path.is_file() or sha256_file(path) != expected_sha:
            break
        subset = path.stem.removeprefix("train_")
        data = load_cmapss(path.parent, subset)
        units = set(lineage.train_units) | set(lineage.validation_units)
        engines = [engine for engine in data.train if engine.unit in units]
        return build_reference(
            version,
            engines,
            loaded.config.channels,
            validation_rmse=loaded.metrics.get("validation_rmse"),
        )
    raise FileNotFoundError(
        f"model version {version} has no drift reference in {registry_dir} and its training "
        "files are gone or changed; run the retrain flow to register a model with one"
    )


def _times_by_machine(points: Sequence[Point]) -> dict[str, list[datetime]]:
    times: dict[str, list[datetime]] = defaultdict(list)
    for point in points:
        times[point.tags.get("machine_id", "")].append(point.time)
    return dict(times)


def _row(channel: ChannelDrift) -> ChannelDriftRow:
    return ChannelDriftRow(
        channel=channel.channel,
        psi=round(channel.psi, 4),
        psi_limit=round(channel.psi_limit, 4),
        ks=round(channel.ks, 4),
        recent_mean=channel.recent_mean,
        reference_mean=channel.reference_mean,
        readings=channel.readings,
        drifted=channel.drifted,
    )
