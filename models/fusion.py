"""Fusion model: a sensor window read by dilated causal convolutions, conditioned on context.

The sensor window (B, W, C) passes through residual blocks of dilated causal 1-D
convolutions. The production context (B, K), for C-MAPSS the operating settings and the
cycles since maintenance averaged over the window, scales and shifts each block's hidden features (FiLM: Perez et al.,
"FiLM: Visual Reasoning with a General Conditioning Layer", AAAI 2018). The mean over
time, which averages out sensor noise, and the last step, which is the most recent state,
together feed two heads: RUL quantiles in cycles and health-state logits. A model
trained on labelled failures has a third, multi-label head: one logit per failure label.

With ``members`` above 1 the model is a packed ensemble: that many independently
initialised members side by side in grouped convolutions and per-member linear layers.
Training scores each member on its own loss, and the outputs are the means over members.
Members share the context encoder's hidden layer and the layer norms' scales.

With ``window_statistics`` a second view of the same window joins the members: each
channel's last value, mean and least-squares slope over the window, read with the context
by a small multilayer perceptron that has heads of its own. It is trained on its own loss
like a member, and its outputs join the means.
"""

from __future__ import annotations

import math
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
    # Number of ensemble members packed into one model, each d_model wide.
    members: int = 1
    # Whether a branch that reads window statistics joins the members (see the module docstring).
    window_statistics: bool = False

    def __post_init__(self) -> None:
        if not self.channels:
            raise ValueError("FusionConfig needs at least one sensor channel")
        if self.members < 1:
            raise ValueError(f"members must be at least 1, got {self.members}")
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

    @property
    def branches(self) -> int:
        """Number of outputs averaged: the members plus the statistics branch, if any."""
        return self.members + int(self.window_statistics)

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
    """Model outputs: the means over ensemble members, then each member's own outputs.

    The statistics branch, where the model has one, is the last member.
    """

    rul_quantiles: torch.Tensor  # (B, Q) cycles, ascending along Q
    state_logits: torch.Tensor  # (B, S)
    failure_logits: torch.Tensor | None = None  # (B, F); None without failure_modes
    member_rul_quantiles: torch.Tensor | None = None  # (B, M, Q)
    member_state_logits: torch.Tensor | None = None  # (B, M, S)
    member_failure_logits: torch.Tensor | None = None  # (B, M, F)


class PackedLinear(nn.Module):
    """One linear layer per ensemble member: (..., M, in) -> (..., M, out)."""

    def __init__(self, members: int, in_features: int, out_features: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default initial range
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(members, out_features))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("...mi,moi->...mo", x, self.weight) + self.bias

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        # Models saved before packed ensembles stored an nn.Linear here, which has no
        # member axis, so its weights load as the only member.
        for name in ("weight", "bias"):
            value = state_dict.get(prefix + name)
            if value is not None and value.dim() == getattr(self, name).dim() - 1:
                state_dict[prefix + name] = value.unsqueeze(0)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class CausalConv1d(nn.Module):
    """A 1-D convolution over (B, W, D) whose output at step t depends only on steps <= t.

    With ``groups`` above 1, D is split into that many equal slices, each convolved alone.
    """

    def __init__(self, channels: int, kernel_size: int, dilation: int, groups: int = 1) -> None:
        super().__init__()
        self.left_padding = (kernel_size - 1) * dilation
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation, groups=groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2)  # (B, D, W)
        x = F.pad(x, (self.left_padding, 0))  # (B, D, W + left_padding)
        return self.conv(x).transpose(1, 2)  # (B, W, D)


class ResidualBlock(nn.Module):
    """Two dilated causal convolutions with FiLM conditioning between them, per member."""

    def __init__(self, config: FusionConfig, dilation: int) -> None:
        super().__init__()
        d, m = config.d_model, config.members
        self.norm = nn.LayerNorm(d)
        self.conv1 = CausalConv1d(m * d, config.kernel_size, dilation, groups=m)
        self.film = PackedLinear(m, d, 2 * d)
        self.conv2 = CausalConv1d(m * d, config.kernel_size, dilation, groups=m)
        self.dropout = nn.Dropout(config.dropout)

        # Zero FiLM weights start every block unconditioned: scale 1, shift 0.
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        # x: (B, W, M, D), context: (B, M, D)
        b, w, m, d = x.shape
        h = self.conv1(self.norm(x).reshape(b, w, m * d))
        h = F.gelu(h).reshape(b, w, m, d)
        scale, shift = self.film(context).unsqueeze(1).chunk(2, dim=-1)  # (B, 1, M, D) each
        h = h * (1 + scale) + shift
        h = self.conv2(h.reshape(b, w, m * d)).reshape(b, w, m, d)
        return x + self.dropout(h)


STATISTICS_PER_CHANNEL = 3  # last value, mean, slope


def window_statistics(sensors: torch.Tensor) -> torch.Tensor:
    """Return each channel's last value, mean and slope: (B, W, C) -> (B, 3C).

    The slope is the least-squares slope per step. The standard deviation, which the
    gradient-boosting peer also reads, is left out because with it the branch leaned on
    the noise of uninformative channels, and so did the attributions (benchmarks/RESULTS.md).
    """
    steps = torch.arange(sensors.shape[1], dtype=sensors.dtype, device=sensors.device)
    centred_steps = steps - steps.mean()
    slope = torch.einsum("w,bwc->bc", centred_steps, sensors) / centred_steps.pow(2).sum()
    return torch.cat([sensors[:, -1], sensors.mean(dim=1), slope], dim=1)


