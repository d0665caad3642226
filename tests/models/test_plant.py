"""Plant description: the shipped examples load, and broken descriptions name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.plant import PlantDescriptionError, example_plant, load_plant, parse_plant

MINIMAL = """
plant_id = "p"

[[machines]]
id = "m1"
type = "press"
cycles_per_hour = 10

[[channels]]
name = "pressure"
unit = "bar"
valid_min = 0
valid_max = 200
component = "pump"

[[crews]]
skill = "fitter"
size = 1

[[components]]
name = "pump"

[[components.failure_modes]]
name = "seal-leak"
indicators = { pressure = 1.0 }
actions = ["seal-change"]

[[actions]]
name = "seal-change"
duration_minutes = 90
skill = "fitter"
"""


def test_cmapss_example_describes_the_fd001_fleet() -> None:
    plant = example_plant("cmapss")

    assert len(plant.machine_ids()) == 100
    assert plant.machine_ids()[0] == "engine-001"
    assert plant.machine("engine-034").cycles_per_hour == 2.0
    assert plant.channel_names == tuple(f"s{i}" for i in range(1, 22))
    assert plant.channel("s3").component == "hpc"
    assert plant.personal_fields == {"operator_id"}
    assert plant.dataset is not None and plant.dataset.format == "cmapss"


def test_ai4i_example_maps_columns_and_failure_labels() -> None:
    plant = example_plant("ai4i")

    assert plant.channel("tool_wear").source_column == "Tool wear [min]"
    labels = {mode.label_column for _, mode in plant.failure_modes()}
    assert labels == {"TWF", "HDF", "PWF", "OSF", "RNF"}
    assert plant.action("tool-change").skill == "machine-setter"
    assert plant.crew_sizes() == {
        "machine-setter": 2,
        "maintenance-technician": 1,
        "electrician": 1,
    }


def test_yaml_and_toml_give_the_same_description(tmp_path: Path) -> None:
    import tomllib

    import yaml

    toml_file = tmp_path / "plant.toml"
    toml_file.write_text(MINIMAL)
    yaml_file = tmp_path / "plant.yaml"
    yaml_file.write_text(yaml.safe_dump(tomllib.loads(MINIMAL)))

    assert load_plant(toml_file) == load_plant(yaml_file)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ('component = "pump"', 'component = "valve"', "observes component 'valve'"),
        ('actions = ["seal-change"]', 'actions = ["regrind"]', "names action 'regrind'"),
        (
            "indicators = { pressure = 1.0 }",
            "indicators = { flow = 1.0 }",
            "indicator channel 'flow'",
        ),
        ("indicators = { pressure = 1.0 }", "indicators = { pressure = 2.0 }", "must be in (0, 1]"),
        ('skill = "fitter"\nsize = 1', 'skill = "welder"\nsize = 1', "needs skill 'fitter'"),
        (
            "valid_max = 200",
            "valid_max = -1",
            "channels[0] (pressure): valid_min 0.0 is above",
        ),
        (
            "duration_minutes = 90",
            "duration_minutes = -5",
            "actions[0] (seal-change).duration_minutes",
        ),
        ('id = "m1"', 'id_pattern = "m{}"', "id_pattern needs count"),
        (
            "cycles_per_hour = 10",
            "cycles_per_hour = 10\ncolour = 'red'",
            "machines[0] (m1).colour: Extra inputs",
        ),
    ],
)
def test_broken_description_names_path_and_field(old: str, new: str, expected: str) -> None:
    assert old in MINIMAL
    with pytest.raises(PlantDescriptionError) as raised:
        parse_plant(MINIMAL.replace(old, new, 1), suffix=".toml", source="broken.toml")

    message = str(raised.value)
    assert message.startswith("broken.toml: invalid plant description")
    assert expected in message


def test_repeated_names_are_each_reported() -> None:
    doubled = MINIMAL + '\n[[machines]]\nid = "m1"\ntype = "press"\ncycles_per_hour = 5\n'

    with pytest.raises(PlantDescriptionError, match="machine id 'm1' appears 2 times"):
        parse_plant(doubled, suffix=".toml")


def test_unreadable_and_malformed_files_say_why(tmp_path: Path) -> None:
    with pytest.raises(PlantDescriptionError, match="cannot read plant description"):
        load_plant(tmp_path / "missing.toml")

    bad = tmp_path / "bad.toml"
    bad.write_text('plant_id = "p"\n[[machines]\nid = 1\n')
    with pytest.raises(PlantDescriptionError, match=r"bad.toml: not valid TOML: .*line 2"):
        load_plant(bad)

    with pytest.raises(PlantDescriptionError, match=r"unknown plant description format '\.ini'"):
        parse_plant(MINIMAL, suffix=".ini")
