"""Figures of predicted against true remaining useful life."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display is needed or assumed

import matplotlib.pyplot as plt
import numpy as np

from models.cmapss import CONTEXT_FIELDS, RUL_CAP, SENSOR_CHANNELS, EngineRun, channel_columns
from models.inference import InferenceEngine


def engine_predictions(engine: InferenceEngine, run: EngineRun) -> tuple[np.ndarray, np.ndarray]:
    """Predict every full window of one engine's run; return (cycles, (T', 3) p10/p50/p90)."""
    sensor_columns = channel_columns(engine.channels, SENSOR_CHANNELS)
    context_columns = channel_columns(engine.context_fields, CONTEXT_FIELDS)
    count = len(run) - engine.window + 1
    if count <= 0:
        return np.empty(0, dtype=np.int64), np.empty((0, 3))
    sensors = np.stack(
        [run.sensors[i : i + engine.window][:, sensor_columns] for i in range(count)]
    )
    context = np.stack(
        [run.context[i : i + engine.window][:, context_columns] for i in range(count)]
    )
    predictions = engine.predict(
        sensors.astype(np.float32), context.astype(np.float32), attributions=False
    )
    quantiles = np.array([[p.rul_p10, p.rul_p50, p.rul_p90] for p in predictions])
    return run.cycles[engine.window - 1 :], quantiles


def plot_rul_predictions(
    engine: InferenceEngine,
    runs: Sequence[EngineRun],
    true_rul_at_end: Sequence[float],
    path: Path,
    title: str,
) -> Path:
    """Draw predicted RUL (p50 with the p10-p90 band) against true RUL for a few engines.

    The true RUL of a test engine at cycle t is its true RUL at the last cycle plus the
    cycles still to come, capped at 125 as in training.
    """
    columns = min(3, len(runs))
    rows = (len(runs) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 3.4 * rows), squeeze=False)
    for axis, run, final_rul in zip(axes.flat, runs, true_rul_at_end, strict=False):
        cycles, quantiles = engine_predictions(engine, run)
        true_rul = np.minimum(final_rul + (run.cycles[-1] - cycles), RUL_CAP)
        axis.fill_between(
            cycles, quantiles[:, 0], quantiles[:, 2], alpha=0.25, label="predicted p10-p90"
        )
        axis.plot(cycles, quantiles[:, 1], label="predicted p50")
        axis.plot(cycles, true_rul, "k--", label="true RUL (capped at 125)")
        axis.set_title(f"engine {run.unit}")
        axis.set_xlabel("cycle")
        axis.set_ylabel("RUL (cycles)")
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(runs) :]:
        axis.set_visible(False)
    axes.flat[0].legend(loc="lower left", fontsize=8)
    figure.suptitle(title)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
