"""Replay of recorded run data as a live stream of `SensorReading` events."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from ingest.clients import EventProducer
from ingest.events import ContextValue, SensorReading
from ingest.topics import SENSORS

logger = logging.getLogger(__name__)

CMAPSS_CONTEXT = ("setting1", "setting2", "setting3")
# Sent in each reading's context; the cycle number, as models.cmapss.AGE_FIELD explains.
CMAPSS_AGE_FIELD = "cycles_since_maintenance"
CMAPSS_CHANNELS = tuple(f"s{index}" for index in range(1, 22))


def cmapss_context(row: np.ndarray) -> dict[str, ContextValue]:
    """Return the context of one C-MAPSS row: its three settings and its cycle number."""
    return {
        **dict(zip(CMAPSS_CONTEXT, row[2:5].tolist(), strict=True)),
        CMAPSS_AGE_FIELD: float(row[1]),
    }


def cmapss_machine_id(unit: int) -> str:
    return f"engine-{unit:03d}"


def read_cmapss_rows(path: Path) -> np.ndarray:
    """Read a C-MAPSS file into an array of (unit, cycle, 3 settings, 21 sensors) rows."""
    try:
        rows = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as error:
        raise ValueError(f"{path} is not a C-MAPSS file of 26 numeric columns: {error}") from error
    if rows.shape[1] != 26:
        raise ValueError(f"{path} has {rows.shape[1]} columns; a C-MAPSS file has 26")
    return rows


def cmapss_units(rows: np.ndarray) -> list[int]:
    return sorted({int(unit) for unit in rows[:, 0]})


def cmapss_readings(
    rows: np.ndarray,
    start: datetime,
    units: Sequence[int] | None = None,
    cycle_minutes: float = 60.0,
    align_end: bool = True,
) -> Iterator[SensorReading]:
    """Yield one reading per engine cycle, engines interleaved in time order.

    With `align_end`, every engine's last cycle is at `start` plus the longest engine's
    run, so all machines are observed up to one common "now", as in a running plant;
    otherwise every engine's cycle 1 is at `start`. Cycles are `cycle_minutes` apart. The
    21 sensors become channels `s1`..`s21`; the 3 operational settings and the cycle number
    are the context.
    """
    if units is not None:
        rows = rows[np.isin(rows[:, 0], np.asarray(units))]
    if len(rows) == 0:
        return
    last_cycle = {
        int(unit): int(rows[rows[:, 0] == unit, 1].max()) for unit in np.unique(rows[:, 0])
    }
    longest = max(last_cycle.values())
    offset = {unit: (longest - last if align_end else 0) for unit, last in last_cycle.items()}
    times = rows[:, 1] + np.array([offset[int(unit)] for unit in rows[:, 0]])
    order = np.lexsort((rows[:, 0], times))
    step = timedelta(minutes=cycle_minutes)
    for row in rows[order]:
        unit, cycle = int(row[0]), int(row[1])
        yield SensorReading(
            machine_id=cmapss_machine_id(unit),
            ts=start + (cycle - 1 + offset[unit]) * step,
            seq=cycle,
            channels=dict(zip(CMAPSS_CHANNELS, row[5:26].tolist(), strict=True)),
            context=cmapss_context(row),
        )


def publish_readings(
    producer: EventProducer, readings: Iterator[SensorReading], topic: str = SENSORS
) -> int:
    """Send readings keyed by machine id and flush; return how many were sent."""
    count = 0
    for reading in readings:
        producer.send(topic, reading.machine_id, reading)
        count += 1
    producer.flush()
    logger.info("replayed %d readings to %s", count, topic)
    return count
