"""The bad-event corpus through the real predictor and scheduler: every record has an outcome."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.events import DeadLetter, MachineState
from ingest.predictor import PREDICTOR_GROUP, Predictor
from ingest.replay import cmapss_readings, read_cmapss_rows
from ingest.stream import MAX_RECORD_BYTES, StreamProcessor
from ingest.topics import DEAD_LETTER, MACHINE_STATE, MAINTENANCE, PLAN, SENSORS
from models import InferenceEngine
from models.plant import example_plant
from plantpulse.services import run_until_stopped
from scheduler import SolverSettings
from scheduler.service import SCHEDULER_GROUP, SCHEDULER_TOPICS, MaintenancePolicy, SchedulerService

pytestmark = [pytest.mark.broker, pytest.mark.slow]

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_events"
TOPICS = {"sensors": SENSORS, "plan": PLAN, "maintenance": MAINTENANCE}
START = datetime(2026, 2, 1, tzinfo=UTC)


def test_bad_event_corpus_outcomes(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path
) -> None:
    cases = json.loads((CORPUS / "cases.json").read_text())
    ensure_topics(kafka)
    producer = EventProducer(kafka)

    rows = read_cmapss_rows(data_dir / "cmapss" / "test_FD001.txt")
    engine_one = rows[rows[:, 0] == 1][:31]
    valid = list(cmapss_readings(engine_one, START, align_end=False))
    for reading in valid[:30]:
        producer.send(SENSORS, reading.machine_id, reading)
    for case in cases:
        key = "engine-001" if case["topic"] == "sensors" else "corpus"
        producer.send_bytes(TOPICS[case["topic"]], key, (CORPUS / case["file"]).read_bytes())
    oversize = b'{"machine_id": "engine-001", "pad": "' + b"x" * MAX_RECORD_BYTES + b'"}'
    producer.send_bytes(SENSORS, "engine-001", oversize)
    producer.send(SENSORS, "engine-001", valid[30])
    producer.close()

    engine = InferenceEngine.from_registry(trained_registry, device="cpu")
    predictor_output = EventProducer(kafka)
    predictor = Predictor(engine, predictor_output, plant=example_plant("cmapss"))
    run_until_stopped(
        StreamProcessor(kafka, PREDICTOR_GROUP, [SENSORS], predictor, predictor_output),
        threading.Event(),
        idle_stop_s=1.0,
    )
    scheduler_output = EventProducer(kafka)
    service = SchedulerService(
        scheduler_output,
        "plant-test",
        MaintenancePolicy(),
        SolverSettings(time_limit_s=2),
        debounce_s=0,
    )
    run_until_stopped(
        StreamProcessor(kafka, SCHEDULER_GROUP, SCHEDULER_TOPICS, service, scheduler_output),
        threading.Event(),
        idle_stop_s=1.0,
    )

    letters = [DeadLetter.model_validate_json(r.value) for r in read_topic(kafka, DEAD_LETTER)]
    for name, topic in TOPICS.items():
        expected = [
            c["reason"] for c in cases if c["topic"] == name and c["outcome"] == "dead_letter"
        ]
        if name == "sensors":
            expected.append(f"exceeds the limit of {MAX_RECORD_BYTES}")
        actual = sorted(
            (letter for letter in letters if letter.original_topic == topic),
            key=lambda letter: letter.offset,
        )
        assert len(actual) == len(expected), [letter.error for letter in actual]
        for reason, letter in zip(expected, actual, strict=True):
            assert reason in letter.error

    outcomes = Counter(case["outcome"] for case in cases if case["topic"] == "sensors")
    assert predictor.windows.skipped == outcomes["dropped"]
    assert predictor.stats.out_of_range == 1
    assert len(predictor.windows) == 2  # engine-001 and the new machine press-17

    states = [MachineState.model_validate_json(r.value) for r in read_topic(kafka, MACHINE_STATE)]
    assert [state.seq for state in states] == [30, 31]
    assert all(state.likely_causes and state.recommended_action for state in states)

    assert set(service.state.jobs) == {"J-bad"}
    assert "engine-002" in service.state.outages
    assert service.state.outages["engine-002"].until == START + timedelta(minutes=240)
    assert np.isfinite([state.rul.p50 for state in states]).all()
