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
    predictions = engine.predict(windows.sensors, windows.context, attributions=False)

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


def failure_metrics(
    labels: np.ndarray,
    probabilities: np.ndarray,
    thresholds: Sequence[float],
    names: Sequence[str],
) -> dict[str, float]:
    """Precision, recall, F1, support and threshold per failure label.

    ``labels`` and ``probabilities`` are (N, F) with columns in ``names`` order. A window
    predicts a label when its probability is at or above that label's threshold. A label
    never predicted has precision 0, and one never present has recall 0.
    """
    metrics: dict[str, float] = {}
    for column, name in enumerate(names):
        actual = labels[:, column] > 0.5
        predicted = probabilities[:, column] >= thresholds[column]
        precision, recall, f1 = _precision_recall_f1(actual, predicted)
        metrics[f"{name}_precision"] = precision
        metrics[f"{name}_recall"] = recall
        metrics[f"{name}_f1"] = f1
        metrics[f"{name}_support"] = float(actual.sum())
        metrics[f"{name}_threshold"] = float(thresholds[column])
    return metrics


def choose_thresholds(
    labels: np.ndarray, probabilities: np.ndarray, default: float = 0.5
) -> tuple[float, ...]:
    """Pick, per label, the probability threshold with the highest F1 on these windows.

    Pass validation windows only, so that the test set never shapes the decision. The
    threshold lies halfway between the lowest probability still predicted positive and
    the next lower one, which leaves a margin on both sides. A label without positives,
    or whose best F1 is 0, gets ``default``. Thresholds are clipped into [1e-6, 1 - 1e-6].
    """
    thresholds = []
    for column in range(labels.shape[1]):
        actual = labels[:, column] > 0.5
        scores = probabilities[:, column].astype(np.float64)
        if not actual.any():
            thresholds.append(default)
            continue

        order = np.argsort(-scores, kind="stable")
        sorted_scores = scores[order]
        true_positives = np.cumsum(actual[order])
        predicted_count = np.arange(1, len(scores) + 1)
        # Only the last of equal scores is a valid cut: ties are predicted together.
        last_of_tie = np.append(sorted_scores[1:] != sorted_scores[:-1], True)
        f1 = 2 * true_positives / (predicted_count + actual.sum())
        f1 = np.where(last_of_tie, f1, -1.0)
        best = int(np.argmax(f1))
        if f1[best] <= 0:
            thresholds.append(default)
            continue

        lower = sorted_scores[best + 1] if best + 1 < len(scores) else 0.0
        threshold = (sorted_scores[best] + lower) / 2
        thresholds.append(float(np.clip(threshold, 1e-6, 1 - 1e-6)))
    return tuple(thresholds)


def _precision_recall_f1(actual: np.ndarray, predicted: np.ndarray) -> tuple[float, float, float]:
    true_positive = float(np.sum(actual & predicted))
    predicted_count = float(np.sum(predicted))
    actual_count = float(np.sum(actual))
    precision = true_positive / predicted_count if predicted_count else 0.0
    recall = true_positive / actual_count if actual_count else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def average_precision(actual: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as the mean precision at each positive's rank.

    Ties are broken by input order. Returns 0 when there are no positives.
    """
    actual = np.asarray(actual) > 0.5
    if not actual.any():
        return 0.0
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = actual[order]
    precision_at_rank = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision_at_rank[hits].mean())
