"""Tabular datasets driven by a plant description: one CSV row per operation.

The plant's ``dataset`` section names the file, the machine of each row and the column
that orders a machine's rows. Channels and context fields name their columns, and the
failure labels come from ``dataset.failure_column`` (any failure) and each failure mode's
``label_column``. A new dataset with other columns therefore needs a new plant file only.

Model inputs per operation: the channel readings, and the context encoded as numbers.
A categorical field becomes one 0/1 column per category, named ``field=category``; a
numeric field keeps its name. Text fields, such as a pseudonymised operator badge, are
not model inputs.

Splitting consecutive operations without leakage: each machine's operations are cut into
blocks of ``block_length`` consecutive operations, and whole blocks go to the training,
validation or test split, stratified by the rarest failure label that each block
contains. Windows are cut only inside a run of consecutive blocks of the same split, so
no window reads an operation of another split. A window that would reach back past the
start of its run is padded with copies of the run's first operation.
"""

from __future__ import annotations

import csv
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.normaliser import Normaliser
from models.plant import ContextFieldSpec, PlantDescription

logger = logging.getLogger(__name__)

# Label of ``dataset.failure_column``: a failure of any mode, or one the data leaves unnamed.
MACHINE_FAILURE_LABEL = "machine-failure"

# Stratum of the blocks that contain no failure at all.
_NO_FAILURE = "none"


class TabularDataError(ValueError):
    """A tabular dataset that does not match its plant description; the message names the file."""


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str]


@dataclass(frozen=True)
class MachineOperations:
    """One machine's operations in order: raw readings, encoded context and 0/1 labels."""

    machine_id: str
    readings: np.ndarray  # (T, C) float32, in TabularData.channels order
    context: np.ndarray  # (T, K) float32, in TabularData.context_fields order
    labels: np.ndarray  # (T, F) float32 0/1, in TabularData.labels order

    def __len__(self) -> int:
        return len(self.readings)


@dataclass(frozen=True)
class TabularData:
    """A plant's tabular dataset, grouped per machine, with the names of every column."""

    plant_id: str
    channels: tuple[str, ...]
    context_fields: tuple[str, ...]
    labels: tuple[str, ...]
    machines: tuple[MachineOperations, ...]
    files: tuple[Path, ...]

    @property
    def operations(self) -> int:
        return sum(len(machine) for machine in self.machines)

    def positives(self) -> dict[str, int]:
        """Return the number of operations flagged with each label."""
        counts = np.sum([machine.labels.sum(axis=0) for machine in self.machines], axis=0)
        return {label: int(count) for label, count in zip(self.labels, counts, strict=True)}

    def head(self, max_operations: int) -> TabularData:
        """Return the first ``max_operations`` operations of each machine."""
        machines = tuple(
            MachineOperations(
                machine_id=machine.machine_id,
                readings=machine.readings[:max_operations],
                context=machine.context[:max_operations],
                labels=machine.labels[:max_operations],
            )
            for machine in self.machines
        )
        return TabularData(
            self.plant_id, self.channels, self.context_fields, self.labels, machines, self.files
        )


@dataclass(frozen=True)
class Block:
    """``length`` consecutive operations of one machine, from ``start`` on."""

    number: int
    machine: int  # index into TabularData.machines
    start: int
    length: int


@dataclass(frozen=True)
class BlockSplit:
    """Block numbers of the training, validation and test splits."""

    train: tuple[int, ...]
    validation: tuple[int, ...]
    test: tuple[int, ...]


@dataclass(frozen=True)
class TabularWindows:
    """Windows of consecutive operations with the labels of each window's last operation.

    The context is that of the last operation, because each operation can run another
    product, so an average over the window would blur it.
    """

    sensors: np.ndarray  # (N, W, C) float32
    context: np.ndarray  # (N, K) float32
    labels: np.ndarray  # (N, F) float32 0/1
    block: np.ndarray  # (N,) int64, the block of the last operation

    def __len__(self) -> int:
        return len(self.labels)


def context_feature_names(plant: PlantDescription) -> tuple[str, ...]:
    """Return the model's context inputs: ``field=category`` per category, numeric names."""
    names: list[str] = []
    for field in plant.context:
        if field.kind == "categorical":
            names.extend(f"{field.name}={category}" for category in field.categories)
        elif field.kind == "numeric":
            names.append(field.name)
    return tuple(names)


