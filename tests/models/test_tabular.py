"""Tabular datasets: a plant file maps any CSV's columns, and splits never share operations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.plant import PlantDescription, PlantDescriptionError, example_plant, parse_plant
from models.tabular import (
    MACHINE_FAILURE_LABEL,
    TabularDataError,
    cut_blocks,
    fit_tabular_normaliser,
    load_tabular,
    make_tabular_windows,
    split_blocks,
)

# A press line whose columns share no name with AI4I: rows per machine come from the
# "Press" column and are ordered by ISO 8601 time stamps, not by file order.
PRESS_PLANT = """
plant_id = "press-line"

[[machines]]
id_pattern = "press-{:d}"
first = 1
count = 2
type = "press"
cycles_per_hour = 60

[dataset]
format = "csv"
path = "press/log.csv"
machine_column = "Press"
order_column = "Stamped at"
failure_column = "Stopped"

[[context]]
name = "shift"
column = "Shift"
kind = "categorical"
categories = ["day", "night"]

[[context]]
name = "sheet_thickness"
column = "Sheet (mm)"

[[channels]]
name = "ram_force"
column = "Force kN"
component = "ram"

[[channels]]
name = "oil_temperature"
column = "Oil degC"
component = "hydraulics"

[[crews]]
skill = "fitter"
size = 1

[[components]]
name = "ram"

[[components.failure_modes]]
name = "die-crack"
actions = ["die-change"]
label_column = "Die crack"

[[components]]
name = "hydraulics"

[[components.failure_modes]]
name = "seal-leak"
actions = ["die-change"]

