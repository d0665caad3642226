"""Reading FJSP, JSPLIB and JSON plan files, and the errors on malformed ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scheduler import (
    Crew,
    Job,
    MachineDowntime,
    MachineMaintenance,
    Operation,
    OperationAssignment,
    OperationOption,
    Plan,
    PlanFileError,
    WindowAssignment,
    read_fjs,
    read_jsplib,
    read_plan,
    read_plan_json,
    write_plan_json,
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_fjs_mk01_shape(brandimarte_dir: Path) -> None:
    plan = read_fjs(brandimarte_dir / "mk01.fjs")

    assert plan.name == "mk01"
    assert plan.machines == ("M1", "M2", "M3", "M4", "M5", "M6")
    assert len(plan.jobs) == 10
    assert plan.operation_count == 55
    assert plan.jobs[0].id == "J1"
    # The first job line starts "6 2 1 5 3 4": six operations, the first on machine 1
    # for 5 or machine 3 for 4.
    assert len(plan.jobs[0].operations) == 6
    assert plan.jobs[0].operations[0].options == (
        OperationOption("M1", 5),
        OperationOption("M3", 4),
    )


def test_read_jsplib_ft06_shape(jsplib_dir: Path) -> None:
    plan = read_jsplib(jsplib_dir / "ft06")

    assert plan.name == "ft06"
    assert plan.machines == ("M1", "M2", "M3", "M4", "M5", "M6")
    assert len(plan.jobs) == 6
    assert plan.operation_count == 36
    # The first job line starts "2 1 0 3": machine 2 (0-based) for 1, then machine 0 for 3.
    assert plan.jobs[0].operations[0].options == (OperationOption("M3", 1),)
    assert plan.jobs[0].operations[1].options == (OperationOption("M1", 3),)


def test_read_plan_picks_reader(brandimarte_dir: Path, jsplib_dir: Path, tmp_path: Path) -> None:
    fjs_copy = write(tmp_path, "mk01.txt", (brandimarte_dir / "mk01.fjs").read_text())

    assert read_plan(brandimarte_dir / "mk01.fjs") == read_fjs(brandimarte_dir / "mk01.fjs")
    assert read_plan(fjs_copy).operation_count == 55
    assert read_plan(jsplib_dir / "ft06") == read_jsplib(jsplib_dir / "ft06")


def test_read_plan_recognizes_json_by_content(tmp_path: Path) -> None:
    plan = Plan(machines=("A",), jobs=(Job("J", (Operation((OperationOption("A", 1),)),)),))
    path = tmp_path / "plan.json"
    write_plan_json(plan, path)
    renamed = path.rename(tmp_path / "plan.data")

    assert read_plan(renamed) == plan


def test_json_round_trip_keeps_every_field(tmp_path: Path) -> None:
    plan = Plan(
        machines=("press", "lathe", "saw"),
        jobs=(
            Job(
                "order-7",
                (
                    Operation((OperationOption("press", 4), OperationOption("lathe", 6))),
                    Operation((OperationOption("lathe", 2),)),
                ),
                release=3,
                due=20,
                weight=2.5,
            ),
            Job("order-8", (Operation((OperationOption("press", 1),)),)),
        ),
        maintenance=(
            MachineMaintenance("press", deadline=12, duration=3, cost=80.0, reason="RUL p10"),
            MachineMaintenance("lathe", deadline=None, duration=2, cost=10.0),
        ),
        crew_size=2,
        name="line 3",
        downtime=(
            MachineDowntime("lathe", -2, 5, "bearing failure"),
            MachineDowntime("press", 40, 45),
            MachineDowntime("saw", 0, None, "decommissioned"),
        ),
        fixed=(OperationAssignment("order-8", 0, "press", 0),),
        reference=(OperationAssignment("order-7", 0, "press", 3),),
        reference_windows=(WindowAssignment("press", 7),),
    )
    path = tmp_path / "plan.json"

    write_plan_json(plan, path)

    assert read_plan_json(path) == plan
    assert json.loads(path.read_text())["format"] == "plantpulse-plan"


def test_json_round_trip_keeps_crews_and_staffing(tmp_path: Path) -> None:
    plan = Plan(
        machines=("press", "lathe"),
        jobs=(Job("order-7", (Operation((OperationOption("press", 4),)),)),),
        maintenance=(
            MachineMaintenance(
                "press", 2, 3, 80.0, "RUL p10", skill="hydraulics", crew_size=2, action="reseal"
            ),
            MachineMaintenance("lathe", 5, 1, 10.0),
        ),
        crews=(Crew("hydraulics", 2), Crew("maintenance", 1)),
    )
    path = tmp_path / "plan.json"

    write_plan_json(plan, path)

    document = json.loads(path.read_text())
    assert document["crews"] == [
        {"skill": "hydraulics", "size": 2},
        {"skill": "maintenance", "size": 1},
    ]
    assert "crew_size" not in document
    assert document["maintenance"][0]["skill"] == "hydraulics"
    assert document["maintenance"][0]["crew_size"] == 2
    assert document["maintenance"][0]["action"] == "reseal"
    assert read_plan_json(path) == plan


def test_json_staffing_defaults_to_default_crew(tmp_path: Path) -> None:
    maintenance = [{"machine": "M1", "deadline": 3, "duration": 1, "cost": 5.0}]
    path = write(tmp_path, "plan.json", json.dumps(json_plan(maintenance=maintenance, crew_size=2)))

    plan = read_plan_json(path)

    assert plan.crew_capacity() == {"maintenance": 2}
    assert plan.maintenance[0].skill == "maintenance"
    assert plan.maintenance[0].crew_size == 1
    assert plan.maintenance[0].action == ""


def test_json_whole_number_weight_and_cost_read_as_float(tmp_path: Path) -> None:
    jobs = [
        {"id": "J1", "weight": 2, "operations": [{"options": [{"machine": "M1", "duration": 2}]}]}
    ]
    maintenance = [{"machine": "M1", "deadline": None, "duration": 1, "cost": 150}]
    path = write(tmp_path, "plan.json", json.dumps(json_plan(jobs=jobs, maintenance=maintenance)))

    plan = read_plan_json(path)

    assert plan.jobs[0].weight == 2.0
    assert plan.maintenance[0].cost == 150.0
    assert plan.maintenance[0].deadline is None


def test_fjs_non_integer_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "2 2\n1 1 1 5\n1 1 x 5\n")

    with pytest.raises(PlanFileError) as caught:
        read_fjs(path)

    assert caught.value.line == 3
    assert caught.value.path == path
    assert "expected a machine number of operation 1 as an integer, found 'x'" in str(caught.value)
    assert str(caught.value).startswith(f"{path}, line 3: ")


def test_fjs_machine_out_of_range_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "1 2\n\n2 1 1 5 1 3 4\n")

    with pytest.raises(PlanFileError) as caught:
        read_fjs(path)

    assert caught.value.line == 3
    assert "expected a machine number of operation 2 from 1 to 2, found 3" in str(caught.value)


def test_fjs_zero_duration_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "1 1\n1 1 1 0\n")

    with pytest.raises(PlanFileError) as caught:
        read_fjs(path)

    assert caught.value.line == 2
    assert "expected a duration of operation 1 >= 1, found 0" in str(caught.value)


def test_fjs_truncated_job_line_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "1 2\n2 1 1 5 2 1\n")

    with pytest.raises(PlanFileError) as caught:
        read_fjs(path)

    assert caught.value.line == 2
    assert "found the end of the line" in str(caught.value)


def test_fjs_extra_numbers_name_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "1 2\n1 1 1 5 9\n")

    with pytest.raises(PlanFileError) as caught:
        read_fjs(path)

    assert caught.value.line == 2
    assert "expected the end of the line after 1 operations, found '9'" in str(caught.value)


def test_fjs_missing_job_line_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "2 2 1\n1 1 1 5\n")

    with pytest.raises(PlanFileError, match="expected job line 2 of 2, found the end of the file"):
        read_fjs(path)


def test_fjs_extra_line_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "1 2\n1 1 1 5\n1 1 2 5\n")

    with pytest.raises(PlanFileError) as caught:
        read_fjs(path)

    assert caught.value.line == 3
    assert "expected the end of the file after 1 job lines" in str(caught.value)


def test_fjs_bad_header_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "\n10\n")

    with pytest.raises(PlanFileError) as caught:
        read_fjs(path)

    assert caught.value.line == 2
    assert "expected 'jobs machines [average]', found '10'" in str(caught.value)


def test_fjs_repeated_machine_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.fjs", "1 2\n1 2 1 5 1 6\n")

    with pytest.raises(PlanFileError) as caught:
        read_fjs(path)

    assert caught.value.line == 2
    assert "lists machine 'M1' more than once" in str(caught.value)


def test_jsplib_comments_are_skipped(tmp_path: Path) -> None:
    path = write(tmp_path, "tiny", "# a comment\n#\n2 2\n0 3 1 4\n1 2 0 5\n")

    plan = read_jsplib(path)

    assert plan.jobs[1].operations[1].options == (OperationOption("M1", 5),)


def test_jsplib_wrong_pair_count_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad", "# comment\n2 2\n0 3 1 4\n1 2 0\n")

    with pytest.raises(PlanFileError) as caught:
        read_jsplib(path)

    assert caught.value.line == 4
    assert "expected 4 numbers (2 pairs of machine and duration), found 3" in str(caught.value)


def test_jsplib_machine_out_of_range_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad", "1 2\n0 3 2 4\n")

    with pytest.raises(PlanFileError) as caught:
        read_jsplib(path)

    assert caught.value.line == 2
    assert "expected the machine of step 2 from 0 to 1, found 2" in str(caught.value)


def test_jsplib_bad_header_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad", "#c\n1 2 3\n0 3 1 4\n")

    with pytest.raises(PlanFileError) as caught:
        read_jsplib(path)

    assert caught.value.line == 2
    assert "expected the end of the line after 'jobs machines', found '3'" in str(caught.value)


def test_json_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{\n  "format": "plantpulse-plan",\n  "version": 1,,\n}\n')

    with pytest.raises(PlanFileError) as caught:
        read_plan_json(path)

    assert caught.value.line == 3
    assert "invalid JSON" in str(caught.value)


def json_plan(**changes: object) -> dict[str, object]:
    document: dict[str, object] = {
        "format": "plantpulse-plan",
        "version": 1,
        "machines": ["M1"],
        "jobs": [{"id": "J1", "operations": [{"options": [{"machine": "M1", "duration": 2}]}]}],
    }
    document.update(changes)
    return document


def test_json_wrong_type_names_json_path(tmp_path: Path) -> None:
    jobs = [{"id": "J1", "operations": [{"options": [{"machine": "M1", "duration": "2"}]}]}]
    path = write(tmp_path, "bad.json", json.dumps(json_plan(jobs=jobs)))

    with pytest.raises(PlanFileError) as caught:
        read_plan_json(path)

    assert caught.value.line is None
    assert "jobs[0].operations[0].options[0].duration: Input should be a valid integer" in str(
        caught.value
    )


def test_json_unknown_key_is_rejected(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", json.dumps(json_plan(crew=2)))

    with pytest.raises(PlanFileError, match="crew: Extra inputs are not permitted"):
        read_plan_json(path)


def test_json_missing_version_is_rejected(tmp_path: Path) -> None:
    document = json_plan()
    del document["version"]
    path = write(tmp_path, "bad.json", json.dumps(document))

    with pytest.raises(PlanFileError, match="version: Field required"):
        read_plan_json(path)


def test_json_impossible_plan_gives_reason(tmp_path: Path) -> None:
    jobs = [{"id": "J1", "release": 5, "due": 1, "operations": []}]
    path = write(tmp_path, "bad.json", json.dumps(json_plan(jobs=jobs)))

    with pytest.raises(PlanFileError) as caught:
        read_plan_json(path)

    assert "jobs[0]: job 'J1' has no operations" in str(caught.value)
    assert "jobs[0]: job 'J1': due 1 is before release 5" in str(caught.value)


def test_json_unknown_machine_gives_reason(tmp_path: Path) -> None:
    jobs = [{"id": "J1", "operations": [{"options": [{"machine": "M2", "duration": 2}]}]}]
    path = write(tmp_path, "bad.json", json.dumps(json_plan(jobs=jobs)))

    with pytest.raises(PlanFileError, match="machine 'M2' is not one of the plan's machines"):
        read_plan_json(path)


def test_json_invalid_downtime_gives_reason(tmp_path: Path) -> None:
    downtime = [{"machine": "M1", "start": 4, "end": 2}]
    path = write(tmp_path, "bad.json", json.dumps(json_plan(downtime=downtime)))

    with pytest.raises(
        PlanFileError, match="downtime\\[0\\]: downtime of 'M1': end 2 is not after"
    ):
        read_plan_json(path)


def test_json_fixed_on_ineligible_machine_gives_reason(tmp_path: Path) -> None:
    document = json_plan(fixed=[{"job": "J1", "operation": 0, "machine": "M1", "start": 0}])
    document["machines"] = ["M1", "M2"]
    document["jobs"] = [
        {"id": "J1", "operations": [{"options": [{"machine": "M2", "duration": 2}]}]}
    ]
    path = write(tmp_path, "bad.json", json.dumps(document))

    with pytest.raises(PlanFileError, match="machine 'M1' is not eligible"):
        read_plan_json(path)


def broken_crew_plan(tmp_path: Path, **changes: object) -> Path:
    document = json_plan(
        machines=["M1", "M2", "M3"],
        crews=[{"skill": "electrician", "size": 1}],
        maintenance=[
            {"machine": "M1", "deadline": 3, "duration": 1, "cost": 5.0, "skill": "welder"},
            {
                "machine": "M2",
                "deadline": 3,
                "duration": 1,
                "cost": 5.0,
                "skill": "electrician",
                "crew_size": 2,
            },
            {"machine": "M3", "deadline": 3, "duration": 1, "cost": 5.0},
        ],
    )
    document.update(changes)
    return write(tmp_path, "bad.json", json.dumps(document))


def test_json_broken_crews_give_every_reason(tmp_path: Path) -> None:
    path = broken_crew_plan(tmp_path)

    with pytest.raises(PlanFileError) as caught:
        read_plan_json(path)

    message = str(caught.value)
    assert (
        "maintenance of 'M1' needs skill 'welder', but no crew has it (crews: ['electrician'])"
        in message
    )
    assert (
        "maintenance of 'M2' needs 2 people with skill 'electrician', but that crew has 1"
        in message
    )
    assert "maintenance of 'M3' needs skill 'maintenance', but no crew has it" in message


def test_json_crew_size_beside_crews_is_rejected(tmp_path: Path) -> None:
    document = json_plan(crew_size=1, crews=[{"skill": "maintenance", "size": 2}])
    path = write(tmp_path, "bad.json", json.dumps(document))

    with pytest.raises(PlanFileError, match="crew_size 1 is given together with crews"):
        read_plan_json(path)


def test_json_invalid_crew_names_index(tmp_path: Path) -> None:
    crews = [{"skill": "maintenance", "size": 0}, {"skill": "", "size": 1}]
    path = write(tmp_path, "bad.json", json.dumps(json_plan(crews=crews)))

    with pytest.raises(PlanFileError) as caught:
        read_plan_json(path)

    assert "crews[0]: crew 'maintenance': size 0 must be an integer >= 1" in str(caught.value)
    assert "crews[1]: crew skill '' is empty" in str(caught.value)


def test_json_unknown_staffing_key_is_rejected(tmp_path: Path) -> None:
    maintenance = [{"machine": "M1", "deadline": 3, "duration": 1, "cost": 5.0, "people": 2}]
    path = write(tmp_path, "bad.json", json.dumps(json_plan(maintenance=maintenance)))

    with pytest.raises(PlanFileError, match=r"maintenance\[0\]\.people: Extra inputs"):
        read_plan_json(path)
