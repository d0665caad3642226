"""A consume-process-produce loop that owns decoding, dead letters and offset commits.

One `StreamProcessor` reads a consumer group's topics, decodes each record into its event
model, hands good events to a `RecordHandler` and sends bad records to the dead-letter
topic. The `Checkpoint` alone decides when offsets are committed: only after the handler
has flushed its pending work and the producer has flushed every output and dead letter of
the records being committed (at-least-once).

With a `Pseudonymiser`, every decoded event has its personal context values replaced
before the handler receives it. The dead-letter sink cleans raw bytes and reasons the
same way, so no output, history row or log line of a handler contains them in clear.
"""

from __future__ import annotations

import gc
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaConsumer, OffsetAndMetadata, TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from pydantic import TypeAdapter, ValidationError

from ingest.clients import EventProducer, log_end_offsets
from ingest.config import KafkaConfig
from ingest.events import DeadLetter, RawPrivacy
from ingest.privacy import Pseudonymiser
from ingest.topics import DEAD_LETTER, EVENT_ADAPTERS

logger = logging.getLogger(__name__)

MAX_RECORD_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """A valid event with the position it was read from.

    `value` contains the bytes as read, so personal values are still in clear there.
    Handlers output it only through `DeadLetterSink.send_record`, which cleans it.
    """

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    event: Any


class RecordHandler(Protocol):
    """Business logic behind a `StreamProcessor`."""

    def handle(self, records: list[DecodedRecord], dead_letters: DeadLetterSink) -> None:
        """Process one poll's valid records, each partition's records in their order."""

    def flush(self) -> None:
        """Finish all pending work, so that every handled record's outputs have been sent."""


def describe_validation_error(error: ValidationError) -> str:
    """Return a one-line summary of a pydantic error that names each failing field."""
    parts = []
    for detail in error.errors(include_url=False)[:5]:
        location = ".".join(str(part) for part in detail["loc"]) or "event"
        parts.append(f"{location}: {detail['msg']}")
    extra = error.error_count() - len(parts)
    if extra > 0:
        parts.append(f"and {extra} more")
    return "invalid event: " + "; ".join(parts)


def decode_event(adapter: TypeAdapter[Any], value: bytes | None) -> Any:
    """Decode one record value, raising ValueError with a reason fit for a dead letter."""
    if value is None:
        raise ValueError("empty record value (tombstone)")
    if len(value) > MAX_RECORD_BYTES:
        raise ValueError(f"record of {len(value)} bytes exceeds the limit of {MAX_RECORD_BYTES}")
    try:
        # Fast path: parse and validate in one call. Events pin schema_version to 1, so an
        # unknown version fails here too, and the slow path below names the reason.
        return adapter.validate_json(value)
    except ValidationError:
        pass
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"value is not UTF-8: {error}") from error
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"value is not valid JSON: {error}") from error
    if isinstance(document, dict) and document.get("schema_version", 1) != 1:
        raise ValueError(
            f"unsupported schema_version {document.get('schema_version')!r}; this build reads 1"
        )
    try:
        return adapter.validate_python(document)
    except ValidationError as error:
        raise ValueError(describe_validation_error(error)) from error


def freeze_startup_objects() -> None:
    """Collect once, then keep every object alive now out of later garbage collections.

    A service's model, libraries and plant description live as long as the process, yet
    each full collection walks them again. In the predictor those walks took up to 146 ms
    on the 2-core benchmark machine, and every record in flight waited for them. Objects
    created later are collected as before.
    """
    gc.collect()
    gc.freeze()


