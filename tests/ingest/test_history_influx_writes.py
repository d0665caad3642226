"""InfluxDB-protocol writes of the history store against a real VictoriaMetrics server.

VictoriaMetrics accepts the `/api/v2/write` line-protocol requests that influxdb-client
sends and stores each numeric field as the series `<measurement>_<field>`, which its
export API returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from ingest.events import SensorReading
from ingest.history import HistoryConfig, HistoryWriteError, open_history
from ingest.history.influx import InfluxHistory
from tests.ingest.victoria_metrics import VictoriaMetrics, find_binary, free_port

# VictoriaMetrics rejects samples far in the future, so the points are a few days old.
START = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    binary = find_binary()
    if binary is None:
        pytest.skip(
            "victoria-metrics binary not found on PATH; install it with "
            "`apt-get install -y victoria-metrics` to run the InfluxDB write tests"
        )
    server = VictoriaMetrics(binary, tmp_path / "vm-data", tmp_path / "vm.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def readings(machine: str, first: int, count: int) -> list[SensorReading]:
    return [
        SensorReading(
            machine_id=machine,
            ts=START + timedelta(seconds=seq),
            seq=seq,
            channels={"s2": 640.0 + seq / 1000, "s3": 1580.0},
            context={"setting1": 0.0023, "product": "A"},
        )
        for seq in range(first, first + count)
    ]


def test_batched_writes_arrive_once_each(victoria_metrics: VictoriaMetrics) -> None:
    store = InfluxHistory(
        victoria_metrics.url, org="plant", bucket="history", token=SecretStr("t"), batch_size=700
    )
    for machine in ("m1", "m2", "m3"):
        store.write_events(readings(machine, 1, 1000))
    store.flush()
    # A replay of 200 points that were already written must not add samples.
    store.write_events(readings("m2", 801, 200))
    store.close()

    assert victoria_metrics.count_samples("sensor_reading_seq", 3000) == 3000
    [series] = victoria_metrics.export('{__name__="sensor_reading_channel.s2",machine_id="m2"}')
    assert len(series["values"]) == 1000
    assert series["values"][0] == pytest.approx(640.001)
    assert series["timestamps"][0] == int((START + timedelta(seconds=1)).timestamp() * 1000)
    assert store.points_written == 3200


def test_outage_mid_stream_loses_no_point(
    victoria_metrics: VictoriaMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    store = open_history(
        HistoryConfig(
            backend="influxdb",
            url=victoria_metrics.url,
            org="plant",
            bucket="history",
            batch_size=250,
            max_buffer_points=1000,
            retry_interval_s=0.2,
            max_retry_delay_s=1.0,
            max_retry_time_s=60.0,
            timeout_s=2.0,
        )
    )
    assert isinstance(store, InfluxHistory)
    commits = 30
    per_commit = 100
    committed: list[int] = []

    def stream() -> None:
        # The shape of a consumer: write one poll's readings, flush, then commit.
        for commit in range(commits):
            store.write_events(readings("m1", commit * per_commit + 1, per_commit))
            store.flush()
            committed.append(commit)
            time.sleep(0.05)

    writer = threading.Thread(target=stream)
    with caplog.at_level(logging.WARNING, logger="ingest.history.influx"):
        writer.start()
        while len(committed) < 5:
            time.sleep(0.01)
        victoria_metrics.stop()
        stopped_at = len(committed)
        time.sleep(4.0)
        during_outage = len(committed) - stopped_at
        victoria_metrics.start()
        writer.join(timeout=120)
    store.close()

    assert not writer.is_alive()
    assert len(committed) == commits
    assert during_outage <= 1, "a flush returned while the server was down"
    assert store.retries > 0
    assert any("retrying in" in record.getMessage() for record in caplog.records)
    assert victoria_metrics.count_samples("sensor_reading_seq", commits * per_commit) == (
        commits * per_commit
    )


def test_flush_fails_when_no_server_answers(tmp_path: Path) -> None:
    store = InfluxHistory(
        f"http://127.0.0.1:{free_port()}",
        org="plant",
        bucket="history",
        retry_interval_s=0.1,
        max_retry_delay_s=0.2,
        max_retry_time_s=1.0,
        timeout_s=1.0,
    )
    store.write_events(readings("m1", 1, 10))

    with pytest.raises(HistoryWriteError, match="10 points could not be written"):
        store.flush()
    with pytest.raises(HistoryWriteError, match="stay buffered"):
        store.flush()
