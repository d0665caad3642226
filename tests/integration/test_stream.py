"""The stream processor against a real Tansu broker: decoding, dead letters, commits."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.events import DeadLetter, SensorReading
from ingest.stream import DeadLetterSink, DecodedRecord, StreamProcessor
from ingest.topics import DEAD_LETTER, SENSORS

pytestmark = pytest.mark.broker

START = datetime(2026, 3, 1, tzinfo=UTC)


class RecordingHandler:
    """Keeps what it is handed; flush counts how often the checkpoint asked."""

    def __init__(self) -> None:
        self.events: list[SensorReading] = []
        self.flushes = 0

    def handle(self, records: list[DecodedRecord], dead_letters: DeadLetterSink) -> None:
        self.events.extend(record.event for record in records)

    def flush(self) -> None:
        self.flushes += 1


def drain(processor: StreamProcessor, expected: int, max_polls: int = 200) -> None:
    for _ in range(max_polls):
        processor.poll_once(timeout_ms=200)
        if processor.records_in >= expected and processor.caught_up():
            return
    raise AssertionError(f"read {processor.records_in} of {expected} records")


def test_bad_records_go_to_dead_letter_and_consumer_keeps_going(kafka: KafkaConfig) -> None:
    ensure_topics(kafka)
    producer = EventProducer(kafka)
    good = [
        SensorReading(
            machine_id="engine-001",
            ts=START + timedelta(hours=i),
            seq=i,
            channels={"s2": 640.0 + i},
        )
        for i in range(5)
    ]
    producer.send(SENSORS, "engine-001", good[0])
    producer.send_bytes(SENSORS, "engine-001", b"{not json")
    producer.send(SENSORS, "engine-001", good[1])
    producer.send_bytes(SENSORS, "engine-001", b"\xff\xfe\x00")
    producer.send_bytes(SENSORS, "engine-001", b'{"machine_id": "engine-001", "seq": 3}')
    producer.send_bytes(
        SENSORS,
        "engine-001",
        b'{"schema_version": 9, "machine_id": "engine-001", "ts": "2026-03-01T00:00:00Z", "seq": 3, "channels": {"s2": 1}}',
    )
    for event in good[2:]:
        producer.send(SENSORS, "engine-001", event)
    producer.flush()

    handler = RecordingHandler()
    processor = StreamProcessor(kafka, "test-group", [SENSORS], handler, EventProducer(kafka))
    drain(processor, expected=9)
    processor.close()

    assert [event.seq for event in handler.events] == [0, 1, 2, 3, 4]
    letters = [
        DeadLetter.model_validate_json(record.value) for record in read_topic(kafka, DEAD_LETTER)
    ]
    reasons = [letter.error for letter in letters]
    assert len(letters) == 4
    assert "not valid JSON" in reasons[0]
    assert "not UTF-8" in reasons[1]
    assert "ts: Field required" in reasons[2]
    assert "channels: Field required" in reasons[2]
    assert "schema_version 9" in reasons[3]
    assert letters[1].raw() == b"\xff\xfe\x00"
    assert {letter.original_topic for letter in letters} == {SENSORS}
    assert handler.flushes >= 1


def test_offsets_are_committed_to_the_end_after_processing(kafka: KafkaConfig) -> None:
    ensure_topics(kafka)
    producer = EventProducer(kafka)
    for machine in range(8):
        for seq in range(3):
            producer.send(
                SENSORS,
                f"engine-{machine:03d}",
                SensorReading(
                    machine_id=f"engine-{machine:03d}", ts=START, seq=seq, channels={"s2": 1.0}
                ),
            )
    producer.flush()

    processor = StreamProcessor(
        kafka, "commit-group", [SENSORS], RecordingHandler(), EventProducer(kafka)
    )
    drain(processor, expected=24)
    processor.close()

    records_per_partition = Counter(record.partition for record in read_topic(kafka, SENSORS))
    check = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, group_id="commit-group", enable_auto_commit=False
    )
    committed = {
        p: check.committed(TopicPartition(SENSORS, p)) or 0 for p in range(kafka.partitions)
    }
    check.close()
    assert sum(records_per_partition.values()) == 24
    assert committed == {p: records_per_partition[p] for p in range(kafka.partitions)}


def test_producer_partitions_keys_as_kafka_python_does(kafka: KafkaConfig) -> None:
    ensure_topics(kafka, [SENSORS])
    machines = [f"machine-{n:03d}" for n in range(40)]
    cached = EventProducer(kafka)
    for machine in machines:
        cached.send_bytes(SENSORS, machine, b'{"by": "cached"}')
    cached.close()
    plain = KafkaProducer(**kafka.producer_options())
    for machine in machines:
        plain.send(SENSORS, key=machine.encode(), value=b'{"by": "default"}')
    plain.close()

    partitions: dict[bytes, dict[str, int]] = {}
    for record in read_topic(kafka, SENSORS):
        by = "cached" if b"cached" in record.value else "default"
        partitions.setdefault(record.key, {})[by] = record.partition

    assert len(partitions) == 40
    assert {p["cached"] for p in partitions.values()} == set(range(kafka.partitions))
    for key, chosen in partitions.items():
        assert chosen["cached"] == chosen["default"], key
