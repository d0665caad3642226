"""History in Parquet files, partitioned by measurement and hour: the embedded default.

Layout under the root folder, readable by pyarrow, DuckDB, Spark or any Parquet tool::

    measurement=sensor_reading/hour=2026-02-01T05/part-<ns>-<writer>-<n>.parquet

Each file has a `time` column (timestamp, microseconds, UTC), one string column per tag
and one column per field. Its schema metadata lists the tag columns and the time range.
Every flush writes one new file per touched partition under a hidden temporary name and
renames it into place with `os.replace`, so a reader never sees a half-written file.
Then it drops the rows the new file replaces (same tags and time) from the partition's
older files, rewriting each affected file the same way, so a replay leaves no
duplicates. A writer merges its own small files of a partition once there are
`compact_after_parts` of them, and at `close`.

This store's readers list a partition's files in name order and keep the newest row per
identity, so they return no duplicate even after a flush that crashed between its two
steps. Another Parquet tool would see both rows in that case, until the same points are
written again.

NOTE: when two writers write the same identity into one partition while one of them
compacts it, the older row can survive in a merged file that sorts after the newer one,
and readers then return the older value. Kafka gives each machine to one consumer at a
time, so this needs a rebalance during a compaction.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.history.points import Point, utc
from ingest.history.store import HistoryReadError, HistoryStore, HistoryWriteError, TagFilter

logger = logging.getLogger(__name__)

TIME_COLUMN = "time"
TIME_TYPE = pa.timestamp("us", tz="UTC")
_TAGS_KEY = b"plantpulse.tags"
_TIME_MIN_KEY = b"plantpulse.time_min_us"
_TIME_MAX_KEY = b"plantpulse.time_max_us"
_ROW_COLUMN = "__row"
_HOUR_FORMAT = "%Y-%m-%dT%H"
_MEASUREMENT_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
_READ_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class _FileInfo:
    """Time range from a part file's footer, cached while its size and mtime stay the same."""

    mtime_ns: int
    size: int
    time_min_us: int
    time_max_us: int


