"""Per-machine ring buffers that turn a stream of readings into model windows."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ingest.events import SensorReading

logger = logging.getLogger(__name__)


class MissingChannelError(ValueError):
    """A reading lacks a channel or context field the model needs."""


@dataclass(slots=True)
class _Buffer:
    # Each reading is written twice, at row i and row i + W, so the last W readings are
    # always one contiguous slice and a window needs no reordering.
    channels: np.ndarray  # (2W, C)
    context: np.ndarray  # (2W, K)
    filled: int = 0
    last_seq: int = -1
    since_window: int = 0


@dataclass(frozen=True, slots=True)
class Window:
    """The last W readings of one machine, oldest first."""

    machine_id: str
    reading: SensorReading
    channels: np.ndarray  # (W, C)
    context: np.ndarray  # (W, K)


class MachineWindows:
    """One ring buffer of the last `window` readings per machine.

    A reading whose `seq` is not above the machine's last one is a duplicate or arrived
    late, and is skipped; `push` returns None for it and counts it in `skipped`.
    """

    def __init__(
        self,
        window: int,
        channels: Sequence[str],
        context_fields: Sequence[str],
        stride: int = 1,
        max_machines: int = 100_000,
    ) -> None:
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be at least 1, got {window} and {stride}")
        self.window = window
        self.channels = tuple(channels)
        self.context_fields = tuple(context_fields)
        self.stride = stride
        self.max_machines = max_machines
        self._buffers: dict[str, _Buffer] = {}
        self.skipped = 0
        self.rejected_machines = 0

    def __len__(self) -> int:
        return len(self._buffers)

    def _extract(self, reading: SensorReading) -> tuple[np.ndarray, np.ndarray]:
        try:
            values = np.fromiter(
                map(reading.channels.__getitem__, self.channels),
                dtype=np.float32,
                count=len(self.channels),
            )
        except KeyError as error:
            raise MissingChannelError(
                f"reading of {reading.machine_id} lacks channel {error.args[0]!r} the model needs"
            ) from None
        context = np.zeros(len(self.context_fields), dtype=np.float32)
        for index, name in enumerate(self.context_fields):
            value = reading.context.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise MissingChannelError(
                    f"reading of {reading.machine_id} lacks numeric context field {name!r}"
                )
            context[index] = value
        return values, context

    def push(self, reading: SensorReading) -> Window | None:
        """Add a reading; return the machine's window when one is due, else None."""
        values, context = self._extract(reading)
        buffer = self._buffers.get(reading.machine_id)
        if buffer is None:
            if len(self._buffers) >= self.max_machines:
                self.rejected_machines += 1
                if self.rejected_machines == 1 or self.rejected_machines % 1000 == 0:
                    logger.warning(
                        "tracking the maximum of %d machines; readings of new machine %s are "
                        "not windowed (%d rejected so far)",
                        self.max_machines,
                        reading.machine_id,
                        self.rejected_machines,
                    )
                return None
            buffer = _Buffer(
                channels=np.zeros((2 * self.window, len(self.channels)), dtype=np.float32),
                context=np.zeros((2 * self.window, len(self.context_fields)), dtype=np.float32),
            )
            self._buffers[reading.machine_id] = buffer

        if reading.seq <= buffer.last_seq:
            self.skipped += 1
            return None
        buffer.last_seq = reading.seq

        row = buffer.filled % self.window
        buffer.channels[row] = buffer.channels[row + self.window] = values
        buffer.context[row] = buffer.context[row + self.window] = context
        buffer.filled += 1
        if buffer.filled < self.window:
            return None
        buffer.since_window += 1
        if buffer.since_window < self.stride and buffer.filled > self.window:
            return None
        buffer.since_window = 0

        # Copies, because later readings of this machine overwrite the buffer rows.
        latest = slice(row + 1, row + 1 + self.window)
        return Window(
            reading.machine_id,
            reading,
            buffer.channels[latest].copy(),
            buffer.context[latest].copy(),
        )

    def forget(self, machine_id: str) -> None:
        """Drop a machine's buffer (its partition moved to another consumer)."""
        self._buffers.pop(machine_id, None)
