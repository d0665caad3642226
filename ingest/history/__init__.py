"""History of readings, machine states, schedules, maintenance and operations: Parquet or InfluxDB 2."""

from ingest.history.config import HistoryConfig, open_history
from ingest.history.points import (
    FAILURE,
    MACHINE_STATE,
    MAINTENANCE,
    MAINTENANCE_WINDOW,
    MEASUREMENTS,
    OPERATION_EVENT,
    SCHEDULE,
    SCHEDULED_OPERATION,
    SENSOR_READING,
    Point,
    machine_state_from_point,
    points_from_event,
    points_from_events,
    reading_from_point,
)
from ingest.history.store import (
    HistoryError,
    HistoryReadError,
    HistoryStore,
    HistoryWriteError,
)

__all__ = [
    "FAILURE",
    "MACHINE_STATE",
    "MAINTENANCE",
    "MAINTENANCE_WINDOW",
    "MEASUREMENTS",
    "OPERATION_EVENT",
    "SCHEDULE",
    "SCHEDULED_OPERATION",
    "SENSOR_READING",
    "HistoryConfig",
    "HistoryError",
    "HistoryReadError",
    "HistoryStore",
    "HistoryWriteError",
    "Point",
    "machine_state_from_point",
    "open_history",
    "points_from_event",
    "points_from_events",
    "reading_from_point",
]
