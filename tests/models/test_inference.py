from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from models import (
    CONTEXT_FIELDS,
    SENSOR_CHANNELS,
    CmapssData,
    InferenceEngine,
    Registry,
    TrainedModel,
)
from models.fusion import FusionModel, FusionOutput
from models.inference import attribution_shares, channel_attributions

from .conftest import SMALL_TRAIN_CONFIG

WINDOW = SMALL_TRAIN_CONFIG.window


def raw_windows(cmapss: CmapssData, channels: tuple[str, ...], count: int) -> np.ndarray:
    """Return the last WINDOW raw cycles of the first ``count`` training engines, (count, W, C)."""
    columns = [SENSOR_CHANNELS.index(name) for name in channels]
    return np.stack([engine.sensors[-WINDOW:, columns] for engine in cmapss.train[:count]])


def raw_context(cmapss: CmapssData, count: int) -> np.ndarray:
    """Return the matching raw context (settings and cycle number), (count, W, 4)."""
    return np.stack([engine.context[-WINDOW:] for engine in cmapss.train[:count]])


@pytest.fixture
def engine(small_trained: TrainedModel) -> InferenceEngine:
    return InferenceEngine(small_trained, version="test", device="cpu")


def test_engine_exposes_model_inputs(engine: InferenceEngine, small_trained: TrainedModel) -> None:
    assert engine.version == "test"
    assert engine.window == 100
    assert engine.channels == small_trained.config.channels
    assert engine.channels[:3] == ("s2", "s3", "s4")
    assert engine.context_fields == CONTEXT_FIELDS


