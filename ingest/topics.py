"""Topic names and the decoder of each topic's events."""

from __future__ import annotations

from pydantic import TypeAdapter

from ingest.events import (
    MAINTENANCE_EVENT_ADAPTER,
    PLAN_EVENT_ADAPTER,
    DeadLetter,
    MachineState,
    ModelPromoted,
    Schedule,
    SensorReading,
)

SENSORS = "plantpulse.sensors"
PLAN = "plantpulse.plan"
MAINTENANCE = "plantpulse.maintenance"
MACHINE_STATE = "plantpulse.machine-state"
SCHEDULE = "plantpulse.schedule"
MODELS = "plantpulse.models"
DEAD_LETTER = "plantpulse.dead-letter"

ALL_TOPICS = (SENSORS, PLAN, MAINTENANCE, MACHINE_STATE, SCHEDULE, MODELS, DEAD_LETTER)

EVENT_ADAPTERS: dict[str, TypeAdapter[object]] = {
    SENSORS: TypeAdapter(SensorReading),
    PLAN: PLAN_EVENT_ADAPTER,
    MAINTENANCE: MAINTENANCE_EVENT_ADAPTER,
    MACHINE_STATE: TypeAdapter(MachineState),
    SCHEDULE: TypeAdapter(Schedule),
    MODELS: TypeAdapter(ModelPromoted),
    DEAD_LETTER: TypeAdapter(DeadLetter),
}
