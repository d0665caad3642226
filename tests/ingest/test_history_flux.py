"""Flux reads of the InfluxDB history store.

The recorded tests serve stored InfluxDB 2 annotated-CSV responses from a local HTTP
server and check both the query sent and the points parsed. The live test writes and
reads a real InfluxDB 2 bucket, and runs only when PLANTPULSE_TEST_INFLUX_URL and
PLANTPULSE_TEST_INFLUX_TOKEN are set.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from pydantic import SecretStr

from ingest.events import SensorReading
from ingest.history import SENSOR_READING, HistoryReadError
from ingest.history.influx import InfluxHistory, flux_string

RESPONSES = Path(__file__).resolve().parents[1] / "data" / "influx"
START = datetime(2026, 2, 1, 5, 0, tzinfo=UTC)


@dataclass
class RecordedInflux:
    """A local server that returns the next queued (status, type, body) for each query."""

    url: str
    answers: list[tuple[int, str, bytes]] = field(default_factory=list)
    requests: list[dict[str, object]] = field(default_factory=list)

    def answer_with(self, file_name: str, status: int = 200) -> None:
        content_type = "application/json" if file_name.endswith(".json") else "text/csv"
        self.answers.append((status, content_type, (RESPONSES / file_name).read_bytes()))


@pytest.fixture
def recorded_influx() -> Iterator[RecordedInflux]:
    state = RecordedInflux(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            parsed = urlparse(self.path)
            state.requests.append(
                {
                    "path": parsed.path,
                    "org": parse_qs(parsed.query).get("org", [""])[0],
                    "authorization": self.headers.get("Authorization"),
                    "query": body.get("query", ""),
                }
            )
            status, content_type, payload = state.answers.pop(0)
            self.send_response(status)
            self.send_header("Content-Type", f"{content_type}; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def store_for(url: str) -> InfluxHistory:
    return InfluxHistory(url, org="plant", bucket="history", token=SecretStr("recorded-token"))


def test_range_read_sends_flux_and_parses_tables(recorded_influx: RecordedInflux) -> None:
    recorded_influx.answer_with("range_pivot.csv")
    store = store_for(recorded_influx.url)

    points = store.read(
        SENSOR_READING, START, START + timedelta(days=1), {"machine_id": ["m1", "m2", "m3"]}
    )
    store.close()

    [request] = recorded_influx.requests
    assert request["path"] == "/api/v2/query"
    assert request["org"] == "plant"
    assert request["authorization"] == "Token recorded-token"
    query = str(request["query"])
    assert 'from(bucket: "history")' in query
    assert "range(start: 2026-02-01T05:00:00.000000Z, stop: 2026-02-02T05:00:00.000000Z)" in query
    assert 'r._measurement == "sensor_reading"' in query
    assert 'r["machine_id"] == "m1" or r["machine_id"] == "m2" or r["machine_id"] == "m3"' in query
    assert 'pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")' in query

    assert [(p.tags["machine_id"], p.fields["seq"]) for p in points] == [
        ("m1", 1),
        ("m2", 17),
        ("m1", 2),
        ("m1", 3),
        ("m3", 5),
    ]
    first = points[0]
    assert first.tags == {"machine_id": "m1"}
    assert first.time == START + timedelta(minutes=7)
    assert first.fields["channel.s2"] == 641.02
    assert first.fields["context.rush"] is False
    assert isinstance(first.fields["seq"], int)
    assert "channel.s3" not in points[2].fields
    assert points[3].time == START + timedelta(minutes=21, seconds=0.5)
    assert points[1].fields["context.product"] == "B, large"
    assert set(points[4].fields) == {"channel.s2", "seq"}


def test_last_readings_asks_for_a_sorted_tail(recorded_influx: RecordedInflux) -> None:
    recorded_influx.answer_with("last_readings.csv")
    store = store_for(recorded_influx.url)
    before = START + timedelta(minutes=21)

    readings = store.last_readings("m1", 3, before=before)
    store.close()

    query = str(recorded_influx.requests[0]["query"])
    assert "range(start: 2026-01-02T05:21:00.000000Z, stop: 2026-02-01T05:21:00.000000Z)" in query
    assert 'r["machine_id"] == "m1"' in query
    assert (
        query.index("pivot(") < query.index('sort(columns: ["_time"])') < query.index("tail(n: 3)")
    )
    assert readings == [
        SensorReading(
            machine_id="m1",
            ts=START - timedelta(minutes=7),
            seq=0,
            channels={"s2": 640.91, "s3": 1588.1},
            context={"product": "A", "setting1": 0.0019},
        ),
        SensorReading(
            machine_id="m1",
            ts=START + timedelta(minutes=7),
            seq=1,
            channels={"s2": 641.02, "s3": 1589.7},
            context={"product": "A", "setting1": 0.0023},
        ),
        SensorReading(
            machine_id="m1",
            ts=START + timedelta(minutes=14),
            seq=2,
            channels={"s2": 641.15, "s3": 1590.4},
            context={"product": "A", "setting1": 0.0023},
        ),
    ]


def test_query_error_becomes_read_error(recorded_influx: RecordedInflux) -> None:
    recorded_influx.answer_with("query_error.json", status=400)
    store = store_for(recorded_influx.url)

    with pytest.raises(HistoryReadError, match=r"HTTP 400: compilation failed"):
        store.read(SENSOR_READING, START, START + timedelta(hours=1))
    store.close()


def test_flux_string_escapes_quotes_and_interpolation() -> None:
    assert flux_string('a"b') == '"a\\"b"'
    assert flux_string("back\\slash") == '"back\\\\slash"'
    assert flux_string("${secret}") == '"\\${secret}"'
    assert flux_string("two\nlines") == '"two\\nlines"'


LIVE_URL = os.environ.get("PLANTPULSE_TEST_INFLUX_URL")
LIVE_TOKEN = os.environ.get("PLANTPULSE_TEST_INFLUX_TOKEN")


@pytest.mark.skipif(
    not (LIVE_URL and LIVE_TOKEN),
    reason="live InfluxDB 2 test: set PLANTPULSE_TEST_INFLUX_URL and PLANTPULSE_TEST_INFLUX_TOKEN "
    "(and PLANTPULSE_TEST_INFLUX_ORG, PLANTPULSE_TEST_INFLUX_BUCKET) to run it",
)
def test_live_influxdb_round_trip() -> None:
    assert LIVE_URL is not None
    assert LIVE_TOKEN is not None
    store = InfluxHistory(
        LIVE_URL,
        org=os.environ.get("PLANTPULSE_TEST_INFLUX_ORG", "plantpulse"),
        bucket=os.environ.get("PLANTPULSE_TEST_INFLUX_BUCKET", "plantpulse-test"),
        token=SecretStr(LIVE_TOKEN),
    )
    machine = f"test-{uuid.uuid4().hex[:8]}"
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    written = [
        SensorReading(
            machine_id=machine,
            ts=start + timedelta(minutes=minute),
            seq=minute,
            channels={"s2": 640.0 + minute},
            context={"product": "A"},
        )
        for minute in range(1, 11)
    ]
    store.write_events(written)
    store.write_events(written[:3])
    store.flush()

    read_back = store.readings(start, start + timedelta(hours=1), machine_ids=[machine])
    last = store.last_readings(machine, 4, before=start + timedelta(minutes=10))
    store.close()

    assert read_back == written
    assert [r.seq for r in last] == [6, 7, 8, 9]
