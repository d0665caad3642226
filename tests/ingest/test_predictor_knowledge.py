"""The predictor with a plant description: causes in each state, out-of-range readings rejected.

A stand-in engine returns fixed channel shares, so these tests need neither a broker nor
a trained model; tests/integration runs the same paths against both.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from ingest.events import DeadLetter, MachineState, SensorReading
from ingest.predictor import Predictor
from ingest.stream import DeadLetterSink, DecodedRecord
from ingest.topics import DEAD_LETTER, MACHINE_STATE, SENSORS
from models.inference import Prediction
from models.plant import example_plant

START = datetime(2026, 2, 1, tzinfo=UTC)
SHARES = {"s1": 0.1, "s3": 0.4, "s4": 0.5}


@dataclass
class FixedEngine:
    """Predicts the same RUL and channel shares for every window of channels s1, s3, s4."""

    version: str = "v0007"
    window: int = 2
    channels: tuple[str, ...] = ("s1", "s3", "s4")
    context_fields: tuple[str, ...] = ()

    def predict(self, windows: np.ndarray, context: np.ndarray) -> list[Prediction]:
        return [
            Prediction(
                rul_p10=10.0,
                rul_p50=20.0,
                rul_p90=30.0,
                state="degrading",
                state_probabilities={"healthy": 0.2, "degrading": 0.5, "critical": 0.3},
                top_channels=("s4", "s3", "s1"),
                channel_scores=dict(SHARES),
            )
            for _ in windows
        ]

    def reload_if_changed(self) -> bool:
        return False


@dataclass
class RecordingProducer:
    sent: list[tuple[str, str | None, Any]] = field(default_factory=list)

    def send(self, topic: str, key: str | None, event: Any) -> None:
        self.sent.append((topic, key, event))

    def on(self, topic: str) -> list[Any]:
        return [event for sent_topic, _, event in self.sent if sent_topic == topic]


def record(seq: int, **channels: float) -> DecodedRecord:
    values = {"s1": 518.67, "s3": 1590.0, "s4": 1410.0, **channels}
    reading = SensorReading(
        machine_id="engine-001",
        ts=START + timedelta(minutes=30 * seq),
        seq=seq,
        channels=values,
    )
    return DecodedRecord(SENSORS, 0, seq, b"engine-001", reading.to_json_bytes(), reading)


def run(predictor: Predictor, producer: RecordingProducer, *records: DecodedRecord) -> None:
    predictor.handle(list(records), DeadLetterSink(producer))  # type: ignore[arg-type]
    predictor.flush()


def test_state_names_causes_and_action() -> None:
    producer = RecordingProducer()
    predictor = Predictor(FixedEngine(), producer, plant=example_plant("cmapss"))  # type: ignore[arg-type]

    run(predictor, producer, record(1), record(2))

    [state] = producer.on(MACHINE_STATE)
    assert isinstance(state, MachineState)
    assert state.channel_scores == SHARES
    # s1 observes no component, so s3 and s4 share the evidence 0.4 : 0.5.
    assert [(c.component, c.failure_mode) for c in state.likely_causes] == [
        ("lpt", "lpt-degradation"),
        ("hpc", "hpc-degradation"),
    ]
    assert [c.score for c in state.likely_causes] == pytest.approx([5 / 9, 4 / 9])
    assert [c.evidence for c in state.likely_causes] == [["s4"], ["s3"]]
    action = state.recommended_action
    assert action is not None
    assert action.name == "hot-section-borescope"
    assert action.duration_minutes == 120
    assert action.skill == "borescope-inspector"
    assert action.crew_size == 1
    assert action.cost == 25.0
    assert action.description == "borescope inspection of the turbine hot section"


def test_out_of_range_reading_goes_to_dead_letters() -> None:
    producer = RecordingProducer()
    predictor = Predictor(FixedEngine(), producer, plant=example_plant("cmapss"))  # type: ignore[arg-type]

    run(predictor, producer, record(1), record(2, s3=2500.0, s4=1000.0), record(3))

    [letter] = producer.on(DEAD_LETTER)
    assert isinstance(letter, DeadLetter)
    assert letter.offset == 2
    assert letter.error == (
        "reading of engine-001 is out of valid range: s3 = 2500 degR (valid 1550 to 1640); "
        "s4 = 1000 degR (valid 1360 to 1470) in plant description plant-1; check the sensor "
        "and its unit"
    )
    assert predictor.stats.out_of_range == 1
    # The rejected reading never entered the window: seq 3 follows seq 1 in one window.
    assert [state.seq for state in producer.on(MACHINE_STATE)] == [3]


def test_channel_without_range_not_checked() -> None:
    producer = RecordingProducer()
    predictor = Predictor(FixedEngine(), producer, plant=example_plant("cmapss"))  # type: ignore[arg-type]

    # s1 (T2, fan inlet temperature) is constant in FD001, so the description gives no range.
    run(predictor, producer, record(1, s1=-40.0), record(2, s1=9000.0))

    assert producer.on(DEAD_LETTER) == []
    assert len(producer.on(MACHINE_STATE)) == 1


def test_without_plant_no_causes_or_range_check() -> None:
    producer = RecordingProducer()
    predictor = Predictor(FixedEngine(), producer)  # type: ignore[arg-type]

    run(predictor, producer, record(1, s3=2500.0), record(2))

    assert producer.on(DEAD_LETTER) == []
    [state] = producer.on(MACHINE_STATE)
    assert state.likely_causes == []
    assert state.recommended_action is None
    assert state.channel_scores == SHARES


def test_warns_about_channels_without_component(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ingest.predictor"):
        Predictor(FixedEngine(), RecordingProducer(), plant=example_plant("cmapss"))  # type: ignore[arg-type]

    [warning] = caplog.records
    assert "model v0007 reads channels ['s1']" in warning.getMessage()
    assert "plant description plant-1" in warning.getMessage()
