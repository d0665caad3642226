"""Failure-mode training on tabular data: weights, thresholds, metrics and served outputs."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models import InferenceEngine, Registry, TrainedModel
from models.evaluation import average_precision, choose_thresholds, failure_metrics
from models.lineage import Lineage
from models.plant import parse_plant
from models.tabular import MACHINE_FAILURE_LABEL, TabularData, load_tabular
from models.tabular_training import (
    DEFAULT_WINDOW,
    TabularTrainConfig,
    evaluate_tabular_test,
    positive_weights,
    train_on_tabular,
    train_tabular,
)

from .test_attribution import GAUGE_PLANT, write_bench_log

BENCH_CONFIG = TabularTrainConfig(
    epochs=6,
    window=4,
    block_length=100,
    d_model=16,
    n_layers=2,
    device="cpu",
    max_minutes=None,
    ema_decay=0.9,
)


@pytest.fixture(scope="module")
def bench_data(tmp_path_factory: pytest.TempPathFactory) -> TabularData:
    data_dir = write_bench_log(tmp_path_factory.mktemp("bench"), steps=2000, seed=4)
    return load_tabular(parse_plant(GAUGE_PLANT, ".toml"), data_dir)


@pytest.fixture(scope="module")
def bench_model(bench_data: TabularData) -> TrainedModel:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return train_on_tabular(bench_data, BENCH_CONFIG, progress=False)
    finally:
        torch.set_num_threads(threads)


def test_positive_weights_clipped_per_label() -> None:
    labels = np.array([[1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 0, 1]], dtype=np.float32)

    weights = positive_weights(labels, max_weight=2.0)

    np.testing.assert_allclose(weights, [2.0, 1.0, 1.0])


def test_choose_thresholds_maximises_f1() -> None:
    labels = np.array([[1, 0], [0, 0], [1, 0], [0, 0], [0, 0]], dtype=np.float32)
    scores = np.array([[0.9, 0.2], [0.8, 0.1], [0.7, 0.3], [0.2, 0.4], [0.1, 0.5]])

    thresholds = choose_thresholds(labels, scores)

    # Cutting below 0.7 catches both positives with one false alarm: F1 0.8, the best.
    assert thresholds[0] == pytest.approx(0.45)
    assert thresholds[1] == 0.5, "a label without positives keeps the default"


def test_choose_thresholds_predicts_ties_together() -> None:
    labels = np.array([[1], [0], [1]], dtype=np.float32)
    scores = np.array([[0.6], [0.6], [0.2]])

    thresholds = choose_thresholds(labels, scores)

    # A cut between the two 0.6 scores is impossible. Cutting below 0.6 gives F1 0.5 and
    # cutting below 0.2 gives 0.8.
    assert thresholds[0] == pytest.approx(0.1)


def test_failure_metrics_per_label() -> None:
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, 0]], dtype=np.float32)
    scores = np.array([[0.9, 0.1], [0.6, 0.2], [0.3, 0.1], [0.1, 0.1]])

    metrics = failure_metrics(labels, scores, (0.5, 0.5), ("a", "b"))

    assert metrics["a_precision"] == pytest.approx(0.5)
    assert metrics["a_recall"] == pytest.approx(0.5)
    assert metrics["a_f1"] == pytest.approx(0.5)
    assert metrics["a_support"] == 2
    assert metrics["b_precision"] == 0.0
    assert metrics["b_recall"] == 0.0
    assert metrics["b_f1"] == 0.0
    assert metrics["b_threshold"] == 0.5


def test_average_precision_known_value() -> None:
    # Positives at ranks 1 and 3: precision 1 and 2/3.
    assert average_precision(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.7, 0.1])) == (
        pytest.approx((1 + 2 / 3) / 2)
    )
    assert average_precision(np.array([0, 0]), np.array([0.5, 0.1])) == 0.0


def test_tabular_config_rejects_invalid_values() -> None:
    with pytest.raises(ValueError, match="window must be at least 1 or None, got 0") as error:
        TabularTrainConfig(window=0, max_positive_weight=0.5)

    assert "max_positive_weight must be at least 1" in str(error.value)


def test_tabular_model_predicts_failures_only(bench_model: TrainedModel) -> None:
    config = bench_model.config

    assert config.predicts_rul is False
    assert config.failure_modes == (MACHINE_FAILURE_LABEL,)
    assert len(config.failure_thresholds) == 1
    assert 0 < config.failure_thresholds[0] < 1
    assert config.channels == ("hum", "vibration", "drift")
    assert config.context_fields == ()
    assert config.window == 4


def test_tabular_training_learns_the_rule(bench_model: TrainedModel) -> None:
    metrics = bench_model.metrics

    assert metrics["test_machine-failure_f1"] > 0.8
    assert metrics["test_machine-failure_support"] > 20
    assert metrics["epochs_run"] == BENCH_CONFIG.epochs
    assert bench_model.history[-1]["validation_loss"] < bench_model.history[0]["validation_loss"]


def test_tabular_lineage_records_three_splits(bench_model: TrainedModel) -> None:
    lineage = bench_model.lineage
    splits = (lineage.train_units, lineage.validation_units, lineage.test_units)

    assert sorted(unit for split in splits for unit in split) == list(range(20))
    assert len(lineage.test_units) == 4
    assert len(lineage.validation_units) == 4
    assert lineage.parent_version is None
    assert lineage.train_config["block_length"] == 100
    assert [Path(path).name for path in lineage.data_files] == ["bench.csv"]


def test_engine_outputs_failures_without_rul(
    bench_model: TrainedModel, bench_data: TabularData
) -> None:
    engine = InferenceEngine(bench_model, version="test", device="cpu")
    threshold = bench_model.config.failure_thresholds[0]
    readings = bench_data.machines[0].readings
    windows = np.stack([readings[end - 4 : end] for end in range(4, 404)])

    predictions = engine.predict(windows, np.zeros((len(windows), 0), dtype=np.float32))

    for prediction in predictions:
        probability = prediction.failure_probabilities[MACHINE_FAILURE_LABEL]
        assert math.isnan(prediction.rul_p50)
        assert prediction.state == "unknown"
        assert prediction.state_probabilities == {}
        assert 0.0 <= probability <= 1.0
        assert prediction.failures == ((MACHINE_FAILURE_LABEL,) if probability >= threshold else ())
    flagged = np.array([bool(prediction.failures) for prediction in predictions])
    tripped = readings[3:403, 1] > 1.2
    assert (flagged == tripped).mean() > 0.95


def test_registered_model_evaluates_like_training(
    bench_model: TrainedModel, bench_data: TabularData, tmp_path: Path
) -> None:
    registry = Registry(tmp_path)
    loaded = registry.load(registry.register(bench_model))

    metrics = evaluate_tabular_test(loaded, bench_data)

    assert metrics["windows"] == 400
    for name in ("precision", "recall", "f1", "support", "threshold"):
        key = f"{MACHINE_FAILURE_LABEL}_{name}"
        assert metrics[key] == pytest.approx(bench_model.metrics[f"test_{key}"], abs=1e-6), key


def test_evaluation_rejects_other_labels(bench_model: TrainedModel, tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    loaded = registry.load(registry.register(bench_model))
    relabelled = replace(loaded, config=replace(loaded.config, failure_modes=("other",)))
    data_dir = write_bench_log(tmp_path, steps=300, seed=1)
    data = load_tabular(parse_plant(GAUGE_PLANT, ".toml"), data_dir)

    with pytest.raises(ValueError, match=r"predicts failure labels \('other',\)"):
        evaluate_tabular_test(relabelled, data)


@pytest.mark.usefixtures("one_torch_thread")
def test_plant_window_used_without_config_window(tmp_path: Path) -> None:
    plant = parse_plant(
        GAUGE_PLANT.replace('failure_column = "tripped"', 'failure_column = "tripped"\nwindow = 2'),
        ".toml",
    )
    write_bench_log(tmp_path, steps=600, seed=5)

    trained = train_tabular(plant, tmp_path, replace(BENCH_CONFIG, window=None, epochs=1), False)
    default = train_on_tabular(
        load_tabular(plant, tmp_path), replace(BENCH_CONFIG, window=None, epochs=1), False
    )

    assert plant.dataset is not None and plant.dataset.window == 2
    assert trained.config.window == 2
    assert trained.lineage.train_config["window"] == 2
    assert default.config.window == DEFAULT_WINDOW


def test_lineage_without_new_fields_loads() -> None:
    lineage = Lineage.from_dict(
        {"data_files": {}, "seed": 3, "code_version": "0.1.0", "created_at": "2026-12-01"}
    )

    assert lineage.test_units == ()
    assert lineage.parent_version is None