class ParquetHistory(HistoryStore):
    """A `HistoryStore` on a local or shared folder of Parquet files.

    Several processes may write under one root: each names its files with its own writer
    id, and rewrites of another writer's file go through `os.replace`.
    """

    def __init__(
        self,
        root: Path,
        max_buffer_points: int = 100_000,
        compact_after_parts: int = 32,
        fsync: bool = True,
    ) -> None:
        if max_buffer_points < 1 or compact_after_parts < 2:
            raise ValueError(
                f"max_buffer_points must be >= 1 and compact_after_parts >= 2, got "
                f"{max_buffer_points} and {compact_after_parts}"
            )
        self.root = Path(root)
        self.max_buffer_points = max_buffer_points
        self.compact_after_parts = compact_after_parts
        self.fsync = fsync
        self.writer_id = uuid.uuid4().hex[:12]
        self.points_written = 0
        self._buffer: list[Point] = []
        self._lock = threading.Lock()
        self._last_name_ns = 0
        self._counter = 0
        self._own_small_parts: dict[Path, list[Path]] = defaultdict(list)
        self._file_info: dict[Path, _FileInfo] = {}

    # --- writing ---------------------------------------------------------------------------

    def write(self, points: Iterable[Point]) -> None:
        with self._lock:
            self._buffer.extend(points)
            full = len(self._buffer) >= self.max_buffer_points
        if full:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            if not self._buffer:
                return
            by_hour: dict[tuple[str, datetime], list[Point]] = defaultdict(list)
            for point in self._buffer:
                moment = point.time if point.time.tzinfo is UTC else utc(point.time)
                hour = moment.replace(minute=0, second=0, microsecond=0)
                by_hour[(point.measurement, hour)].append(point)
            by_partition = {
                self._partition_dir(measurement, hour): points
                for (measurement, hour), points in by_hour.items()
            }
            try:
                for partition, points in by_partition.items():
                    self._write_partition(partition, points)
            except (OSError, pa.ArrowException) as error:
                raise HistoryWriteError(
                    f"writing {len(self._buffer)} points under {self.root} failed: {error}"
                ) from error
            self.points_written += len(self._buffer)
            # Cleared only after every partition is written: a failed flush is retried in
            # full, which is safe because a rewrite of the same points replaces them.
            self._buffer.clear()

    def close(self) -> None:
        self.flush()
        with self._lock:
            for partition, parts in list(self._own_small_parts.items()):
                if len(parts) >= 2:
                    self._compact(partition)

    def _write_partition(self, partition: Path, points: list[Point]) -> None:
        table = _latest_per_identity(_points_to_table(points))
        partition.mkdir(parents=True, exist_ok=True)
        new_part = partition / self._next_part_name()
        self._write_file(new_part, table)
        self._drop_replaced_rows(partition, table, new_part)

        own = self._own_small_parts[partition]
        own.append(new_part)
        if len(own) >= self.compact_after_parts:
            self._compact(partition)

    def _next_part_name(self) -> str:
        # Names sort in write order within a writer even if the wall clock steps back.
        self._last_name_ns = max(time.time_ns(), self._last_name_ns + 1)
        self._counter += 1
        return f"part-{self._last_name_ns:020d}-{self.writer_id}-{self._counter:08d}.parquet"

    def _write_file(self, path: Path, table: pa.Table) -> None:
        times = table.column(TIME_COLUMN).cast(pa.int64())
        metadata = {
            **(table.schema.metadata or {}),
            _TIME_MIN_KEY: str(pc.min(times).as_py()).encode(),
            _TIME_MAX_KEY: str(pc.max(times).as_py()).encode(),
        }
        table = table.replace_schema_metadata(metadata)
        temporary = path.parent / f".tmp-{uuid.uuid4().hex}.parquet"
        try:
            with temporary.open("wb") as stream:
                pq.write_table(table, stream, compression="zstd")
                if self.fsync:
                    stream.flush()
                    os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        if self.fsync:
            _fsync_directory(path.parent)

    def _drop_replaced_rows(self, partition: Path, new_rows: pa.Table, new_part: Path) -> None:
        """Remove from older files of `partition` every row whose identity `new_rows` has."""
        tag_columns = _tag_columns(new_rows)
        new_times = new_rows.column(TIME_COLUMN).cast(pa.int64())
        low, high = pc.min(new_times).as_py(), pc.max(new_times).as_py()
        new_identities = set(_identities(new_rows, tag_columns))

        for path in _part_files(partition):
            if path == new_part:
                continue
            info = self._info(path)
            if info is None or info.time_max_us < low or info.time_min_us > high:
                continue
            try:
                old = _read_file(path)
            except FileNotFoundError:
                continue
            same_time = pc.is_in(old.column(TIME_COLUMN).cast(pa.int64()), value_set=new_times)
            candidates = np.flatnonzero(same_time.to_numpy(zero_copy_only=False))
            if len(candidates) == 0:
                continue
            candidate_rows = old.take(candidates)
            replaced = [
                candidates[i]
                for i, identity in enumerate(_identities(candidate_rows, tag_columns))
                if identity in new_identities
            ]
            if not replaced:
                continue
            keep = np.ones(len(old), dtype=bool)
            keep[replaced] = False
            self._rewrite(path, old.filter(pa.array(keep)))
            logger.debug("replaced %d rows of %s with newer writes", len(replaced), path)

    def _rewrite(self, path: Path, remaining: pa.Table) -> None:
        if len(remaining) == 0:
            path.unlink(missing_ok=True)
            self._file_info.pop(path, None)
            return
        self._write_file(path, remaining)

    def _compact(self, partition: Path) -> None:
        """Merge this writer's small files of `partition` into its newest one."""
        parts = [path for path in self._own_small_parts.pop(partition, []) if path.exists()]
        if len(parts) < 2:
            return
        tables = []
        for path in parts:
            try:
                tables.append(_read_file(path))
            except FileNotFoundError:
                continue
        if not tables:
            return
        merged = _latest_per_identity(_concat(tables))
        newest = parts[-1]
        # The merged file takes the newest name, so for readers it still sorts after
        # every file it replaces. The older files are deleted only once it is in place.
        self._write_file(newest, merged)
        for path in parts[:-1]:
            path.unlink(missing_ok=True)
            self._file_info.pop(path, None)
        logger.debug("compacted %d files of %s into %s", len(parts), partition, newest.name)

    def _info(self, path: Path) -> _FileInfo | None:
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        cached = self._file_info.get(path)
        if cached is not None and (cached.mtime_ns, cached.size) == (
            stat.st_mtime_ns,
            stat.st_size,
        ):
            return cached
        try:
            metadata = pq.read_schema(path).metadata or {}
        except FileNotFoundError:
            return None
        if _TIME_MIN_KEY in metadata and _TIME_MAX_KEY in metadata:
            low, high = int(metadata[_TIME_MIN_KEY]), int(metadata[_TIME_MAX_KEY])
        else:
            times = _read_file(path, [TIME_COLUMN]).column(TIME_COLUMN).cast(pa.int64())
            low, high = pc.min(times).as_py(), pc.max(times).as_py()
        info = _FileInfo(stat.st_mtime_ns, stat.st_size, low, high)
        self._file_info[path] = info
        return info

    # --- reading ---------------------------------------------------------------------------

    def read(
        self,
        measurement: str,
        start: datetime,
        stop: datetime,
        tags: TagFilter | None = None,
    ) -> list[Point]:
        start, stop = utc(start), utc(stop)
        partitions = [
            partition
            for hour, partition in self._partitions(measurement)
            if hour + timedelta(hours=1) > start and hour < stop
        ]
        tables = [self._read_partition(partition) for partition in partitions]
        table = _concat([t for t in tables if len(t)])
        table = _select(table, start, stop, tags)
        return _table_to_points(measurement, table)

    def last(
        self, measurement: str, tags: Mapping[str, str], count: int, before: datetime
    ) -> list[Point]:
        if count < 1:
            return []
        before = utc(before)
        wanted = {key: [value] for key, value in tags.items()}
        found: list[pa.Table] = []
        rows = 0
        for hour, partition in reversed(self._partitions(measurement)):
            if hour >= before:
                continue
            table = _select(self._read_partition(partition), None, before, wanted)
            if len(table) == 0:
                continue
            found.append(table)
            rows += len(table)
            if rows >= count:
                break
        table = _concat(found[::-1])
        if len(table) > count:
            table = table.slice(len(table) - count)
        return _table_to_points(measurement, table)

    def _partitions(self, measurement: str) -> list[tuple[datetime, Path]]:
        folder = self.root / f"measurement={_checked_measurement(measurement)}"
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        partitions = []
        for name in names:
            if not name.startswith("hour="):
                continue
            try:
                hour = datetime.strptime(name[5:], _HOUR_FORMAT).replace(tzinfo=UTC)
            except ValueError:
                continue
            partitions.append((hour, folder / name))
        return sorted(partitions)

    def _read_partition(self, partition: Path) -> pa.Table:
        """Read every file of one partition, newest row per identity, in time order.

        A concurrent compaction may delete a listed file before it is opened; the
        partition is then listed and read again.
        """
        for _ in range(_READ_ATTEMPTS):
            try:
                tables = [_read_file(path) for path in _part_files(partition)]
            except FileNotFoundError:
                continue
            return _latest_per_identity(_concat(tables))
        raise HistoryReadError(
            f"files of {partition} kept disappearing while being read ({_READ_ATTEMPTS} tries)"
        )

    def _partition_dir(self, measurement: str, moment: datetime) -> Path:
        hour = utc(moment).strftime(_HOUR_FORMAT)
        return self.root / f"measurement={_checked_measurement(measurement)}" / f"hour={hour}"


