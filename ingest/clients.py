"""Thin wrappers over kafka-python: topic creation, an event producer, catch-up checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from ingest.config import KafkaConfig
from ingest.events import Event
from ingest.topics import ALL_TOPICS

logger = logging.getLogger(__name__)


def ensure_topics(config: KafkaConfig, topics: Iterable[str] = ALL_TOPICS) -> list[str]:
    """Create the topics that do not exist yet; return the names created."""
    admin = KafkaAdminClient(**config.admin_options())
    try:
        existing = set(admin.list_topics())
        missing = [name for name in topics if name not in existing]
        if not missing:
            return []
        new_topics = [
            NewTopic(
                name, num_partitions=config.partitions, replication_factor=config.replication_factor
            )
            for name in missing
        ]
        try:
            admin.create_topics(new_topics)
        except TopicAlreadyExistsError:
            logger.info("another client created some of %s first", missing)
        logger.info("created topics %s with %d partitions", missing, config.partitions)
        return missing
    finally:
        admin.close()


class EventProducer:
    """Sends events as JSON, keyed so that one key's events keep their order.

    A keyed record goes to the partition that kafka-python's default partitioner (and
    the Java client's) picks: murmur2 of the key modulo the partition count. The choice
    is cached per topic and key, so each record skips the partitioner's metadata lookups
    and hash. The partition count is re-read every `PARTITIONS_TTL_S` seconds.
    """

    PARTITIONS_TTL_S = 60.0

    def __init__(self, config: KafkaConfig) -> None:
        self._producer = KafkaProducer(**config.producer_options())
        self._partitions: dict[str, tuple[float, int, dict[bytes, int]]] = {}
        self.sent = 0

    def send(self, topic: str, key: str | None, event: Event) -> None:
        self.send_bytes(topic, key, event.to_json_bytes())

    def send_bytes(self, topic: str, key: str | None, value: bytes) -> None:
        if key is None:
            self._producer.send(topic, value=value)
        else:
            encoded = key.encode("utf-8")
            partition = self._partition(topic, encoded)
            self._producer.send(topic, key=encoded, value=value, partition=partition)
        self.sent += 1

    def _partition(self, topic: str, key: bytes) -> int:
        now = time.monotonic()
        cached = self._partitions.get(topic)
        if cached is None or now - cached[0] > self.PARTITIONS_TTL_S:
            # partitions_for waits for the topic's metadata, as a send without a partition does.
            count = len(self._producer.partitions_for(topic))
            if cached is None or cached[1] != count:
                cached = (now, count, {})
            else:
                cached = (now, count, cached[2])
            self._partitions[topic] = cached
        _, count, by_key = cached
        partition = by_key.get(key)
        if partition is None:
            partition = (murmur2(key) & 0x7FFFFFFF) % count
            by_key[key] = partition
        return partition

    def flush(self, timeout_s: float | None = None) -> None:
        """Block until every sent record is acknowledged by the broker."""
        self._producer.flush(timeout=timeout_s)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()


def log_end_offsets(
    consumer: KafkaConsumer, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Return the log-end offset of each partition, as far as this consumer can tell.

    NOTE: Tansu v0.6.0 responds to ListOffsets(latest) with an offset that can be one short of
    the log end, while its fetch responses carry the right high watermark. So the larger
    of the listed end and the high watermark of the last fetch is used; before a
    partition's first fetch only the listed end is known.
    """
    listed: dict[TopicPartition, int] = consumer.end_offsets(partitions)
    return {tp: max(end, consumer.highwater(tp) or 0) for tp, end in listed.items()}


def read_topic(config: KafkaConfig, topic: str, timeout_s: float = 30.0) -> list[Any]:
    """Read every record now on `topic` without a consumer group, in order per partition."""
    consumer = KafkaConsumer(
        **{**config.admin_options(), "enable_auto_commit": False, "auto_offset_reset": "earliest"}
    )
    try:
        partitions = [
            TopicPartition(topic, partition)
            for partition in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while True:
            batches = consumer.poll(timeout_ms=300)
            for batch in batches.values():
                records.extend(batch)
            fetched = all(consumer.highwater(tp) is not None for tp in partitions)
            ends = log_end_offsets(consumer, partitions)
            if (
                not batches
                and fetched
                and all(consumer.position(tp) >= ends[tp] for tp in partitions)
            ):
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"reading {topic} did not reach its end within {timeout_s:.0f} s"
                )
    finally:
        consumer.close()
