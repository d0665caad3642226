"""A Prefect test API for the whole session, and C-MAPSS history to run flows on."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from ingest.events import FailureReported
from ingest.history.parquet import ParquetHistory
from ingest.replay import cmapss_machine_id, cmapss_readings, read_cmapss_rows
from models import TrainConfig

# History replays start here; each cycle is 30 minutes, so FD001 runs span days.
HISTORY_START = datetime(2026, 3, 2, tzinfo=UTC)
CYCLE = timedelta(minutes=30)

# Small enough for two CPU cores, large enough to beat a model trained on shuffled labels.
QUICK_TRAINING = TrainConfig(
    seed=0,
    epochs=4,
    batch_size=64,
    d_model=24,
    n_layers=3,
    stride=2,
    max_minutes=1.0,
    device="cpu",
)


@pytest.fixture(scope="session")
def prefect_api() -> Iterator[None]:
    """Run every flow of the session against one temporary Prefect server (slow to start)."""
    from prefect.testing.utilities import prefect_test_harness

    previous = os.environ.get("PREFECT_SERVER_ANALYTICS_ENABLED")
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    try:
        with prefect_test_harness(server_startup_timeout=120):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_SERVER_ANALYTICS_ENABLED", None)
        else:
            os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = previous


def write_fd001_history(
    root: Path,
    data_dir: Path,
    units: list[int],
    shift: dict[str, float] | None = None,
    failures: bool = True,
) -> tuple[datetime, datetime]:
    """Replay FD001 training engines into a Parquet history; return its time range.

    Each engine ends in a reported failure at its last cycle unless `failures` is off.
    `shift` adds an offset to channels, like a sensor that lost its calibration.
    """
    rows = read_cmapss_rows(data_dir / "cmapss" / "train_FD001.txt")
    rows = rows[np.isin(rows[:, 0], units)]
    store = ParquetHistory(root, fsync=False)
    last_seen: dict[str, datetime] = {}
    for reading in cmapss_readings(rows, HISTORY_START, units, cycle_minutes=30):
        if shift:
            channels = {
                name: value + shift.get(name, 0.0) for name, value in reading.channels.items()
            }
            reading = reading.model_copy(update={"channels": channels})
        store.write_events([reading])
        last_seen[reading.machine_id] = reading.ts
    if failures:
        store.write_events(
            FailureReported(
                machine_id=cmapss_machine_id(unit),
                ts=last_seen[cmapss_machine_id(unit)] + timedelta(minutes=1),
                kind="run to failure",
                duration_minutes=480,
            )
            for unit in units
        )
    store.close()
    return HISTORY_START - CYCLE, max(last_seen.values()) + timedelta(hours=1)


@pytest.fixture
def champion_registry(trained_registry: Path, tmp_path: Path) -> Path:
    """A private copy of the session's trained registry, free to promote into."""
    copy = tmp_path / "registry"
    shutil.copytree(trained_registry, copy)
    return copy
