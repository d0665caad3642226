"""A background thread that reads the machine-state and schedule topics into a DashboardState.

The dashboard only watches: it uses no consumer group, commits nothing and reads every
partition from the beginning, so starting it never moves another consumer's offsets.
Records that fail to decode are counted and logged and then skipped. They are not sent to
the dead-letter topic, because the predictor and the scheduler, which consume these topics
for real, already do that.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from pydantic import ValidationError

from ingest.config import KafkaConfig
from ingest.events import MachineState, Schedule
from ingest.topics import EVENT_ADAPTERS, MACHINE_STATE, SCHEDULE
from plantpulse.dashboard.state import DashboardState

logger = logging.getLogger(__name__)

DASHBOARD_TOPICS = (MACHINE_STATE, SCHEDULE)

# Invalid records are logged one by one up to this many per topic, then every 1000th.
_LOGGED_INVALID_RECORDS = 10


class TopicFollower:
    """Reads `DASHBOARD_TOPICS` into `state` until `stop()`.

    Partitions are re-checked every `topic_check_s` seconds, so topics created after the
    dashboard started are picked up. After a connection failure the thread waits
    `retry_s` seconds, reconnects and resumes at the offsets it had reached.
    """

    def __init__(
        self,
        kafka: KafkaConfig,
        state: DashboardState,
        poll_timeout_ms: int = 500,
        topic_check_s: float = 2.0,
        retry_s: float = 3.0,
    ) -> None:
        self._kafka = kafka
        self._state = state
        self._poll_timeout_ms = poll_timeout_ms
        self._topic_check_s = topic_check_s
        self._retry_s = retry_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._positions: dict[TopicPartition, int] = {}
        self._invalid_counts: dict[str, int] = {}

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the topic follower was already started")
        self._thread = threading.Thread(target=self._run, name="dashboard-follower", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask the thread to stop and wait for it; the consumer is closed on its way out."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.warning("dashboard topic follower did not stop within %.0f s", timeout_s)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _consumer_options(self) -> dict[str, Any]:
        return {
            **self._kafka.admin_options(),
            "client_id": f"{self._kafka.client_id}-dashboard",
            "group_id": None,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "allow_auto_create_topics": False,
            "max_poll_records": self._kafka.max_poll_records,
            "bootstrap_timeout_ms": 10_000,
            "reconnect_backoff_max_ms": 5_000,
        }

    def _any_broker_reachable(self) -> bool:
        """Return True if a TCP connection to one bootstrap server succeeds."""
        for address in self._kafka.bootstrap_servers.split(","):
            host, _, port = address.strip().rpartition(":")
            try:
                with socket.create_connection((host.strip("[]"), int(port)), timeout=2.0):
                    return True
            except (OSError, ValueError):
                continue
        return False

    def _run(self) -> None:
        unreachable_logged = False
        while not self._stop.is_set():
            # NOTE: kafka-python 3.0.12 leaves its I/O thread running when KafkaConsumer()
            # fails to bootstrap, so a consumer is only built once a broker accepts TCP.
            # A broker that accepts TCP but fails the bootstrap still leaks one thread a try.
            if not self._any_broker_reachable():
                if not unreachable_logged:
                    logger.warning(
                        "dashboard finds no Kafka broker at %s; retrying every %.0f s",
                        self._kafka.bootstrap_servers,
                        self._retry_s,
                    )
                    unreachable_logged = True
                self._state.set_connection(
                    "disconnected", f"no broker reachable at {self._kafka.bootstrap_servers}"
                )
                self._stop.wait(self._retry_s)
                continue

            unreachable_logged = False
            self._state.set_connection("connecting", self._kafka.bootstrap_servers)
            try:
                consumer = KafkaConsumer(**self._consumer_options())
            except KafkaError as error:
                logger.warning(
                    "dashboard failed to connect to Kafka at %s: %s; retrying in %.0f s",
                    self._kafka.bootstrap_servers,
                    error,
                    self._retry_s,
                )
                self._state.set_connection("disconnected", str(error))
                self._stop.wait(self._retry_s)
                continue

            try:
                self._follow(consumer)
            except KafkaError as error:
                logger.warning(
                    "dashboard lost the connection to Kafka at %s: %s; reconnecting in %.0f s",
                    self._kafka.bootstrap_servers,
                    error,
                    self._retry_s,
                )
                self._state.set_connection("disconnected", str(error))
                self._stop.wait(self._retry_s)
            finally:
                consumer.close()
        self._state.set_connection("stopped")

    def _follow(self, consumer: KafkaConsumer) -> None:
        assigned: set[TopicPartition] = set()
        next_check = 0.0
        logger.info(
            "dashboard reading %s from %s",
            ", ".join(DASHBOARD_TOPICS),
            self._kafka.bootstrap_servers,
        )
        while not self._stop.is_set():
            if time.monotonic() >= next_check:
                assigned = self._assign(consumer, assigned)
                next_check = time.monotonic() + self._topic_check_s
                self._state.set_connection("connected", self._kafka.bootstrap_servers)

            if not assigned:
                self._stop.wait(self._topic_check_s)
                continue

            batches = consumer.poll(timeout_ms=self._poll_timeout_ms)
            for partition, records in batches.items():
                for record in records:
                    self._apply(record.topic, record.partition, record.offset, record.value)
                    self._positions[partition] = record.offset + 1

    def _assign(
        self, consumer: KafkaConsumer, assigned: set[TopicPartition]
    ) -> set[TopicPartition]:
        """Assign every partition of the topics that exist now; keep positions already reached."""
        partitions = {
            TopicPartition(topic, partition)
            for topic in DASHBOARD_TOPICS
            for partition in consumer.partitions_for_topic(topic)
        }
        if partitions == assigned:
            return assigned

        consumer.assign(sorted(partitions))
        for partition in sorted(partitions):
            if partition in self._positions:
                consumer.seek(partition, self._positions[partition])
            else:
                consumer.seek_to_beginning(partition)
        logger.info(
            "dashboard assigned %d partitions of %s",
            len(partitions),
            ", ".join(sorted({p.topic for p in partitions})),
        )
        return partitions

    def _apply(self, topic: str, partition: int, offset: int, value: bytes | None) -> None:
        try:
            if value is None:
                raise ValueError("the record has no value")
            event = EVENT_ADAPTERS[topic].validate_json(value)
        except (ValidationError, ValueError) as error:
            self._state.count_record(topic, valid=False)
            count = self._invalid_counts.get(topic, 0) + 1
            self._invalid_counts[topic] = count
            if count <= _LOGGED_INVALID_RECORDS or count % 1000 == 0:
                logger.warning(
                    "dashboard skipped invalid record %s/%d@%d (%d so far on this topic): %s",
                    topic,
                    partition,
                    offset,
                    count,
                    str(error).splitlines()[0],
                )
            return

        self._state.count_record(topic, valid=True)
        if isinstance(event, MachineState):
            self._state.apply_machine_state(event)
        elif isinstance(event, Schedule):
            self._state.apply_schedule(event)
            logger.info(
                "dashboard shows schedule %s of plant %s (%d operations, %d maintenance windows)",
                event.schedule_id,
                event.plant_id,
                len(event.operations),
                len(event.maintenance_windows),
            )
