from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from ingest.events import SensorReading
from ingest.windows import MachineWindows, MissingChannelError

START = datetime(2026, 3, 1, tzinfo=UTC)


def reading(machine: str, seq: int, value: float, context: float = 0.5) -> SensorReading:
    return SensorReading(
        machine_id=machine,
        ts=START + timedelta(hours=seq),
        seq=seq,
        channels={"a": value, "b": -value, "ignored": 1.0},
        context={"load": context},
    )


def test_window_appears_when_buffer_is_full_and_is_oldest_first() -> None:
    windows = MachineWindows(window=3, channels=["a", "b"], context_fields=["load"])

    outputs = [windows.push(reading("m1", seq, float(seq))) for seq in range(1, 6)]

    assert outputs[0] is None
    assert outputs[1] is None
    assert outputs[2] is not None
    np.testing.assert_array_equal(outputs[2].channels[:, 0], [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(outputs[4].channels[:, 0], [3.0, 4.0, 5.0])
    np.testing.assert_array_equal(outputs[4].channels[:, 1], [-3.0, -4.0, -5.0])
    assert outputs[4].context.shape == (3, 1)


def test_machines_have_separate_buffers() -> None:
    windows = MachineWindows(window=2, channels=["a"], context_fields=[])

    windows.push(reading("m1", 1, 1.0))
    assert windows.push(reading("m2", 1, 10.0)) is None
    second = windows.push(reading("m2", 2, 20.0))

    assert second is not None
    np.testing.assert_array_equal(second.channels[:, 0], [10.0, 20.0])
    assert len(windows) == 2


def test_stride_emits_every_nth_window() -> None:
    windows = MachineWindows(window=2, channels=["a"], context_fields=[], stride=3)

    emitted = [
        seq for seq in range(1, 12) if windows.push(reading("m1", seq, float(seq))) is not None
    ]

    assert emitted == [2, 5, 8, 11]


def test_duplicate_and_late_readings_are_skipped() -> None:
    windows = MachineWindows(window=2, channels=["a"], context_fields=[])
    windows.push(reading("m1", 5, 5.0))

    assert windows.push(reading("m1", 5, 5.0)) is None
    assert windows.push(reading("m1", 4, 4.0)) is None
    result = windows.push(reading("m1", 6, 6.0))

    assert windows.skipped == 2
    assert result is not None
    np.testing.assert_array_equal(result.channels[:, 0], [5.0, 6.0])


def test_missing_channel_raises_with_its_name() -> None:
    windows = MachineWindows(window=2, channels=["a", "zz"], context_fields=[])

    with pytest.raises(MissingChannelError, match="'zz'"):
        windows.push(reading("m1", 1, 1.0))


def test_machine_cap_stops_tracking_new_machines() -> None:
    windows = MachineWindows(window=1, channels=["a"], context_fields=[], max_machines=2)

    results = [windows.push(reading(f"m{index}", 1, 1.0)) for index in range(4)]

    assert [r is not None for r in results] == [True, True, False, False]
    assert windows.rejected_machines == 2
    assert len(windows) == 2
