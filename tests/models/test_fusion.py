from __future__ import annotations

import json

import pytest
import torch

from models import FusionConfig, FusionModel, TrainConfig
from models.fusion import (
    CausalConv1d,
    freeze_temporal_encoder,
    is_temporal_encoder_parameter,
    window_statistics,
)

CHANNELS = ("s2", "s3", "s4", "s7")
CONTEXT = ("setting1", "setting2", "setting3")


def make_model(quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)) -> FusionModel:
    torch.manual_seed(0)
    config = FusionConfig(
        channels=CHANNELS, context_fields=CONTEXT, d_model=16, quantiles=quantiles
    )
    return FusionModel(config).eval()


def test_fusion_model_output_shapes() -> None:
    model = make_model()

    output = model(torch.randn(5, 30, 4), torch.randn(5, 3))

    assert output.rul_quantiles.shape == (5, 3)
    assert output.state_logits.shape == (5, 3)


def test_fusion_quantiles_ordered_for_extreme_heads() -> None:
    model = make_model()
    with torch.no_grad():
        model.rul_head.bias.copy_(torch.tensor([5.0, -3.0, -8.0]))

    quantiles = model(10 * torch.randn(64, 30, 4), 10 * torch.randn(64, 3)).rul_quantiles

    assert torch.all(quantiles[:, 0] <= quantiles[:, 1])
    assert torch.all(quantiles[:, 1] <= quantiles[:, 2])


def test_fusion_orders_five_quantiles() -> None:
    model = make_model(quantiles=(0.05, 0.1, 0.5, 0.9, 0.95))

    quantiles = model(torch.randn(8, 30, 4), torch.randn(8, 3)).rul_quantiles

    assert quantiles.shape == (8, 5)
    assert torch.all(quantiles.diff(dim=1) >= 0)


def test_fusion_context_changes_prediction() -> None:
    model = make_model()
    sensors = torch.randn(1, 30, 4)
    with torch.no_grad():
        for block in model.blocks:
            block.film.weight.normal_(0, 0.5)

    first = model(sensors, torch.zeros(1, 3)).rul_quantiles
    second = model(sensors, torch.ones(1, 3)).rul_quantiles

    assert not torch.allclose(first, second)


def test_fusion_model_runs_without_context_fields() -> None:
    config = FusionConfig(channels=CHANNELS, context_fields=(), d_model=8)
    model = FusionModel(config).eval()

    output = model(torch.randn(2, 30, 4), torch.zeros(2, 0))

    assert output.rul_quantiles.shape == (2, 3)


def test_causal_conv_ignores_later_steps() -> None:
    torch.manual_seed(0)
    conv = CausalConv1d(channels=4, kernel_size=3, dilation=2)
    x = torch.randn(1, 10, 4)
    changed = x.clone()
    changed[:, 6:] += 5.0

    original_output = conv(x)
    changed_output = conv(changed)

    assert original_output.shape == (1, 10, 4)
    torch.testing.assert_close(original_output[:, :6], changed_output[:, :6])
    assert not torch.allclose(original_output[:, 6], changed_output[:, 6])


def test_fusion_receptive_field_covers_default_window() -> None:
    config = FusionConfig(channels=CHANNELS, context_fields=CONTEXT)

    assert config.receptive_field == 61
    assert config.receptive_field >= config.window


def test_oldest_window_cycle_moves_output() -> None:
    # The last step depends on fewer cycles than the default window contains, and the
    # mean over time depends on all of them.
    defaults = TrainConfig()
    config = FusionConfig(
        channels=CHANNELS,
        context_fields=CONTEXT,
        window=defaults.window,
        n_layers=defaults.n_layers,
        d_model=8,
    )
    torch.manual_seed(0)
    model = FusionModel(config).eval()
    sensors = torch.randn(1, defaults.window, len(CHANNELS))
    changed = sensors.clone()
    changed[:, 0] += 3.0
    context = torch.zeros(1, len(CONTEXT))

    with torch.no_grad():
        original = model(sensors, context).rul_quantiles
        moved = model(changed, context).rul_quantiles

    assert config.receptive_field < defaults.window
    assert not torch.allclose(original, moved)


def test_fusion_config_round_trips_through_json() -> None:
    config = FusionConfig(channels=CHANNELS, context_fields=CONTEXT, d_model=24, dropout=0.2)

    restored = FusionConfig.from_dict(json.loads(json.dumps(config.to_dict())))

    assert restored == config


@pytest.mark.parametrize("quantiles", [(0.9, 0.5, 0.1), (0.1, 0.9)])
def test_fusion_config_rejects_unusable_quantiles(quantiles: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="quantiles"):
        FusionConfig(channels=CHANNELS, context_fields=CONTEXT, quantiles=quantiles)


