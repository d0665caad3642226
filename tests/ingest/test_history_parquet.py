"""The Parquet history store on a real folder: round trips, replays, concurrent readers."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from ingest.events import (
    FailureReported,
    LikelyCause,
    MachineState,
    MaintenanceDone,
    MaintenanceWindowOut,
    RecommendedAction,
    RemainingUsefulLife,
    Schedule,
    ScheduledOperationOut,
    ScheduleKpis,
    SensorReading,
)
from ingest.history import (
    FAILURE,
    MACHINE_STATE,
    MAINTENANCE,
    MAINTENANCE_WINDOW,
    SCHEDULE,
    SCHEDULED_OPERATION,
    SENSOR_READING,
    HistoryConfig,
    HistoryWriteError,
    machine_state_from_point,
    open_history,
)
from ingest.history.parquet import ParquetHistory

START = datetime(2026, 2, 1, 5, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def reading(machine: str, seq: int, value: float = 1.0) -> SensorReading:
    return SensorReading(
        machine_id=machine,
        ts=START + timedelta(minutes=7 * seq),
        seq=seq,
        channels={"s2": 640.0 + value, "s3": float(seq)},
        context={"setting1": 0.5, "product": "A", "line": 3, "rush": False},
    )


def state(machine: str, seq: int) -> MachineState:
    return MachineState(
        machine_id=machine,
        ts=START + timedelta(minutes=7 * seq),
        seq=seq,
        model_version="v0003",
        state="degrading",
        state_probabilities={"healthy": 0.2, "degrading": 0.7, "critical": 0.1},
        rul=RemainingUsefulLife(p10=20.0, p50=35.5, p90=60.0),
        top_channels=["s2", "s3"],
    )


def schedule() -> Schedule:
    return Schedule(
        schedule_id="sched-1",
        plant_id="plant-1",
        created=START,
        plan_version="3-abc",
        model_versions=["v0003"],
        operations=[
            ScheduledOperationOut(
                job_id="job-1",
                operation=0,
                machine_id="m1",
                start=START + timedelta(hours=1),
                end=START + timedelta(hours=2, minutes=30),
            )
        ],
        maintenance_windows=[
            MaintenanceWindowOut(
                machine_id="m2",
                start=START + timedelta(hours=3),
                end=START + timedelta(hours=11),
                reason="RUL p10 used up",
            )
        ],
        kpis=ScheduleKpis(
            makespan_minutes=150.0,
            weighted_tardiness_minutes=0.0,
            maintenance_count=1,
            maintenance_cost=100.0,
        ),
        solver_status="optimal",
        objective=150.0,
        bound=150.0,
        gap=0.0,
        solve_seconds=0.2,
    )


def test_every_event_kind_reads_back(tmp_path: Path) -> None:
    store = open_history(HistoryConfig(path=tmp_path))
    events = [
        *(reading("m1", seq) for seq in range(1, 21)),
        state("m1", 20),
        schedule(),
        MaintenanceDone(machine_id="m2", ts=START, kind="preventive", duration_minutes=480),
        FailureReported(
            machine_id="m1",
            ts=START + DAY / 2,
            kind="bearing",
            component="hpc",
            duration_minutes=60,
        ),
    ]
    store.write_events(events)
    store.flush()

    readings = store.readings(START, START + DAY)
    assert [r.seq for r in readings] == list(range(1, 21))
    assert readings[4] == reading("m1", 5)
    assert isinstance(readings[4].context["line"], int)
    assert readings[4].context["rush"] is False

    [stored_state] = store.read(MACHINE_STATE, START, START + DAY)
    assert stored_state.tags == {"machine_id": "m1"}
    assert stored_state.fields["rul_p50"] == 35.5
    assert stored_state.fields["model_version"] == "v0003"
    assert stored_state.fields["probability.degrading"] == 0.7
    assert stored_state.fields["top_channels"] == "s2,s3"

    [summary] = store.read(SCHEDULE, START, START + DAY)
    assert summary.tags == {"plant_id": "plant-1"}
    assert summary.fields["schedule_id"] == "sched-1"
    assert summary.fields["maintenance_count"] == 1
    [operation] = store.read(SCHEDULED_OPERATION, START, START + DAY)
    assert operation.tags == {"plant_id": "plant-1", "schedule_id": "sched-1", "machine_id": "m1"}
    assert operation.fields["duration_minutes"] == 90.0
    [window] = store.read(MAINTENANCE_WINDOW, START, START + DAY)
    assert window.fields["reason"] == "RUL p10 used up"

    [maintenance] = store.read(MAINTENANCE, START, START + DAY)
    assert maintenance.fields == {"kind": "preventive", "duration_minutes": 480}
    [failure] = store.read(FAILURE, START, START + DAY)
    assert failure.fields["component"] == "hpc"
    assert failure.time == START + DAY / 2


def test_machine_state_with_causes_reads_back(tmp_path: Path) -> None:
    diagnosed = state("m1", 4).model_copy(
        update={
            "channel_scores": {"s2": 0.25, "s3": 0.75},
            "likely_causes": [
                LikelyCause(
                    component="hpc", failure_mode="hpc-degradation", score=0.9, evidence=["s3"]
                ),
                LikelyCause(
                    component="lpc", failure_mode="lpc-degradation", score=0.1, evidence=["s2"]
                ),
            ],
            "recommended_action": RecommendedAction(
                name="hpc-overhaul",
                duration_minutes=480,
                skill="engine-mechanic",
                crew_size=2,
                cost=100.0,
                description="replace worn HPC blades and seals",
                spare_parts=["hpc blade set"],
            ),
        }
    )
    store = open_history(HistoryConfig(path=tmp_path))
    store.write_events([state("m1", 3), diagnosed])
    store.flush()

    older, newer = store.read(MACHINE_STATE, START, START + DAY)

    assert machine_state_from_point(newer) == diagnosed
    assert machine_state_from_point(older) == state("m1", 3)
    assert machine_state_from_point(older).channel_scores == {}
    assert machine_state_from_point(older).recommended_action is None
    with pytest.raises(ValueError, match="is not a machine state"):
        machine_state_from_point(dataclasses.replace(older, measurement=SENSOR_READING))


def test_read_filters_by_time_range_and_machine(tmp_path: Path) -> None:
    store = ParquetHistory(tmp_path)
    store.write_events([reading(machine, seq) for seq in range(1, 31) for machine in ("m1", "m2")])
    store.flush()

    start, stop = START + timedelta(minutes=7 * 10), START + timedelta(minutes=7 * 20)
    only_m2 = store.readings(start, stop, machine_ids=["m2"])

    assert [r.seq for r in only_m2] == list(range(10, 20))
    assert {r.machine_id for r in only_m2} == {"m2"}
    assert store.readings(START - DAY, START) == []
    assert store.read(SENSOR_READING, START, stop, {"machine_id": ["absent"]}) == []


def test_replay_overwrites_and_never_duplicates(tmp_path: Path) -> None:
    store = ParquetHistory(tmp_path)
    store.write_events([reading("m1", seq) for seq in range(1, 41)])
    store.flush()

    # An at-least-once replay resends seq 31..40, now with other values, plus new readings.
    store.write_events([reading("m1", seq, value=5.0) for seq in range(31, 51)])
    store.flush()

    readings = store.readings(START, START + DAY)
    assert [r.seq for r in readings] == list(range(1, 51))
    assert readings[29].channels["s2"] == 641.0
    assert readings[30].channels["s2"] == 645.0
    # Any Parquet tool that reads the folder finds each identity once, not only this store.
    table = ds.dataset(
        tmp_path / "measurement=sensor_reading", format="parquet", partitioning="hive"
    ).to_table()
    keys = Counter(zip(table["machine_id"].to_pylist(), table["time"].to_pylist(), strict=True))
    assert table.num_rows == 50
    assert max(keys.values()) == 1
    assert set(table.column_names) >= {"time", "machine_id", "seq", "channel.s2", "hour"}


def test_last_readings_cross_hour_partitions(tmp_path: Path) -> None:
    store = ParquetHistory(tmp_path)
    store.write_events([reading(machine, seq) for seq in range(1, 61) for machine in ("m1", "m2")])
    store.flush()

    before = START + timedelta(minutes=7 * 45)
    last = store.last_readings("m1", 29, before=before)

    assert [r.seq for r in last] == list(range(16, 45))
    assert {r.machine_id for r in last} == {"m1"}
    assert store.last_readings("m1", 5, before=START) == []
    assert [r.seq for r in store.last_readings("m2", 100, before=before)] == list(range(1, 45))


def test_partition_files_are_compacted(tmp_path: Path) -> None:
    store = ParquetHistory(tmp_path, compact_after_parts=4)
    for seq in range(1, 9):
        store.write_events([reading("m1", seq)])
        store.flush()
    store.close()

    partition = tmp_path / "measurement=sensor_reading" / "hour=2026-02-01T05"
    files = sorted(partition.glob("*.parquet"))
    assert len(files) <= 2
    assert [r.seq for r in ParquetHistory(tmp_path).readings(START, START + DAY)] == list(
        range(1, 9)
    )


def test_failed_flush_keeps_points_for_retry(tmp_path: Path) -> None:
    blocked = tmp_path / "history"
    blocked.write_text("a file where the history folder should be")
    store = ParquetHistory(blocked)
    store.write_events([reading("m1", seq) for seq in range(1, 6)])

    with pytest.raises(HistoryWriteError, match="writing 5 points"):
        store.flush()
    blocked.unlink()
    store.flush()

    assert [r.seq for r in store.readings(START, START + DAY)] == [1, 2, 3, 4, 5]


def test_concurrent_reader_never_sees_duplicates_or_gaps(tmp_path: Path) -> None:
    writer = ParquetHistory(tmp_path, compact_after_parts=3, fsync=False)
    reader = ParquetHistory(tmp_path)
    batches = 40
    done = threading.Event()
    failures: list[BaseException] = []

    def write() -> None:
        try:
            for batch in range(batches):
                # Each batch replays the previous batch's readings and adds five new ones.
                first = max(1, batch * 5 - 4)
                writer.write_events(
                    [reading(m, seq) for seq in range(first, batch * 5 + 6) for m in ("m1", "m2")]
                )
                writer.flush()
        except BaseException as error:
            failures.append(error)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen_counts: list[int] = []
    while not done.is_set():
        readings = reader.readings(START, START + 10 * DAY)
        identities = [(r.machine_id, r.seq) for r in readings]
        assert len(identities) == len(set(identities)), "a reader saw a duplicate"
        for machine in ("m1", "m2"):
            seqs = [seq for m, seq in identities if m == machine]
            assert seqs == list(range(1, len(seqs) + 1)), "a reader saw a gap"
        seen_counts.append(len(identities))
    thread.join()

    assert failures == []
    assert len(seen_counts) >= 3
    assert seen_counts == sorted(seen_counts)
    assert len(reader.readings(START, START + 10 * DAY)) == 2 * batches * 5