def failure_labels(plant: PlantDescription) -> tuple[str, ...]:
    """Return the label names the dataset provides: any failure first, then each mode."""
    dataset = plant.dataset
    labels = [MACHINE_FAILURE_LABEL] if dataset and dataset.failure_column else []
    labels.extend(mode.name for _, mode in plant.failure_modes() if mode.label_column)
    return tuple(labels)


def load_tabular(plant: PlantDescription, data_dir: Path) -> TabularData:
    """Read the plant's ``csv`` dataset from ``data_dir`` into per-machine arrays.

    Raises FileNotFoundError for a missing file and TabularDataError for a missing column,
    a value that is not a number, an unknown category or a label other than 0 or 1.
    """
    dataset = plant.dataset
    if dataset is None or dataset.format != "csv":
        raise TabularDataError(
            f"plant {plant.plant_id!r} has no csv dataset (dataset.format is "
            f'{dataset.format if dataset else "missing"}); tabular training needs format = "csv"'
        )
    path = Path(data_dir) / dataset.path
    if not path.is_file():
        raise FileNotFoundError(
            f"dataset of plant {plant.plant_id!r} not found: {path}; dataset.path is relative "
            "to the data folder (--data-dir)"
        )
    labels = failure_labels(plant)
    if not labels:
        raise TabularDataError(
            f"plant {plant.plant_id!r}: the dataset has no failure labels; set "
            "dataset.failure_column or a failure mode's label_column"
        )

    # utf-8-sig drops the byte order mark that spreadsheet exports put before the header.
    with path.open(newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        header = tuple(reader.fieldnames or ())
        # The header is line 1, so with one line per record the first row is line 2.
        rows = [_Row(line, values) for line, values in enumerate(reader, start=2)]
    _check_columns(plant, path, header)
    if not rows:
        raise TabularDataError(f"{path} has a header but no rows")

    groups = _group_rows(plant, rows)
    context_fields = context_feature_names(plant)
    machines = tuple(
        MachineOperations(
            machine_id=machine_id,
            readings=_channel_values(plant, path, group),
            context=_context_values(plant, path, group, len(context_fields)),
            labels=_label_values(plant, path, group),
        )
        for machine_id, group in groups.items()
    )
    data = TabularData(
        plant_id=plant.plant_id,
        channels=plant.channel_names,
        context_fields=context_fields,
        labels=labels,
        machines=machines,
        files=(path,),
    )
    logger.info(
        "loaded %d operations of %d machines from %s; positives per label: %s",
        data.operations,
        len(machines),
        path,
        data.positives(),
    )
    return data


def cut_blocks(data: TabularData, block_length: int) -> list[Block]:
    """Cut each machine's operations into blocks, numbered in machine order, then time.

    A machine's last block holds the remainder and may be shorter than ``block_length``.
    """
    if block_length < 1:
        raise ValueError(f"block_length must be at least 1, got {block_length}")
    blocks: list[Block] = []
    for machine_index, machine in enumerate(data.machines):
        for start in range(0, len(machine), block_length):
            length = min(block_length, len(machine) - start)
            blocks.append(Block(len(blocks), machine_index, start, length))
    return blocks


def split_blocks(
    data: TabularData,
    blocks: Sequence[Block],
    validation_fraction: float,
    test_fraction: float,
    seed: int,
) -> BlockSplit:
    """Split whole blocks, stratified by the rarest failure label in each block.

    A block's stratum is the label it contains that has the fewest positives in the whole
    dataset, or no label at all. Each stratum is shuffled by ``seed`` and contributes
    ``round(n * fraction)`` blocks to the test and validation splits, so every failure
    mode with a few blocks reaches all three splits. Raises ValueError when a split
    would be empty.
    """
    if not (0.0 < validation_fraction < 1.0 and 0.0 < test_fraction < 1.0):
        raise ValueError(
            f"validation_fraction and test_fraction must be in (0, 1), got "
            f"{validation_fraction} and {test_fraction}"
        )
    if validation_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"validation_fraction {validation_fraction} plus test_fraction {test_fraction} "
            "leaves no operations for training"
        )

    positives = data.positives()
    strata: dict[str, list[int]] = defaultdict(list)
    for block in blocks:
        strata[_stratum(data, block, positives)].append(block.number)

    rng = np.random.default_rng(seed)
    train: list[int] = []
    validation: list[int] = []
    test: list[int] = []
    for name in sorted(strata):
        members = [strata[name][i] for i in rng.permutation(len(strata[name]))]
        test_count = round(len(members) * test_fraction)
        validation_count = round(len(members) * validation_fraction)
        test.extend(members[:test_count])
        validation.extend(members[test_count : test_count + validation_count])
        train.extend(members[test_count + validation_count :])

    empty = [
        name
        for name, chosen in (("training", train), ("validation", validation), ("test", test))
        if not chosen
    ]
    if empty:
        raise ValueError(
            f"the {' and '.join(empty)} split would be empty: {len(blocks)} blocks are too few "
            "for the fractions; lower block_length or use more operations"
        )
    return BlockSplit(tuple(sorted(train)), tuple(sorted(validation)), tuple(sorted(test)))


