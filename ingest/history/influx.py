"""History in InfluxDB 2 through `influxdb-client`: batched writes with retries, Flux reads.

Points are written in batches by one background thread, so the caller only waits when the
bounded buffer is full (backpressure) and in `flush`, which returns once every batch is
stored or raises HistoryWriteError. The batching `WriteApi` of influxdb-client 1.50 is not
used, because its `flush()` does nothing and so cannot tell when points are stored.
Instead this module sends each batch with the synchronous `WriteApi` and retries it.

A transient failure (connection refused or reset, timeout, HTTP 429 or 5xx) is retried
with exponential backoff and jitter, honouring `Retry-After`, until `max_retry_time_s`
after the first failure of an outage. A batch the server rejects as malformed (HTTP 400
or 422, e.g. a field type conflict) is logged at error level and dropped, because sending
it again cannot succeed. Any other failure keeps the batch for the next `flush`.
"""

from __future__ import annotations

import logging
import os
import queue
import random
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import urllib3
from influxdb_client import InfluxDBClient, WritePrecision
from influxdb_client import Point as InfluxPoint
from influxdb_client.client.flux_table import FluxTable
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException
from pydantic import SecretStr

from ingest.history.points import Point, utc
from ingest.history.store import HistoryReadError, HistoryStore, HistoryWriteError, TagFilter

logger = logging.getLogger(__name__)

# Read when no token is configured, so that a flow run started from a stored deployment,
# whose parameters never carry the token, still authenticates.
TOKEN_ENVIRONMENT_VARIABLE = "PLANTPULSE_HISTORY__TOKEN"

_REJECTED_STATUSES = (400, 422)
_SYSTEM_COLUMNS = {"result", "table", "_start", "_stop", "_time", "_measurement"}


