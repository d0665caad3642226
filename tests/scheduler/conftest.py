"""Fixtures that locate the benchmark files, skipping the tests that need them if absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The benchmark data folder: $PLANTPULSE_DATA_DIR, else shared/data beside the repository."""
    configured = os.environ.get("PLANTPULSE_DATA_DIR")
    path = (
        Path(configured)
        if configured
        else Path(__file__).resolve().parents[2].parent / "shared" / "data"
    )
    if not path.is_dir():
        pytest.skip(
            f"benchmark data folder {path} not found; set PLANTPULSE_DATA_DIR to the folder "
            "that contains fjsp/ and jsplib/"
        )
    return path


@pytest.fixture(scope="session")
def brandimarte_dir(data_dir: Path) -> Path:
    path = data_dir / "fjsp" / "brandimarte"
    if not (path / "mk01.fjs").is_file():
        pytest.skip(f"Brandimarte instances not found in {path}")
    return path


@pytest.fixture(scope="session")
def jsplib_dir(data_dir: Path) -> Path:
    path = data_dir / "jsplib" / "instances"
    if not (path / "ft06").is_file():
        pytest.skip(f"JSPLIB instances not found in {path}")
    return path
