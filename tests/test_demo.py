"""The demo, end to end in a short mode, run as a user runs it."""

from __future__ import annotations

import csv
import itertools
import json
import re
import subprocess
import sys
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from ingest.events import Schedule
from models.plant import example_plant
from scheduler import read_plan_json

pytestmark = [pytest.mark.broker, pytest.mark.slow]


def test_short_demo_prints_rmse_and_a_feasible_schedule(tmp_path: Path, data_dir: Path) -> None:
    output = tmp_path / "out"
    command = [
        sys.executable, "-m", "plantpulse.cli", "demo",
        "--data-dir", str(data_dir),
        "--machines", "6",
        "--epochs", "2",
        "--train-engines", "12",
        "--registry", str(tmp_path / "registry"),
        "--output", str(output),
        "--time-limit", "5",
    ]  # fmt: skip

    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-3000:]
    match = re.search(r"RMSE of RUL p50 over (\d+) machines: ([0-9.]+) cycles", result.stdout)
    assert match is not None, result.stdout
    assert int(match.group(1)) == 6
    assert 0.0 < float(match.group(2)) < 100.0
    assert "independent feasibility check: passed" in result.stdout
    assert f"plantpulse explain MACHINE --history {(output / 'history').resolve()}" in (
        result.stdout
    )

    summary = json.loads((output / "summary.json").read_text())
    assert summary["violations"] == []
    assert summary["solver_status"] in {"optimal", "feasible"}
    assert summary["machines"] == 6

    schedule = Schedule.model_validate_json((output / "schedule.json").read_text())
    plan = read_plan_json(output / "plan.json")
    assert len(schedule.operations) == sum(len(job.operations) for job in plan.jobs)
    by_job: dict[str, list[tuple[int, datetime, datetime]]] = defaultdict(list)
    by_machine: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for op in schedule.operations:
        by_job[op.job_id].append((op.operation, op.start, op.end))
        by_machine[op.machine_id].append((op.start, op.end))
    for window in schedule.maintenance_windows:
        by_machine[window.machine_id].append((window.start, window.end))
    for operations in by_job.values():
        operations.sort()
        for (_, _, end), (_, start, _) in itertools.pairwise(operations):
            assert start >= end
    for intervals in by_machine.values():
        intervals.sort()
        for (_, end), (start, _) in itertools.pairwise(intervals):
            assert start >= end

    predictions = list(csv.DictReader((output / "predictions.csv").open()))
    assert list(predictions[0])[:5] == ["machine_id", "rul_p10", "rul_p50", "rul_p90", "true_rul"]
    assert len(predictions) == 6
    plant = example_plant("cmapss")
    first_actions = {f"{c.name}/{m.name}": m.actions[0] for c, m in plant.failure_modes()}
    for row in predictions:
        assert row["recommended_action"] == first_actions[row["likely_cause"]]

    machine = predictions[-1]
    explained = subprocess.run(
        [
            sys.executable, "-m", "plantpulse.cli", "explain", machine["machine_id"],
            "--history", str(output / "history"),
        ],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert explained.returncode == 0, explained.stderr[-3000:]
    assert explained.stdout.startswith(f"{machine['machine_id']} at ")
    assert f"model {summary['model_version']}" in explained.stdout.splitlines()[0]
    failure_mode = machine["likely_cause"].split("/")[1]
    assert (
        f"4. Recommended action: {machine['recommended_action']}, "
        f"the first action for {failure_mode}"
    ) in explained.stdout
