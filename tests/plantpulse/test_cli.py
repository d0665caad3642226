"""The command line as a user runs it: help, one-off solves and errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# A training run short enough for a test: 4 engines, one epoch, on the CPU.
QUICK_TRAINING = ("--max-engines", "4", "--epochs", "1", "--device", "cpu")


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


def evaluate_champion(
    data_dir: Path, registry: Path, output: Path
) -> subprocess.CompletedProcess[str]:
    return plantpulse(
        "evaluate",
        "--data-dir",
        str(data_dir),
        "--registry",
        str(registry),
        "--output",
        str(output),
    )


def test_evaluate_writes_metrics_report_and_plot(
    data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    result = evaluate_champion(data_dir, trained_registry, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "on the 100 FD001 test engines" in result.stdout
    report = json.loads(next(tmp_path.glob("evaluation-*.json")).read_text())
    assert report["metrics"]["engines"] == 100
    assert 0 < report["metrics"]["rmse"] < 100
    assert next(tmp_path.glob("evaluation-*.png")).stat().st_size > 10_000


def test_evaluate_bfloat16_report_beside_float32(
    data_dir: Path, trained_registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLANTPULSE_PREDICTOR__PRECISION", "bfloat16")

    result = evaluate_champion(data_dir, trained_registry, tmp_path)

    assert result.returncode == 0, result.stderr
    assert "v0001 (window 30, bfloat16) on the 100 FD001 test engines" in result.stdout
    report = json.loads((tmp_path / "evaluation-v0001-bfloat16.json").read_text())
    assert report["precision"] == "bfloat16"
    assert report["window"] == 30
    assert 0 < report["metrics"]["rmse"] < 100
    assert (tmp_path / "evaluation-v0001-bfloat16.png").exists()
    assert not (tmp_path / "evaluation-v0001.json").exists()


def test_evaluate_without_champion_explains_what_to_do(tmp_path: Path) -> None:
    result = plantpulse("evaluate", "--registry", str(tmp_path / "empty"))

    assert result.returncode == 1
    assert "plantpulse train" in result.stderr
    assert "Traceback" not in result.stderr


def write_bench_plant(folder: Path) -> Path:
    """Write the bench plant description and its 1,200-step log into ``folder``."""
    from tests.models.test_attribution import GAUGE_PLANT, write_bench_log

    write_bench_log(folder, steps=1200, seed=2)
    plant = folder / "bench.toml"
    plant.write_text(GAUGE_PLANT)
    return plant


def test_train_plant_registers_failure_model(tmp_path: Path) -> None:
    plant = write_bench_plant(tmp_path)
    registry = tmp_path / "registry"

    trained = plantpulse(
        "train",
        "--plant",
        str(plant),
        "--data-dir",
        str(tmp_path),
        "--registry",
        str(registry),
        "--epochs",
        "2",
        "--window",
        "3",
        "--device",
        "cpu",
    )
    evaluated = plantpulse(
        "evaluate",
        "--plant",
        str(plant),
        "--data-dir",
        str(tmp_path),
        "--registry",
        str(registry),
        "--version",
        "v0001",
        "--output",
        str(tmp_path / "out"),
    )

    assert trained.returncode == 0, trained.stderr
    assert "registered v0001" in trained.stdout
    assert "not promoted" in trained.stdout
    assert not (registry / "champion").exists()
    header, row = trained.stdout.splitlines()[-2:]
    assert header.split() == ["label", "precision", "recall", "F1", "support", "threshold"]
    assert row.split()[0] == "machine-failure"
    assert evaluated.returncode == 0, evaluated.stderr
    assert "test windows of plant 'gauge-bench'" in evaluated.stdout
    assert evaluated.stdout.splitlines()[-2].split()[:5] == row.split()[:5]
    report = json.loads((tmp_path / "out" / "evaluation-v0001.json").read_text())
    assert report["plant"] == "gauge-bench"
    lineage = json.loads((registry / "v0001" / "lineage.json").read_text())
    assert report["metrics"]["windows"] == 50 * len(lineage["test_units"])
    assert 0 <= report["metrics"]["machine-failure_f1"] <= 1


def test_train_plant_rejects_promote(tmp_path: Path) -> None:
    plant = write_bench_plant(tmp_path)

    result = plantpulse(
        "train",
        "--plant",
        str(plant),
        "--data-dir",
        str(tmp_path),
        "--registry",
        str(tmp_path / "registry"),
        "--promote",
    )

    assert result.returncode == 2
    assert "cannot be the champion" in result.stderr
    assert not (tmp_path / "registry").exists()


def test_train_adapt_registers_child_version(
    data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(trained_registry, registry)

    result = plantpulse(
        "train",
        "--adapt",
        "v0001",
        "--data-dir",
        str(data_dir),
        "--registry",
        str(registry),
        *QUICK_TRAINING,
        "--no-promote",
    )

    assert result.returncode == 0, result.stderr
    assert "registered v0002" in result.stdout
    assert "adapted from v0001" in result.stdout
    lineage = json.loads((registry / "v0002" / "lineage.json").read_text())
    assert lineage["parent_version"] == "v0001"
    assert (registry / "champion").read_text().strip() == "v0001"


def test_train_window_sets_model_window(data_dir: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"

    result = plantpulse(
        "train",
        "--data-dir",
        str(data_dir),
        "--registry",
        str(registry),
        *QUICK_TRAINING,
        "--window",
        "40",
    )

    assert result.returncode == 0, result.stderr
    config = json.loads((registry / "v0001" / "config.json").read_text())
    assert config["window"] == 40


def test_train_adapt_other_window_explains(trained_registry: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    shutil.copytree(trained_registry, registry)

    result = plantpulse("train", "--adapt", "v0001", "--window", "50", "--registry", str(registry))

    assert result.returncode == 1
    assert "invalid --window 50: v0001 reads 30-cycle windows" in result.stderr
    assert not (registry / "v0002").exists()


def test_train_adapt_unknown_version_explains(tmp_path: Path) -> None:
    result = plantpulse("train", "--adapt", "v0042", "--registry", str(tmp_path))

    assert result.returncode == 1
    assert "cannot adapt: model version v0042 not found" in result.stderr
    assert "Traceback" not in result.stderr
