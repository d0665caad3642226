"""Fusion model: a sensor window read by dilated causal convolutions, conditioned on context.

The sensor window (B, W, C) passes through residual blocks of dilated causal 1-D
convolutions. The production context (B, K), for C-MAPSS the operating settings and the
cycles since maintenance averaged over the window, scales and shifts each block's hidden features (FiLM: Perez et al.,
"FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018). The mean over
time, which averages out sensor noise, and the last step, which is the most recent state,
together feed two heads: RUL quantiles in cycles and health-state logits. A model
trained on labelled failures has a third, multi-label head: one logit per failure label.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class FusionConfig:
    """Architecture and input/output names of a FusionModel; pure data, stored as JSON."""

    channels: tuple[str, ...]
    context_fields: tuple[str, ...]
    window: int = 30
    d_model: int = 64
    n_layers: int = 4
    kernel_size: int = 3
    dropout: float = 0.1
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)
    state_names: tuple[str, ...] = ("healthy", "degrading", "critical")
    rul_scale: float = 125.0  # the heads work in RUL / rul_scale; outputs are in cycles
    # Labels of the multi-label failure head, e.g. ("machine-failure", "tool-wear-failure");
    # empty for a model without that head, as every C-MAPSS model is.
    failure_modes: tuple[str, ...] = ()
    # Probability at or above which each failure label is predicted, chosen on validation
    # windows; empty until training has chosen them.
    failure_thresholds: tuple[float, ...] = ()
    # Whether the RUL and health-state heads were trained. Data without run-to-failure
    # RUL, such as AI4I 2020, trains the failure head only: the other two heads still
    # exist, so the architecture stays the same, but their outputs mean nothing.
    predicts_rul: bool = True

    def __post_init__(self) -> None:
        if not self.channels:
            raise ValueError("FusionConfig needs at least one sensor channel")
        if not self.predicts_rul and not self.failure_modes:
            raise ValueError("a FusionConfig with predicts_rul=False needs failure_modes")
        if len(set(self.failure_modes)) != len(self.failure_modes):
            raise ValueError(f"failure_modes repeat a label: {self.failure_modes}")
        if self.failure_thresholds and len(self.failure_thresholds) != len(self.failure_modes):
            raise ValueError(
                f"failure_thresholds has {len(self.failure_thresholds)} values for "
                f"{len(self.failure_modes)} failure_modes; give one per label or none"
            )
        if not all(0.0 < threshold < 1.0 for threshold in self.failure_thresholds):
            raise ValueError(
                f"failure_thresholds must lie strictly between 0 and 1, got {self.failure_thresholds}"
            )
        if list(self.quantiles) != sorted(self.quantiles) or 0.5 not in self.quantiles:
            raise ValueError(f"quantiles must be ascending and include 0.5, got {self.quantiles}")

    @property
    def receptive_field(self) -> int:
        """Number of input steps that the output at the last step depends on."""
        dilation_sum = sum(2**layer for layer in range(self.n_layers))
        return 1 + 2 * (self.kernel_size - 1) * dilation_sum

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FusionConfig:
        tuple_fields = (
            "channels",
            "context_fields",
            "quantiles",
            "state_names",
            "failure_modes",
            "failure_thresholds",
        )
        values: dict[str, Any] = {
            key: tuple(data[key]) if key in tuple_fields else data[key] for key in data
        }
        return cls(**values)


class FusionOutput(NamedTuple):
    rul_quantiles: torch.Tensor  # (B, Q) cycles, ascending along Q
    state_logits: torch.Tensor  # (B, S)
    failure_logits: torch.Tensor | None = None  # (B, F); None without failure_modes


class CausalConv1d(nn.Module):
    """A 1-D convolution over (B, W, D) whose output at step t depends only on steps <= t."""

    def __init__(self, channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        self.left_padding = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # (B, D, W)
        x = F.pad(x, (self.left_padding, 0))  # (B, D, W + left_padding)
        return self.conv(x).transpose(1, 2)  # (B, W, D)


class ResidualBlock(nn.Module):
    """Two dilated causal convolutions with FiLM conditioning between them."""

    def __init__(self, config: FusionConfig, dilation: int) -> None:
        super().__init__()
        d = config.d_model
        self.norm = nn.LayerNorm(d)
        self.conv1 = CausalConv1d(d, config.kernel_size, dilation)
        self.film = nn.Linear(d, 2 * d)
        self.conv2 = CausalConv1d(d, config.kernel_size, dilation)
        self.dropout = nn.Dropout(config.dropout)

        # Zero FiLM weights start every block unconditioned: scale 1, shift 0.
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        # x: (B, W, D), context: (B, D)
        h = F.gelu(self.conv1(self.norm(x)))
        scale, shift = self.film(context).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, D) each
        h = h * (1 + scale) + shift
        h = self.conv2(h)
        return x + self.dropout(h)


class FusionModel(nn.Module):
    """Maps normalised windows (B, W, C) and context (B, K) to RUL quantiles and state logits."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        d = config.d_model
        n_context = max(len(config.context_fields), 1)

        self.sensor_embedding = nn.Linear(len(config.channels), d)
        self.context_encoder = nn.Sequential(nn.Linear(n_context, d), nn.GELU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(
            ResidualBlock(config, dilation=2**layer) for layer in range(config.n_layers)
        )
        self.pool = nn.Linear(2 * d, d)
        self.final_norm = nn.LayerNorm(d)
        self.rul_head = nn.Linear(d, len(config.quantiles))
        self.state_head = nn.Linear(d, len(config.state_names))
        self.median_index = config.quantiles.index(0.5)
        self.failure_head: nn.Linear | None = (
            nn.Linear(d, len(config.failure_modes)) if config.failure_modes else None
        )

    def forward(self, sensors: torch.Tensor, context: torch.Tensor) -> FusionOutput:
        # sensors: (B, W, C) normalised, context: (B, K) normalised
        if context.shape[1] == 0:
            context = context.new_zeros(context.shape[0], 1)  # a model without context fields
        x = self.sensor_embedding(sensors)  # (B, W, D)
        conditioning = self.context_encoder(context)  # (B, D)
        for block in self.blocks:
            x = block(x, conditioning)
        pooled = torch.cat([x.mean(dim=1), x[:, -1]], dim=1)  # (B, 2D)
        summary = self.final_norm(self.pool(pooled))  # (B, D)

        rul_quantiles = self._ordered_quantiles(self.rul_head(summary)) * self.config.rul_scale
        failure_logits = None if self.failure_head is None else self.failure_head(summary)
        return FusionOutput(rul_quantiles, self.state_head(summary), failure_logits)

    def _ordered_quantiles(self, raw: torch.Tensor) -> torch.Tensor:
        # raw: (B, Q). The median is free; every other quantile is the median plus or
        # minus a cumulative softplus gap, so the quantiles never cross.
        m = self.median_index
        median = raw[:, m : m + 1]  # (B, 1)
        gaps_above = F.softplus(raw[:, m + 1 :]).cumsum(dim=1)  # (B, Q - m - 1)
        gaps_below = F.softplus(raw[:, :m]).flip(1).cumsum(dim=1).flip(1)  # (B, m)
        return torch.cat([median - gaps_below, median, median + gaps_above], dim=1)  # (B, Q)


def is_temporal_encoder_parameter(name: str) -> bool:
    """Return whether a state-dict name belongs to the temporal encoder.

    The temporal encoder is the sensor embedding and each residual block's layer norm
    and convolutions. Each block's FiLM projection is the context's path into the
    encoder, so it belongs with the context encoder and stays trainable.
    """
    if name.startswith("sensor_embedding."):
        return True
    return name.startswith("blocks.") and ".film." not in name


def freeze_temporal_encoder(model: FusionModel) -> list[str]:
    """Stop gradients for the temporal encoder's parameters and return their names."""
    frozen = []
    for name, parameter in model.named_parameters():
        if is_temporal_encoder_parameter(name):
            parameter.requires_grad_(False)
            frozen.append(name)
    return frozen
