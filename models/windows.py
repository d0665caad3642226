"""Sliding windows over engine runs: the model's training and evaluation samples."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.cmapss import (
    CONTEXT_FIELDS,
    RUL_CAP,
    SENSOR_CHANNELS,
    EngineRun,
    HealthThresholds,
    cap_rul,
    channel_columns,
    health_state_labels,
)
from models.normaliser import Normaliser


@dataclass(frozen=True)
class WindowSet:
    """Normalised windows with their targets, one row per window.

    The targets belong to each window's last cycle.
    """

    sensors: np.ndarray  # (N, W, C) float32
    context: np.ndarray  # (N, K) float32, mean over the window
    rul: np.ndarray  # (N,) float32, capped
    state: np.ndarray  # (N,) int64
    unit: np.ndarray  # (N,) int64

    def __len__(self) -> int:
        return len(self.rul)


def fit_normaliser(
    engines: Sequence[EngineRun], channels: Sequence[str], context_fields: Sequence[str]
) -> Normaliser:
    """Fit one normaliser over all rows of ``engines`` for the sensor and context columns."""
    sensor_columns = channel_columns(channels, SENSOR_CHANNELS)
    context_columns = channel_columns(context_fields, CONTEXT_FIELDS)
    rows = np.concatenate(
        [
            np.concatenate(
                [engine.sensors[:, sensor_columns], engine.context[:, context_columns]], axis=1
            )
            for engine in engines
        ]
    )
    return Normaliser.fit([*channels, *context_fields], rows)


def make_windows(
    engines: Sequence[EngineRun],
    *,
    channels: Sequence[str],
    context_fields: Sequence[str],
    normaliser: Normaliser,
    window: int,
    stride: int = 1,
    last_only: bool = False,
    rul_cap: float = RUL_CAP,
    thresholds: HealthThresholds | None = None,
    min_history: int | None = None,
) -> WindowSet:
    """Cut normalised windows of ``window`` cycles from each engine.

    Windows end every ``stride`` cycles counting back from each engine's last cycle, so
    the last cycle is always covered. With ``last_only`` each engine gives only its
    final window, as in the C-MAPSS test protocol. An engine shorter than ``window``
    is padded at the front with copies of its first row. With ``min_history`` windows
    also end at earlier cycles, from the ``min_history``-th on, padded the same way, so
    training includes windows like those of short test engines.
    """
    if window < 1 or stride < 1:
        raise ValueError(f"window and stride must be at least 1, got {window} and {stride}")
    if min_history is not None and min_history < 1:
        raise ValueError(f"min_history must be at least 1 or None, got {min_history}")
    thresholds = thresholds or HealthThresholds()
    sensor_columns = channel_columns(channels, SENSOR_CHANNELS)
    context_columns = channel_columns(context_fields, CONTEXT_FIELDS)

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for engine in engines:
        sensors = normaliser.transform(engine.sensors[:, sensor_columns], channels)  # (T, C)
        context = normaliser.transform(engine.context[:, context_columns], context_fields)
        rul = engine.rul

        earliest = window if min_history is None else min(window, min_history)
        padding = max(window - len(engine), window - earliest)
        if padding > 0:
            sensors = np.concatenate([np.repeat(sensors[:1], padding, axis=0), sensors])
            context = np.concatenate([np.repeat(context[:1], padding, axis=0), context])
            rul = np.concatenate([np.repeat(rul[:1], padding), rul])

        last_end = len(rul) - 1
        first_end = min(max(window - 1, padding + earliest - 1), last_end)
        ends = (
            np.array([last_end]) if last_only else np.arange(last_end, first_end - 1, -stride)[::-1]
        )
        starts = ends - window + 1

        # sliding_window_view puts the window axis last: (T - W + 1, C, W).
        sensor_windows = np.lib.stride_tricks.sliding_window_view(sensors, window, axis=0)
        context_windows = np.lib.stride_tricks.sliding_window_view(context, window, axis=0)
        parts.append(
            (
                sensor_windows[starts].transpose(0, 2, 1),  # (n, W, C)
                context_windows[starts].mean(axis=2),  # (n, K)
                rul[ends],
                np.full(len(ends), engine.unit, dtype=np.int64),
            )
        )

    if not parts:
        raise ValueError("no engines given, so there are no windows to make")
    capped = cap_rul(np.concatenate([part[2] for part in parts]), rul_cap)
    return WindowSet(
        sensors=np.concatenate([part[0] for part in parts]).astype(np.float32),
        context=np.concatenate([part[1] for part in parts]).astype(np.float32),
        rul=capped,
        state=health_state_labels(capped, thresholds),
        unit=np.concatenate([part[3] for part in parts]),
    )
