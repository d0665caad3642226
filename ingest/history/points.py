"""History points: one timestamped row of one measurement, and the events they come from.

A point is identified by its measurement, its tags and its time, as a series point is in
InfluxDB. Writing a point with the same identity again replaces the earlier one, so a
replay after a crash leaves no duplicates. Every measurement below is tagged with
`machine_id` (or `plant_id` for whole-plant rows), so "same machine, time and measurement"
is one identity.

Field names of a sensor reading carry a prefix, `channel.` for sensor channels and
`context.` for production context, so that a channel and a context field may share a name.
A machine state stores its channel shares as `channel_score.` fields, and its likely
causes and recommended action as JSON text, because they are nested.
Started and completed operations are tagged with their machine and with `event`
("started" or "completed"), and their context fields carry the same `context.` prefix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ingest.events import (
    Event,
    FailureReported,
    LikelyCause,
    MachineState,
    MaintenanceDone,
    OperationCompleted,
    OperationStarted,
    RecommendedAction,
    RemainingUsefulLife,
    Schedule,
    SensorReading,
)

FieldValue = float | int | str | bool

SENSOR_READING = "sensor_reading"
MACHINE_STATE = "machine_state"
SCHEDULE = "schedule"
SCHEDULED_OPERATION = "scheduled_operation"
MAINTENANCE_WINDOW = "maintenance_window"
MAINTENANCE = "maintenance"
FAILURE = "failure"
OPERATION_EVENT = "operation_event"

MEASUREMENTS = (
    SENSOR_READING,
    MACHINE_STATE,
    SCHEDULE,
    SCHEDULED_OPERATION,
    MAINTENANCE_WINDOW,
    MAINTENANCE,
    FAILURE,
    OPERATION_EVENT,
)

CHANNEL_PREFIX = "channel."
CONTEXT_PREFIX = "context."
PROBABILITY_PREFIX = "probability."
CHANNEL_SCORE_PREFIX = "channel_score."


@dataclass(frozen=True, slots=True)
class Point:
    """One row of one measurement: identity (measurement, tags, time) plus field values."""

    measurement: str
    tags: Mapping[str, str]
    time: datetime  # timezone-aware, UTC
    fields: Mapping[str, FieldValue]

    def key(self) -> tuple[str, tuple[tuple[str, str], ...], datetime]:
        """Return the identity under which a later write replaces this point."""
        return (self.measurement, tuple(sorted(self.tags.items())), self.time)


def points_from_event(event: Event) -> list[Point]:
    """Convert one event into the points stored for it; unsupported events give none."""
    if isinstance(event, SensorReading):
        return [reading_point(event)]
    if isinstance(event, MachineState):
        return [machine_state_point(event)]
    if isinstance(event, Schedule):
        return schedule_points(event)
    if isinstance(event, MaintenanceDone | FailureReported):
        return [maintenance_point(event)]
    if isinstance(event, OperationStarted | OperationCompleted):
        return [operation_event_point(event)]
    return []


def points_from_events(events: Iterable[Event]) -> Iterator[Point]:
    for event in events:
        yield from points_from_event(event)


def reading_point(reading: SensorReading) -> Point:
    fields: dict[str, FieldValue] = {"seq": reading.seq}
    for name, value in reading.channels.items():
        fields[CHANNEL_PREFIX + name] = value
    for name, context_value in reading.context.items():
        fields[CONTEXT_PREFIX + name] = context_value
    return Point(SENSOR_READING, {"machine_id": reading.machine_id}, reading.ts, fields)


def machine_state_point(state: MachineState) -> Point:
    fields: dict[str, FieldValue] = {
        "seq": state.seq,
        "model_version": state.model_version,
        "state": state.state,
        "rul_p10": state.rul.p10,
        "rul_p50": state.rul.p50,
        "rul_p90": state.rul.p90,
        "top_channels": ",".join(state.top_channels),
    }
    for name, probability in state.state_probabilities.items():
        fields[PROBABILITY_PREFIX + name] = probability
    for channel, share in state.channel_scores.items():
        fields[CHANNEL_SCORE_PREFIX + channel] = share
    if state.likely_causes:
        fields["likely_causes"] = json.dumps(
            [cause.model_dump(mode="json") for cause in state.likely_causes]
        )
    if state.recommended_action is not None:
        fields["recommended_action"] = state.recommended_action.model_dump_json()
    return Point(MACHINE_STATE, {"machine_id": state.machine_id}, state.ts, fields)


def schedule_points(schedule: Schedule) -> list[Point]:
    """One summary point per schedule, plus one point per operation and maintenance window.

    Operations and windows are tagged with the schedule id, so a later schedule never
    replaces rows of an earlier one. Replaying the same schedule replaces its own rows.
    """
    summary: dict[str, FieldValue] = {
        "schedule_id": schedule.schedule_id,
        "plan_version": schedule.plan_version,
        "model_versions": ",".join(schedule.model_versions),
        "solver_status": schedule.solver_status,
        "solve_seconds": schedule.solve_seconds,
        "operations": len(schedule.operations),
        "makespan_minutes": schedule.kpis.makespan_minutes,
        "weighted_tardiness_minutes": schedule.kpis.weighted_tardiness_minutes,
        "maintenance_count": schedule.kpis.maintenance_count,
        "maintenance_cost": schedule.kpis.maintenance_cost,
    }
    for name in ("objective", "bound", "gap"):
        value = getattr(schedule, name)
        if value is not None:
            summary[name] = value
    points = [Point(SCHEDULE, {"plant_id": schedule.plant_id}, schedule.created, summary)]

    for operation in schedule.operations:
        tags = {
            "plant_id": schedule.plant_id,
            "schedule_id": schedule.schedule_id,
            "machine_id": operation.machine_id,
        }
        fields: dict[str, FieldValue] = {
            "job_id": operation.job_id,
            "operation": operation.operation,
            "duration_minutes": _minutes(operation.end - operation.start),
        }
        points.append(Point(SCHEDULED_OPERATION, tags, operation.start, fields))

    for window in schedule.maintenance_windows:
        tags = {
            "plant_id": schedule.plant_id,
            "schedule_id": schedule.schedule_id,
            "machine_id": window.machine_id,
        }
        fields = {"duration_minutes": _minutes(window.end - window.start), "reason": window.reason}
        points.append(Point(MAINTENANCE_WINDOW, tags, window.start, fields))
    return points


def maintenance_point(event: MaintenanceDone | FailureReported) -> Point:
    measurement = FAILURE if isinstance(event, FailureReported) else MAINTENANCE
    fields: dict[str, FieldValue] = {
        "kind": event.kind,
        "duration_minutes": event.duration_minutes,
    }
    if event.component is not None:
        fields["component"] = event.component
    return Point(measurement, {"machine_id": event.machine_id}, event.ts, fields)


def operation_event_point(event: OperationStarted | OperationCompleted) -> Point:
    kind = "started" if isinstance(event, OperationStarted) else "completed"
    fields: dict[str, FieldValue] = {"job_id": event.job_id, "operation": event.operation}
    for name, context_value in event.context.items():
        fields[CONTEXT_PREFIX + name] = context_value
    return Point(OPERATION_EVENT, {"machine_id": event.machine_id, "event": kind}, event.ts, fields)


def reading_from_point(point: Point) -> SensorReading:
    """Rebuild a `SensorReading` from a stored point; raises ValueError if it is not one."""
    if point.measurement != SENSOR_READING:
        raise ValueError(f"point of measurement {point.measurement!r} is not a sensor reading")
    channels: dict[str, float] = {}
    context: dict[str, FieldValue] = {}
    for name, value in point.fields.items():
        if name.startswith(CHANNEL_PREFIX):
            channels[name[len(CHANNEL_PREFIX) :]] = float(value)
        elif name.startswith(CONTEXT_PREFIX):
            context[name[len(CONTEXT_PREFIX) :]] = value
    return SensorReading(
        machine_id=point.tags["machine_id"],
        ts=point.time,
        seq=int(point.fields["seq"]),
        channels=channels,
        context=context,
    )


def machine_state_from_point(point: Point) -> MachineState:
    """Rebuild a `MachineState` from a stored point; raises ValueError if it is not one.

    Points stored before channel shares, likely causes and actions were kept give a state
    without them.
    """
    if point.measurement != MACHINE_STATE:
        raise ValueError(f"point of measurement {point.measurement!r} is not a machine state")
    fields = point.fields
    probabilities: dict[str, float] = {}
    channel_scores: dict[str, float] = {}
    for name, value in fields.items():
        if name.startswith(PROBABILITY_PREFIX):
            probabilities[name[len(PROBABILITY_PREFIX) :]] = float(value)
        elif name.startswith(CHANNEL_SCORE_PREFIX):
            channel_scores[name[len(CHANNEL_SCORE_PREFIX) :]] = float(value)

    top_channels = str(fields.get("top_channels", ""))
    causes = json.loads(str(fields["likely_causes"])) if "likely_causes" in fields else []
    action = fields.get("recommended_action")
    return MachineState.model_validate(
        {
            "machine_id": point.tags["machine_id"],
            "ts": point.time,
            "seq": int(fields["seq"]),
            "model_version": str(fields["model_version"]),
            "state": fields["state"],
            "state_probabilities": probabilities,
            "rul": RemainingUsefulLife(
                p10=float(fields["rul_p10"]),
                p50=float(fields["rul_p50"]),
                p90=float(fields["rul_p90"]),
            ),
            "top_channels": top_channels.split(",") if top_channels else [],
            "channel_scores": channel_scores,
            "likely_causes": [LikelyCause.model_validate(cause) for cause in causes],
            "recommended_action": (
                RecommendedAction.model_validate_json(str(action)) if action is not None else None
            ),
        }
    )


def utc(moment: datetime) -> datetime:
    """Return `moment` in UTC; raises ValueError for a naive datetime."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()}; give a timezone, e.g. UTC")
    return moment.astimezone(UTC)


def _minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60.0
