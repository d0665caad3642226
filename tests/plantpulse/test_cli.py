"""The command line as a user runs it: help, one-off solves and errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def plantpulse(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "plantpulse.cli", *arguments],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_help_lists_every_command() -> None:
    result = plantpulse("--help")

    assert result.returncode == 0
    for command in (
        "demo",
        "broker",
        "replay",
        "train",
        "predictor",
        "scheduler",
        "schedule",
        "explain",
        "data",
    ):
        assert command in result.stdout


def test_schedule_solves_mk01_to_optimum(data_dir: Path, tmp_path: Path) -> None:
    result = plantpulse(
        "schedule",
        str(data_dir / "fjsp" / "brandimarte" / "mk01.fjs"),
        "--time-limit",
        "30",
        "--output",
        str(tmp_path / "s.json"),
    )

    assert result.returncode == 0, result.stderr
    assert "status optimal" in result.stdout
    assert "makespan 40," in result.stdout
    assert (tmp_path / "s.json").is_file()


def test_schedule_malformed_file_names_the_line(tmp_path: Path) -> None:
    plan = tmp_path / "broken.fjs"
    plan.write_text("2 2\n1 1 1 5\n1 1 9 x\n")

    result = plantpulse("schedule", str(plan))

    assert result.returncode == 1
    assert "line 3" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["demo", "train", "schedule", "explain", "replay", "data"])
def test_each_command_has_help(command: str) -> None:
    result = plantpulse(command, "--help")

    assert result.returncode == 0
    assert "Usage" in result.stdout


def test_evaluate_writes_metrics_report_and_plot(
    data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    result = plantpulse(
        "evaluate",
        "--data-dir",
        str(data_dir),
        "--registry",
        str(trained_registry),
        "--output",
        str(tmp_path),
    )

    assert result.returncode == 0, result.stderr
    assert "on the 100 FD001 test engines" in result.stdout
    report = json.loads(next(tmp_path.glob("evaluation-*.json")).read_text())
    assert report["metrics"]["engines"] == 100
    assert 0 < report["metrics"]["rmse"] < 100
    assert next(tmp_path.glob("evaluation-*.png")).stat().st_size > 10_000


def test_evaluate_without_champion_explains_what_to_do(tmp_path: Path) -> None:
    result = plantpulse("evaluate", "--registry", str(tmp_path / "empty"))

    assert result.returncode == 1
    assert "plantpulse train" in result.stderr
    assert "Traceback" not in result.stderr
