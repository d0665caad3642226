"""Distribution drift per channel against a model's training reference.

A reference profile is taken from the raw readings a model was trained on. Per channel
it keeps the training deciles as bin edges with the share of rows in each bin, for the
population stability index (PSI), and 101 quantiles, for an approximate
Kolmogorov-Smirnov statistic. Profiles are JSON files under
`<registry>/references/<version>.json`.

Machines differ from each other, so even readings of healthy machines like those in
training show some PSI. Each channel's profile therefore also records a baseline: the
largest PSI that a fifth of the training machines shows against all of them, over 20
such groups (4 random splits into 5). A channel counts as drifted only when its PSI
exceeds both a fixed threshold and a multiple of that baseline.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models import SENSOR_CHANNELS, EngineRun

REFERENCE_FOLDER = "references"
PSI_BINS = 10
BASELINE_GROUPS = 5
BASELINE_SPLITS = 4
KS_LEVELS = np.linspace(0.0, 1.0, 101)

# A bin that is empty on one side would make PSI infinite; shares are floored at this.
_MIN_SHARE = 1e-4


@dataclass(frozen=True)
class ChannelReference:
    """The training distribution of one channel."""

    edges: tuple[float, ...]  # inner bin edges, ascending and unique
    shares: tuple[float, ...]  # share of training rows per bin, len(edges) + 1
    quantiles: tuple[float, ...]  # values at KS_LEVELS
    mean: float
    std: float
    baseline_psi: float = 0.0  # largest PSI of a group of training machines against all


@dataclass(frozen=True)
class ReferenceProfile:
    """A model version's training distributions, per channel, and its validation RMSE."""

    version: str
    rows: int
    channels: dict[str, ChannelReference]
    validation_rmse: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "rows": self.rows,
            "validation_rmse": self.validation_rmse,
            "channels": {
                name: {
                    "edges": list(reference.edges),
                    "shares": list(reference.shares),
                    "quantiles": list(reference.quantiles),
                    "mean": reference.mean,
                    "std": reference.std,
                    "baseline_psi": reference.baseline_psi,
                }
                for name, reference in self.channels.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        return cls(
            version=str(data["version"]),
            rows=int(data["rows"]),
            validation_rmse=(
                None if data.get("validation_rmse") is None else float(data["validation_rmse"])
            ),
            channels={
                name: ChannelReference(
                    edges=tuple(float(x) for x in values["edges"]),
                    shares=tuple(float(x) for x in values["shares"]),
                    quantiles=tuple(float(x) for x in values["quantiles"]),
                    mean=float(values["mean"]),
                    std=float(values["std"]),
                    baseline_psi=float(values.get("baseline_psi", 0.0)),
                )
                for name, values in data["channels"].items()
            },
        )


@dataclass(frozen=True)
class ChannelDrift:
    """One channel's recent distribution compared with its reference."""

    channel: str
    psi: float
    psi_limit: float  # max(fixed threshold, baseline factor x baseline PSI)
    ks: float
    recent_mean: float
    reference_mean: float
    readings: int

    @property
    def drifted(self) -> bool:
        return self.psi > self.psi_limit


def build_reference(
    version: str,
    runs: Sequence[EngineRun],
    channels: Sequence[str],
    validation_rmse: float | None = None,
    seed: int = 0,
) -> ReferenceProfile:
    """Profile every row of `runs` for each of `channels` (C-MAPSS sensor names)."""
    if not runs:
        raise ValueError("no runs to build a drift reference from")
    columns = [SENSOR_CHANNELS.index(name) for name in channels]
    per_run = [_training_precision(run.sensors[:, columns]) for run in runs]
    rows = np.concatenate(per_run)

    group_count = min(BASELINE_GROUPS, len(per_run))
    groups = []
    for split in range(BASELINE_SPLITS):
        order = np.random.default_rng(seed + split).permutation(len(per_run))
        groups += [
            np.concatenate([per_run[i] for i in order[g::group_count]]) for g in range(group_count)
        ]

    profiles = {}
    for i, name in enumerate(channels):
        reference = _channel_reference(rows[:, i])
        baseline = 0.0
        if group_count >= 2:
            baseline = max(population_stability_index(reference, group[:, i]) for group in groups)
        profiles[name] = replace(reference, baseline_psi=baseline)
    return ReferenceProfile(
        version=version, rows=len(rows), channels=profiles, validation_rmse=validation_rmse
    )


def population_stability_index(reference: ChannelReference, values: np.ndarray) -> float:
    """PSI = sum over bins of (recent - reference) * ln(recent / reference) shares.

    A common reading: below 0.1 no shift, 0.1 to 0.25 a moderate shift, above 0.25 a
    significant one.
    """
    recent = _shares(_training_precision(values), np.array(reference.edges))
    expected = np.maximum(np.array(reference.shares), _MIN_SHARE)
    recent = np.maximum(recent, _MIN_SHARE)
    return float(np.sum((recent - expected) * np.log(recent / expected)))


def ks_statistic(reference: ChannelReference, values: np.ndarray) -> float:
    """Largest gap between the recent empirical CDF and the reference CDF.

    The reference CDF is a step function through the 101 stored quantiles, so the
    statistic is an approximation with an error of about 0.01. Readings of one machine
    are correlated in time, so the statistic is reported, not tested for significance.
    """
    ordered = np.sort(_training_precision(values))
    if len(ordered) == 0:
        return float("nan")
    quantiles = np.array(reference.quantiles)
    points = np.union1d(ordered, quantiles)
    recent_cdf = np.searchsorted(ordered, points, side="right") / len(ordered)
    steps = np.searchsorted(quantiles, points, side="right")
    reference_cdf = np.where(steps == 0, 0.0, KS_LEVELS[np.maximum(steps - 1, 0)])
    return float(np.max(np.abs(recent_cdf - reference_cdf)))


def channel_drift(
    profile: ReferenceProfile,
    recent: Mapping[str, np.ndarray],
    psi_threshold: float = 0.25,
    baseline_factor: float = 2.0,
) -> list[ChannelDrift]:
    """Compare each profiled channel that has recent values with its reference."""
    results = []
    for name, reference in profile.channels.items():
        values = recent.get(name)
        if values is None or len(values) == 0:
            continue
        results.append(
            ChannelDrift(
                channel=name,
                psi=population_stability_index(reference, values),
                psi_limit=max(psi_threshold, baseline_factor * reference.baseline_psi),
                ks=ks_statistic(reference, values),
                recent_mean=float(np.mean(values)),
                reference_mean=reference.mean,
                readings=len(values),
            )
        )
    return results


def reference_path(registry_dir: Path, version: str) -> Path:
    return Path(registry_dir) / REFERENCE_FOLDER / f"{version}.json"


def save_reference(registry_dir: Path, profile: ReferenceProfile) -> Path:
    """Write the profile atomically beside the registry's versions."""
    path = reference_path(registry_dir, profile.version)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(profile.to_dict(), stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_reference(registry_dir: Path, version: str) -> ReferenceProfile | None:
    """Read a version's profile; None when none was saved."""
    path = reference_path(registry_dir, version)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise ValueError(f"drift reference {path} is not valid JSON: {error}") from error
    return ReferenceProfile.from_dict(data)


def rmse_ratio(recent_rmse: float, reference_rmse: float | None) -> float | None:
    """Recent prediction RMSE over the reference RMSE; None when either is unknown."""
    if reference_rmse is None or reference_rmse <= 0 or not math.isfinite(recent_rmse):
        return None
    return recent_rmse / reference_rmse


def _training_precision(values: np.ndarray) -> np.ndarray:
    # Training data are float32: a reading of 21.61 as float64 lies just below the float32
    # bin edge 21.61 and would land in the wrong bin.
    return np.asarray(values, dtype=np.float32).astype(np.float64)


def _channel_reference(values: np.ndarray) -> ChannelReference:
    inner = np.quantile(values, np.linspace(0, 1, PSI_BINS + 1)[1:-1])
    edges = np.unique(inner)
    return ChannelReference(
        edges=tuple(float(x) for x in edges),
        shares=tuple(float(x) for x in _shares(values, edges)),
        quantiles=tuple(float(x) for x in np.quantile(values, KS_LEVELS)),
        mean=float(np.mean(values)),
        std=float(np.std(values)),
    )


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    bins = np.searchsorted(edges, values, side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype(np.float64)
    return counts / max(1, len(values))