class StatisticsBranch(nn.Module):
    """A multilayer perceptron over window statistics and context: (B, W, C), (B, K) -> (B, D).

    The statistics are standardised with the training windows' means and standard
    deviations (`fit_standardisation`), kept as buffers so they are saved with the weights.
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, config: FusionConfig, n_context: int) -> None:
        super().__init__()
        d = config.d_model
        features = STATISTICS_PER_CHANNEL * len(config.channels)
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.embedding = nn.Linear(features, 4 * d)
        self.context = nn.Linear(n_context, 4 * d)
        self.dropout = nn.Dropout(config.dropout)
        self.hidden = nn.Linear(4 * d, d)

    @torch.no_grad()
    def fit_standardisation(self, sensors: torch.Tensor, batch_size: int = 4096) -> None:
        """Set the statistics' means and standard deviations from training windows (N, W, C)."""
        features = torch.cat(
            [
                window_statistics(sensors[start : start + batch_size].float())
                for start in range(0, len(sensors), batch_size)
            ]
        )
        self.feature_mean.copy_(features.mean(dim=0))
        self.feature_std.copy_(features.std(dim=0).clamp(min=1e-6))

    def forward(self, sensors: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        # The sums over the window run in float32 whatever the model's number format.
        features = (window_statistics(sensors.float()) - self.feature_mean) / self.feature_std
        h = F.gelu(self.embedding(features.to(sensors.dtype)) + self.context(context))
        return F.gelu(self.hidden(self.dropout(h)))  # (B, D)


class FusionModel(nn.Module):
    """Maps normalised windows (B, W, C) and context (B, K) to RUL quantiles and state logits."""

    def __init__(self, config: FusionConfig) -> None:
        super().__init__()
        self.config = config
        d, m = config.d_model, config.members
        n_context = max(len(config.context_fields), 1)

        self.sensor_embedding = nn.Linear(len(config.channels), m * d)
        self.context_encoder = nn.Sequential(
            nn.Linear(n_context, m * d), nn.GELU(), nn.Linear(m * d, m * d)
        )
        self.blocks = nn.ModuleList(
            ResidualBlock(config, dilation=2**layer) for layer in range(config.n_layers)
        )
        self.pool = PackedLinear(m, 2 * d, d)
        self.final_norm = nn.LayerNorm(d)
        self.statistics: StatisticsBranch | None = (
            StatisticsBranch(config, n_context) if config.window_statistics else None
        )
        # The heads have one slice per member and one for the statistics branch.
        branches = config.branches
        self.rul_head = PackedLinear(branches, d, len(config.quantiles))
        self.state_head = PackedLinear(branches, d, len(config.state_names))
        self.median_index = config.quantiles.index(0.5)
        self.failure_head: PackedLinear | None = (
            PackedLinear(branches, d, len(config.failure_modes)) if config.failure_modes else None
        )

    def forward(self, sensors: torch.Tensor, context: torch.Tensor) -> FusionOutput:
        # sensors: (B, W, C) normalised, context: (B, K) normalised
        if context.shape[1] == 0:
            context = context.new_zeros(context.shape[0], 1)  # a model without context fields
        b, w, _ = sensors.shape
        m, d = self.config.members, self.config.d_model
        x = self.sensor_embedding(sensors).reshape(b, w, m, d)  # (B, W, M, D)
        conditioning = self.context_encoder(context).reshape(b, m, d)  # (B, M, D)
        for block in self.blocks:
            x = block(x, conditioning)
        pooled = torch.cat([x.mean(dim=1), x[:, -1]], dim=-1)  # (B, M, 2D)
        summary = self.final_norm(self.pool(pooled))  # (B, M, D)
        if self.statistics is not None:
            branch = self.statistics(sensors, context).unsqueeze(1)  # (B, 1, D)
            summary = torch.cat([summary, branch], dim=1)  # (B, M + 1, D)
        # From here on M counts the statistics branch as a member.

        member_rul = self._ordered_quantiles(self.rul_head(summary)) * self.config.rul_scale
        member_state = self.state_head(summary)  # (B, M, S)
        member_failure = None if self.failure_head is None else self.failure_head(summary)
        return FusionOutput(
            rul_quantiles=member_rul.mean(dim=1),
            state_logits=member_state.mean(dim=1),
            failure_logits=None if member_failure is None else member_failure.mean(dim=1),
            member_rul_quantiles=member_rul,
            member_state_logits=member_state,
            member_failure_logits=member_failure,
        )

    def _ordered_quantiles(self, raw: torch.Tensor) -> torch.Tensor:
        # raw: (..., Q). The median is free; every other quantile is the median plus or
        # minus a cumulative softplus gap, so the quantiles never cross. Their means over
        # members keep that order.
        m = self.median_index
        median = raw[..., m : m + 1]  # (..., 1)
        gaps_above = F.softplus(raw[..., m + 1 :]).cumsum(dim=-1)  # (..., Q - m - 1)
        gaps_below = F.softplus(raw[..., :m]).flip(-1).cumsum(dim=-1).flip(-1)  # (..., m)
        return torch.cat([median - gaps_below, median, median + gaps_above], dim=-1)


def is_temporal_encoder_parameter(name: str) -> bool:
    """Return whether a state-dict name belongs to the temporal encoder.

    The temporal encoder is the sensor embedding, each residual block's layer norm
    and convolutions, and the statistics branch's embedding of the window statistics
    with the buffers that standardise them. Each block's FiLM projection and the
    statistics branch's context layer are the context's paths into the encoder, so they
    belong with the context encoder and stay trainable.
    """
    if name.startswith(("sensor_embedding.", "statistics.embedding.", "statistics.feature_")):
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