# --- tables ----------------------------------------------------------------------------------


def _points_to_table(points: list[Point]) -> pa.Table:
    tag_keys: dict[str, None] = {}
    field_keys: dict[str, None] = {}
    for point in points:
        tag_keys.update(dict.fromkeys(point.tags))
        field_keys.update(dict.fromkeys(point.fields))
    clash = [TIME_COLUMN, _ROW_COLUMN, *tag_keys]
    overlapping = sorted(
        set(clash) & set(field_keys) | ({TIME_COLUMN, _ROW_COLUMN} & set(tag_keys))
    )
    if overlapping:
        raise HistoryWriteError(
            f"measurement {points[0].measurement}: names {overlapping} are used both as tags "
            "and fields or are reserved; rename them"
        )

    columns: dict[str, pa.Array] = {
        TIME_COLUMN: pa.array([utc(point.time) for point in points], type=TIME_TYPE)
    }
    for key in tag_keys:
        columns[key] = pa.array([point.tags.get(key) for point in points], type=pa.string())
    for key in field_keys:
        columns[key] = _field_array(points[0].measurement, key, [p.fields.get(key) for p in points])
    table = pa.table(columns)
    return table.replace_schema_metadata({_TAGS_KEY: json.dumps(list(tag_keys)).encode()})


