"""The predictor with a history store, against a real broker and a real trained model."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.events import MachineState
from ingest.history import MACHINE_STATE, HistoryWriteError
from ingest.history.influx import InfluxHistory
from ingest.history.parquet import ParquetHistory
from ingest.predictor import PREDICTOR_GROUP, Predictor
from ingest.replay import cmapss_readings, publish_readings, read_cmapss_rows
from ingest.stream import StreamProcessor
from ingest.topics import MACHINE_STATE as MACHINE_STATE_TOPIC
from ingest.topics import SENSORS
from models import InferenceEngine, Registry
from plantpulse.services import run_until_stopped
from tests.ingest.victoria_metrics import free_port

pytestmark = [pytest.mark.broker, pytest.mark.slow]

START = datetime(2026, 2, 1, tzinfo=UTC)
UNITS = [1, 2]


def replay_cycles(kafka: KafkaConfig, rows: np.ndarray, first: int, last: int) -> int:
    selected = rows[np.isin(rows[:, 0], UNITS) & (rows[:, 1] >= first) & (rows[:, 1] <= last)]
    producer = EventProducer(kafka)
    try:
        # align_end=False gives cycle c the same time in every part of the replay.
        return publish_readings(
            producer, cmapss_readings(selected, START, UNITS, cycle_minutes=30, align_end=False)
        )
    finally:
        producer.close()


def run_predictor(kafka: KafkaConfig, registry: Path, history_root: Path) -> Predictor:
    engine = InferenceEngine.from_registry(registry, device="cpu")
    output = EventProducer(kafka)
    predictor = Predictor(engine, output, history=ParquetHistory(history_root))
    processor = StreamProcessor(kafka, PREDICTOR_GROUP, [SENSORS], predictor, output)
    run_until_stopped(processor, threading.Event(), idle_stop_s=1.0)
    return predictor


def test_restarted_predictor_warms_windows_from_history(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    ensure_topics(kafka)
    rows = read_cmapss_rows(data_dir / "cmapss" / "train_FD001.txt")
    history_root = tmp_path / "history"

    replay_cycles(kafka, rows, 1, 40)
    first = run_predictor(kafka, trained_registry, history_root)
    window = first.engine.window
    replay_cycles(kafka, rows, 41, 60)
    restarted = run_predictor(kafka, trained_registry, history_root)

    by_run: dict[str, list[int]] = defaultdict(list)
    for record in read_topic(kafka, MACHINE_STATE_TOPIC):
        state = MachineState.model_validate_json(record.value)
        by_run[state.machine_id].append(state.seq)
    for unit in UNITS:
        # One state per reading from the first full window on, across the restart.
        assert by_run[f"engine-{unit:03d}"] == list(range(window, 61))
    assert restarted.stats.warmed_machines == 2
    assert restarted.stats.warm_readings == 2 * (window - 1)

    history = ParquetHistory(history_root)
    end = START + timedelta(days=30)
    stored = history.readings(START, end)
    assert sorted((r.machine_id, r.seq) for r in stored) == sorted(
        (f"engine-{unit:03d}", seq) for unit in UNITS for seq in range(1, 61)
    )
    states = history.read(MACHINE_STATE, START, end, {"machine_id": ["engine-001"]})
    assert [int(p.fields["seq"]) for p in states] == list(range(window, 61))
    assert {p.fields["model_version"] for p in states} == {first.engine.version}


def test_offsets_stay_uncommitted_when_history_flush_fails(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path
) -> None:
    ensure_topics(kafka)
    rows = read_cmapss_rows(data_dir / "cmapss" / "train_FD001.txt")
    sent = replay_cycles(kafka, rows, 1, 35)
    unreachable = InfluxHistory(
        f"http://127.0.0.1:{free_port()}",
        org="plant",
        bucket="history",
        retry_interval_s=0.1,
        max_retry_delay_s=0.2,
        max_retry_time_s=0.5,
        timeout_s=1.0,
    )
    engine = InferenceEngine.from_registry(trained_registry, device="cpu")
    output = EventProducer(kafka)
    predictor = Predictor(engine, output, history=unreachable)
    processor = StreamProcessor(kafka, PREDICTOR_GROUP, [SENSORS], predictor, output)

    with pytest.raises(HistoryWriteError):
        for _ in range(200):
            processor.poll_once()
            processor.checkpoint.commit()
    # Leaving the group commits on revocation, which fails again on the same flush.
    with contextlib.suppress(KafkaError):
        processor.consumer.close()
    output.close()

    assert predictor.stats.readings > 0
    checker = KafkaConsumer(**kafka.consumer_options(PREDICTOR_GROUP))
    try:
        partitions = [TopicPartition(SENSORS, p) for p in range(kafka.partitions)]
        assert all(checker.committed(partition) is None for partition in partitions)
    finally:
        checker.close()
    assert sent == 70


def poll_until_caught_up(processor: StreamProcessor, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        count = processor.poll_once()
        if count == 0 and processor.caught_up():
            return
    raise TimeoutError(f"the predictor did not catch up within {timeout_s} s")


def test_predictor_switches_model_mid_stream(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    ensure_topics(kafka)
    registry_root = tmp_path / "registry"
    shutil.copytree(trained_registry, registry_root)
    registry = Registry(registry_root)
    first_version = registry.champion()
    rows = read_cmapss_rows(data_dir / "cmapss" / "train_FD001.txt")
    engine = InferenceEngine.from_registry(registry_root, device="cpu")
    output = EventProducer(kafka)
    predictor = Predictor(engine, output, history=ParquetHistory(tmp_path / "history"))
    processor = StreamProcessor(kafka, PREDICTOR_GROUP, [SENSORS], predictor, output)

    replay_cycles(kafka, rows, 1, 40)
    poll_until_caught_up(processor)
    # A retrain promotes a new version while the predictor keeps running.
    second_version = registry.register(registry.load_champion())  # type: ignore[arg-type]
    registry.promote(second_version)
    switched = predictor.check_for_new_model()
    replay_cycles(kafka, rows, 41, 60)
    poll_until_caught_up(processor)
    processor.close()
    output.close()

    assert switched
    versions: dict[str, dict[int, str]] = defaultdict(dict)
    for record in read_topic(kafka, MACHINE_STATE_TOPIC):
        state = MachineState.model_validate_json(record.value)
        versions[state.machine_id][state.seq] = state.model_version
    window = engine.window
    for unit in UNITS:
        by_seq = versions[f"engine-{unit:03d}"]
        assert sorted(by_seq) == list(range(window, 61))
        assert {by_seq[seq] for seq in range(window, 41)} == {first_version}
        assert {by_seq[seq] for seq in range(41, 61)} == {second_version}