[[actions]]
name = "die-change"
duration_minutes = 45
skill = "fitter"
"""

PRESS_CSV = """Stamped at,Press,Shift,Sheet (mm),Force kN,Oil degC,Stopped,Die crack
2026-01-01T08:02:00,press-1,day,2.0,102.0,41.0,0,0
2026-01-01T08:00:00,press-1,day,2.0,100.0,40.0,0,0
2026-01-01T08:01:00,press-2,night,3.5,200.0,50.0,1,1
2026-01-01T08:01:00,press-1,night,2.5,101.0,40.5,1,0
2026-01-01T08:00:00,press-2,night,3.0,199.0,49.0,0,0
"""


def write_press(tmp_path: Path, csv_text: str = PRESS_CSV) -> tuple[PlantDescription, Path]:
    (tmp_path / "press").mkdir(exist_ok=True)
    (tmp_path / "press" / "log.csv").write_text(csv_text)
    return parse_plant(PRESS_PLANT, ".toml"), tmp_path


def test_plant_file_maps_other_column_names(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path)

    data = load_tabular(plant, data_dir)

    assert data.channels == ("ram_force", "oil_temperature")
    assert data.context_fields == ("shift=day", "shift=night", "sheet_thickness")
    assert data.labels == (MACHINE_FAILURE_LABEL, "die-crack")
    assert [machine.machine_id for machine in data.machines] == ["press-1", "press-2"]
    assert data.operations == 5


def test_rows_ordered_by_order_column(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path)

    press_1, press_2 = load_tabular(plant, data_dir).machines

    np.testing.assert_array_equal(press_1.readings[:, 0], [100.0, 101.0, 102.0])
    np.testing.assert_array_equal(press_2.readings[:, 1], [49.0, 50.0])
    np.testing.assert_array_equal(press_1.labels, [[0, 0], [1, 0], [0, 0]])
    np.testing.assert_array_equal(press_2.labels, [[0, 0], [1, 1]])


def test_categorical_context_becomes_one_hot(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path)

    press_1 = load_tabular(plant, data_dir).machines[0]

    np.testing.assert_array_equal(press_1.context, [[1, 0, 2.0], [0, 1, 2.5], [1, 0, 2.0]])


def test_missing_column_is_named(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path, PRESS_CSV.replace("Oil degC", "Oil"))

    with pytest.raises(TabularDataError, match=r"'Oil degC' \(channel 'oil_temperature'\)"):
        load_tabular(plant, data_dir)


def test_unknown_category_names_the_line(tmp_path: Path) -> None:
    plant, data_dir = write_press(
        tmp_path, PRESS_CSV.replace("press-2,night,3.5", "press-2,late,3.5")
    )

    with pytest.raises(TabularDataError, match="line 4: column 'Shift' has category 'late'"):
        load_tabular(plant, data_dir)


def test_label_other_than_zero_or_one_rejected(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path, PRESS_CSV.replace("50.0,1,1", "50.0,1,2"))

    with pytest.raises(TabularDataError, match="label column 'Die crack' has value 2"):
        load_tabular(plant, data_dir)


def test_non_numeric_reading_names_the_line(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path, PRESS_CSV.replace("102.0", "n/a"))

    with pytest.raises(TabularDataError, match="line 2: column 'Force kN' has 'n/a'"):
        load_tabular(plant, data_dir)


def test_windows_padded_at_run_start(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path)
    data = load_tabular(plant, data_dir)
    blocks = cut_blocks(data, block_length=10)

    windows = make_tabular_windows(data, blocks, [0, 1], window=2)

    assert windows.sensors.shape == (5, 2, 2)
    np.testing.assert_array_equal(windows.sensors[0, :, 0], [100.0, 100.0])
    np.testing.assert_array_equal(windows.sensors[2, :, 0], [101.0, 102.0])
    np.testing.assert_array_equal(windows.sensors[3, :, 0], [199.0, 199.0])
    np.testing.assert_array_equal(windows.context[1], [0, 1, 2.5])
    np.testing.assert_array_equal(windows.labels[:, 0], [0, 1, 0, 0, 1])


def test_ai4i_example_loads_every_operation(data_dir: Path) -> None:
    data = load_tabular(example_plant("ai4i"), data_dir)

    assert data.operations == 10_000
    assert data.context_fields == ("product_variant=L", "product_variant=M", "product_variant=H")
    assert data.positives() == {
        MACHINE_FAILURE_LABEL: 339,
        "tool-wear-failure": 46,
        "overstrain-failure": 98,
        "heat-dissipation-failure": 115,
        "power-failure": 95,
        "random-failure": 19,
    }
    np.testing.assert_allclose(data.machines[0].readings[0], [298.1, 308.6, 1551.0, 42.8, 0.0])


def test_ai4i_split_reaches_every_mode(data_dir: Path) -> None:
    data = load_tabular(example_plant("ai4i"), data_dir)
    blocks = cut_blocks(data, block_length=50)

    split = split_blocks(data, blocks, validation_fraction=0.2, test_fraction=0.2, seed=0)

    assert len(blocks) == 200
    assert len(split.train) + len(split.validation) + len(split.test) == 200
    assert set(split.train).isdisjoint(split.validation)
    assert set(split.train).isdisjoint(split.test)
    assert set(split.validation).isdisjoint(split.test)
    assert 36 <= len(split.test) <= 44
    for numbers in (split.train, split.validation, split.test):
        labels = make_tabular_windows(data, blocks, numbers, window=1).labels
        assert labels.sum(axis=0).min() >= 2, "every label needs positives in every split"


def test_windows_never_read_another_split(data_dir: Path) -> None:
    data = load_tabular(example_plant("ai4i"), data_dir)
    # Replace the first channel by the operation's position, so a window shows which
    # operations it read.
    machine = data.machines[0]
    machine.readings[:, 0] = np.arange(len(machine))
    blocks = cut_blocks(data, block_length=50)
    split = split_blocks(data, blocks, validation_fraction=0.2, test_fraction=0.2, seed=3)

    for numbers in (split.train, split.validation, split.test):
        windows = make_tabular_windows(data, blocks, numbers, window=12)
        read_blocks = np.unique(windows.sensors[:, :, 0].astype(int) // 50)
        assert set(read_blocks.tolist()) <= set(numbers)
        assert len(windows) == 50 * len(numbers)


def test_split_is_reproducible_for_a_seed(data_dir: Path) -> None:
    data = load_tabular(example_plant("ai4i"), data_dir)
    blocks = cut_blocks(data, block_length=100)

    first = split_blocks(data, blocks, 0.2, 0.2, seed=7)
    second = split_blocks(data, blocks, 0.2, 0.2, seed=7)
    other = split_blocks(data, blocks, 0.2, 0.2, seed=8)

    assert first == second
    assert first != other


def test_split_with_too_few_blocks_explains(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path)
    data = load_tabular(plant, data_dir)

    with pytest.raises(ValueError, match=r"split would be empty.*lower block_length"):
        split_blocks(data, cut_blocks(data, 10), 0.2, 0.2, seed=0)


def test_normaliser_fitted_on_chosen_blocks(tmp_path: Path) -> None:
    plant, data_dir = write_press(tmp_path)
    data = load_tabular(plant, data_dir)
    blocks = cut_blocks(data, block_length=10)

    normaliser = fit_tabular_normaliser(data, blocks, [1])

    mean, std = normaliser.statistics(("ram_force", "shift=night"))
    np.testing.assert_allclose(mean, [199.5, 1.0])
    np.testing.assert_allclose(std, [0.5, 1.0])


def test_ai4i_plant_reads_one_operation() -> None:
    dataset = example_plant("ai4i").dataset

    assert dataset is not None
    assert dataset.window == 1


def test_plant_window_below_one_rejected() -> None:
    text = PRESS_PLANT.replace(
        'failure_column = "Stopped"', 'failure_column = "Stopped"\nwindow = 0'
    )

    with pytest.raises(PlantDescriptionError, match=r"dataset\.window"):
        parse_plant(text, ".toml")
