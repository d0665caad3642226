"""The predictor as a process: SIGTERM flushes, commits, closes and exits 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.predictor import PREDICTOR_GROUP
from ingest.replay import cmapss_readings, publish_readings, read_cmapss_rows
from ingest.topics import MACHINE_STATE, SENSORS

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def committed_offsets(kafka: KafkaConfig) -> dict[int, int]:
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        group_id=PREDICTOR_GROUP,
        enable_auto_commit=False,
    )
    try:
        return {
            p: consumer.committed(TopicPartition(SENSORS, p)) or 0 for p in range(kafka.partitions)
        }
    finally:
        consumer.close()


def test_sigterm_commits_everything_processed_and_exits_zero(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    ensure_topics(kafka)
    rows = read_cmapss_rows(data_dir / "cmapss" / "test_FD001.txt")
    producer = EventProducer(kafka)
    sent = publish_readings(
        producer, cmapss_readings(rows, datetime(2026, 2, 1, tzinfo=UTC), [1, 2, 3, 4, 5, 6])
    )
    producer.close()

    environment = {
        **os.environ,
        "PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PLANTPULSE_REGISTRY_DIR": str(trained_registry),
        "PLANTPULSE_LOG_LEVEL": "INFO",
        "PLANTPULSE_HISTORY__PATH": str(tmp_path / "history"),
    }
    log = (tmp_path / "predictor.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "plantpulse.cli", "predictor"],
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while sum(committed_offsets(kafka).values()) < sent and time.monotonic() < deadline:
            time.sleep(1.0)
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()

    output = (tmp_path / "predictor.log").read_text()
    assert code == 0, output[-3000:]
    assert "SIGTERM received" in output
    records_per_partition: dict[int, int] = {}
    for record in read_topic(kafka, SENSORS):
        records_per_partition[record.partition] = records_per_partition.get(record.partition, 0) + 1
    assert committed_offsets(kafka) == {
        p: records_per_partition.get(p, 0) for p in range(kafka.partitions)
    }
    states = read_topic(kafka, MACHINE_STATE)
    windows = sum(max(0, int((rows[:, 0] == unit).sum()) - 29) for unit in range(1, 7))
    assert len(states) == windows
