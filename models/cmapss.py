"""NASA C-MAPSS turbofan data: per-engine arrays, RUL targets and health-state labels.

Each file row is one operating cycle of one engine: unit, cycle, three operational
settings and 21 sensor readings, separated by spaces. Training engines run to failure,
so a row's remaining useful life (RUL) is the engine's last cycle minus the row's cycle.
Test engines stop before failure, and ``RUL_<subset>.txt`` gives the true RUL at each
test engine's last row.

Source: Saxena, Goebel, Simon and Eklund, "Damage Propagation Modeling for Aircraft
Engine Run-to-Failure Simulation", PHM 2008.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

# These names are the keys of SensorReading.channels and .context on the Kafka wire.
SENSOR_CHANNELS: tuple[str, ...] = tuple(f"s{i}" for i in range(1, 22))
SETTING_FIELDS: tuple[str, ...] = ("setting1", "setting2", "setting3")
# Operating cycles since the engine's last maintenance. Each C-MAPSS engine enters the
# record in service at cycle 1 (with unknown initial wear) and runs without maintenance,
# so its cycle number is used for this field.
AGE_FIELD = "cycles_since_maintenance"
# The context a C-MAPSS model reads: the operating settings and the age.
CONTEXT_FIELDS: tuple[str, ...] = (*SETTING_FIELDS, AGE_FIELD)

# Early in life an engine shows no measurable wear, so the usual C-MAPSS target is
# piecewise linear: constant at this cap, then falling by one per cycle to zero.
RUL_CAP = 125

_COLUMN_COUNT = 2 + len(SETTING_FIELDS) + len(SENSOR_CHANNELS)


@dataclass(frozen=True)
class HealthThresholds:
    """RUL limits, in cycles, that map remaining useful life to a health state.

    RUL <= critical_max is critical, RUL <= degrading_max is degrading, and anything
    above is healthy. ``states`` lists the names in label order 0, 1, 2.
    """

    degrading_max: int = 75
    critical_max: int = 30
    states: tuple[str, str, str] = ("healthy", "degrading", "critical")

    def __post_init__(self) -> None:
        if not 0 <= self.critical_max < self.degrading_max:
            raise ValueError(
                f"invalid health thresholds: critical_max={self.critical_max} must be "
                f">= 0 and below degrading_max={self.degrading_max}"
            )


@dataclass(frozen=True)
class EngineRun:
    """One engine's time series, rows ordered by cycle.

    ``rul`` is uncapped, in cycles. ``sensors`` columns follow SENSOR_CHANNELS and
    ``settings`` columns follow SETTING_FIELDS.
    """

    unit: int
    cycles: np.ndarray  # (T,) int
    settings: np.ndarray  # (T, 3) float32
    sensors: np.ndarray  # (T, 21) float32
    rul: np.ndarray  # (T,) float32

    def __len__(self) -> int:
        return len(self.cycles)

    @cached_property
    def context(self) -> np.ndarray:
        """The context columns of CONTEXT_FIELDS, shape (T, 4): settings, then the cycle."""
        return np.column_stack([self.settings, self.cycles.astype(np.float32)])


@dataclass(frozen=True)
class CmapssData:
    """The training and test engines of one C-MAPSS subset, with the files they came from."""

    subset: str
    train: list[EngineRun]
    test: list[EngineRun]
    files: tuple[Path, ...]


def resolve_cmapss_dir(data_dir: Path, subset: str = "FD001") -> Path:
    """Return the folder that contains ``train_<subset>.txt``.

    ``data_dir`` may be that folder itself or a data root with a ``cmapss`` sub-folder.
    Raises FileNotFoundError naming both places when neither contains the file.
    """
    data_dir = Path(data_dir)
    candidates = (data_dir, data_dir / "cmapss")
    for candidate in candidates:
        if (candidate / f"train_{subset}.txt").is_file():
            return candidate
    raise FileNotFoundError(
        f"C-MAPSS file train_{subset}.txt not found in {candidates[0]} or {candidates[1]}; "
        "pass the folder that contains train_FD001.txt, test_FD001.txt and RUL_FD001.txt"
    )


def load_cmapss(data_dir: Path, subset: str = "FD001") -> CmapssData:
    """Parse the training, test and true-RUL files of one subset into per-engine runs."""
    folder = resolve_cmapss_dir(data_dir, subset)
    train_path = folder / f"train_{subset}.txt"
    test_path = folder / f"test_{subset}.txt"
    rul_path = folder / f"RUL_{subset}.txt"

    train = [
        _engine_run(unit, rows, rul_at_end=0.0) for unit, rows in _read_engine_rows(train_path)
    ]

    test_rows = _read_engine_rows(test_path)
    true_rul = _read_true_rul(rul_path)
    if len(true_rul) != len(test_rows):
        raise ValueError(
            f"{rul_path} has {len(true_rul)} values but {test_path} has {len(test_rows)} "
            "engines; the two files must come from the same subset"
        )
    test = [
        _engine_run(unit, rows, rul_at_end=float(rul))
        for (unit, rows), rul in zip(test_rows, true_rul, strict=True)
    ]

    logger.info(
        "loaded C-MAPSS %s from %s: %d training and %d test engines",
        subset,
        folder,
        len(train),
        len(test),
    )
    return CmapssData(
        subset=subset, train=train, test=test, files=(train_path, test_path, rul_path)
    )


def _read_table(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"C-MAPSS file not found: {path}")
    table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if table.shape[1] != _COLUMN_COUNT:
        raise ValueError(
            f"{path} has {table.shape[1]} columns per row, expected {_COLUMN_COUNT} "
            "(unit, cycle, 3 settings, 21 sensors)"
        )
    return table


def _read_engine_rows(path: Path) -> list[tuple[int, np.ndarray]]:
    table = _read_table(path)
    units = table[:, 0].astype(int)
    engines = []
    for unit in np.unique(units):
        rows = table[units == unit]
        rows = rows[np.argsort(rows[:, 1], kind="stable")]
        engines.append((int(unit), rows))
    return engines


def _read_true_rul(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"C-MAPSS file not found: {path}")
    return np.loadtxt(path, dtype=np.float64, ndmin=1)


def _engine_run(unit: int, rows: np.ndarray, rul_at_end: float) -> EngineRun:
    cycles = rows[:, 1].astype(int)
    rul = rul_at_end + (cycles[-1] - cycles)
    return EngineRun(
        unit=unit,
        cycles=cycles,
        settings=rows[:, 2:5].astype(np.float32),
        sensors=rows[:, 5:].astype(np.float32),
        rul=rul.astype(np.float32),
    )


def cap_rul(rul: np.ndarray, cap: float = RUL_CAP) -> np.ndarray:
    """Clip RUL values to ``cap``, giving the piecewise-linear target."""
    return np.minimum(rul, cap).astype(np.float32)


def health_state_labels(rul: np.ndarray, thresholds: HealthThresholds) -> np.ndarray:
    """Map RUL values in cycles to state labels: 0 healthy, 1 degrading, 2 critical."""
    labels = np.zeros(np.shape(rul), dtype=np.int64)
    labels[rul <= thresholds.degrading_max] = 1
    labels[rul <= thresholds.critical_max] = 2
    return labels


def constant_channels(engines: Sequence[EngineRun]) -> tuple[str, ...]:
    """Return the sensor channels whose value never changes across ``engines``."""
    sensors = np.concatenate([engine.sensors for engine in engines])
    spread = sensors.max(axis=0) - sensors.min(axis=0)
    return tuple(name for name, width in zip(SENSOR_CHANNELS, spread, strict=True) if width == 0)


def informative_channels(engines: Sequence[EngineRun]) -> tuple[str, ...]:
    """Return SENSOR_CHANNELS without the channels that are constant across ``engines``.

    Pass training engines only, so that the test data never shapes the model's inputs.
    """
    dropped = set(constant_channels(engines))
    return tuple(name for name in SENSOR_CHANNELS if name not in dropped)


def split_engines(
    engines: Sequence[EngineRun], validation_fraction: float, seed: int
) -> tuple[list[EngineRun], list[EngineRun]]:
    """Split whole engines into training and validation sets, reproducibly for a seed.

    No engine contributes rows to both sets, so validation windows never overlap
    training windows of the same engine. At least one engine goes to each set.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    if len(engines) < 2:
        raise ValueError(f"need at least 2 engines to split, got {len(engines)}")

    order = np.random.default_rng(seed).permutation(len(engines))
    validation_count = min(len(engines) - 1, max(1, round(len(engines) * validation_fraction)))
    validation_positions = set(order[:validation_count].tolist())

    train = [engine for i, engine in enumerate(engines) if i not in validation_positions]
    validation = [engine for i, engine in enumerate(engines) if i in validation_positions]
    return train, validation


def channel_columns(names: Sequence[str], available: Sequence[str]) -> list[int]:
    """Return the column index of each name in ``available``, raising KeyError for unknown names."""
    index = {name: i for i, name in enumerate(available)}
    missing = [name for name in names if name not in index]
    if missing:
        raise KeyError(f"unknown C-MAPSS columns {missing}; known columns are {list(available)}")
    return [index[name] for name in names]
