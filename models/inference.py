"""Batched inference on raw sensor windows with the registry's champion model."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Protocol, get_args

import numpy as np
import torch

from models.device import resolve_device
from models.fusion import FusionConfig, FusionModel, FusionOutput
from models.normaliser import Normaliser
from models.registry import NoChampionError, Registry, RegistryError

__all__ = [
    "InferenceEngine",
    "ModelParts",
    "NoChampionError",
    "Precision",
    "Prediction",
    "precision_dtype",
]

logger = logging.getLogger(__name__)

TOP_CHANNEL_COUNT = 3

# The number format of the served model's weights and of its forward and attribution
# passes. On a CPU with native bfloat16, "bfloat16" predicted 1.0 to 1.5 times as many
# windows a second as "float32", with RUL p50 within 1.5 cycles (benchmarks/RESULTS.md).
Precision = Literal["float32", "bfloat16"]
_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class Prediction:
    """One window's prediction; RUL values are in cycles with 0 <= p10 <= p50 <= p90.

    ``channel_scores`` maps every model channel to its share of the attribution on RUL
    p50 (|gradient x input|, see ``channel_attributions``). The shares are non-negative
    and sum to 1, except that they are all 0 when p50 does not depend on any channel.
    A prediction made without attributions has no top channels and no channel scores.
    A model trained without RUL targets (``FusionConfig.predicts_rul`` False) gives NaN
    RUL values, state ``"unknown"`` and no state probabilities. ``failure_probabilities``
    has one entry per failure label of a model with a failure head, and ``failures``
    lists the labels whose probability reaches the model's threshold for that label.
    """

    rul_p10: float
    rul_p50: float
    rul_p90: float
    state: str
    state_probabilities: dict[str, float]
    # Channels with the largest gradient x input on RUL p50, or on the first failure
    # label's logit for a model without RUL targets.
    top_channels: tuple[str, ...]
    channel_scores: dict[str, float] = field(default_factory=dict)
    failure_probabilities: dict[str, float] = field(default_factory=dict)
    failures: tuple[str, ...] = ()


class ModelParts(Protocol):
    """Model, config and normaliser of a trained or loaded model, as InferenceEngine reads them."""

    @property
    def model(self) -> FusionModel: ...

    @property
    def config(self) -> FusionConfig: ...

    @property
    def normaliser(self) -> Normaliser: ...


@dataclass(frozen=True)
class _ServedModel:
    version: str
    model: FusionModel
    config: FusionConfig
    sensor_mean: np.ndarray  # (C,) float32
    sensor_std: np.ndarray  # (C,) float32
    context_mean: np.ndarray  # (K,) float32
    context_std: np.ndarray  # (K,) float32


class InferenceEngine:
    """Serves one model version and swaps to a new registry champion on request.

    ``predict`` may run in one thread while ``reload_if_changed`` runs in another,
    because each call to ``predict`` uses the model it found when it started.
    """

    def __init__(
        self,
        parts: ModelParts,
        version: str,
        device: str = "auto",
        registry: Registry | None = None,
        max_batch_size: int = 1024,
        precision: Precision = "float32",
    ) -> None:
        """Serve ``parts`` as ``version``; a copy of its model moves to ``device``.

        ``registry`` is where ``reload_if_changed`` looks for a new champion; without one
        the engine never reloads. ``predict`` runs at most ``max_batch_size`` windows per
        forward pass, in ``precision``.
        """
        if precision not in get_args(Precision):
            raise ValueError(
                f"invalid precision {precision!r}: expected {' or '.join(get_args(Precision))}"
            )
        self._device = resolve_device(device)
        self._precision: Precision = precision
        self._dtype = precision_dtype(precision)
        if precision == "bfloat16" and not _has_native_bfloat16(self._device):
            logger.warning(
                "device %s has no native bfloat16 arithmetic, so bfloat16 inference may be "
                "slower than float32; use precision float32 if it is",
                self._device,
            )
        self._registry = registry
        self._max_batch_size = max_batch_size
        self._reported_bad_version: str | None = None
        self._served = self._prepare(parts, version)

    @classmethod
    def from_registry(
        cls, root: Path, device: str = "auto", precision: Precision = "float32"
    ) -> InferenceEngine:
        """Load the champion of the registry at ``root``.

        Raises NoChampionError when no version was promoted, and another RegistryError
        when the champion's files are missing, corrupt or inconsistent.
        """
        registry = Registry(root)
        loaded = registry.load_champion()
        logger.info("serving model version %s from registry %s", loaded.version, root)
        return cls(loaded, loaded.version, device=device, registry=registry, precision=precision)

    @property
    def version(self) -> str:
        return self._served.version

    @property
    def precision(self) -> Precision:
        return self._precision

    @property
    def window(self) -> int:
        return self._served.config.window

    @property
    def channels(self) -> tuple[str, ...]:
        return self._served.config.channels

    @property
    def context_fields(self) -> tuple[str, ...]:
        return self._served.config.context_fields

    def predict(
        self, windows: np.ndarray, context: np.ndarray, *, attributions: bool = True
    ) -> list[Prediction]:
        """Predict RUL quantiles, health state and top channels for each window.

        ``windows`` is (B, W, C) raw sensor values in ``channels`` order. ``context`` is
        (B, W, K) or (B, K) raw values in ``context_fields`` order. A (B, W, K) context is
        averaged over the window, as in training. With ``attributions`` False the model
        runs under ``torch.inference_mode`` without the backward pass that attributions
        need, and the predictions have no top channels. Raises ValueError on a wrong
        shape or on a NaN or infinite value.
        """
        served = self._served
        sensors, context_means = self._validate(served.config, windows, context)
        sensors = (sensors - served.sensor_mean) / served.sensor_std
        context_means = (context_means - served.context_mean) / served.context_std

        predictions: list[Prediction] = []
        for start in range(0, len(sensors), self._max_batch_size):
            batch = slice(start, start + self._max_batch_size)
            predictions.extend(
                self._predict_batch(served, sensors[batch], context_means[batch], attributions)
            )
        return predictions

    def reload_if_changed(self) -> bool:
        """Switch to the registry's champion if it changed; returns whether it switched.

        A champion that fails to load is logged and the current model keeps serving.
        After a switch, ``window``, ``channels`` and ``context_fields`` may differ, so
        callers re-read them before building the next windows.
        """
        if self._registry is None:
            return False
        try:
            champion = self._registry.champion()
        except OSError as error:
            logger.error("reading the champion in %s failed: %s", self._registry.root, error)
            return False
        if champion is None or champion == self.version:
            return False

        try:
            loaded = self._registry.load(champion)
            served = self._prepare(loaded, champion)
        except (RegistryError, OSError, ValueError) as error:
            # Log each bad version once at error level; the next calls retry quietly.
            level = logging.DEBUG if champion == self._reported_bad_version else logging.ERROR
            logger.log(
                level,
                "champion %s cannot be loaded, still serving %s: %s",
                champion,
                self.version,
                error,
            )
            self._reported_bad_version = champion
            return False

        previous = self.version
        self._served = served
        logger.info("switched from model version %s to champion %s", previous, champion)
        return True

    def _prepare(self, parts: ModelParts, version: str) -> _ServedModel:
        config = parts.config
        if not {0.1, 0.5, 0.9} <= set(config.quantiles):
            raise ValueError(
                f"model version {version} predicts quantiles {config.quantiles}, "
                "but serving needs 0.1, 0.5 and 0.9"
            )
        model = FusionModel(config)
        model.load_state_dict(parts.model.state_dict())
        model.requires_grad_(False)  # attribution needs gradients for the inputs only
        model.to(self._device, self._dtype).eval()

        sensor_mean, sensor_std = parts.normaliser.statistics(config.channels)
        context_mean, context_std = parts.normaliser.statistics(config.context_fields)
        return _ServedModel(
            version=version,
            model=model,
            config=config,
            sensor_mean=sensor_mean,
            sensor_std=sensor_std,
            context_mean=context_mean,
            context_std=context_std,
        )

    @staticmethod
    def _validate(
        config: FusionConfig, windows: np.ndarray, context: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        windows = np.asarray(windows, dtype=np.float32)
        context = np.asarray(context, dtype=np.float32)
        expected_window = (config.window, len(config.channels))
        if windows.ndim != 3 or windows.shape[1:] != expected_window:
            raise ValueError(
                f"windows must have shape (B, {config.window}, {len(config.channels)}) for "
                f"channels {config.channels}, got {windows.shape}"
            )
        if context.ndim == 3:
            context = context.mean(axis=1)
        if context.ndim != 2 or context.shape != (len(windows), len(config.context_fields)):
            raise ValueError(
                f"context must have shape ({len(windows)}, {len(config.context_fields)}) or "
                f"({len(windows)}, W, {len(config.context_fields)}) for fields "
                f"{config.context_fields}, got {np.shape(context)}"
            )

        bad_rows = ~(np.isfinite(windows).all(axis=(1, 2)) & np.isfinite(context).all(axis=1))
        if bad_rows.any():
            raise ValueError(
                f"windows or context contain NaN or infinite values in rows "
                f"{np.flatnonzero(bad_rows)[:10].tolist()}; fill or drop those readings first"
            )
        return windows, context

    def _predict_batch(
        self, served: _ServedModel, sensors: np.ndarray, context: np.ndarray, attributions: bool
    ) -> list[Prediction]:
        sensor_tensor = torch.from_numpy(np.ascontiguousarray(sensors)).to(
            self._device, self._dtype
        )
        context_tensor = torch.from_numpy(np.ascontiguousarray(context)).to(
            self._device, self._dtype
        )

        config = served.config
        rows = len(sensors)
        top_channels: list[tuple[str, ...]]
        channel_scores: list[dict[str, float]]
        if attributions:
            # One forward pass with input gradients gives the outputs and the attributions.
            output, scores = predict_with_attributions(served.model, sensor_tensor, context_tensor)
            top_indices = torch.topk(scores, k=min(TOP_CHANNEL_COUNT, scores.shape[1]))
            top_positions = top_indices.indices.cpu().numpy()  # (b, 3)
            shares = attribution_shares(scores).cpu().numpy()  # (b, C)
            top_channels = [tuple(config.channels[i] for i in row) for row in top_positions]
            channel_scores = [
                dict(zip(config.channels, row.tolist(), strict=True)) for row in shares
            ]
        else:
            with torch.inference_mode():
                output = served.model(sensor_tensor, context_tensor)
            top_channels = [()] * rows
            channel_scores = [{} for _ in range(rows)]
        quantiles = output.rul_quantiles.float().clamp(min=0.0).cpu().numpy()  # (b, Q)
        probabilities = torch.softmax(output.state_logits.float(), dim=1).cpu().numpy()  # (b, S)
        failure_array = _failure_probabilities(output.failure_logits, rows)

        low, median, high = (
            config.quantiles.index(0.1),
            config.quantiles.index(0.5),
            config.quantiles.index(0.9),
        )
        failure_probabilities, failures = _failure_outputs(config, failure_array)
        predictions = []
        for row in range(rows):
            state_probabilities = dict(
                zip(config.state_names, probabilities[row].tolist(), strict=True)
            )
            predictions.append(
                Prediction(
                    rul_p10=float(quantiles[row, low]),
                    rul_p50=float(quantiles[row, median]),
                    rul_p90=float(quantiles[row, high]),
                    state=config.state_names[int(probabilities[row].argmax())],
                    state_probabilities=state_probabilities,
                    top_channels=top_channels[row],
                    channel_scores=channel_scores[row],
                    failure_probabilities=failure_probabilities[row],
                    failures=failures[row],
                )
            )
        if not config.predicts_rul:
            predictions = [_without_rul(prediction) for prediction in predictions]
        return predictions


def channel_attributions(
    model: FusionModel, sensors: torch.Tensor, context: torch.Tensor
) -> torch.Tensor:
    """Score each channel's contribution to RUL p50, shape (B, C).

    The score is |sum over time of gradient x input| on normalised inputs, i.e. how far
    the channel moves p50 away from a window at the training mean. A model without RUL
    targets is explained on its first failure label's logit instead. One backward
    pass covers the whole batch because windows do not interact in the model.
    """
    return predict_with_attributions(model, sensors, context)[1]


def predict_with_attributions(
    model: FusionModel, sensors: torch.Tensor, context: torch.Tensor
) -> tuple[FusionOutput, torch.Tensor]:
    """Run the model once and return its detached outputs and the channel scores (B, C).

    The scores are those of ``channel_attributions``; sharing the forward pass saves
    the second pass that separate prediction and attribution would need.
    """
    with torch.enable_grad():
        inputs = sensors.detach().clone().requires_grad_(True)  # (B, W, C)
        output = model(inputs, context)
        median = _attribution_target(model, output).sum()
        (gradient,) = torch.autograd.grad(median, inputs)  # (B, W, C)
    attributions = (gradient.float() * inputs.detach().float()).sum(dim=1).abs()  # (B, C)
    detached = FusionOutput(
        output.rul_quantiles.detach(),
        output.state_logits.detach(),
        None if output.failure_logits is None else output.failure_logits.detach(),
    )
    return detached, attributions


def attribution_shares(attributions: torch.Tensor) -> torch.Tensor:
    """Divide each row of (B, C) non-negative attributions by its sum; an all-zero row stays 0."""
    totals = attributions.sum(dim=1, keepdim=True)  # (B, 1)
    return torch.where(
        totals > 0, attributions / totals.clamp(min=torch.finfo(totals.dtype).tiny), 0.0
    )


def _attribution_target(model: FusionModel, output: FusionOutput) -> torch.Tensor:
    """Return the (B,) output that attributions explain: RUL p50, else the first failure logit."""
    if model.config.predicts_rul or output.failure_logits is None:
        return output.rul_quantiles[:, model.median_index]
    return output.failure_logits[:, 0]


def precision_dtype(precision: Precision) -> torch.dtype:
    """Return the torch dtype in which ``precision`` serves the weights and inputs."""
    return _DTYPES[precision]


def _has_native_bfloat16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    try:
        # A private operator, because torch's public check, torch.cuda.is_bf16_supported,
        # covers CUDA only.
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _failure_probabilities(logits: torch.Tensor | None, rows: int) -> np.ndarray:
    """Return sigmoid probabilities (b, F), or an empty (b, 0) array without a failure head."""
    if logits is None:
        return np.zeros((rows, 0), dtype=np.float32)
    return torch.sigmoid(logits.float()).cpu().numpy()


def _failure_outputs(
    config: FusionConfig, probabilities: np.ndarray
) -> tuple[list[dict[str, float]], list[tuple[str, ...]]]:
    """Return each row's probability per failure label and the labels at or over threshold.

    A model registered before thresholds were chosen uses 0.5 for every label.
    """
    thresholds = config.failure_thresholds or (0.5,) * len(config.failure_modes)
    by_label = [dict(zip(config.failure_modes, row.tolist(), strict=True)) for row in probabilities]
    flagged = [
        tuple(
            label
            for label, threshold in zip(config.failure_modes, thresholds, strict=True)
            if row[label] >= threshold
        )
        for row in by_label
    ]
    return by_label, flagged


def _without_rul(prediction: Prediction) -> Prediction:
    # NOTE: the streaming predictor publishes MachineState, which needs a finite RUL and
    # a health state, so it can serve only models with predicts_rul True.
    return replace(
        prediction,
        rul_p10=math.nan,
        rul_p50=math.nan,
        rul_p90=math.nan,
        state="unknown",
        state_probabilities={},
    )