class DeadLetterSink:
    """Sends records that cannot be processed to the dead-letter topic, with the reason.

    With a `pseudonymiser`, personal values in the raw bytes and in the reason are
    replaced first, and raw bytes that are not JSON are withheld.
    """

    def __init__(
        self,
        producer: EventProducer,
        topic: str = DEAD_LETTER,
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._pseudonymiser = pseudonymiser
        self.counts: Counter[str] = Counter()

    def send(
        self,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        reason: str,
    ) -> None:
        raw_size = len(value or b"")
        raw_privacy: RawPrivacy = "original"
        if self._pseudonymiser is not None:
            value, raw_privacy, clear_values = self._pseudonymiser.pseudonymise_raw(value)
            reason = self._pseudonymiser.pseudonymise_text(reason, clear_values)
        letter = DeadLetter.from_record(
            topic, partition, offset, key, value, reason, raw_privacy=raw_privacy, raw_size=raw_size
        )
        self._producer.send(self._topic, letter.key, letter)
        self.counts[topic] += 1
        logger.warning("dead letter from %s[%d]@%d: %s", topic, partition, offset, reason)

    def send_record(self, record: DecodedRecord, reason: str) -> None:
        self.send(record.topic, record.partition, record.offset, record.key, record.value, reason)


class Checkpoint:
    """Tracks the next offset to commit per partition and commits after everything flushed."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        producer: EventProducer,
        handler: RecordHandler,
        interval_s: float,
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._handler = handler
        self._interval_s = interval_s
        self._pending: dict[TopicPartition, int] = {}
        self._last_commit = time.monotonic()
        self.commits = 0
        self.failed_commits = 0

    def record_processed(self, partition: TopicPartition, offset: int) -> None:
        self._pending[partition] = offset + 1

    def discard(self, partitions: set[TopicPartition]) -> int:
        """Forget the pending offsets of `partitions`; return how many had any."""
        dropped = [partition for partition in partitions if partition in self._pending]
        for partition in dropped:
            del self._pending[partition]
        return len(dropped)

    def due(self) -> bool:
        return bool(self._pending) and time.monotonic() - self._last_commit >= self._interval_s

    def commit(self, partitions: set[TopicPartition] | None = None) -> None:
        """Flush the handler and producer, then commit the processed offsets."""
        self._last_commit = time.monotonic()
        if not self._pending:
            return
        self._handler.flush()
        self._producer.flush()
        offsets = {
            partition: OffsetAndMetadata(offset, "", -1)
            for partition, offset in self._pending.items()
            if partitions is None or partition in partitions
        }
        if not offsets:
            return
        for partition in offsets:
            del self._pending[partition]
        try:
            self._consumer.commit(offsets)
        except KafkaError as error:
            # The group moved on (a rebalance, or this member timed out), so these
            # partitions' new owner resumes from the last committed offsets and their
            # records are delivered again: at-least-once still holds.
            self.failed_commits += 1
            logger.warning(
                "commit of %s failed, records since the last commit will be redelivered: %s",
                sorted(f"{tp.topic}[{tp.partition}]@{o.offset}" for tp, o in offsets.items()),
                error,
            )
            return
        self.commits += 1
        logger.debug(
            "committed %s", {f"{tp.topic}[{tp.partition}]": o.offset for tp, o in offsets.items()}
        )


class _ReleaseOnRevoke(ConsumerRebalanceListener):
    """Drops the uncommitted offsets of partitions that a rebalance takes away.

    kafka-python 3.0.12 calls this listener on the consumer's network thread, where a
    blocking commit raises, so nothing is committed here. The new owner resumes from the
    last commit, which is at most one commit interval behind, and processes those
    records again: at-least-once, with history writes that overwrite rather than repeat.
    """

    def __init__(self, processor: StreamProcessor) -> None:
        self._processor = processor

    def on_partitions_revoked(self, revoked: Any) -> None:
        dropped = self._processor.checkpoint.discard(set(revoked))
        logger.info(
            "partitions revoked: %s; %d of them had uncommitted records, which their next "
            "owner processes again",
            sorted(str(tp) for tp in revoked),
            dropped,
        )

    def on_partitions_assigned(self, assigned: Any) -> None:
        logger.info("partitions assigned: %s", sorted(str(tp) for tp in assigned))


class StreamProcessor:
    """Reads `topics` in consumer group `group_id` and feeds valid events to `handler`.

    With a `pseudonymiser`, each event reaches the handler with its personal context
    values already replaced, and dead letters are cleaned as `DeadLetterSink` describes.
    """

    def __init__(
        self,
        config: KafkaConfig,
        group_id: str,
        topics: list[str],
        handler: RecordHandler,
        producer: EventProducer,
        commit_interval_s: float = 1.0,
        pseudonymiser: Pseudonymiser | None = None,
    ) -> None:
        unknown = [topic for topic in topics if topic not in EVENT_ADAPTERS]
        if unknown:
            raise ValueError(f"no event contract for topics {unknown}")
        self.group_id = group_id
        self.topics = topics
        self.handler = handler
        self.producer = producer
        self.pseudonymiser = pseudonymiser
        self.dead_letters = DeadLetterSink(producer, pseudonymiser=pseudonymiser)
        self.consumer = KafkaConsumer(**config.consumer_options(group_id))
        self.consumer.subscribe(topics, listener=_ReleaseOnRevoke(self))
        self.checkpoint = Checkpoint(self.consumer, producer, handler, commit_interval_s)
        self.records_in = 0

    def poll_once(self, timeout_ms: int = 200) -> int:
        """Poll once, process what arrived; return the number of records read."""
        batches = self.consumer.poll(timeout_ms=timeout_ms)
        count = 0
        # One handler call for the whole poll: the predictor then runs one batched
        # inference over every partition's readings instead of one per partition.
        decoded: list[DecodedRecord] = []
        for partition, records in batches.items():
            adapter = EVENT_ADAPTERS[partition.topic]
            for record in records:
                try:
                    event = decode_event(adapter, record.value)
                except ValueError as error:
                    self.dead_letters.send(
                        record.topic,
                        record.partition,
                        record.offset,
                        record.key,
                        record.value,
                        str(error),
                    )
                    continue
                if self.pseudonymiser is not None:
                    event = self.pseudonymiser.pseudonymise_event(event)
                decoded.append(
                    DecodedRecord(
                        record.topic,
                        record.partition,
                        record.offset,
                        record.key,
                        record.value,
                        event,
                    )
                )
        if decoded:
            self.handler.handle(decoded, self.dead_letters)
        for partition, records in batches.items():
            if records:
                self.checkpoint.record_processed(partition, records[-1].offset)
                count += len(records)
        self.records_in += count
        if count == 0 or self.checkpoint.due():
            self.checkpoint.commit()
        return count

    def lag(self) -> int:
        """Return how many records of the assigned partitions are not yet committed."""
        assigned = self.consumer.assignment()
        if not assigned:
            return -1
        ends = log_end_offsets(self.consumer, list(assigned))
        total = 0
        for partition, end in ends.items():
            committed = self.consumer.committed(partition)
            total += end - (committed or 0)
        return total

    def caught_up(self) -> bool:
        """True when every assigned partition's offset is committed up to its end."""
        return self.lag() == 0

    def close(self) -> None:
        """Commit what was processed, then leave the group and close the consumer."""
        try:
            self.checkpoint.commit()
        finally:
            self.consumer.close()
