from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models import (
    AGE_FIELD,
    CONTEXT_FIELDS,
    SETTING_FIELDS,
    CmapssData,
    HealthThresholds,
    TrainConfig,
    TrainedModel,
    evaluate_cmapss_test,
    fit_normaliser,
    phm08_score,
    pinball_loss,
    rmse,
    train_cmapss,
)
from models.evaluation import classification_metrics
from models.fusion import window_statistics
from models.training import engine_windows

from .conftest import SMALL_TRAIN_CONFIG


def test_pinball_loss_weights_errors_by_quantile() -> None:
    quantiles = torch.tensor([0.1, 0.5, 0.9])
    predicted = torch.tensor([[10.0, 10.0, 10.0]])

    # Target below every prediction: losses (1 - q) * 10 = 9, 5, 1.
    over = pinball_loss(predicted, torch.tensor([0.0]), quantiles)
    # Target above every prediction: losses q * 10 = 1, 5, 9.
    under = pinball_loss(predicted, torch.tensor([20.0]), quantiles)

    assert over.item() == pytest.approx(5.0)
    assert under.item() == pytest.approx(5.0)
    assert pinball_loss(predicted, torch.tensor([10.0]), quantiles).item() == 0.0


def test_rmse_and_phm08_score_known_values() -> None:
    predicted = np.array([0.0, 10.0, 5.0])
    actual = np.array([13.0, 0.0, 5.0])

    assert rmse(predicted, actual) == pytest.approx(np.sqrt((169 + 100) / 3))
    # Early by 13 costs e^1 - 1, late by 10 also costs e^1 - 1, exact costs 0.
    assert phm08_score(predicted, actual) == pytest.approx(2 * (np.e - 1))


def test_phm08_penalises_late_predictions_more() -> None:
    late = phm08_score(np.array([20.0]), np.array([0.0]))
    early = phm08_score(np.array([0.0]), np.array([20.0]))

    assert late > early


def test_classification_metrics_per_state() -> None:
    actual = np.array([0, 0, 1, 2, 2])
    predicted = np.array([0, 1, 1, 2, 0])

    metrics = classification_metrics(actual, predicted, ("healthy", "degrading", "critical"))

    assert metrics["state_accuracy"] == pytest.approx(0.6)
    assert metrics["healthy_precision"] == pytest.approx(0.5)
    assert metrics["healthy_recall"] == pytest.approx(0.5)
    assert metrics["degrading_precision"] == pytest.approx(0.5)
    assert metrics["degrading_recall"] == pytest.approx(1.0)
    assert metrics["critical_precision"] == pytest.approx(1.0)
    assert metrics["critical_recall"] == pytest.approx(0.5)
    assert metrics["critical_f1"] == pytest.approx(2 / 3)


def test_train_config_round_trips_through_json() -> None:
    config = TrainConfig(
        seed=5,
        max_engines=7,
        health_thresholds=HealthThresholds(degrading_max=80),
        context_fields=SETTING_FIELDS,
    )

    restored = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))

    assert restored == config


def test_train_config_rejects_invalid_values() -> None:
    with pytest.raises(ValueError, match="epochs must be at least 1, got 0") as error:
        TrainConfig(epochs=0, device="gpu")

    assert 'device must be "auto", "cpu" or "cuda"' in str(error.value)
    with pytest.raises(ValueError, match=r"context_fields \['shift'\] are not among"):
        TrainConfig(context_fields=("setting1", "shift"))


def test_training_without_age_reads_only_the_settings(data_dir: Path) -> None:
    config = replace(SMALL_TRAIN_CONFIG, epochs=1, max_engines=4, context_fields=SETTING_FIELDS)

    trained = train_cmapss(data_dir, config, progress=False)

    assert trained.config.context_fields == SETTING_FIELDS
    assert trained.normaliser.names[-3:] == SETTING_FIELDS
    assert AGE_FIELD not in trained.normaliser.names


def test_training_packed_members_differ(data_dir: Path) -> None:
    config = replace(SMALL_TRAIN_CONFIG, epochs=1, max_engines=4, members=2, d_model=8)

    trained = train_cmapss(data_dir, config, progress=False)

    assert trained.config.members == 2
    assert trained.lineage.train_config["members"] == 2
    torch.manual_seed(0)
    sensors = torch.randn(16, trained.config.window, len(trained.config.channels))
    context = torch.randn(16, len(trained.config.context_fields))
    with torch.no_grad():
        output = trained.model(sensors, context)
    assert output.member_rul_quantiles is not None
    medians = output.member_rul_quantiles[:, :, 1]
    assert (medians[:, 0] - medians[:, 1]).abs().mean() > 0.1


