"""Per-column standardisation fitted on training data and stored beside the model weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# A column with a smaller spread than this is treated as constant and only centred,
# because dividing by a near-zero standard deviation would amplify noise.
_MIN_STD = 1e-6


@dataclass(frozen=True)
class Normaliser:
    """Mean and standard deviation per named column, applied as (x - mean) / std."""

    names: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not len(self.names) == len(self.mean) == len(self.std):
            raise ValueError(
                f"normaliser has {len(self.names)} names, {len(self.mean)} means and "
                f"{len(self.std)} standard deviations; all three must match"
            )
        if any(s <= 0 for s in self.std):
            raise ValueError(f"normaliser standard deviations must be positive, got {self.std}")

    @classmethod
    def fit(cls, names: Sequence[str], values: np.ndarray) -> Normaliser:
        """Fit on ``values`` of shape (rows, len(names)).

        A constant column gets std 1, so it maps to zero and not to infinity.
        """
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != len(names) or values.shape[0] == 0:
            raise ValueError(
                f"expected values of shape (rows > 0, {len(names)}), got {values.shape}"
            )
        mean = values.mean(axis=0)
        std = values.std(axis=0)
        std = np.where(std < _MIN_STD, 1.0, std)
        return cls(
            names=tuple(names),
            mean=tuple(float(m) for m in mean),
            std=tuple(float(s) for s in std),
        )

    def transform(self, values: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Standardise ``values`` whose last axis follows ``names``; returns float32."""
        mean, std = self.statistics(names)
        values = np.asarray(values, dtype=np.float32)
        if values.shape[-1] != len(names):
            raise ValueError(
                f"values have {values.shape[-1]} columns on the last axis, "
                f"but {len(names)} names were given"
            )
        return (values - mean) / std

    def statistics(self, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Return float32 mean and std arrays ordered as ``names``."""
        index = {name: i for i, name in enumerate(self.names)}
        missing = [name for name in names if name not in index]
        if missing:
            raise KeyError(f"normaliser has no statistics for {missing}; it contains {self.names}")
        positions = [index[name] for name in names]
        mean = np.array([self.mean[i] for i in positions], dtype=np.float32)
        std = np.array([self.std[i] for i in positions], dtype=np.float32)
        return mean, std

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict that ``from_dict`` reads back."""
        return {"names": list(self.names), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normaliser:
        try:
            return cls(
                names=tuple(str(name) for name in data["names"]),
                mean=tuple(float(m) for m in data["mean"]),
                std=tuple(float(s) for s in data["std"]),
            )
        except (KeyError, TypeError) as error:
            raise ValueError(
                f"invalid normaliser data, expected keys names, mean and std: {error}"
            ) from error