def fit_tabular_normaliser(
    data: TabularData, blocks: Sequence[Block], numbers: Sequence[int]
) -> Normaliser:
    """Fit one normaliser over the readings and context of the operations in ``numbers``."""
    chosen = set(numbers)
    rows = [
        np.concatenate(
            [
                data.machines[block.machine].readings[block.start : block.start + block.length],
                data.machines[block.machine].context[block.start : block.start + block.length],
            ],
            axis=1,
        )
        for block in blocks
        if block.number in chosen
    ]
    if not rows:
        raise ValueError("no blocks given, so there is nothing to fit the normaliser on")
    return Normaliser.fit([*data.channels, *data.context_fields], np.concatenate(rows))


def make_tabular_windows(
    data: TabularData,
    blocks: Sequence[Block],
    numbers: Sequence[int],
    window: int,
    normaliser: Normaliser | None = None,
) -> TabularWindows:
    """Cut one window ending at every operation of the blocks in ``numbers``.

    Consecutive chosen blocks of a machine form one run, and windows never reach outside
    their run (see the module docstring). Values are raw without ``normaliser``.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for run in _runs(blocks, set(numbers)):
        machine = data.machines[run[0].machine]
        start, stop = run[0].start, run[-1].start + run[-1].length
        readings = machine.readings[start:stop]
        context = machine.context[start:stop]
        if normaliser is not None:
            readings = normaliser.transform(readings, data.channels)
            context = normaliser.transform(context, data.context_fields)

        padded = np.concatenate([np.repeat(readings[:1], window - 1, axis=0), readings])
        # sliding_window_view puts the window axis last: (T, C, W).
        sensor_windows = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)
        block_of_row = np.concatenate([np.full(block.length, block.number) for block in run])
        parts.append(
            (
                sensor_windows.transpose(0, 2, 1),  # (T, W, C)
                context,
                machine.labels[start:stop],
                block_of_row,
            )
        )
    if not parts:
        raise ValueError("no blocks given, so there are no windows to make")
    return TabularWindows(
        sensors=np.concatenate([part[0] for part in parts]).astype(np.float32),
        context=np.concatenate([part[1] for part in parts]).astype(np.float32),
        labels=np.concatenate([part[2] for part in parts]).astype(np.float32),
        block=np.concatenate([part[3] for part in parts]).astype(np.int64),
    )


def _runs(blocks: Sequence[Block], chosen: set[int]) -> list[list[Block]]:
    """Group the chosen blocks into runs of consecutive blocks of one machine."""
    runs: list[list[Block]] = []
    previous: Block | None = None
    for block in blocks:
        if block.number not in chosen:
            previous = None
            continue
        if previous is not None and previous.machine == block.machine:
            runs[-1].append(block)
        else:
            runs.append([block])
        previous = block
    return runs


def _stratum(data: TabularData, block: Block, positives: dict[str, int]) -> str:
    labels = data.machines[block.machine].labels[block.start : block.start + block.length]
    present = [label for label, count in zip(data.labels, labels.sum(axis=0), strict=True) if count]
    if not present:
        return _NO_FAILURE
    return min(present, key=lambda label: (positives[label], label))


def _check_columns(plant: PlantDescription, path: Path, header: Sequence[str]) -> None:
    dataset = plant.dataset
    assert dataset is not None
    needed = {f"channel {c.name!r}": c.source_column for c in plant.channels}
    needed |= {
        f"context field {f.name!r}": f.source_column for f in plant.context if f.kind != "text"
    }
    needed |= {
        f"failure mode {m.name!r}": m.label_column
        for _, m in plant.failure_modes()
        if m.label_column
    }
    for role, column in (
        ("dataset.machine_column", dataset.machine_column),
        ("dataset.order_column", dataset.order_column),
        ("dataset.failure_column", dataset.failure_column),
    ):
        if column is not None:
            needed[role] = column
    missing = [f"{column!r} ({role})" for role, column in needed.items() if column not in header]
    if missing:
        raise TabularDataError(
            f"{path} is missing columns that plant {plant.plant_id!r} names: {', '.join(missing)}; "
            f"the file's columns are {list(header)}"
        )


def _group_rows(plant: PlantDescription, rows: list[_Row]) -> dict[str, list[_Row]]:
    """Group rows per machine, each group ordered by the order column (stable)."""
    dataset = plant.dataset
    assert dataset is not None
    groups: dict[str, list[_Row]] = defaultdict(list)
    for row in rows:
        if dataset.machine_column is not None:
            machine_id = row.values[dataset.machine_column].strip()
        else:
            assert dataset.machine_id is not None
            machine_id = dataset.machine_id
        groups[machine_id].append(row)

    order_column = dataset.order_column
    if order_column is not None:
        for machine_id, group in groups.items():
            keys = [row.values[order_column].strip() for row in group]
            numeric = [_as_number(key) for key in keys]
            # Numbers sort numerically; anything else, such as ISO 8601 times, as text.
            if all(value is not None for value in numeric):
                order = sorted(range(len(group)), key=lambda i: float(keys[i]))
            else:
                order = sorted(range(len(group)), key=lambda i: keys[i])
            groups[machine_id] = [group[i] for i in order]
            repeats = [key for key, count in Counter(keys).items() if count > 1]
            if repeats:
                logger.warning(
                    "machine %s has %d repeated values in order column %r, e.g. %r; "
                    "those rows keep their file order",
                    machine_id,
                    len(repeats),
                    order_column,
                    repeats[0],
                )
    return dict(groups)


def _channel_values(plant: PlantDescription, path: Path, rows: list[_Row]) -> np.ndarray:
    columns = [channel.source_column for channel in plant.channels]
    return np.stack([_numbers(path, rows, column) for column in columns], axis=1).astype(np.float32)


def _context_values(
    plant: PlantDescription, path: Path, rows: list[_Row], width: int
) -> np.ndarray:
    encoded: list[np.ndarray] = []
    for field in plant.context:
        if field.kind == "categorical":
            encoded.append(_one_hot(field, path, rows))
        elif field.kind == "numeric":
            encoded.append(_numbers(path, rows, field.source_column)[:, None])
    if not encoded:
        return np.zeros((len(rows), 0), dtype=np.float32)
    values = np.concatenate(encoded, axis=1).astype(np.float32)
    assert values.shape[1] == width
    return values


def _one_hot(field: ContextFieldSpec, path: Path, rows: list[_Row]) -> np.ndarray:
    position = {category: i for i, category in enumerate(field.categories)}
    values = np.zeros((len(rows), len(field.categories)), dtype=np.float32)
    for row_number, row in enumerate(rows):
        category = row.values[field.source_column].strip()
        if category not in position:
            raise TabularDataError(
                f"{path}, line {row.line}: column {field.source_column!r} has category "
                f"{category!r}, which is "
                f"not one of {list(field.categories)} of context field {field.name!r}; add it "
                "to the plant description's categories"
            )
        values[row_number, position[category]] = 1.0
    return values


def _label_values(plant: PlantDescription, path: Path, rows: list[_Row]) -> np.ndarray:
    dataset = plant.dataset
    assert dataset is not None
    columns = [dataset.failure_column] if dataset.failure_column else []
    columns += [mode.label_column for _, mode in plant.failure_modes() if mode.label_column]
    labels = np.stack([_numbers(path, rows, column) for column in columns if column], axis=1)
    invalid = ~np.isin(labels, (0.0, 1.0))
    if invalid.any():
        row, column = np.argwhere(invalid)[0]
        raise TabularDataError(
            f"{path}, line {rows[row].line}: label column {columns[column]!r} has value "
            f"{labels[row, column]:g}; "
            "failure labels must be 0 or 1"
        )
    return labels.astype(np.float32)


def _numbers(path: Path, rows: list[_Row], column: str) -> np.ndarray:
    values = np.empty(len(rows), dtype=np.float64)
    for position, row in enumerate(rows):
        value = _as_number(row.values[column])
        if value is None or not math.isfinite(value):
            raise TabularDataError(
                f"{path}, line {row.line}: column {column!r} has {row.values[column]!r}, which "
                "is not a finite number; fill or drop that row"
            )
        values[position] = value
    return values


def _as_number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
