"""Provenance of a trained model: data files, seed, code version and creation time."""

from __future__ import annotations

import hashlib
import logging
import subprocess
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Lineage:
    """Everything needed to trace a model back to its inputs; stored as lineage.json.

    The units are C-MAPSS engine numbers, or block numbers for a tabular dataset, whose
    rows are cut into blocks of consecutive operations before the split.
    """

    data_files: dict[str, str]  # file path -> sha256 hex digest
    seed: int
    code_version: str
    created_at: str  # ISO 8601, UTC
    train_units: tuple[int, ...] = ()
    validation_units: tuple[int, ...] = ()
    train_config: dict[str, Any] = field(default_factory=dict)
    test_units: tuple[int, ...] = ()  # held out for the final test; empty for C-MAPSS
    parent_version: str | None = None  # the registry version this model was adapted from

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["train_units"] = list(self.train_units)
        data["validation_units"] = list(self.validation_units)
        data["test_units"] = list(self.test_units)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Lineage:
        return cls(
            data_files=dict(data["data_files"]),
            seed=int(data["seed"]),
            code_version=str(data["code_version"]),
            created_at=str(data["created_at"]),
            train_units=tuple(int(unit) for unit in data.get("train_units", ())),
            validation_units=tuple(int(unit) for unit in data.get("validation_units", ())),
            train_config=dict(data.get("train_config", {})),
            test_units=tuple(int(unit) for unit in data.get("test_units", ())),
            parent_version=data.get("parent_version"),
        )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_data_files(paths: Iterable[Path]) -> dict[str, str]:
    """Return the sha256 of each file, keyed by its resolved path."""
    return {str(Path(path).resolve()): sha256_file(path) for path in paths}


def code_version() -> str:
    """Return the installed plantpulse version, plus the git commit when one is available."""
    try:
        version = metadata.version("plantpulse")
    except metadata.PackageNotFoundError:
        version = "unknown"

    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        logger.debug("git commit unavailable for the code version: %s", error)
        return version
    commit = result.stdout.strip()
    return f"{version}+g{commit}" if result.returncode == 0 and commit else version


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
