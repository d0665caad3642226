"""The dashboard's topic follower against a real broker, and without one."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from ingest.clients import EventProducer, ensure_topics
from ingest.config import KafkaConfig
from ingest.topics import MACHINE_STATE, SCHEDULE
from plantpulse.broker import free_port
from plantpulse.dashboard import DashboardState, TopicFollower
from tests.dashboard.events import MACHINES, job_shop_schedule, machine_state


def wait_until(condition: Callable[[], bool], timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


@pytest.mark.broker
def test_follower_late_topics_invalid_records(kafka: KafkaConfig) -> None:
    state = DashboardState()
    follower = TopicFollower(kafka, state, poll_timeout_ms=200, topic_check_s=0.5, retry_s=0.5)
    follower.start()
    try:
        wait_until(
            lambda: state.health()["connection"]["status"] == "connected",
            30,
            f"the follower did not connect: {state.health()}",
        )

        ensure_topics(kafka, [MACHINE_STATE, SCHEDULE])
        producer = EventProducer(kafka)
        for seq in range(3):
            producer.send(MACHINE_STATE, MACHINES[0], machine_state(MACHINES[0], seq, 90.0 - seq))
        producer.send_bytes(MACHINE_STATE, MACHINES[1], b'{"machine_id": "engine-002"}')
        producer.send(SCHEDULE, "plant-1", job_shop_schedule("s1"))
        producer.send(SCHEDULE, "plant-1", job_shop_schedule("s2", shift_h=0.5))
        producer.close()

        wait_until(
            lambda: (
                (latest := state.latest_schedule("plant-1")) is not None
                and latest.schedule_id == "s2"
                and state.health()["records"].get(MACHINE_STATE) == 3
            ),
            30,
            f"the follower did not read the topics: {state.health()}",
        )
    finally:
        follower.stop()

    health = state.health()
    assert health["invalid_records"] == {MACHINE_STATE: 1}
    assert health["records"] == {MACHINE_STATE: 3, SCHEDULE: 2}
    latest = state.machine_state(MACHINES[0])
    assert latest is not None and latest.seq == 2
    assert state.snapshot()["plants"][0]["changes"]["previous_schedule_id"] == "s1"
    assert health["connection"]["status"] == "stopped"
    assert not follower.running


def test_follower_unreachable_broker() -> None:
    state = DashboardState()
    kafka = KafkaConfig(bootstrap_servers=f"127.0.0.1:{free_port()}")
    follower = TopicFollower(kafka, state, retry_s=0.2)

    follower.start()
    wait_until(
        lambda: state.health()["connection"]["status"] == "disconnected",
        10,
        f"the follower did not report the broker unreachable: {state.health()}",
    )
    detail = state.health()["connection"]["detail"]
    started = time.monotonic()
    follower.stop()

    assert detail == f"no broker reachable at {kafka.bootstrap_servers}"
    assert time.monotonic() - started < 3.0
    assert not follower.running
    assert state.health()["connection"]["status"] == "stopped"
