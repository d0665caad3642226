"""The predictor: sensor readings in, one `MachineState` per window out.

Windows from all machines in one poll are micro-batched into a single forward pass; the
batch is cut early when it reaches `max_batch`. `flush` runs whatever is still pending,
and the stream processor calls it before every offset commit.

With a history store, every reading and machine state is written to it and `flush`
stores them before the commit. A machine seen for the first time since start-up gets its
window filled from its stored readings, so its first prediction reads a full window.

With a plant description, each machine state also names the likely causes (component and
failure mode, from the prediction's channel shares) and the recommended maintenance
action. A reading with a channel value outside that channel's valid range then goes to
the dead-letter topic, because such a value comes from a faulty sensor or a wrong unit
and would distort every window that contains it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ingest.clients import EventProducer
from ingest.events import (
    LikelyCause,
    MachineState,
    RecommendedAction,
    RemainingUsefulLife,
    SensorReading,
)
from ingest.history import HistoryError, HistoryStore
from ingest.stream import DeadLetterSink, DecodedRecord
from ingest.topics import MACHINE_STATE
from ingest.windows import MachineWindows, MissingChannelError, Window

if TYPE_CHECKING:
    from models.knowledge import Diagnosis, LikelyMode, PlantKnowledge
    from models.plant import MaintenanceActionSpec, PlantDescription

logger = logging.getLogger(__name__)

PREDICTOR_GROUP = "plantpulse-predictor"
LIKELY_CAUSE_COUNT = 3


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
    @property
    def channel_scores(self) -> dict[str, float]: ...


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
    out_of_range: int = 0
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
        plant: PlantDescription | None = None,
    ) -> None:
        self.engine = engine
        self.plant = plant
        self._knowledge: PlantKnowledge | None = None
        self._action_events: dict[str, RecommendedAction] = {}
        self._valid_ranges: list[tuple[str, float | None, float | None, str]] = []
        if plant is not None:
            from models.knowledge import PlantKnowledge  # imports torch through models

            self._knowledge = PlantKnowledge(plant)
            self._valid_ranges = [
                (channel.name, channel.valid_min, channel.valid_max, channel.unit)
                for channel in plant.channels
                if channel.valid_min is not None or channel.valid_max is not None
            ]
            self._warn_about_channels_without_evidence()
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
            out_of_range = self._out_of_range(reading)
            if out_of_range is not None:
                self.stats.out_of_range += 1
                dead_letters.send_record(record, out_of_range)
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

    def _out_of_range(self, reading: SensorReading) -> str | None:
        """Return the dead-letter reason when a channel value is outside its valid range."""
        problems = []
        for name, low, high, unit in self._valid_ranges:
            value = reading.channels.get(name)
            if value is None:
                continue
            if (low is not None and value < low) or (high is not None and value > high):
                problems.append(f"{name} = {_quantity(value, unit)} (valid {_bounds(low, high)})")
        if not problems:
            return None
        assert self.plant is not None
        return (
            f"reading of {reading.machine_id} is out of valid range: {'; '.join(problems)} "
            f"in plant description {self.plant.plant_id}; check the sensor and its unit"
        )

    def _warn_about_channels_without_evidence(self) -> None:
        assert self._knowledge is not None and self.plant is not None
        without = [c for c in self.engine.channels if c not in self._knowledge.evidence_channels]
        if without:
            logger.warning(
                "model %s reads channels %s, which observe no component in plant description "
                "%s, so they never point at a likely cause",
                self.engine.version,
                without,
                self.plant.plant_id,
            )

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
        if self._knowledge is not None:
            self._warn_about_channels_without_evidence()
        logger.info("predictor now serves model %s", self.engine.version)
        return True

    def _predict_pending(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        channels = np.stack([window.channels for window in batch])  # (B, W, C)
        context = np.stack([window.context for window in batch])  # (B, W, K)
        predictions = self.engine.predict(channels, context)
        rankings = self._rank_causes(predictions)
        states: list[MachineState] = []
        for window, prediction, (modes, advice) in zip(batch, predictions, rankings, strict=True):
            causes = [
                LikelyCause(
                    component=mode.component,
                    failure_mode=mode.failure_mode,
                    score=min(1.0, mode.score),
                    evidence=list(mode.channels),
                )
                for mode in modes
            ]
            action = self._action_event(advice)
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
                channel_scores=prediction.channel_scores,
                likely_causes=causes,
                recommended_action=action,
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

    def _rank_causes(
        self, predictions: Sequence[Prediction]
    ) -> list[tuple[tuple[LikelyMode, ...], MaintenanceActionSpec | None]]:
        """Return each prediction's likely failure modes and action; none without a plant."""
        if self._knowledge is None or not predictions:
            return [((), None)] * len(predictions)
        channels = tuple(predictions[0].channel_scores)
        scores = np.array(
            [
                [prediction.channel_scores.get(name, 0.0) for name in channels]
                for prediction in predictions
            ]
        )
        return self._knowledge.likely_modes_batch(channels, scores, LIKELY_CAUSE_COUNT)

    def _action_event(self, action: MaintenanceActionSpec | None) -> RecommendedAction | None:
        # The event is immutable and the same for every window that recommends the action.
        if action is None:
            return None
        event = self._action_events.get(action.name)
        if event is None:
            event = self._action_events[action.name] = action_event(action)
        return event


def likely_causes(diagnosis: Diagnosis, count: int = LIKELY_CAUSE_COUNT) -> list[LikelyCause]:
    """Return the ``count`` highest-ranked failure modes of a diagnosis as event fields."""
    return [
        LikelyCause(
            component=mode.component,
            failure_mode=mode.failure_mode,
            score=min(1.0, mode.score),
            evidence=mode.channels,
        )
        for mode in diagnosis.failure_modes[:count]
    ]


def recommended_action(diagnosis: Diagnosis) -> RecommendedAction | None:
    """Return the diagnosis's recommended action as an event field; None without evidence."""
    action = diagnosis.recommended_action
    if action is None:
        return None
    return action_event(action)


def action_event(action: MaintenanceActionSpec) -> RecommendedAction:
    """Return a plant description's maintenance action as a MachineState field."""
    return RecommendedAction(
        name=action.name,
        duration_minutes=action.duration_minutes,
        skill=action.skill,
        crew_size=action.crew_size,
        cost=action.cost,
        description=action.description,
        spare_parts=list(action.spare_parts),
    )


def _quantity(value: float, unit: str) -> str:
    return f"{value:g} {unit}" if unit else f"{value:g}"


def _bounds(low: float | None, high: float | None) -> str:
    if low is None:
        return f"at most {high:g}"
    if high is None:
        return f"at least {low:g}"
    return f"{low:g} to {high:g}"
