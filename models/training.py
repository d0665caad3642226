"""Training of the fusion model on C-MAPSS: quantile RUL plus health state, early stopping."""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from models.cmapss import (
    RUL_CAP,
    SETTING_FIELDS,
    HealthThresholds,
    informative_channels,
    load_cmapss,
    split_engines,
)
from models.device import resolve_device
from models.evaluation import evaluate_cmapss_test, rmse
from models.fusion import FusionConfig, FusionModel
from models.lineage import Lineage, code_version, hash_data_files, utc_now_iso
from models.normaliser import Normaliser
from models.windows import WindowSet, fit_normaliser, make_windows

__all__ = [
    "TrainConfig",
    "TrainedModel",
    "evaluate_cmapss_test",
    "pinball_loss",
    "train_cmapss",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run. Model size fields become the FusionConfig."""

    seed: int = 0
    epochs: int = 40
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    patience: int = 6  # epochs without a lower validation loss before stopping
    max_engines: int | None = None  # use only the first N training engines, for short runs
    validation_fraction: float = 0.2
    device: str = "auto"  # "auto", "cpu" or "cuda"
    max_minutes: float | None = 3.0  # wall-clock budget; training stops after the current batch
    window: int = 30
    stride: int = 1
    d_model: int = 48
    n_layers: int = 4
    dropout: float = 0.1
    state_loss_weight: float = 0.1  # weight of the cross-entropy against the pinball loss
    rul_cap: int = RUL_CAP
    health_thresholds: HealthThresholds = field(default_factory=HealthThresholds)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    """Train a FusionModel on C-MAPSS FD001 and return the best model by validation loss.

    Engines are split by ``config.seed`` into training and validation sets. Constant
    channels and the normaliser are taken from the training engines only. Training
    stops after ``config.epochs``, after ``config.patience`` epochs without a lower
    validation loss, or once ``config.max_minutes`` have passed.
    """
    started = time.monotonic()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    use_amp = device.type == "cuda"

    data = load_cmapss(data_dir)
    engines = data.train[: config.max_engines] if config.max_engines else data.train
    train_engines, validation_engines = split_engines(
        engines, config.validation_fraction, config.seed
    )

    channels = informative_channels(train_engines)
    context_fields = SETTING_FIELDS
    normaliser = fit_normaliser(train_engines, channels, context_fields)
    window_options: dict[str, Any] = {
        "channels": channels,
        "context_fields": context_fields,
        "normaliser": normaliser,
        "window": config.window,
        "rul_cap": config.rul_cap,
        "thresholds": config.health_thresholds,
    }
    train_windows = make_windows(train_engines, stride=config.stride, **window_options)
    validation_windows = make_windows(validation_engines, **window_options)

    model_config = FusionConfig(
        channels=channels,
        context_fields=context_fields,
        window=config.window,
        d_model=config.d_model,
        n_layers=config.n_layers,
        dropout=config.dropout,
        state_names=config.health_thresholds.states,
        rul_scale=float(config.rul_cap),
    )
    model = FusionModel(model_config).to(device)
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

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    # The learning rate decays to zero by the last planned epoch, so the final epochs
    # fine-tune with small steps instead of jumping between minima.
    steps_per_epoch = math.ceil(len(train_windows) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch
    )
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)
    objective = _Objective(model_config, config.state_loss_weight, device)
    train_tensors = _to_tensors(train_windows, device)
    validation_tensors = _to_tensors(validation_windows, device)
    shuffle_generator = torch.Generator().manual_seed(config.seed)
    deadline = started + config.max_minutes * 60 if config.max_minutes else None

    history: list[dict[str, float]] = []
    best_loss = float("inf")
    best_state = copy.deepcopy(model.state_dict())
    epochs_without_improvement = 0
    stop_reason = "max epochs"
    epoch_bar = tqdm(range(config.epochs), desc="training", unit="epoch", disable=not progress)
    for epoch in epoch_bar:
        train_loss, out_of_time = _train_one_epoch(
            model,
            train_tensors,
            objective,
            optimizer,
            scheduler,
            scaler,
            config.batch_size,
            shuffle_generator,
            use_amp,
            deadline,
        )
        validation_loss, validation_rmse = _validate(model, validation_tensors, objective)
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

        if validation_loss < best_loss:
            best_loss = validation_loss
            best_state = copy.deepcopy(model.state_dict())
            epochs_without_improvement = 0
        else:
            epochs_without_improvement += 1
        if out_of_time:
            stop_reason = "time budget"
            break
        if epochs_without_improvement >= config.patience:
            stop_reason = "early stopping"
            break
    epoch_bar.close()

    model.load_state_dict(best_state)
    model.eval()
    best_epoch = min(history, key=lambda record: record["validation_loss"])
    seconds = time.monotonic() - started
    metrics = {
        "validation_loss": best_epoch["validation_loss"],
        "validation_rmse": best_epoch["validation_rmse"],
        "best_epoch": best_epoch["epoch"],
        "epochs_run": float(len(history)),
        "train_seconds": seconds,
    }
    logger.info(
        "training finished after %d epochs (%s) in %.0f s: validation loss %.4f, RMSE %.2f",
        len(history),
        stop_reason,
        seconds,
        metrics["validation_loss"],
        metrics["validation_rmse"],
    )

    lineage = Lineage(
        data_files=hash_data_files(data.files),
        seed=config.seed,
        code_version=code_version(),
        created_at=utc_now_iso(),
        train_units=tuple(engine.unit for engine in train_engines),
        validation_units=tuple(engine.unit for engine in validation_engines),
        train_config=config.to_dict(),
    )
    return TrainedModel(
        model=model.cpu(),
        config=model_config,
        normaliser=normaliser,
        metrics=metrics,
        lineage=lineage,
        history=history,
    )


class _Objective:
    """Pinball loss on RUL / rul_scale plus weighted cross-entropy on the health state."""

    def __init__(self, config: FusionConfig, state_weight: float, device: torch.device) -> None:
        self.quantiles = torch.tensor(config.quantiles, device=device)
        self.rul_scale = config.rul_scale
        self.state_weight = state_weight

    def __call__(
        self, output: tuple[torch.Tensor, torch.Tensor], rul: torch.Tensor, state: torch.Tensor
    ) -> torch.Tensor:
        rul_quantiles, state_logits = output
        rul_loss = pinball_loss(
            rul_quantiles.float() / self.rul_scale, rul / self.rul_scale, self.quantiles
        )
        state_loss = F.cross_entropy(state_logits.float(), state)
        return rul_loss + self.state_weight * state_loss


def _to_tensors(windows: WindowSet, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(windows.sensors).to(device),
        torch.from_numpy(windows.context).to(device),
        torch.from_numpy(windows.rul).to(device),
        torch.from_numpy(windows.state).to(device),
    )


def _train_one_epoch(
    model: FusionModel,
    tensors: tuple[torch.Tensor, ...],
    objective: _Objective,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    batch_size: int,
    generator: torch.Generator,
    use_amp: bool,
    deadline: float | None,
) -> tuple[float, bool]:
    """Run one pass over shuffled batches; returns the mean loss and whether time ran out."""
    model.train()
    sensors, context, rul, state = tensors
    order = torch.randperm(len(rul), generator=generator).to(sensors.device)
    total_loss = 0.0
    seen = 0
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        with torch.autocast(device_type=sensors.device.type, enabled=use_amp):
            output = model(sensors[batch], context[batch])
        loss = objective(output, rul[batch], state[batch])

        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()

        total_loss += loss.item() * len(batch)
        seen += len(batch)
        if deadline is not None and time.monotonic() > deadline:
            return total_loss / seen, True
    return total_loss / seen, False


@torch.no_grad()
def _validate(
    model: FusionModel, tensors: tuple[torch.Tensor, ...], objective: _Objective
) -> tuple[float, float]:
    """Return the validation loss and the RMSE of the median RUL, in cycles."""
    model.eval()
    sensors, context, rul, state = tensors
    losses = []
    medians = []
    batch_size = 2048
    for start in range(0, len(rul), batch_size):
        batch = slice(start, start + batch_size)
        output = model(sensors[batch], context[batch])
        losses.append(objective(output, rul[batch], state[batch]).item() * len(rul[batch]))
        medians.append(output.rul_quantiles[:, model.median_index].float().cpu())
    predicted = torch.cat(medians).numpy()
    return sum(losses) / len(rul), rmse(predicted, rul.cpu().numpy())