class InfluxHistory(HistoryStore):
    """A `HistoryStore` on an InfluxDB 2 bucket (or any server of its write API)."""

    def __init__(
        self,
        url: str,
        org: str,
        bucket: str,
        token: SecretStr | None = None,
        batch_size: int = 5000,
        max_buffer_points: int = 100_000,
        retry_interval_s: float = 1.0,
        max_retry_delay_s: float = 30.0,
        max_retry_time_s: float = 60.0,
        timeout_s: float = 10.0,
        lookback: timedelta = timedelta(days=30),
    ) -> None:
        if batch_size < 1 or max_buffer_points < batch_size:
            raise ValueError(
                f"batch_size must be >= 1 and max_buffer_points >= batch_size, got "
                f"{batch_size} and {max_buffer_points}"
            )
        self.url = url
        self.org = org
        self.bucket = bucket
        self.batch_size = batch_size
        self.retry_interval_s = retry_interval_s
        self.max_retry_delay_s = max_retry_delay_s
        self.max_retry_time_s = max_retry_time_s
        self.lookback = lookback
        self.points_written = 0
        self.points_rejected = 0
        self.retries = 0

        secret = token.get_secret_value() if token is not None else ""
        secret = secret or os.environ.get(TOKEN_ENVIRONMENT_VARIABLE, "")
        # An empty token sends no Authorization header.
        self._client = InfluxDBClient(url=url, token=secret, org=org, timeout=int(timeout_s * 1000))
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._query_api = self._client.query_api()

        self._filling: list[Point] = []
        self._queue: queue.Queue[list[Point] | None] = queue.Queue(
            maxsize=max(1, max_buffer_points // batch_size)
        )
        self._failed: list[list[Point]] = []
        self._last_error: Exception | None = None
        self._give_up_at: float | None = None
        self._state_lock = threading.Lock()
        self._sender = threading.Thread(target=self._send_loop, name="influx-history", daemon=True)
        self._sender.start()
        self._closed = False

    def __repr__(self) -> str:
        return f"InfluxHistory(url={self.url!r}, org={self.org!r}, bucket={self.bucket!r})"

    # --- writing ---------------------------------------------------------------------------

    def write(self, points: Iterable[Point]) -> None:
        self._filling.extend(points)
        while len(self._filling) >= self.batch_size:
            batch = self._filling[: self.batch_size]
            del self._filling[: self.batch_size]
            self._queue.put(batch)  # blocks while the buffer is full

    def flush(self) -> None:
        with self._state_lock:
            retry = self._failed
            self._failed = []
            self._last_error = None
            self._give_up_at = None
        for batch in retry:
            self._queue.put(batch)
        if self._filling:
            self._queue.put(self._filling)
            self._filling = []
        self._queue.join()

        with self._state_lock:
            failed = sum(len(batch) for batch in self._failed)
            error = self._last_error
        if failed:
            raise HistoryWriteError(
                f"{failed} points could not be written to bucket {self.bucket!r} at {self.url}: "
                f"{error}; they stay buffered for the next flush"
            ) from error

    def close(self) -> None:
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._queue.put(None)
            self._sender.join(timeout=self.max_retry_time_s + 10)
            self._client.close()

    def _send_loop(self) -> None:
        while True:
            batch = self._queue.get()
            try:
                if batch is None:
                    return
                self._send(batch)
            except Exception as error:
                with self._state_lock:
                    self._failed.append(batch or [])
                    self._last_error = error
                logger.error(
                    "writing %d points to bucket %s at %s failed: %s",
                    len(batch or []),
                    self.bucket,
                    self.url,
                    error,
                )
            finally:
                self._queue.task_done()

    def _send(self, batch: list[Point]) -> None:
        records = [_to_influx_point(point) for point in batch]
        delay = self.retry_interval_s
        attempt = 0
        while True:
            attempt += 1
            try:
                # Each point carries microsecond precision, which the client sends as the
                # request's precision.
                self._write_api.write(bucket=self.bucket, org=self.org, record=records)
            except ApiException as error:
                if error.status in _REJECTED_STATUSES:
                    self.points_rejected += len(batch)
                    logger.error(
                        "bucket %s at %s rejected %d points (HTTP %s), so they are dropped: %s",
                        self.bucket,
                        self.url,
                        len(batch),
                        error.status,
                        _api_message(error),
                    )
                    return
                if error.status is None or not (error.status == 429 or error.status >= 500):
                    raise HistoryWriteError(
                        f"HTTP {error.status}: {_api_message(error)}; check the URL, org, "
                        "bucket and token"
                    ) from error
                wait = _retry_after(error) or delay
                failure: Exception = error
            except (urllib3.exceptions.HTTPError, OSError) as error:
                wait = delay
                failure = error
            else:
                self.points_written += len(batch)
                with self._state_lock:
                    self._give_up_at = None
                return

            now = time.monotonic()
            with self._state_lock:
                if self._give_up_at is None:
                    self._give_up_at = now + self.max_retry_time_s
                give_up_at = self._give_up_at
            if now + wait > give_up_at:
                raise HistoryWriteError(
                    f"gave up after {attempt} attempts within {self.max_retry_time_s:g} s: "
                    f"{failure}"
                ) from failure
            self.retries += 1
            logger.warning(
                "writing %d points to %s failed (attempt %d), retrying in %.1f s: %s",
                len(batch),
                self.url,
                attempt,
                wait,
                failure,
            )
            time.sleep(wait * random.uniform(0.8, 1.0))
            delay = min(delay * 2, self.max_retry_delay_s)

    # --- reading ---------------------------------------------------------------------------

    def read(
        self,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
    ) -> list[Point]:
        query = flux_range_query(self.bucket, measurement, start, stop, tags)
        return sorted(self._query(query, measurement), key=lambda point: point.time)

    def last(
        self, measurement: str, tags: Mapping[str, str], count: int, before: datetime
    ) -> list[Point]:
        if count < 1:
            return []
        before = utc(before)
        query = flux_range_query(
            self.bucket,
            measurement,
            before - self.lookback,
            before,
            {key: [value] for key, value in tags.items()},
            tail=count,
        )
        points = sorted(self._query(query, measurement), key=lambda point: point.time)
        return points[-count:]

    def _query(self, query: str, measurement: str) -> list[Point]:
        try:
            tables = self._query_api.query(query, org=self.org)
        except ApiException as error:
            raise HistoryReadError(
                f"Flux query of {measurement} in bucket {self.bucket!r} at {self.url} failed "
                f"with HTTP {error.status}: {_api_message(error)}"
            ) from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise HistoryReadError(
                f"Flux query of {measurement} at {self.url} failed: {error}"
            ) from error
        points: list[Point] = []
        for table in tables:
            points.extend(points_from_flux_table(measurement, table))
        return points


def flux_range_query(
    bucket: str,
    measurement: str,
    start: datetime,
    stop: datetime,
    tags: TagFilter | None = None,
    tail: int | None = None,
) -> str:
    """Build the Flux query for one measurement in [start, stop), one row per point."""
    lines = [
        f"from(bucket: {flux_string(bucket)})",
        f"  |> range(start: {flux_time(start)}, stop: {flux_time(stop)})",
        f"  |> filter(fn: (r) => r._measurement == {flux_string(measurement)})",
    ]
    for key, values in (tags or {}).items():
        if not values:
            raise ValueError(f"tag filter {key!r} lists no values")
        column = f"r[{flux_string(key)}]"
        condition = " or ".join(f"{column} == {flux_string(value)}" for value in values)
        lines.append(f"  |> filter(fn: (r) => {condition})")
    lines.append('  |> pivot(rowKey: ["_time"], columnKey: ["_field"], valueColumn: "_value")')
    if tail is not None:
        lines.append('  |> sort(columns: ["_time"])')
        lines.append(f"  |> tail(n: {int(tail)})")
    return "\n".join(lines)


def points_from_flux_table(measurement: str, table: FluxTable) -> list[Point]:
    """Convert one pivoted Flux table: group-key columns are tags, the others fields."""
    tag_keys = [
        column.label
        for column in table.columns
        if column.group and column.label not in _SYSTEM_COLUMNS and column.label != "_field"
    ]
    field_keys = [
        column.label
        for column in table.columns
        if not column.group and column.label not in _SYSTEM_COLUMNS and column.label != "_field"
    ]
    points = []
    for record in table.records:
        values = record.values
        moment = values.get("_time")
        if not isinstance(moment, datetime):
            raise HistoryReadError(f"Flux result row of {measurement} has no _time: {values}")
        tags = {key: str(values[key]) for key in tag_keys if values.get(key) is not None}
        fields = {key: values[key] for key in field_keys if values.get(key) is not None}
        points.append(Point(measurement, tags, utc(moment), fields))
    return points


def flux_string(value: str) -> str:
    """Quote `value` as a Flux string literal."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("${", "\\${")
    escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    return f'"{escaped}"'


def flux_time(moment: datetime) -> str:
    """Format `moment` as a Flux RFC 3339 time literal in UTC."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_influx_point(point: Point) -> InfluxPoint:
    record = InfluxPoint(point.measurement)
    for key, value in point.tags.items():
        record.tag(key, value)
    for key, field_value in point.fields.items():
        record.field(key, field_value)
    return record.time(point.time, WritePrecision.US)


def _api_message(error: ApiException) -> str:
    message: Any = getattr(error, "message", None)
    if message:
        return str(message)
    body = error.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    return str(body or error.reason)[:500]


def _retry_after(error: ApiException) -> float | None:
    value = getattr(error, "retry_after", None)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None