def test_predict_one_valid_prediction_per_window(
    engine: InferenceEngine, cmapss: CmapssData
) -> None:
    windows = raw_windows(cmapss, engine.channels, 8)

    predictions = engine.predict(windows, raw_context(cmapss, 8))

    assert len(predictions) == 8
    for prediction in predictions:
        assert 0.0 <= prediction.rul_p10 <= prediction.rul_p50 <= prediction.rul_p90
        assert prediction.state in ("healthy", "degrading", "critical")
        assert set(prediction.state_probabilities) == {"healthy", "degrading", "critical"}
        assert sum(prediction.state_probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        assert prediction.state == max(
            prediction.state_probabilities, key=prediction.state_probabilities.__getitem__
        )
        assert len(prediction.top_channels) == 3
        assert len(set(prediction.top_channels)) == 3
        assert set(prediction.top_channels) <= set(engine.channels)


def test_predict_matches_model_output(
    engine: InferenceEngine, small_trained: TrainedModel, cmapss: CmapssData
) -> None:
    windows = raw_windows(cmapss, engine.channels, 4)
    context = raw_context(cmapss, 4).mean(axis=1)
    normaliser = small_trained.normaliser
    sensors = torch.from_numpy(normaliser.transform(windows, engine.channels))
    settings = torch.from_numpy(normaliser.transform(context, engine.context_fields))

    with torch.no_grad():
        expected = small_trained.model.eval()(sensors, settings).rul_quantiles.clamp(min=0)
    predictions = engine.predict(windows, context)

    for row, prediction in enumerate(predictions):
        assert prediction.rul_p10 == pytest.approx(expected[row, 0].item(), abs=1e-3)
        assert prediction.rul_p50 == pytest.approx(expected[row, 1].item(), abs=1e-3)
        assert prediction.rul_p90 == pytest.approx(expected[row, 2].item(), abs=1e-3)


def test_predict_without_attributions_runs_in_inference_mode(
    small_trained: TrainedModel, cmapss: CmapssData, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = InferenceEngine(small_trained, version="test", device="cpu")
    windows = raw_windows(cmapss, engine.channels, 5)
    context = raw_context(cmapss, 5)
    modes: list[bool] = []
    forward = FusionModel.forward

    def recording_forward(model: FusionModel, *inputs: torch.Tensor) -> FusionOutput:
        modes.append(torch.is_inference_mode_enabled())
        return forward(model, *inputs)

    monkeypatch.setattr(FusionModel, "forward", recording_forward)

    explained = engine.predict(windows, context)
    plain = engine.predict(windows, context, attributions=False)

    assert modes == [False, True]
    for with_scores, without_scores in zip(explained, plain, strict=True):
        assert without_scores.rul_p10 == pytest.approx(with_scores.rul_p10, abs=1e-4)
        assert without_scores.rul_p50 == pytest.approx(with_scores.rul_p50, abs=1e-4)
        assert without_scores.rul_p90 == pytest.approx(with_scores.rul_p90, abs=1e-4)
        assert without_scores.state == with_scores.state
        assert without_scores.top_channels == ()
        assert without_scores.channel_scores == {}
        assert len(with_scores.top_channels) == 3


def test_predict_averages_context_over_window(engine: InferenceEngine, cmapss: CmapssData) -> None:
    windows = raw_windows(cmapss, engine.channels, 3)
    context = raw_context(cmapss, 3)

    per_cycle = engine.predict(windows, context)
    averaged = engine.predict(windows, context.mean(axis=1))

    for left, right in zip(per_cycle, averaged, strict=True):
        assert left.rul_p50 == pytest.approx(right.rul_p50, abs=1e-4)


def test_predict_chunked_batches_agree(small_trained: TrainedModel, cmapss: CmapssData) -> None:
    whole = InferenceEngine(small_trained, version="test", device="cpu")
    chunked = InferenceEngine(small_trained, version="test", device="cpu", max_batch_size=3)
    windows = raw_windows(cmapss, whole.channels, 7)
    context = raw_context(cmapss, 7)

    expected = whole.predict(windows, context)
    actual = chunked.predict(windows, context)

    assert [p.rul_p50 for p in actual] == pytest.approx([p.rul_p50 for p in expected], abs=1e-4)
    assert [p.top_channels for p in actual] == [p.top_channels for p in expected]


def test_bfloat16_engine_stays_near_float32(
    small_trained: TrainedModel, cmapss: CmapssData
) -> None:
    exact = InferenceEngine(small_trained, version="test", device="cpu")
    fast = InferenceEngine(small_trained, version="test", device="cpu", precision="bfloat16")
    windows = raw_windows(cmapss, exact.channels, 16)
    context = raw_context(cmapss, 16)

    expected = exact.predict(windows, context)
    actual = fast.predict(windows, context)

    assert fast.precision == "bfloat16"
    assert [p.rul_p50 for p in actual] == pytest.approx([p.rul_p50 for p in expected], abs=1.5)
    assert [p.rul_p50 for p in actual] != [p.rul_p50 for p in expected]
    same_top = sum(
        a.top_channels[0] == e.top_channels[0] for a, e in zip(actual, expected, strict=True)
    )
    assert same_top >= 14


def test_unknown_precision_is_rejected(small_trained: TrainedModel) -> None:
    with pytest.raises(
        ValueError, match="invalid precision 'float16': expected float32 or bfloat16"
    ):
        InferenceEngine(small_trained, version="test", device="cpu", precision="float16")  # type: ignore[arg-type]


def test_top_channels_follow_gradient_times_input(
    engine: InferenceEngine, small_trained: TrainedModel, cmapss: CmapssData
) -> None:
    windows = raw_windows(cmapss, engine.channels, 1)
    context = raw_context(cmapss, 1).mean(axis=1)
    normaliser = small_trained.normaliser
    sensors = torch.from_numpy(normaliser.transform(windows, engine.channels)).requires_grad_()
    settings = torch.from_numpy(normaliser.transform(context, engine.context_fields))

    median = small_trained.model.eval()(sensors, settings).rul_quantiles[0, 1]
    median.backward()
    assert sensors.grad is not None
    scores = (sensors.grad * sensors.detach()).sum(dim=1).abs()[0]
    expected = tuple(engine.channels[i] for i in torch.argsort(scores, descending=True)[:3])

    assert engine.predict(windows, context)[0].top_channels == expected


def test_channel_scores_are_shares_of_attribution(
    engine: InferenceEngine, small_trained: TrainedModel, cmapss: CmapssData
) -> None:
    windows = raw_windows(cmapss, engine.channels, 3)
    context = raw_context(cmapss, 3).mean(axis=1)
    normaliser = small_trained.normaliser
    sensors = torch.from_numpy(normaliser.transform(windows, engine.channels))
    settings = torch.from_numpy(normaliser.transform(context, engine.context_fields))
    attributions = channel_attributions(small_trained.model.eval(), sensors, settings)

    predictions = engine.predict(windows, context)

    for row, prediction in enumerate(predictions):
        scores = prediction.channel_scores
        assert list(scores) == list(engine.channels)
        assert all(share >= 0.0 for share in scores.values())
        assert sum(scores.values()) == pytest.approx(1.0, abs=1e-5)
        expected = (attributions[row] / attributions[row].sum()).tolist()
        assert list(scores.values()) == pytest.approx(expected, abs=1e-5)
        by_share = sorted(scores, key=scores.__getitem__, reverse=True)
        assert tuple(by_share[:3]) == prediction.top_channels


def test_attribution_shares_keep_zero_rows_zero() -> None:
    attributions = torch.tensor([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0]])

    shares = attribution_shares(attributions)

    assert shares.tolist() == [[0.25, 0.75, 0.0], [0.0, 0.0, 0.0]]


def test_channel_attributions_independent_per_window(small_trained: TrainedModel) -> None:
    model = small_trained.model.eval()
    torch.manual_seed(0)
    sensors = torch.randn(4, 30, len(small_trained.config.channels))
    context = torch.zeros(4, len(small_trained.config.context_fields))

    together = channel_attributions(model, sensors, context)
    alone = channel_attributions(model, sensors[:1], context[:1])

    assert together.shape == (4, len(small_trained.config.channels))
    torch.testing.assert_close(together[:1], alone)


def test_predict_empty_batch_returns_nothing(engine: InferenceEngine) -> None:
    windows = np.zeros((0, WINDOW, len(engine.channels)), dtype=np.float32)

    assert engine.predict(windows, np.zeros((0, 4), dtype=np.float32)) == []


@pytest.mark.parametrize(
    ("window_change", "context_shape", "message"),
    [
        ((0, -1, 0), (2, 4), "windows must have shape"),
        ((0, 0, -1), (2, 4), "windows must have shape"),
        ((0, 0, 0), (2, 3), "context must have shape"),
        ((0, 0, 0), (3, 4), "context must have shape"),
    ],
)
def test_predict_rejects_wrong_shapes(
    engine: InferenceEngine,
    window_change: tuple[int, int, int],
    context_shape: tuple[int, ...],
    message: str,
) -> None:
    valid_shape = (2, engine.window, len(engine.channels))
    window_shape = tuple(
        size + change for size, change in zip(valid_shape, window_change, strict=True)
    )

    with pytest.raises(ValueError, match=message):
        engine.predict(np.zeros(window_shape), np.zeros(context_shape))


def test_predict_rejects_nan_rows(engine: InferenceEngine, cmapss: CmapssData) -> None:
    windows = raw_windows(cmapss, engine.channels, 3)
    windows[2, 5, 0] = np.nan

    with pytest.raises(ValueError, match=r"rows \[2\]"):
        engine.predict(windows, raw_context(cmapss, 3))


def test_from_registry_serves_the_champion(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    registry.register(small_trained)
    registry.promote(registry.register(small_trained))

    engine = InferenceEngine.from_registry(tmp_path, device="cpu")

    assert engine.version == "v0002"
    assert engine.channels == small_trained.config.channels


def test_reload_switches_to_new_champion(
    tmp_path: Path, small_trained: TrainedModel, cmapss: CmapssData
) -> None:
    registry = Registry(tmp_path)
    registry.promote(registry.register(small_trained))
    engine = InferenceEngine.from_registry(tmp_path, device="cpu")

    assert engine.reload_if_changed() is False

    registry.promote(registry.register(small_trained))

    assert engine.reload_if_changed() is True
    assert engine.version == "v0002"
    assert engine.reload_if_changed() is False
    windows = raw_windows(cmapss, engine.channels, 2)
    assert len(engine.predict(windows, raw_context(cmapss, 2))) == 2


def test_reload_keeps_model_on_corrupt_champion(
    tmp_path: Path,
    small_trained: TrainedModel,
    cmapss: CmapssData,
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = Registry(tmp_path)
    registry.promote(registry.register(small_trained))
    engine = InferenceEngine.from_registry(tmp_path, device="cpu")
    bad_version = registry.register(small_trained)
    registry.promote(bad_version)
    (tmp_path / bad_version / "weights.safetensors").write_bytes(b"truncated")

    with caplog.at_level(logging.ERROR, logger="models.inference"):
        switched = engine.reload_if_changed()
        switched_again = engine.reload_if_changed()

    assert switched is False
    assert switched_again is False
    assert engine.version == "v0001"
    errors = [record for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "v0002" in errors[0].getMessage()
    assert "still serving v0001" in errors[0].getMessage()
    windows = raw_windows(cmapss, engine.channels, 2)
    assert len(engine.predict(windows, raw_context(cmapss, 2))) == 2


def test_engine_without_registry_never_reloads(engine: InferenceEngine) -> None:
    assert engine.reload_if_changed() is False
