"""Training runs from history or a dataset, the held-out split, and evaluation cuts.

A run is one machine's readings from a start (the first reading, or the reading after a
maintenance or failure) up to a reported failure. The last reading before the failure
has a remaining useful life (RUL) of 0 cycles, and every earlier one the difference of
sequence numbers, so `seq` must count cycles. Readings after a machine's last failure, or
ended by maintenance, have no known RUL and are not used for training.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

from ingest.events import SensorReading
from models import AGE_FIELD, SENSOR_CHANNELS, SETTING_FIELDS, EngineRun

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MachineRuns:
    """Run-to-failure runs and the machine each came from, keyed by `EngineRun.unit`."""

    runs: list[EngineRun]
    machine_of: dict[int, str]
    data_files: tuple[Path, ...] = ()  # dataset files the runs were read from, if any
    source: str = ""  # where the runs came from, for reports
    # Whether every reading carried its age (`AGE_FIELD`). Without it a model must not
    # read the age, because the same producers could then not feed it.
    ages_reported: bool = True

    def machines(self) -> list[str]:
        return sorted(set(self.machine_of.values()))

    def only(self, machines: Sequence[str]) -> MachineRuns:
        wanted = set(machines)
        runs = [run for run in self.runs if self.machine_of[run.unit] in wanted]
        machine_of = {run.unit: self.machine_of[run.unit] for run in runs}
        return MachineRuns(runs, machine_of, self.data_files, self.source, self.ages_reported)


@dataclass(frozen=True)
class HoldoutSplit:
    """Training runs and the runs of machines held out for comparing models."""

    train: MachineRuns
    holdout: MachineRuns


def runs_from_history(
    readings: Sequence[SensorReading],
    failures: dict[str, list[datetime]],
    maintenance: dict[str, list[datetime]],
) -> MachineRuns:
    """Cut each machine's readings into runs that end in a reported failure.

    NOTE: runs need the C-MAPSS layout (channels s1..s21, numeric context setting1..3)
    because `EngineRun` stores sensors in that order; runs lacking one are skipped.
    """
    by_machine: dict[str, list[SensorReading]] = defaultdict(list)
    for reading in readings:
        by_machine[reading.machine_id].append(reading)

    runs: list[EngineRun] = []
    machine_of: dict[int, str] = {}
    skipped = 0
    for machine_id in sorted(by_machine):
        machine_readings = sorted(by_machine[machine_id], key=lambda r: (r.ts, r.seq))
        ends = sorted(failures.get(machine_id, []))
        resets = sorted([*ends, *maintenance.get(machine_id, [])])
        for failure in ends:
            previous = [moment for moment in resets if moment < failure]
            begin = previous[-1] if previous else None
            segment = [
                r for r in machine_readings if r.ts <= failure and (begin is None or r.ts > begin)
            ]
            if len(segment) < 2:
                continue
            try:
                run = _engine_run(len(runs) + 1, segment)
            except (KeyError, TypeError, ValueError) as error:
                skipped += 1
                logger.warning(
                    "run of %s ending at %s skipped: %s", machine_id, failure.isoformat(), error
                )
                continue
            runs.append(run)
            machine_of[run.unit] = machine_id
    if skipped:
        logger.warning("%d runs skipped for readings outside the C-MAPSS layout", skipped)
    ages_reported = all(_has_age(reading) for reading in readings)
    return MachineRuns(runs, machine_of, source="history", ages_reported=ages_reported)


def runs_from_engines(
    engines: Sequence[EngineRun],
    machine_ids: Sequence[str],
    data_files: Sequence[Path] = (),
    source: str = "dataset",
) -> MachineRuns:
    """Wrap dataset engines, e.g. C-MAPSS training engines, with their machine ids."""
    return MachineRuns(
        list(engines),
        {engine.unit: machine for engine, machine in zip(engines, machine_ids, strict=True)},
        tuple(data_files),
        source,
    )


def split_holdout(runs: MachineRuns, fraction: float, seed: int) -> HoldoutSplit:
    """Hold out whole machines, reproducibly for a seed; at least one on each side."""
    machines = runs.machines()
    if len(machines) < 2:
        raise ValueError(
            f"need run-to-failure runs of at least 2 machines to hold one out, found "
            f"{len(machines)}; report failures (FailureReported) or train from a dataset"
        )
    order = np.random.default_rng(seed).permutation(len(machines))
    count = min(len(machines) - 1, max(1, round(len(machines) * fraction)))
    held_out = [machines[i] for i in sorted(order[:count].tolist())]
    kept = [machine for machine in machines if machine not in set(held_out)]
    return HoldoutSplit(train=runs.only(kept), holdout=runs.only(held_out))


def evaluation_cuts(runs: Sequence[EngineRun], cuts: int, window: int) -> list[EngineRun]:
    """Truncate each run at `cuts` points from one window in to its end.

    A truncated run keeps its true RUL, so scoring its last window is the C-MAPSS test
    protocol applied at several stages of wear instead of only at failure.
    """
    truncated = []
    for run in runs:
        first = min(window, len(run))
        lengths = sorted({round(float(x)) for x in np.linspace(first, len(run), cuts)})
        for length in lengths:
            truncated.append(
                EngineRun(
                    unit=run.unit,
                    cycles=run.cycles[:length],
                    settings=run.settings[:length],
                    sensors=run.sensors[:length],
                    rul=run.rul[:length],
                )
            )
    return truncated


def with_shuffled_labels(runs: Sequence[EngineRun], seed: int) -> list[EngineRun]:
    """Permute the RUL labels within each run, so sensors no longer explain them.

    A model trained on these learns nothing about wear: a control run that must be
    refused by the promotion gate.
    """
    generator = np.random.default_rng(seed)
    return [replace(run, rul=generator.permutation(run.rul)) for run in runs]


def _engine_run(unit: int, readings: Sequence[SensorReading]) -> EngineRun:
    sensors = np.array(
        [[r.channels[name] for name in SENSOR_CHANNELS] for r in readings], dtype=np.float32
    )
    settings = np.array(
        [[float(r.context[name]) for name in SETTING_FIELDS] for r in readings],
        dtype=np.float32,
    )
    sequence = np.array([r.seq for r in readings], dtype=np.int64)
    if np.any(np.diff(sequence) <= 0):
        raise ValueError("sequence numbers do not increase with time")
    return EngineRun(
        unit=unit,
        cycles=_cycles_since_maintenance(readings, sequence),
        settings=settings,
        sensors=sensors,
        rul=(sequence[-1] - sequence).astype(np.float32),
    )


def _cycles_since_maintenance(
    readings: Sequence[SensorReading], sequence: np.ndarray
) -> np.ndarray:
    """Return each reading's age in cycles, which models read as context `AGE_FIELD`.

    The readings' own `AGE_FIELD` values are used when every reading has one, as the
    predictor receives them. Otherwise the run counts from 1 at its first reading, which
    follows a maintenance, a failure or the start of the history.
    """
    if all(_has_age(reading) for reading in readings):
        return np.array([round(float(r.context[AGE_FIELD])) for r in readings], dtype=np.int64)
    return sequence - sequence[0] + 1


def _has_age(reading: SensorReading) -> bool:
    age = reading.context.get(AGE_FIELD)
    return isinstance(age, int | float) and not isinstance(age, bool)
