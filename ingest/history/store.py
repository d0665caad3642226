"""The history store interface shared by the Parquet and InfluxDB backends."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Self

from ingest.events import Event, SensorReading
from ingest.history.points import SENSOR_READING, Point, points_from_events, reading_from_point

logger = logging.getLogger(__name__)

TagFilter = Mapping[str, Collection[str]]


class HistoryError(Exception):
    """A history store operation failed."""


class HistoryWriteError(HistoryError):
    """Points could not be written; they stay buffered and the next `flush` retries them."""


class HistoryReadError(HistoryError):
    """A history query failed or returned data that could not be read."""


class HistoryStore(ABC):
    """Time series of readings, machine states, schedules and maintenance, per measurement.

    `write` buffers points and `flush` makes every buffered point durable, raising
    HistoryWriteError when it cannot. A stream processor flushes before it commits
    offsets, so a committed record's points are always stored. A point written again
    with the same measurement, tags and time replaces the earlier one.
    """

    @abstractmethod
    def write(self, points: Iterable[Point]) -> None:
        """Buffer points for the next flush; may flush early when the buffer is full."""

    @abstractmethod
    def flush(self) -> None:
        """Store every buffered point durably, or raise HistoryWriteError."""

    @abstractmethod
    def read(
        self,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
    ) -> list[Point]:
        """Return the points of `measurement` with start <= time < stop, oldest first.

        `tags` maps a tag key to the values to keep, e.g. {"machine_id": ["m1", "m2"]}.
        """

    @abstractmethod
    def last(
        self, measurement: str, tags: Mapping[str, str], count: int, before: datetime
    ) -> list[Point]:
        """Return up to `count` newest points of one series with time < before, oldest first."""

    def close(self) -> None:
        """Flush and release connections and threads."""
        self.flush()

    def write_events(self, events: Iterable[Event]) -> None:
        """Write the points of every event that the history keeps; others are ignored."""
        self.write(points_from_events(events))

    def readings(
        self, start: datetime, stop: datetime, machine_ids: Collection[str] | None = None
    ) -> list[SensorReading]:
        """Return the sensor readings with start <= ts < stop, oldest first."""
        tags = None if machine_ids is None else {"machine_id": machine_ids}
        points = self.read(SENSOR_READING, start, stop, tags)
        return _to_readings(points)

    def last_readings(self, machine_id: str, count: int, before: datetime) -> list[SensorReading]:
        """Return up to `count` newest readings of one machine with ts < before, oldest first."""
        points = self.last(SENSOR_READING, {"machine_id": machine_id}, count, before)
        return _to_readings(points)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _to_readings(points: list[Point]) -> list[SensorReading]:
    readings = []
    for point in points:
        try:
            readings.append(reading_from_point(point))
        except (KeyError, ValueError) as error:
            logger.warning(
                "stored reading of %s at %s skipped, it is incomplete: %s",
                point.tags.get("machine_id"),
                point.time.isoformat(),
                error,
            )
    return readings
