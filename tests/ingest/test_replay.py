from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ingest.datasets import dataset_path
from ingest.replay import CMAPSS_AGE_FIELD, CMAPSS_CONTEXT, cmapss_readings, read_cmapss_rows
from models import AGE_FIELD, SETTING_FIELDS


def test_cmapss_readings_context_settings_and_cycle(data_dir: Path) -> None:
    rows = read_cmapss_rows(dataset_path("cmapss", "train_FD001.txt", data_dir))

    readings = list(cmapss_readings(rows, datetime(2026, 1, 1, tzinfo=UTC), units=[3]))

    assert (CMAPSS_AGE_FIELD, CMAPSS_CONTEXT) == (AGE_FIELD, SETTING_FIELDS)
    engine_rows = rows[rows[:, 0] == 3]
    assert len(readings) == len(engine_rows)
    for reading, row in zip(readings, engine_rows, strict=True):
        assert reading.context[AGE_FIELD] == reading.seq == int(row[1])
        assert [reading.context[name] for name in SETTING_FIELDS] == row[2:5].tolist()
