"""RUL and health-state metrics, and the C-MAPSS test protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.cmapss import RUL_CAP, EngineRun, HealthThresholds, health_state_labels, load_cmapss
from models.inference import InferenceEngine, ModelParts
from models.normaliser import Normaliser
from models.windows import make_windows


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error, in the unit of the inputs."""
    error = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean(error**2)))


def phm08_score(predicted: np.ndarray, actual: np.ndarray) -> float:
    """PHM 2008 challenge score: sum of exp(-d/13) - 1 for early and exp(d/10) - 1 for late.

    d = predicted - actual RUL in cycles, so late predictions (d > 0) cost more than
    early ones. Lower is better and 0 is perfect.
    """
    d = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))


def classification_metrics(
    actual: np.ndarray, predicted: np.ndarray, names: Sequence[str]
) -> dict[str, float]:
    """Accuracy and per-class precision, recall and F1; a class never predicted scores 0."""
    metrics = {"state_accuracy": float(np.mean(actual == predicted))}
    for label, name in enumerate(names):
        true_positive = float(np.sum((predicted == label) & (actual == label)))
        predicted_count = float(np.sum(predicted == label))
        actual_count = float(np.sum(actual == label))
        precision = true_positive / predicted_count if predicted_count else 0.0
        recall = true_positive / actual_count if actual_count else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        metrics[f"{name}_precision"] = precision
        metrics[f"{name}_recall"] = recall
        metrics[f"{name}_f1"] = f1
    return metrics


def evaluate_engines(
    engine: InferenceEngine,
    engines: Sequence[EngineRun],
    rul_cap: float = RUL_CAP,
    thresholds: HealthThresholds | None = None,
) -> dict[str, float]:
    """Score the last window of each engine against its true RUL, capped at ``rul_cap``."""
    thresholds = thresholds or HealthThresholds()
    raw_values = Normaliser(
        names=(*engine.channels, *engine.context_fields),
        mean=(0.0,) * (len(engine.channels) + len(engine.context_fields)),
        std=(1.0,) * (len(engine.channels) + len(engine.context_fields)),
    )
    windows = make_windows(
        engines,
        channels=engine.channels,
        context_fields=engine.context_fields,
        normaliser=raw_values,
        window=engine.window,
        last_only=True,
        rul_cap=rul_cap,
        thresholds=thresholds,
    )
    predictions = engine.predict(windows.sensors, windows.context)

    p10 = np.array([p.rul_p10 for p in predictions])
    p50 = np.array([p.rul_p50 for p in predictions])
    p90 = np.array([p.rul_p90 for p in predictions])
    predicted_states = np.array([thresholds.states.index(p.state) for p in predictions])

    metrics = {
        "engines": float(len(predictions)),
        "rmse": rmse(p50, windows.rul),
        "mae": float(np.mean(np.abs(p50 - windows.rul))),
        "phm08_score": phm08_score(p50, windows.rul),
        "p10_p90_coverage": float(np.mean((p10 <= windows.rul) & (windows.rul <= p90))),
    }
    actual_states = health_state_labels(windows.rul, thresholds)
    metrics.update(classification_metrics(actual_states, predicted_states, thresholds.states))
    return metrics


def evaluate_cmapss_test(
    engine_or_model: InferenceEngine | ModelParts, data_dir: Path
) -> dict[str, float]:
    """Score a model on the FD001 test engines, last window each, RUL capped at 125.

    Returns rmse, mae and phm08_score of RUL p50 in cycles, the share of true
    RUL values inside [p10, p90], and state accuracy with per-state precision, recall
    and F1 for states labelled from the capped true RUL.
    """
    if isinstance(engine_or_model, InferenceEngine):
        engine = engine_or_model
    else:
        engine = InferenceEngine(engine_or_model, version="unregistered", device="cpu")
    return evaluate_engines(engine, load_cmapss(data_dir).test)
