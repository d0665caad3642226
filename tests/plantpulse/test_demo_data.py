"""The demo downloads its datasets into the user cache when no data folder has them.

These machines cannot reach the datasets' public hosts, so the download itself is
replaced at that boundary. The dataset tests cover the real download path against a
local server.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import ingest.datasets
from ingest.datasets import DownloadError
from plantpulse.cli import app


@pytest.fixture
def no_local_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every data lookup away from the shared data; return the user cache's data folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PLANTPULSE_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(ingest.datasets, "_PACKAGE_DIR", tmp_path)
    return tmp_path / "cache" / "plantpulse" / "data"


def test_demo_fetches_missing_data_into_cache(
    no_local_data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests: list[tuple[Path, list[str]]] = []

    def offline(dest: Path, names: list[str]) -> None:
        requests.append((dest, names))
        raise DownloadError("no route to host")

    monkeypatch.setattr(ingest.datasets, "fetch_datasets", offline)

    result = CliRunner().invoke(app, ["demo", "--output", "out", "--registry", "registry"])

    assert result.exit_code == 1
    assert requests == [(no_local_data, ["cmapss", "brandimarte"])]
    assert "downloading them from their public sources" in result.output
    assert "downloading the demo's datasets failed: no route to host" in result.output


def test_demo_leaves_a_named_data_folder_alone(
    no_local_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unexpected(dest: Path, names: list[str]) -> None:
        raise AssertionError(f"fetch called for {dest}")

    monkeypatch.setattr(ingest.datasets, "fetch_datasets", unexpected)

    result = CliRunner().invoke(
        app, ["demo", "--data-dir", str(tmp_path / "mine"), "--output", "out", "--registry", "r"]
    )

    assert result.exit_code == 1
    assert "not found in data folder" in result.output
    assert "chosen from the path passed in" in result.output
