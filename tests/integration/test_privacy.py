"""Operator names through the real broker, predictor and scheduler: only pseudonyms come out."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.events import (
    DeadLetter,
    Event,
    JobReleased,
    MachineOption,
    MachineState,
    OperationCompleted,
    OperationSpec,
    OperationStarted,
    Schedule,
    SensorReading,
)
from ingest.history import OPERATION_EVENT
from ingest.history.parquet import ParquetHistory
from ingest.privacy import Pseudonymiser
from ingest.replay import cmapss_readings, read_cmapss_rows
from ingest.topics import DEAD_LETTER, MACHINE_STATE, MODELS, PLAN, SCHEDULE, SENSORS
from plantpulse.dashboard.state import DashboardState
from plantpulse.services import build_predictor, build_scheduler, run_until_stopped
from plantpulse.settings import Settings, load_settings
from scheduler import write_plan_json
from scheduler.service import SchedulerService

pytestmark = [pytest.mark.broker, pytest.mark.slow]

KEY = "operator-pseudonym-key-for-the-privacy-test"
ADA = "Ada Lovelace"
GRACE = "Grace Hopper"
NAMES = (ADA, GRACE)
START = datetime(2026, 2, 1, tzinfo=UTC)
CYCLE = timedelta(minutes=30)
CYCLES = 40
OPERATORS = {"engine-001": ADA, "engine-002": GRACE}


def privacy_settings(kafka: KafkaConfig, registry: Path, history: Path) -> Settings:
    return load_settings(
        registry_dir=registry,
        embedded_broker=False,
        kafka=kafka,
        history={"backend": "parquet", "path": history},
        privacy={"pseudonym_key": KEY},
        scheduler={"plant_id": "plant-1", "time_limit_s": 3, "debounce_s": 0},
    )


def readings_with_operators(data_dir: Path) -> list[SensorReading]:
    rows = read_cmapss_rows(data_dir / "cmapss" / "test_FD001.txt")
    selected = rows[np.isin(rows[:, 0], [1, 2]) & (rows[:, 1] <= CYCLES)]
    return [
        reading.model_copy(
            update={"context": {**reading.context, "operator_id": OPERATORS[reading.machine_id]}}
        )
        for reading in cmapss_readings(selected, START, [1, 2], 30, align_end=False)
    ]


def plan_events() -> list[Event]:
    now = START + CYCLES * CYCLE
    two_steps = [
        OperationSpec(options=[MachineOption(machine_id="engine-001", duration_minutes=60)]),
        OperationSpec(options=[MachineOption(machine_id="engine-002", duration_minutes=90)]),
    ]
    one_step = [
        OperationSpec(options=[MachineOption(machine_id="engine-002", duration_minutes=30)])
    ]
    return [
        JobReleased(
            job_id="J1",
            ts=now,
            operations=two_steps,
            release=now,
            due=now + timedelta(hours=8),
            context={"operator_id": GRACE},
        ),
        JobReleased(job_id="J2", ts=now, operations=one_step, release=now),
        OperationStarted(
            job_id="J1",
            operation=0,
            machine_id="engine-001",
            ts=now + timedelta(minutes=5),
            context={"operator_id": ADA, "shift": "early"},
        ),
        OperationCompleted(
            job_id="J1",
            operation=0,
            machine_id="engine-001",
            ts=now + timedelta(minutes=65),
            context={"operator_id": ADA},
        ),
        # Valid, but about a job the scheduler does not know: a dead letter after decoding.
        OperationStarted(
            job_id="J9",
            operation=0,
            machine_id="engine-002",
            ts=now + timedelta(minutes=70),
            context={"operator_id": GRACE},
        ),
    ]


def send_inputs(kafka: KafkaConfig, readings: list[SensorReading], events: list[Event]) -> None:
    producer = EventProducer(kafka)
    for reading in readings:
        producer.send(SENSORS, reading.machine_id, reading)

    invalid_reading = readings[0].model_dump(mode="json") | {"seq": -1}
    producer.send_bytes(SENSORS, "engine-001", json.dumps(invalid_reading).encode())
    malformed = f'{{"machine_id": "engine-002", "context": {{"operator_id": "{GRACE}"}},}}'
    producer.send_bytes(SENSORS, "engine-002", malformed.encode())

    for event in events:
        producer.send(PLAN, getattr(event, "job_id", None), event)
    invalid_start = events[2].model_dump(mode="json") | {"operation": -1}
    producer.send_bytes(PLAN, "J1", json.dumps(invalid_start).encode())
    producer.close()


def history_text(root: Path) -> str:
    """Return every Parquet file under `root` as text: its rows, then its raw bytes."""
    parts = []
    for path in sorted(root.rglob("*.parquet")):
        parts.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
        parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_operator_names_never_leave_ingest(
    kafka: KafkaConfig,
    data_dir: Path,
    trained_registry: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Every PlantPulse logger at DEBUG, and kafka-python at WARNING as the CLI sets it,
    # because kafka-python's DEBUG output contains the raw bytes of each record.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.WARNING, logger="kafka")
    ensure_topics(kafka)
    history_root = tmp_path / "history"
    settings = privacy_settings(kafka, trained_registry, history_root)
    pseudonym = Pseudonymiser(KEY.encode(), {"operator_id"}).pseudonym
    readings = readings_with_operators(data_dir)
    send_inputs(kafka, readings, plan_events())

    run_until_stopped(build_predictor(settings, kafka), threading.Event(), idle_stop_s=1.0)
    scheduler = build_scheduler(settings, kafka)
    service = scheduler.handler
    assert isinstance(service, SchedulerService)
    run_until_stopped(scheduler, threading.Event(), idle_stop_s=1.0)

    # The inputs did carry the names, so their absence below means something.
    for topic in (SENSORS, PLAN):
        values = b"".join(record.value for record in read_topic(kafka, topic))
        for name in NAMES:
            assert name.encode() in values, f"{name} was never sent to {topic}"

    outputs: dict[str, list[bytes]] = {}
    for topic in (MACHINE_STATE, SCHEDULE, DEAD_LETTER, MODELS):
        outputs[topic] = [record.value for record in read_topic(kafka, topic)]
    letters = [DeadLetter.model_validate_json(value) for value in outputs[DEAD_LETTER]]
    outputs["dead-letter raw bytes"] = [letter.raw() for letter in letters]
    per_machine = Counter(reading.machine_id for reading in readings)
    # The trained model reads windows of 30 readings, one machine state per full window.
    assert len(outputs[MACHINE_STATE]) == sum(count - 29 for count in per_machine.values())
    assert len(outputs[SCHEDULE]) >= 1

    assert service.last_plan is not None
    assert service.last_solved is not None
    assert service.last_published is not None
    write_plan_json(service.last_plan, tmp_path / "plan.json")
    dashboard = DashboardState()
    for value in outputs[MACHINE_STATE]:
        dashboard.apply_machine_state(MachineState.model_validate_json(value))
    for value in outputs[SCHEDULE]:
        dashboard.apply_schedule(Schedule.model_validate_json(value))
    assert len(dashboard.snapshot()["machines"]) == 2
    assert len(dashboard.snapshot()["plants"]) == 1
    searched = {
        **{topic: b"\n".join(values).decode("utf-8") for topic, values in outputs.items()},
        "history files": history_text(history_root),
        "captured logs": caplog.text,
        "published schedule": service.last_published.model_dump_json(),
        "solved schedule": json.dumps(service.last_solved.to_dict()),
        "plan file": (tmp_path / "plan.json").read_text(),
        "dashboard snapshot": json.dumps(dashboard.snapshot(), default=str),
    }
    for where, text in searched.items():
        for name in NAMES:
            assert name not in text, f"{name} appears in the {where}"
            assert name.split()[1] not in text, f"{name.split()[1]} appears in the {where}"

    # The pseudonym is where each name was: in the history readings and operations.
    history = ParquetHistory(history_root)
    stored = history.readings(START, START + 2 * CYCLES * CYCLE)
    assert len(stored) == len(readings)
    for reading in stored:
        assert reading.context["operator_id"] == pseudonym(OPERATORS[reading.machine_id])
        assert set(reading.context) == {
            "setting1",
            "setting2",
            "setting3",
            "cycles_since_maintenance",
            "operator_id",
        }
    operations = history.read(OPERATION_EVENT, START, START + timedelta(days=30))
    assert sorted(point.tags["event"] for point in operations) == ["completed", "started"]
    for point in operations:
        assert point.fields["job_id"] == "J1"
        assert point.fields["context.operator_id"] == pseudonym(ADA)
    started = next(point for point in operations if point.tags["event"] == "started")
    assert started.fields["context.shift"] == "early"
    assert service.state.jobs["J1"].context == {"operator_id": pseudonym(GRACE)}

    # ... and in the dead letters: pseudonymised JSON, or nothing when it was not JSON.
    def letter(topic: str, error: str) -> DeadLetter:
        (found,) = [x for x in letters if x.original_topic == topic and error in x.error]
        return found

    assert len(letters) == 4
    unknown_job = letter(PLAN, "not in the open plan")
    assert unknown_job.raw_privacy == "pseudonymised"
    assert json.loads(unknown_job.raw())["context"]["operator_id"] == pseudonym(GRACE)
    invalid_start = letter(PLAN, "invalid event")
    assert invalid_start.raw_privacy == "pseudonymised"
    assert json.loads(invalid_start.raw())["context"] == {
        "operator_id": pseudonym(ADA),
        "shift": "early",
    }
    invalid_reading = letter(SENSORS, "invalid event")
    assert invalid_reading.raw_privacy == "pseudonymised"
    assert json.loads(invalid_reading.raw())["context"]["operator_id"] == pseudonym(ADA)
    malformed = letter(SENSORS, "not valid JSON")
    assert malformed.raw_privacy == "withheld"
    assert malformed.raw_base64 == ""
    assert malformed.raw_size == len(
        f'{{"machine_id": "engine-002", "context": {{"operator_id": "{GRACE}"}},}}'
    )
