"""`plantpulse schedule FILE` as a planner runs it: summary, schedule JSON and Gantt PNG."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from matplotlib.image import imread

from scheduler import (
    MachineDowntime,
    MachineMaintenance,
    Plan,
    Schedule,
    check_schedule,
    write_plan_json,
)
from scheduler.gantt import write_gantt_png
from scheduler.schedule import MaintenanceWindow, ScheduledOperation
from tests.scheduler.plans import crossing_deadline_plan, single_option_job, skilled_crew_plan

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def plantpulse(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plantpulse.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_schedule_command_writes_json_and_gantt(tmp_path: Path) -> None:
    plan_path = tmp_path / "line3.json"
    write_plan_json(crossing_deadline_plan(), plan_path)

    result = plantpulse(
        "schedule", str(plan_path), "--time-limit", "5", "--workers", "1", cwd=tmp_path
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(
        "line3.json: 3 jobs, 2 machines; status optimal, makespan 15, bound 16, gap 0.00%, "
    )
    assert lines[1] == "maintenance: 1 windows costing 1; objective 16"
    document = json.loads((tmp_path / "line3.schedule.json").read_text())
    assert document["plan"] == "crossing deadline"
    assert document["makespan"] == 15
    assert document["maintenance"][0]["reason"] == "worn"
    assert (tmp_path / "line3.schedule.png").read_bytes()[:8] == PNG_SIGNATURE


def test_schedule_command_solves_plan_with_crews(tmp_path: Path) -> None:
    plan_path = tmp_path / "crews.json"
    write_plan_json(skilled_crew_plan(electricians=1), plan_path)

    result = plantpulse("schedule", str(plan_path), "--time-limit", "5", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "status optimal, makespan 9," in lines[0]
    assert lines[2] == "crews (people per skill): electrician 1, mechanic 1"
    document = json.loads((tmp_path / "crews.schedule.json").read_text())
    windows = {window["machine"]: window for window in document["maintenance"]}
    assert windows["A"]["reason"] == "replace-drive: RUL"
    assert windows["A"]["end"] - windows["A"]["start"] == 4
    assert windows["B"]["end"] - windows["B"]["start"] == 3
    assert windows["A"]["end"] <= windows["B"]["start"] or (
        windows["B"]["end"] <= windows["A"]["start"]
    )


def test_schedule_command_rejects_understaffed_plan(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    document = {
        "format": "plantpulse-plan",
        "version": 1,
        "machines": ["M1"],
        "jobs": [{"id": "J1", "operations": [{"options": [{"machine": "M1", "duration": 2}]}]}],
        "crews": [{"skill": "electrician", "size": 1}],
        "maintenance": [
            {
                "machine": "M1",
                "deadline": 0,
                "duration": 2,
                "cost": 5.0,
                "skill": "electrician",
                "crew_size": 2,
            }
        ],
    }
    plan_path.write_text(json.dumps(document))

    result = plantpulse("schedule", str(plan_path), cwd=tmp_path)

    assert result.returncode == 1
    assert (
        "maintenance of 'M1' needs 2 people with skill 'electrician', but that crew has 1"
        in result.stderr
    )
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.png"))


def test_schedule_command_honours_output_paths(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    write_plan_json(crossing_deadline_plan(), plan_path)

    result = plantpulse(
        "schedule",
        str(plan_path),
        "--output",
        str(tmp_path / "out" / "s.json"),
        "--gantt",
        str(tmp_path / "chart.png"),
        cwd=tmp_path,
    )

    assert result.returncode == 1
    assert "cannot write the results" in result.stderr
    (tmp_path / "out").mkdir()

    result = plantpulse(
        "schedule",
        str(plan_path),
        "--output",
        str(tmp_path / "out" / "s.json"),
        "--gantt",
        str(tmp_path / "chart.png"),
        cwd=tmp_path,
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "s.json").is_file()
    assert (tmp_path / "chart.png").is_file()
    assert not list(tmp_path.glob("plan.schedule.*"))


def test_schedule_command_rejects_impossible_plan(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    document = {
        "format": "plantpulse-plan",
        "version": 1,
        "machines": ["M1"],
        "jobs": [
            {"id": "J1", "release": 8, "due": 3, "operations": []},
            {"id": "J2", "operations": [{"options": [{"machine": "M1", "duration": -2}]}]},
        ],
    }
    plan_path.write_text(json.dumps(document))

    result = plantpulse("schedule", str(plan_path), cwd=tmp_path)

    assert result.returncode == 1
    assert "job 'J1' has no operations" in result.stderr
    assert "job 'J1': due 3 is before release 8" in result.stderr
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("*.png"))


def test_schedule_command_names_line_of_bad_json(tmp_path: Path) -> None:
    plan_path = tmp_path / "plan.json"
    plan_path.write_text('{\n  "format": "plantpulse-plan",\n  "version": 1,,\n}\n')

    result = plantpulse("schedule", str(plan_path), cwd=tmp_path)

    assert result.returncode == 1
    assert "line 3" in result.stderr


def test_gantt_png_has_chart_size(tmp_path: Path) -> None:
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(single_option_job("J1", "M1", 4), single_option_job("J2", "M2", 3)),
        maintenance=(MachineMaintenance("M1", deadline=2, duration=2, cost=5.0, reason="RUL"),),
        downtime=(MachineDowntime("M2", 0, 1, "repair"),),
    )
    schedule = Schedule.from_assignment(
        plan,
        (ScheduledOperation("J1", 0, "M1", 2, 6), ScheduledOperation("J2", 0, "M2", 1, 4)),
        (MaintenanceWindow("M1", 0, 2, "RUL"),),
        status="feasible",
        objective=None,
        bound=None,
        solve_seconds=0.0,
    )
    assert check_schedule(plan, schedule) == []

    path = write_gantt_png(plan, schedule, tmp_path / "chart.png", time_unit="hours")

    pixels = imread(path)
    # 12 inches wide at 120 dots per inch; the height grows with the machine count.
    assert pixels.shape[1] == 1440
    assert pixels.shape[0] == round((2.2 + 0.45 * 2) * 120)
