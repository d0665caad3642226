"""The predictor against a real broker and a real trained model on C-MAPSS test engines."""

from __future__ import annotations

import threading
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.events import DeadLetter, MachineState, SensorReading
from ingest.predictor import PREDICTOR_GROUP, Predictor
from ingest.replay import cmapss_readings, publish_readings, read_cmapss_rows
from ingest.stream import StreamProcessor
from ingest.topics import DEAD_LETTER, MACHINE_STATE, SENSORS
from models import InferenceEngine, diagnose
from models.plant import example_plant
from plantpulse.services import run_until_stopped

pytestmark = [pytest.mark.broker, pytest.mark.slow]

START = datetime(2026, 2, 1, tzinfo=UTC)
UNITS = [1, 2, 3, 4]


def test_replay_yields_one_state_per_window_in_order(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path
) -> None:
    ensure_topics(kafka)
    rows = read_cmapss_rows(data_dir / "cmapss" / "test_FD001.txt")
    producer = EventProducer(kafka)
    sent = publish_readings(producer, cmapss_readings(rows, START, UNITS))
    producer.send_bytes(SENSORS, "engine-002", b'{"machine_id": "engine-002", "seq": "many"}')
    producer.send(
        SENSORS,
        "engine-009",
        SensorReading(machine_id="engine-009", ts=START, seq=1, channels={"s2": 1.0}, context={}),
    )
    producer.close()

    engine = InferenceEngine.from_registry(trained_registry, device="cpu")
    output = EventProducer(kafka)
    processor = StreamProcessor(
        kafka, PREDICTOR_GROUP, [SENSORS], Predictor(engine, output), output
    )
    run_until_stopped(processor, threading.Event(), idle_stop_s=1.0)

    states = [
        MachineState.model_validate_json(record.value)
        for record in read_topic(kafka, MACHINE_STATE)
    ]
    by_machine: dict[str, list[int]] = defaultdict(list)
    for state in states:
        by_machine[state.machine_id].append(state.seq)
    for unit in UNITS:
        cycles = int(rows[rows[:, 0] == unit, 1].max())
        expected = list(range(engine.window, cycles + 1))
        assert by_machine[f"engine-{unit:03d}"] == expected
    assert sent == sum(int((rows[:, 0] == unit).sum()) for unit in UNITS)
    assert all(state.model_version == engine.version for state in states)
    assert all(state.rul.p10 <= state.rul.p50 <= state.rul.p90 for state in states)
    assert all(len(state.top_channels) == 3 for state in states)

    letters = [
        DeadLetter.model_validate_json(record.value) for record in read_topic(kafka, DEAD_LETTER)
    ]
    assert len(letters) == 2
    reasons = sorted(letter.error for letter in letters)
    assert "seq: Input should be a valid integer" in reasons[0]
    assert "lacks channel" in reasons[1]


def test_last_prediction_tracks_true_rul(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path
) -> None:
    """A weak model still ranks a nearly worn engine below a fresh one."""
    ensure_topics(kafka)
    rows = read_cmapss_rows(data_dir / "cmapss" / "test_FD001.txt")
    true_rul = np.loadtxt(data_dir / "cmapss" / "RUL_FD001.txt")
    worn, fresh = int(np.argmin(true_rul)) + 1, int(np.argmax(true_rul)) + 1
    producer = EventProducer(kafka)
    publish_readings(producer, cmapss_readings(rows, START, [worn, fresh]))
    producer.close()

    engine = InferenceEngine.from_registry(trained_registry, device="cpu")
    output = EventProducer(kafka)
    processor = StreamProcessor(
        kafka, PREDICTOR_GROUP, [SENSORS], Predictor(engine, output), output
    )
    run_until_stopped(processor, threading.Event(), idle_stop_s=1.0)

    last: dict[str, MachineState] = {}
    for record in read_topic(kafka, MACHINE_STATE):
        state = MachineState.model_validate_json(record.value)
        last[state.machine_id] = state
    assert last[f"engine-{worn:03d}"].rul.p50 < last[f"engine-{fresh:03d}"].rul.p50


def test_states_name_likely_causes_and_action(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path
) -> None:
    ensure_topics(kafka)
    rows = read_cmapss_rows(data_dir / "cmapss" / "test_FD001.txt")
    producer = EventProducer(kafka)
    publish_readings(producer, cmapss_readings(rows, START, [1, 2]))
    producer.close()
    plant = example_plant("cmapss")

    engine = InferenceEngine.from_registry(trained_registry, device="cpu")
    output = EventProducer(kafka)
    predictor = Predictor(engine, output, plant=plant)
    processor = StreamProcessor(kafka, PREDICTOR_GROUP, [SENSORS], predictor, output)
    run_until_stopped(processor, threading.Event(), idle_stop_s=1.0)

    states = [
        MachineState.model_validate_json(record.value)
        for record in read_topic(kafka, MACHINE_STATE)
    ]
    assert len(states) == predictor.stats.states > 0
    assert predictor.stats.out_of_range == 0
    components = {component.name for component in plant.components}
    for state in states:
        assert list(state.channel_scores) == list(engine.channels)
        assert sum(state.channel_scores.values()) == pytest.approx(1.0, abs=1e-5)

        expected = diagnose(state.channel_scores, plant)
        assert len(state.likely_causes) == min(3, len(expected.failure_modes))
        assert len(state.likely_causes) >= 1
        for cause, mode in zip(state.likely_causes, expected.failure_modes, strict=False):
            assert cause.component in components
            assert (cause.component, cause.failure_mode) == (mode.component, mode.failure_mode)
            assert cause.score == pytest.approx(mode.score)
            assert cause.evidence == mode.channels
            assert set(cause.evidence) <= set(engine.channels)
        scores = [cause.score for cause in state.likely_causes]
        assert scores == sorted(scores, reverse=True)

        top = plant.action(expected.failure_modes[0].actions[0])
        action = state.recommended_action
        assert action is not None
        assert action.name == top.name
        assert action.duration_minutes == top.duration_minutes
        assert action.crew_size == top.crew_size
        assert action.skill == top.skill
        assert action.spare_parts == list(top.spare_parts)
