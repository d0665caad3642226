"""The predictor killed with SIGKILL five times during a replay loses and repeats nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ingest.clients import ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.history import MACHINE_STATE, Point
from ingest.history.parquet import ParquetHistory
from ingest.predictor import PREDICTOR_GROUP
from ingest.replay import CMAPSS_CHANNELS, cmapss_context, read_cmapss_rows
from ingest.topics import SENSORS

pytestmark = [pytest.mark.broker, pytest.mark.slow]

MACHINES = 500
READINGS_PER_MACHINE = 200
WINDOW = 30
START = datetime(2026, 3, 1, tzinfo=UTC)


def replay(kafka: KafkaConfig, data_dir: Path) -> int:
    """Send 100,000 readings: FD001 training trajectories spread over 500 machines."""
    rows = read_cmapss_rows(data_dir / "cmapss" / "train_FD001.txt")
    trajectories = [rows[rows[:, 0] == unit] for unit in range(1, 101)]
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap_servers, linger_ms=20)
    for step in range(READINGS_PER_MACHINE):
        for machine in range(MACHINES):
            trajectory = trajectories[machine % len(trajectories)]
            row = trajectory[step % len(trajectory)]
            name = f"m{machine:03d}"
            reading = {
                "machine_id": name,
                "ts": (START + timedelta(hours=step)).isoformat(),
                "seq": step + 1,
                "channels": dict(zip(CMAPSS_CHANNELS, row[5:26].tolist(), strict=True)),
                "context": cmapss_context(row),
            }
            producer.send(SENSORS, key=name.encode(), value=json.dumps(reading).encode())
    producer.flush()
    producer.close()
    return MACHINES * READINGS_PER_MACHINE


def committed_total(kafka: KafkaConfig) -> int:
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=PREDICTOR_GROUP,
        enable_auto_commit=False,
    )
    try:
        return sum(
            consumer.committed(TopicPartition(SENSORS, p)) or 0 for p in range(kafka.partitions)
        )
    finally:
        consumer.close()


def predictor_environment(kafka: KafkaConfig, registry: Path, history_dir: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PLANTPULSE_REGISTRY_DIR": str(registry),
        "PLANTPULSE_HISTORY__PATH": str(history_dir),
    }


def assert_one_state_per_window(history_dir: Path) -> list[Point]:
    """Check the history has each machine's state once per complete window; return them."""
    history = ParquetHistory(history_dir)
    try:
        points = history.read(
            MACHINE_STATE, START, START + timedelta(hours=READINGS_PER_MACHINE + 1)
        )
    finally:
        history.close()
    keys = Counter((point.tags["machine_id"], point.time) for point in points)
    assert max(keys.values()) == 1
    per_machine = Counter(point.tags["machine_id"] for point in points)
    assert len(per_machine) == MACHINES
    assert set(per_machine.values()) == {READINGS_PER_MACHINE - WINDOW + 1}
    return points


def test_predictor_survives_five_sigkills_without_loss_or_duplicates(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    ensure_topics(kafka)
    total = replay(kafka, data_dir)
    history_dir = tmp_path / "history"
    environment = predictor_environment(kafka, trained_registry, history_dir)
    log_path = tmp_path / "predictor.log"
    chance = random.Random(20261204)

    def start() -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "plantpulse.cli", "predictor"],
                env=environment,
                stdout=log,
                stderr=log,
            )

    committed_at_kill = [0]
    for _ in range(5):
        process = start()
        deadline = time.monotonic() + 120
        while committed_total(kafka) <= committed_at_kill[-1] and time.monotonic() < deadline:
            time.sleep(0.5)  # wait until this run has committed something of its own
        time.sleep(chance.uniform(0.2, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        committed_at_kill.append(committed_total(kafka))

    process = start()
    try:
        deadline = time.monotonic() + 600
        while committed_total(kafka) < total and time.monotonic() < deadline:
            time.sleep(2.0)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log_path.read_text()[-3000:]
    finally:
        if process.poll() is None:
            process.kill()

    assert committed_total(kafka) == total  # lag back to zero
    progress = committed_at_kill[1:]
    assert all(later > earlier for earlier, later in zip(committed_at_kill, progress, strict=False))
    assert progress[-1] < total  # every kill came before the end of the replay
    points = assert_one_state_per_window(history_dir)
    assert len(read_topic(kafka, "plantpulse.machine-state", timeout_s=120)) >= len(points)


def test_two_predictors_split_partitions_and_take_over(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    ensure_topics(kafka)
    total = replay(kafka, data_dir)
    history_dir = tmp_path / "history"
    environment = predictor_environment(kafka, trained_registry, history_dir)
    logs = [tmp_path / "first.log", tmp_path / "second.log"]

    def start(log_path: Path) -> subprocess.Popen[bytes]:
        with log_path.open("ab") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "plantpulse.cli", "predictor"],
                env=environment,
                stdout=log,
                stderr=log,
            )

    first, second = start(logs[0]), start(logs[1])
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            both_assigned = all(
                'partitions assigned: ["TopicPartition' in log.read_text() for log in logs
            )
            if both_assigned and committed_total(kafka) > 0:
                break
            time.sleep(0.5)
        first_assignment = [
            line for line in logs[0].read_text().splitlines() if "partitions assigned" in line
        ][-1]
        second_assignment = [
            line for line in logs[1].read_text().splitlines() if "partitions assigned" in line
        ][-1]
        assert (
            first_assignment.count("TopicPartition") + second_assignment.count("TopicPartition")
            == kafka.partitions
        )

        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        killed_at = committed_total(kafka)
        deadline = time.monotonic() + 600
        while committed_total(kafka) < total and time.monotonic() < deadline:
            time.sleep(2.0)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=60) == 0, logs[1].read_text()[-3000:]
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()

    assert killed_at < total
    assert committed_total(kafka) == total
    final_assignment = [
        line for line in logs[1].read_text().splitlines() if "partitions assigned" in line
    ][-1]
    assert final_assignment.count("TopicPartition") == kafka.partitions
    assert_one_state_per_window(history_dir)