def test_short_training_lowers_validation_loss(small_trained: TrainedModel) -> None:
    losses = [record["validation_loss"] for record in small_trained.history]

    assert len(losses) == SMALL_TRAIN_CONFIG.epochs
    assert losses[-1] < losses[0]
    assert small_trained.metrics["validation_loss"] == pytest.approx(min(losses))
    assert small_trained.metrics["epochs_run"] == SMALL_TRAIN_CONFIG.epochs


def test_training_splits_whole_engines(small_trained: TrainedModel) -> None:
    lineage = small_trained.lineage

    assert len(lineage.train_units) == 9
    assert len(lineage.validation_units) == 3
    assert set(lineage.train_units).isdisjoint(lineage.validation_units)
    assert set(lineage.train_units) | set(lineage.validation_units) == set(range(1, 13))


def test_normaliser_fitted_on_training_engines_only(
    small_trained: TrainedModel, cmapss: CmapssData
) -> None:
    config = small_trained.config
    train_units = set(small_trained.lineage.train_units)
    train_engines = [engine for engine in cmapss.train if engine.unit in train_units]
    all_engines = cmapss.train[:12]

    expected = fit_normaliser(train_engines, config.channels, CONTEXT_FIELDS)
    with_validation = fit_normaliser(all_engines, config.channels, CONTEXT_FIELDS)

    assert small_trained.normaliser == expected
    assert small_trained.normaliser != with_validation


def test_statistics_standardised_with_training_windows_only(
    small_trained: TrainedModel, cmapss: CmapssData
) -> None:
    statistics = small_trained.model.statistics
    assert statistics is not None
    train_units = set(small_trained.lineage.train_units)
    train_engines = [engine for engine in cmapss.train if engine.unit in train_units]
    validation_engines = [engine for engine in cmapss.train[:12] if engine.unit not in train_units]
    train_windows, validation_windows = engine_windows(
        train_engines,
        validation_engines,
        small_trained.config.channels,
        small_trained.config.context_fields,
        small_trained.normaliser,
        SMALL_TRAIN_CONFIG,
    )

    expected = window_statistics(torch.from_numpy(train_windows.sensors))
    with_validation = window_statistics(
        torch.from_numpy(np.concatenate([train_windows.sensors, validation_windows.sensors]))
    )

    torch.testing.assert_close(statistics.feature_mean, expected.mean(dim=0))
    torch.testing.assert_close(statistics.feature_std, expected.std(dim=0))
    assert not torch.allclose(statistics.feature_mean, with_validation.mean(dim=0))


def test_training_drops_constant_channels(small_trained: TrainedModel) -> None:
    channels = small_trained.config.channels

    assert "s1" not in channels
    assert "s19" not in channels
    assert channels[0] == "s2"
    assert small_trained.config.context_fields == CONTEXT_FIELDS


def test_lineage_records_data_hashes_and_seed(small_trained: TrainedModel) -> None:
    lineage = small_trained.lineage
    hashes = {Path(path).name: digest for path, digest in lineage.data_files.items()}

    assert hashes["train_FD001.txt"] == (
        "963b5e22825b34d8b21c69e1aeb4af3e647050eb672ee8834ba4b5d91d2de0f8"
    )
    assert hashes["RUL_FD001.txt"] == (
        "a19c8ec94931949d0485bdc35118206e9c81c4547b422efb9cf86f4ceddbceca"
    )
    assert lineage.seed == 0
    assert lineage.code_version.startswith("0.1.0")
    assert lineage.train_config["max_engines"] == 12


def test_training_is_reproducible_for_a_seed(data_dir: Path) -> None:
    config = replace(SMALL_TRAIN_CONFIG, epochs=1, max_engines=4)

    first = train_cmapss(data_dir, config, progress=False)
    second = train_cmapss(data_dir, config, progress=False)

    for name, tensor in first.model.state_dict().items():
        torch.testing.assert_close(tensor, second.model.state_dict()[name], msg=name)


def test_evaluate_cmapss_test_scores_all_engines(
    small_trained: TrainedModel, data_dir: Path
) -> None:
    metrics = evaluate_cmapss_test(small_trained, data_dir)

    assert metrics["engines"] == 100
    assert 0 < metrics["rmse"] < 125
    assert metrics["mae"] <= metrics["rmse"]
    assert metrics["phm08_score"] > 0
    assert 0 <= metrics["p10_p90_coverage"] <= 1
    assert 0 <= metrics["state_accuracy"] <= 1


def test_default_window_pads_short_test_engines(
    small_trained: TrainedModel, cmapss: CmapssData, data_dir: Path
) -> None:
    shortest = min(len(engine) for engine in cmapss.test)

    metrics = evaluate_cmapss_test(small_trained, data_dir)

    assert small_trained.config.window == TrainConfig().window == 100
    assert shortest == 31
    assert metrics["engines"] == 100
    assert np.isfinite(metrics["rmse"])