def test_failure_head_gives_one_logit_per_label() -> None:
    config = FusionConfig(
        channels=CHANNELS,
        context_fields=CONTEXT,
        d_model=16,
        failure_modes=("machine-failure", "tool-wear-failure"),
        predicts_rul=False,
    )
    model = FusionModel(config).eval()

    output = model(torch.randn(5, 30, 4), torch.randn(5, 3))

    assert output.failure_logits is not None
    assert output.failure_logits.shape == (5, 2)
    assert output.rul_quantiles.shape == (5, 3)


def test_model_without_failure_modes_keeps_old_weights() -> None:
    model = make_model()

    output = model(torch.randn(2, 30, 4), torch.randn(2, 3))

    assert output.failure_logits is None
    assert model.failure_head is None
    assert not [name for name in model.state_dict() if name.startswith("failure_head")]


def test_fusion_config_reads_version_without_failure_fields() -> None:
    stored = FusionConfig(channels=CHANNELS, context_fields=CONTEXT).to_dict()
    for name in ("failure_modes", "failure_thresholds", "predicts_rul"):
        del stored[name]

    restored = FusionConfig.from_dict(stored)

    assert restored.failure_modes == ()
    assert restored.failure_thresholds == ()
    assert restored.predicts_rul is True


def test_fusion_config_round_trips_failure_fields() -> None:
    config = FusionConfig(
        channels=CHANNELS,
        context_fields=CONTEXT,
        failure_modes=("machine-failure", "power-failure"),
        failure_thresholds=(0.4, 0.7),
        predicts_rul=False,
    )

    restored = FusionConfig.from_dict(json.loads(json.dumps(config.to_dict())))

    assert restored == config


def test_fusion_config_without_any_target_is_rejected() -> None:
    with pytest.raises(ValueError, match="predicts_rul=False needs failure_modes"):
        FusionConfig(channels=CHANNELS, context_fields=CONTEXT, predicts_rul=False)


def test_fusion_config_needs_one_threshold_per_label() -> None:
    with pytest.raises(ValueError, match="2 values for 1 failure_modes"):
        FusionConfig(
            channels=CHANNELS,
            context_fields=CONTEXT,
            failure_modes=("machine-failure",),
            failure_thresholds=(0.5, 0.5),
        )


def test_freeze_keeps_context_and_heads_trainable() -> None:
    config = FusionConfig(
        channels=CHANNELS, context_fields=CONTEXT, d_model=8, n_layers=2, failure_modes=("f",)
    )
    model = FusionModel(config)

    frozen = freeze_temporal_encoder(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}

    assert "sensor_embedding.weight" in frozen
    assert "blocks.1.conv2.conv.weight" in frozen
    assert "blocks.0.norm.weight" in frozen
    assert not [name for name in frozen if ".film." in name]
    assert {"context_encoder.0.weight", "blocks.0.film.weight", "pool.weight"} <= trainable
    assert {"rul_head.weight", "state_head.weight", "failure_head.weight"} <= trainable
    assert trainable.isdisjoint(frozen)


def test_fusion_outputs_average_members() -> None:
    torch.manual_seed(0)
    config = FusionConfig(
        channels=CHANNELS, context_fields=CONTEXT, d_model=8, members=3, failure_modes=("f",)
    )
    model = FusionModel(config).eval()

    output = model(torch.randn(6, 30, 4), torch.randn(6, 3))

    assert output.member_rul_quantiles is not None
    assert output.member_state_logits is not None
    assert output.member_rul_quantiles.shape == (6, 3, 3)
    assert output.member_state_logits.shape == (6, 3, 3)
    torch.testing.assert_close(output.rul_quantiles, output.member_rul_quantiles.mean(dim=1))
    torch.testing.assert_close(output.state_logits, output.member_state_logits.mean(dim=1))
    assert output.failure_logits is not None
    assert output.member_failure_logits is not None
    torch.testing.assert_close(output.failure_logits, output.member_failure_logits.mean(dim=1))
    # Independently initialised members disagree, and each one's quantiles are ordered.
    medians = output.member_rul_quantiles[:, :, 1]
    assert (medians[:, 0] - medians[:, 1]).abs().min() > 0
    assert torch.all(output.member_rul_quantiles.diff(dim=2) >= 0)


