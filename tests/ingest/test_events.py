from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from ingest.events import (
    PLAN_EVENT_ADAPTER,
    DeadLetter,
    JobCancelled,
    JobReleased,
    MachineOption,
    MachineState,
    OperationSpec,
    RemainingUsefulLife,
    SensorReading,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def reading(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "machine_id": "engine-001",
        "ts": NOW.isoformat(),
        "seq": 7,
        "channels": {"s2": 642.5, "s3": 1589.7},
        "context": {"setting1": 0.0023, "product": "L"},
    }
    base.update(changes)
    return base


def test_sensor_reading_round_trips_through_json() -> None:
    event = SensorReading.model_validate(reading())

    decoded = SensorReading.model_validate_json(event.to_json_bytes())

    assert decoded == event
    assert decoded.channels["s3"] == 1589.7
    assert decoded.schema_version == 1


def test_reading_timestamp_is_normalised_to_utc() -> None:
    local = datetime(2026, 3, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))

    event = SensorReading.model_validate(reading(ts=local.isoformat()))

    assert event.ts == NOW
    assert event.ts.tzinfo == UTC


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"ts": "2026-03-01T12:00:00"}, "ts"),
        ({"channels": {}}, "channels"),
        ({"channels": {"s2": "hot"}}, "channels.s2"),
        ({"channels": {"s2": float("nan")}}, "channels.s2"),
        ({"seq": -1}, "seq"),
        ({"machine_id": ""}, "machine_id"),
        ({"machine_id": "engine 1"}, "machine_id"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_reading_names_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SensorReading.model_validate(reading(**changes))

    locations = {".".join(str(part) for part in error["loc"]) for error in caught.value.errors()}
    assert field in locations


def test_infinite_channel_value_is_rejected_from_json() -> None:
    raw = json.dumps(reading(channels={"s2": "Infinity"})).replace('"Infinity"', "Infinity")

    with pytest.raises(ValidationError, match="finite"):
        SensorReading.model_validate_json(raw)


def test_plan_events_decode_by_type() -> None:
    released = JobReleased(
        job_id="J1",
        ts=NOW,
        operations=[OperationSpec(options=[MachineOption(machine_id="M1", duration_minutes=30)])],
        release=NOW,
        due=NOW + timedelta(hours=4),
    )
    cancelled = JobCancelled(job_id="J1", ts=NOW, reason="customer order withdrawn")

    assert PLAN_EVENT_ADAPTER.validate_json(released.to_json_bytes()) == released
    assert PLAN_EVENT_ADAPTER.validate_json(cancelled.to_json_bytes()) == cancelled


def test_job_due_before_release_is_rejected() -> None:
    with pytest.raises(ValidationError, match="before release"):
        JobReleased(
            job_id="J1",
            ts=NOW,
            operations=[
                OperationSpec(options=[MachineOption(machine_id="M1", duration_minutes=30)])
            ],
            release=NOW,
            due=NOW - timedelta(minutes=1),
        )


def test_operation_with_zero_duration_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        MachineOption(machine_id="M1", duration_minutes=0)

    assert caught.value.errors()[0]["loc"] == ("duration_minutes",)


def test_rul_quantiles_must_be_ordered() -> None:
    with pytest.raises(ValidationError, match="out of order"):
        RemainingUsefulLife(p10=50, p50=40, p90=60)


def test_machine_state_round_trips() -> None:
    state = MachineState(
        machine_id="engine-003",
        ts=NOW,
        seq=120,
        model_version="v0001",
        state="degrading",
        state_probabilities={"healthy": 0.2, "degrading": 0.7, "critical": 0.1},
        rul=RemainingUsefulLife(p10=31.0, p50=44.5, p90=60.0),
        top_channels=["s11", "s4", "s12"],
    )

    assert MachineState.model_validate_json(state.to_json_bytes()) == state


def test_dead_letter_keeps_reason_and_bounds_raw_bytes() -> None:
    raw = b"\xff" * 100

    letter = DeadLetter.from_record(
        "plantpulse.sensors", 2, 41, b"engine-001", raw, "value is not UTF-8", max_bytes=10
    )

    assert letter.raw() == b"\xff" * 10
    assert letter.raw_size == 100
    assert letter.raw_truncated is True
    assert letter.error == "value is not UTF-8"
    assert DeadLetter.model_validate_json(letter.to_json_bytes()) == letter
