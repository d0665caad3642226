from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from flows.training_data import runs_from_history
from ingest.events import SensorReading
from models import AGE_FIELD, SENSOR_CHANNELS

START = datetime(2026, 3, 1, tzinfo=UTC)


def reading(seq: int, age: float | None) -> SensorReading:
    context: dict[str, float] = {"setting1": 0.0, "setting2": 0.0, "setting3": 100.0}
    if age is not None:
        context[AGE_FIELD] = age
    return SensorReading(
        machine_id="press-01",
        ts=START + timedelta(hours=seq),
        seq=seq,
        channels={name: float(seq) for name in SENSOR_CHANNELS},
        context=context,
    )


def test_history_run_age_restarts_after_maintenance() -> None:
    readings = [reading(seq, None) for seq in range(1, 21)]
    maintenance = {"press-01": [START + timedelta(hours=10, minutes=30)]}
    failures = {"press-01": [START + timedelta(hours=20)]}

    (run,) = runs_from_history(readings, failures, maintenance).runs

    np.testing.assert_array_equal(run.cycles, np.arange(1, 11))
    np.testing.assert_array_equal(run.rul, np.arange(9, -1, -1))
    np.testing.assert_array_equal(run.context[:, -1], np.arange(1, 11))
    assert not runs_from_history(readings, failures, maintenance).ages_reported


def test_history_run_keeps_reported_age() -> None:
    readings = [reading(seq, float(seq + 40)) for seq in range(1, 11)]
    failures = {"press-01": [START + timedelta(hours=10)]}

    (run,) = runs_from_history(readings, failures, {}).runs

    np.testing.assert_array_equal(run.cycles, np.arange(41, 51))
    np.testing.assert_array_equal(run.rul, np.arange(9, -1, -1))
    assert runs_from_history(readings, failures, {}).ages_reported
