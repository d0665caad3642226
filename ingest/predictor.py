"""The predictor: sensor readings in, one `MachineState` per window out.

Windows from all machines in one poll are micro-batched into a single forward pass; the
batch is cut early when it reaches `max_batch`. `flush` runs whatever is still pending,
and the stream processor calls it before every offset commit.

With a history store, every reading and machine state is written to it and `flush`
stores them before the commit. A machine seen for the first time since start-up gets its
window filled from its stored readings, so its first prediction reads a full window.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from ingest.clients import EventProducer
from ingest.events import MachineState, RemainingUsefulLife, SensorReading
from ingest.history import HistoryError, HistoryStore
from ingest.stream import DeadLetterSink, DecodedRecord
from ingest.topics import MACHINE_STATE
from ingest.windows import MachineWindows, MissingChannelError, Window

logger = logging.getLogger(__name__)

PREDICTOR_GROUP = "plantpulse-predictor"


class Prediction(Protocol):
    @property
    def rul_p10(self) -> float: ...
    @property
    def rul_p50(self) -> float: ...
    @property
    def rul_p90(self) -> float: ...
    @property
    def state(self) -> str: ...
    @property
    def state_probabilities(self) -> dict[str, float]: ...
    @property
    def top_channels(self) -> tuple[str, ...]: ...


class Engine(Protocol):
    """The part of `models.InferenceEngine` that the predictor uses."""

    @property
    def version(self) -> str: ...
    @property
    def window(self) -> int: ...
    @property
    def channels(self) -> tuple[str, ...]: ...
    @property
    def context_fields(self) -> tuple[str, ...]: ...

    def predict(self, windows: np.ndarray, context: np.ndarray) -> Sequence[Prediction]: ...

    def reload_if_changed(self) -> bool: ...


@dataclass
class PredictorStats:
    readings: int = 0
    warmed_machines: int = 0
    warm_readings: int = 0
    windows: int = 0
    states: int = 0
    batches: int = 0
    per_machine: dict[str, int] = field(default_factory=dict)


class Predictor:
    """A `RecordHandler` that windows readings and publishes machine states."""

    def __init__(
        self,
        engine: Engine,
        producer: EventProducer,
        stride: int = 1,
        max_batch: int = 256,
        max_machines: int = 100_000,
        output_topic: str = MACHINE_STATE,
        max_clock_skew: timedelta = timedelta(hours=24),
        history: HistoryStore | None = None,
    ) -> None:
        self.engine = engine
        self.history = history
        self.max_clock_skew = max_clock_skew
        self.producer = producer
        self.output_topic = output_topic
        self.max_batch = max_batch
        self.stride = stride
        self.max_machines = max_machines
        self.windows = self._new_windows()
        self._pending: list[Window] = []
        # NOTE: buffers are not dropped when a rebalance takes a machine's partition away,
        # so if the partition comes back later its window still contains the readings from
        # before, with a gap in between, until W new readings have replaced them.
        self._warmed: set[str] = set()
        self.stats = PredictorStats()

    def _new_windows(self) -> MachineWindows:
        return MachineWindows(
            self.engine.window,
            self.engine.channels,
            self.engine.context_fields,
            stride=self.stride,
            max_machines=self.max_machines,
        )

    def handle(self, records: list[DecodedRecord], dead_letters: DeadLetterSink) -> None:
        latest_allowed = datetime.now(UTC) + self.max_clock_skew
        if self.history is not None:
            self._warm_from_history(records)
        accepted: list[SensorReading] = []
        for record in records:
            reading: SensorReading = record.event
            self.stats.readings += 1
            if reading.ts > latest_allowed:
                dead_letters.send_record(
                    record,
                    f"timestamp {reading.ts.isoformat()} is more than {self.max_clock_skew} "
                    "ahead of this consumer's clock",
                )
                continue
            accepted.append(reading)
            try:
                window = self.windows.push(reading)
            except MissingChannelError as error:
                dead_letters.send_record(record, str(error))
                continue
            if window is None:
                continue
            self._pending.append(window)
            if len(self._pending) >= self.max_batch:
                self._predict_pending()
        if self.history is not None:
            self.history.write_events(accepted)
        self._predict_pending()

    def flush(self) -> None:
        self._predict_pending()
        if self.history is not None:
            self.history.flush()

    def _warm_from_history(self, records: list[DecodedRecord]) -> None:
        """Fill the window of each machine new to this process from its stored readings."""
        assert self.history is not None
        first_readings: dict[str, SensorReading] = {}
        for record in records:
            reading: SensorReading = record.event
            if reading.machine_id not in self._warmed:
                first_readings.setdefault(reading.machine_id, reading)

        warmed = 0
        for machine_id, reading in first_readings.items():
            self._warmed.add(machine_id)
            try:
                earlier = self.history.last_readings(
                    machine_id, self.engine.window - 1, before=reading.ts
                )
            except HistoryError as error:
                logger.warning(
                    "reading the history of %s failed, so its window starts empty: %s",
                    machine_id,
                    error,
                )
                continue
            for old in earlier:
                try:
                    self.windows.push(old)
                except MissingChannelError:
                    continue
            if earlier:
                warmed += 1
                self.stats.warm_readings += len(earlier)
        if warmed:
            self.stats.warmed_machines += warmed
            logger.info("filled the windows of %d machines from history", warmed)

    def check_for_new_model(self) -> bool:
        """Switch to a new champion if one was promoted; buffers are rebuilt if shapes differ."""
        old_shape = (self.engine.window, self.engine.channels, self.engine.context_fields)
        self._predict_pending()
        if not self.engine.reload_if_changed():
            return False
        new_shape = (self.engine.window, self.engine.channels, self.engine.context_fields)
        if new_shape != old_shape:
            logger.warning(
                "model %s reads other windows than its predecessor; per-machine buffers restart",
                self.engine.version,
            )
            self.windows = self._new_windows()
            self._warmed.clear()
        logger.info("predictor now serves model %s", self.engine.version)
        return True

    def _predict_pending(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        channels = np.stack([window.channels for window in batch])  # (B, W, C)
        context = np.stack([window.context for window in batch])  # (B, W, K)
        predictions = self.engine.predict(channels, context)
        states: list[MachineState] = []
        for window, prediction in zip(batch, predictions, strict=True):
            state = MachineState(
                machine_id=window.machine_id,
                ts=window.reading.ts,
                seq=window.reading.seq,
                model_version=self.engine.version,
                state=prediction.state,  # type: ignore[arg-type]
                state_probabilities=prediction.state_probabilities,  # type: ignore[arg-type]
                rul=RemainingUsefulLife(
                    p10=prediction.rul_p10, p50=prediction.rul_p50, p90=prediction.rul_p90
                ),
                top_channels=list(prediction.top_channels),
            )
            self.producer.send(self.output_topic, window.machine_id, state)
            states.append(state)
            self.stats.per_machine[window.machine_id] = (
                self.stats.per_machine.get(window.machine_id, 0) + 1
            )
        if self.history is not None:
            self.history.write_events(states)
        self.stats.windows += len(batch)
        self.stats.states += len(batch)
        self.stats.batches += 1