def _field_array(measurement: str, key: str, values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        logger.warning(
            "field %s of measurement %s mixes value types in one batch; stored as text",
            key,
            measurement,
        )
        return pa.array([None if value is None else str(value) for value in values])


def _tag_columns(table: pa.Table) -> list[str]:
    metadata = table.schema.metadata or {}
    if _TAGS_KEY not in metadata:
        return []
    return [str(name) for name in json.loads(metadata[_TAGS_KEY])]


def _identities(table: pa.Table, tag_columns: list[str]) -> list[tuple[Any, ...]]:
    times = table.column(TIME_COLUMN).cast(pa.int64()).to_pylist()
    tag_values = [
        table.column(name).to_pylist() if name in table.column_names else [None] * len(table)
        for name in tag_columns
    ]
    return [(*(values[row] for values in tag_values), times[row]) for row in range(len(table))]


def _latest_per_identity(table: pa.Table) -> pa.Table:
    """Keep the last row per (tags, time) in table order, then sort by time."""
    if len(table) == 0:
        return table
    keys = [name for name in _tag_columns(table) if name in table.column_names]
    numbered = table.append_column(_ROW_COLUMN, pa.array(np.arange(len(table), dtype=np.int64)))
    latest = numbered.group_by([*keys, TIME_COLUMN], use_threads=False).aggregate(
        [(_ROW_COLUMN, "max")]
    )
    rows = np.sort(latest.column(f"{_ROW_COLUMN}_max").to_numpy())
    kept = table.take(pa.array(rows))
    order = pc.sort_indices(kept, sort_keys=[(TIME_COLUMN, "ascending")])
    return kept.take(order)


def _concat(tables: list[pa.Table]) -> pa.Table:
    """Concatenate tables with differing columns; a column whose types conflict becomes text."""
    if not tables:
        return pa.table({TIME_COLUMN: pa.array([], type=TIME_TYPE)})
    tag_keys: dict[str, None] = {}
    for table in tables:
        tag_keys.update(dict.fromkeys(_tag_columns(table)))
    try:
        merged = pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        merged = pa.concat_tables(_text_for_conflicts(tables), promote_options="permissive")
    return merged.replace_schema_metadata({_TAGS_KEY: json.dumps(list(tag_keys)).encode()})


def _text_for_conflicts(tables: list[pa.Table]) -> list[pa.Table]:
    types: dict[str, set[pa.DataType]] = defaultdict(set)
    for table in tables:
        for field in table.schema:
            if not pa.types.is_null(field.type):
                types[field.name].add(field.type)
    conflicting = {name for name, found in types.items() if len(found) > 1}
    logger.warning("stored columns %s differ in type between files; read as text", conflicting)
    converted = []
    for table in tables:
        for name in conflicting & set(table.column_names):
            index = table.column_names.index(name)
            table = table.set_column(index, name, table.column(name).cast(pa.string()))
        converted.append(table)
    return converted


def _select(
    table: pa.Table, start: datetime | None, stop: datetime | None, tags: TagFilter | None
) -> pa.Table:
    if len(table) == 0:
        return table
    mask = pa.array(np.ones(len(table), dtype=bool))
    times = table.column(TIME_COLUMN)
    if start is not None:
        mask = pc.and_(mask, pc.greater_equal(times, pa.scalar(start, type=TIME_TYPE)))
    if stop is not None:
        mask = pc.and_(mask, pc.less(times, pa.scalar(stop, type=TIME_TYPE)))
    for key, values in (tags or {}).items():
        if key not in table.column_names:
            return table.slice(0, 0)
        allowed = pa.array(list(values), type=pa.string())
        mask = pc.and_(mask, pc.is_in(table.column(key), value_set=allowed))
    return table.filter(mask)


def _table_to_points(measurement: str, table: pa.Table) -> list[Point]:
    tag_keys = [name for name in _tag_columns(table) if name in table.column_names]
    points = []
    for row in table.to_pylist():
        moment = row.pop(TIME_COLUMN)
        tags = {key: row.pop(key) for key in tag_keys}
        fields = {key: value for key, value in row.items() if value is not None}
        points.append(
            Point(measurement, {k: v for k, v in tags.items() if v is not None}, moment, fields)
        )
    return points


def _read_file(path: Path, columns: list[str] | None = None) -> pa.Table:
    with pq.ParquetFile(path) as parquet_file:
        return parquet_file.read(columns=columns)


def _part_files(partition: Path) -> list[Path]:
    try:
        names = os.listdir(partition)
    except FileNotFoundError:
        return []
    return [
        partition / name
        for name in sorted(names)
        if name.endswith(".parquet") and not name.startswith(".")
    ]


def _checked_measurement(measurement: str) -> str:
    if not _MEASUREMENT_PATTERN.match(measurement):
        raise ValueError(
            f"invalid measurement name {measurement!r}; use lower-case letters, digits and _"
        )
    return measurement


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