def test_fusion_members_stay_independent() -> None:
    torch.manual_seed(0)
    config = FusionConfig(channels=CHANNELS, context_fields=CONTEXT, d_model=8, members=2)
    model = FusionModel(config).eval()
    sensors, context = torch.randn(4, 30, 4), torch.randn(4, 3)
    before = model(sensors, context).member_rul_quantiles
    with torch.no_grad():
        for block in model.blocks:
            block.conv1.conv.weight[8:].normal_()  # output channels of the second member

    after = model(sensors, context).member_rul_quantiles

    assert before is not None
    assert after is not None
    torch.testing.assert_close(after[:, 0], before[:, 0])
    assert not torch.allclose(after[:, 1], before[:, 1])


def test_fusion_loads_weights_saved_before_members() -> None:
    torch.manual_seed(0)
    config = FusionConfig(channels=CHANNELS, context_fields=CONTEXT, d_model=8)
    model = FusionModel(config).eval()
    packed = ("film", "pool", "rul_head", "state_head")
    # Before packed ensembles these layers were nn.Linear, without the member axis.
    saved = {
        name: value.squeeze(0) if name.split(".")[-2] in packed else value
        for name, value in model.state_dict().items()
    }
    assert saved["rul_head.weight"].shape == (3, 8)
    restored = FusionModel(config).eval()

    restored.load_state_dict(saved)

    sensors, context = torch.randn(3, 30, 4), torch.randn(3, 3)
    torch.testing.assert_close(
        restored(sensors, context).rul_quantiles, model(sensors, context).rul_quantiles
    )


def test_fusion_config_rejects_zero_members() -> None:
    with pytest.raises(ValueError, match="members must be at least 1"):
        FusionConfig(channels=CHANNELS, context_fields=CONTEXT, members=0)


def test_window_statistics_of_a_known_window() -> None:
    steps = torch.arange(5, dtype=torch.float32)
    # Channel 0 rises by 2 per step from 1. Channel 1 is constant at 3.
    sensors = torch.stack([2 * steps + 1, torch.full((5,), 3.0)], dim=1).unsqueeze(0)

    features = window_statistics(sensors)

    # Last values, then means, then slopes, each per channel.
    expected = torch.tensor([[9.0, 3.0, 5.0, 3.0, 2.0, 0.0]])
    torch.testing.assert_close(features, expected)


def make_statistics_model(members: int = 1) -> FusionModel:
    torch.manual_seed(0)
    config = FusionConfig(
        channels=CHANNELS,
        context_fields=CONTEXT,
        d_model=8,
        members=members,
        window_statistics=True,
    )
    return FusionModel(config).eval()


def test_statistics_branch_is_the_last_member() -> None:
    model = make_statistics_model(members=2)
    sensors, context = torch.randn(6, 30, 4), torch.randn(6, 3)
    before = model(sensors, context)
    assert model.statistics is not None
    with torch.no_grad():
        model.statistics.hidden.weight.normal_()

    after = model(sensors, context)

    assert before.member_rul_quantiles is not None
    assert after.member_rul_quantiles is not None
    assert after.member_rul_quantiles.shape == (6, 3, 3)
    torch.testing.assert_close(after.rul_quantiles, after.member_rul_quantiles.mean(dim=1))
    torch.testing.assert_close(
        after.member_rul_quantiles[:, :2], before.member_rul_quantiles[:, :2]
    )
    assert not torch.allclose(after.member_rul_quantiles[:, 2], before.member_rul_quantiles[:, 2])


def test_statistics_standardisation_fits_training_windows() -> None:
    model = make_statistics_model()
    assert model.statistics is not None
    windows = 3 + 2 * torch.randn(200, 30, 4)

    model.statistics.fit_standardisation(windows, batch_size=64)

    standardised = (window_statistics(windows) - model.statistics.feature_mean) / (
        model.statistics.feature_std
    )
    torch.testing.assert_close(standardised.mean(dim=0), torch.zeros(12), atol=1e-5, rtol=0)
    torch.testing.assert_close(standardised.std(dim=0), torch.ones(12), atol=1e-5, rtol=0)
    # The means over the window of a channel centred on 3 have a mean near 3.
    assert model.statistics.feature_mean[4:8].sub(3.0).abs().max() < 0.1


def test_freeze_keeps_statistics_context_layer_trainable() -> None:
    model = make_statistics_model()

    frozen = freeze_temporal_encoder(model)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}

    assert {"statistics.embedding.weight", "statistics.embedding.bias"} <= set(frozen)
    assert {"statistics.context.weight", "statistics.hidden.weight"} <= trainable
    assert is_temporal_encoder_parameter("statistics.feature_mean")


def test_fusion_config_reads_version_without_statistics_branch() -> None:
    stored = FusionConfig(channels=CHANNELS, context_fields=CONTEXT).to_dict()
    del stored["window_statistics"]

    restored = FusionConfig.from_dict(stored)

    assert restored.window_statistics is False
    assert FusionModel(restored).statistics is None
