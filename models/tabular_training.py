"""Training on a plant's tabular dataset: failure labels per operation, no RUL.

The model learns only its multi-label failure head (``FusionConfig.predicts_rul`` is
False): one logit per label, binary cross-entropy with a larger weight on the rare
positives. Blocks of consecutive operations are split into training, validation and test
sets (see ``models.tabular``). Training stops early on the validation loss, the decision
threshold of each label is the one with the best validation F1, and the test split is
scored once at the end with those thresholds.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from models.device import resolve_device
from models.evaluation import average_precision, choose_thresholds, failure_metrics
from models.fusion import FusionConfig, FusionModel, freeze_temporal_encoder
from models.inference import InferenceEngine
from models.lineage import Lineage, code_version, hash_data_files, utc_now_iso
from models.plant import PlantDescription
from models.registry import LoadedModel
from models.tabular import (
    TabularData,
    TabularWindows,
    cut_blocks,
    fit_tabular_normaliser,
    load_tabular,
    make_tabular_windows,
    split_blocks,
)
from models.training import EarlyStopping, TrainedModel

logger = logging.getLogger(__name__)

# Operations per window when neither the training settings nor the plant give one.
DEFAULT_WINDOW = 10


@dataclass(frozen=True)
class TabularTrainConfig:
    """Settings of one training run on a tabular dataset; the size fields become the model's."""

    seed: int = 0
    epochs: int = 60
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 0.01
    patience: int = 12  # epochs without a better validation score (select_by) before stopping
    # Consecutive operations per window; None takes the plant's dataset.window, else
    # DEFAULT_WINDOW.
    window: int | None = None
    block_length: int = 50  # consecutive operations per block of the split
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    max_operations: int | None = None  # only each machine's first N operations
    d_model: int = 32
    n_layers: int = 3
    dropout: float = 0.1
    ema_decay: float = 0.99  # per-step decay of the weight average that is validated and kept
    input_noise_std: float = 0.0  # Gaussian noise added to normalised training windows
    # "loss": keep the epoch with the lowest validation loss; "average_precision": the one
    # with the highest mean average precision over the labels.
    select_by: Literal["loss", "average_precision"] = "loss"
    # Upper bound of negatives / positives as the weight of a label's positives. Without
    # it a label with a handful of positives, such as random failures, would dominate.
    max_positive_weight: float = 5.0
    device: str = "auto"  # "auto", "cpu" or "cuda"
    max_minutes: float | None = 5.0  # wall-clock budget checked after every batch

    def __post_init__(self) -> None:
        problems = []
        for name in ("epochs", "batch_size", "patience", "block_length", "d_model"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.window is not None and self.window < 1:
            problems.append(f"window must be at least 1 or None, got {self.window}")
        if self.n_layers < 1:
            problems.append(f"n_layers must be at least 1, got {self.n_layers}")
        if self.lr <= 0:
            problems.append(f"lr must be positive, got {self.lr}")

        if self.max_operations is not None and self.max_operations < 1:
            problems.append(f"max_operations must be at least 1 or None, got {self.max_operations}")
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 < self.ema_decay < 1.0:
            problems.append(f"ema_decay must be between 0 and 1, got {self.ema_decay}")

        if self.max_positive_weight < 1.0:
            problems.append(
                f"max_positive_weight must be at least 1, got {self.max_positive_weight}"
            )
        if self.device not in ("auto", "cpu", "cuda"):
            problems.append(f'device must be "auto", "cpu" or "cuda", got {self.device!r}')
        if self.select_by not in ("loss", "average_precision"):
            problems.append(
                f'select_by must be "loss" or "average_precision", got {self.select_by!r}'
            )
        if self.max_minutes is not None and self.max_minutes <= 0:
            problems.append(f"max_minutes must be positive or None, got {self.max_minutes}")

        if problems:
            raise ValueError("invalid TabularTrainConfig: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TabularTrainConfig:
        return cls(**data)


@dataclass(frozen=True)
class TabularSplitWindows:
    """Normalised windows of the three splits of one training run."""

    train: TabularWindows
    validation: TabularWindows
    test: TabularWindows


def train_tabular(
    plant: PlantDescription,
    data_dir: Path,
    config: TabularTrainConfig,
    progress: bool = True,
    parent: LoadedModel | None = None,
) -> TrainedModel:
    """Load the plant's csv dataset and train on it; see `train_on_tabular`.

    A ``config`` without a window takes the plant's ``dataset.window``.
    """
    if config.window is None and plant.dataset is not None and plant.dataset.window:
        config = replace(config, window=plant.dataset.window)
    return train_on_tabular(load_tabular(plant, data_dir), config, progress, parent)


def train_on_tabular(
    data: TabularData,
    config: TabularTrainConfig,
    progress: bool = True,
    parent: LoadedModel | None = None,
) -> TrainedModel:
    """Train the failure head on ``data``; return the best epoch by ``config.select_by``.

    With ``parent`` this adapts that model instead: the new model keeps the parent's
    architecture, window and weights, its temporal encoder stays frozen, and only the
    context encoder, the FiLM projections and the heads learn. The parent must read the
    same channels. Context fields or failure labels that differ from the parent's get
    freshly initialised layers. The metrics include each label's test precision,
    recall and F1 at the thresholds chosen on the validation split, and the same
    figures on the validation split itself.
    """
    started = time.monotonic()
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    if parent is not None:
        config = _parent_architecture(config, parent, data)
    window = config.window or DEFAULT_WINDOW
    config = replace(config, window=window)
    if config.max_operations is not None:
        data = data.head(config.max_operations)

    blocks = cut_blocks(data, config.block_length)
    split = split_blocks(
        data, blocks, config.validation_fraction, config.test_fraction, config.seed
    )
    normaliser = fit_tabular_normaliser(data, blocks, split.train)
    windows = TabularSplitWindows(
        *(
            make_tabular_windows(data, blocks, numbers, window, normaliser)
            for numbers in (split.train, split.validation, split.test)
        )
    )
    _log_split(data, windows, device)

    model_config = FusionConfig(
        channels=data.channels,
        context_fields=data.context_fields,
        window=window,
        d_model=config.d_model,
        n_layers=config.n_layers,
        dropout=config.dropout,
        failure_modes=data.labels,
        predicts_rul=False,
    )
    deadline = started + config.max_minutes * 60 if config.max_minutes else None
    model, history = _fit(model_config, config, windows, device, deadline, progress, parent)

    validation_probabilities = failure_probabilities(model, windows.validation)
    thresholds = choose_thresholds(windows.validation.labels, validation_probabilities)
    model_config = replace(model_config, failure_thresholds=thresholds)
    final = FusionModel(model_config)
    final.load_state_dict(model.state_dict())
    final.eval()

    validation_metrics = failure_metrics(
        windows.validation.labels, validation_probabilities, thresholds, data.labels
    )
    test_metrics = failure_metrics(
        windows.test.labels, failure_probabilities(final, windows.test), thresholds, data.labels
    )
    best_epoch = min(history, key=lambda record: _selection_score(record, config.select_by))
    metrics = {
        "validation_loss": best_epoch["validation_loss"],
        "validation_average_precision": best_epoch["validation_average_precision"],
        "best_epoch": best_epoch["epoch"],
        "epochs_run": float(len(history)),
        "train_seconds": time.monotonic() - started,
        **{f"validation_{name}": value for name, value in validation_metrics.items()},
        **{f"test_{name}": value for name, value in test_metrics.items()},
    }
    lineage = Lineage(
        data_files=hash_data_files(data.files),
        seed=config.seed,
        code_version=code_version(),
        created_at=utc_now_iso(),
        train_units=split.train,
        validation_units=split.validation,
        test_units=split.test,
        train_config=config.to_dict(),
        parent_version=parent.version if parent is not None else None,
    )
    return TrainedModel(
        model=final,
        config=model_config,
        normaliser=normaliser,
        metrics=metrics,
        lineage=lineage,
        history=history,
    )


def evaluate_tabular_test(
    loaded: LoadedModel, data: TabularData, device: str = "cpu"
) -> dict[str, float]:
    """Score a registered model on the test blocks that its lineage records.

    Windows are rebuilt from the raw data with the block length and window of the
    model's training run and go through the InferenceEngine, which normalises them.
    Returns the number of test windows and each label's precision, recall, F1, support
    and threshold. Raises ValueError for a model without recorded test blocks or with
    other failure labels than the dataset.
    """
    lineage = loaded.lineage
    if not lineage.test_units:
        raise ValueError(
            f"model {loaded.version} records no test blocks in its lineage, so it was not "
            "trained on a tabular dataset"
        )
    if loaded.config.failure_modes != data.labels:
        raise ValueError(
            f"model {loaded.version} predicts failure labels {loaded.config.failure_modes}, "
            f"but the plant's dataset provides {data.labels}; evaluate it with the plant it "
            "was trained on"
        )
    train_config = TabularTrainConfig.from_dict(lineage.train_config)
    _warn_if_data_changed(data, lineage)
    if train_config.max_operations is not None:
        data = data.head(train_config.max_operations)
    blocks = cut_blocks(data, train_config.block_length)
    windows = make_tabular_windows(data, blocks, lineage.test_units, loaded.config.window)

    engine = InferenceEngine(loaded, loaded.version, device=device)
    predictions = engine.predict(windows.sensors, windows.context, attributions=False)
    probabilities = np.array(
        [[p.failure_probabilities[label] for label in data.labels] for p in predictions]
    )
    thresholds = loaded.config.failure_thresholds or (0.5,) * len(data.labels)
    metrics = {"windows": float(len(windows))}
    metrics.update(failure_metrics(windows.labels, probabilities, thresholds, data.labels))
    return metrics


def failure_probabilities(model: FusionModel, windows: TabularWindows) -> np.ndarray:
    """Return the model's failure probabilities (N, F) for normalised windows, on the CPU."""
    model = model.eval()
    device = next(model.parameters()).device
    parts = []
    with torch.inference_mode():
        for start in range(0, len(windows), 4096):
            sensors = torch.from_numpy(windows.sensors[start : start + 4096]).to(device)
            context = torch.from_numpy(windows.context[start : start + 4096]).to(device)
            logits = model(sensors, context).failure_logits
            assert logits is not None
            parts.append(torch.sigmoid(logits.float()).cpu().numpy())
    return np.concatenate(parts)


def positive_weights(labels: np.ndarray, max_weight: float) -> np.ndarray:
    """Return negatives / positives per label, clipped to [1, max_weight]; 1 without positives."""
    positives = labels.sum(axis=0)
    negatives = len(labels) - positives
    ratio = np.divide(negatives, positives, out=np.ones_like(positives), where=positives > 0)
    return np.clip(ratio, 1.0, max_weight).astype(np.float32)


def _fit(
    model_config: FusionConfig,
    config: TabularTrainConfig,
    windows: TabularSplitWindows,
    device: torch.device,
    deadline: float | None,
    progress: bool,
    parent: LoadedModel | None,
) -> tuple[FusionModel, list[dict[str, float]]]:
    """Run the epochs and return the best weight average, on the CPU, and the history."""
    model = FusionModel(model_config)
    if parent is not None:
        _start_from_parent(model, parent)
    model.to(device)
    averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay))
    # AdamW skips parameters without a gradient, so frozen ones move by no step and no decay.
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    steps_per_epoch = math.ceil(len(windows.train) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch
    )
    weights = torch.from_numpy(
        positive_weights(windows.train.labels, config.max_positive_weight)
    ).to(device)
    logger.info(
        "positive weights per label: %s",
        dict(zip(model_config.failure_modes, weights.tolist(), strict=True)),
    )
    train = _tensors(windows.train, device)
    validation = _tensors(windows.validation, device)
    shuffle_generator = torch.Generator().manual_seed(config.seed)

    history: list[dict[str, float]] = []
    stopping = EarlyStopping(averaged.module, config.patience, config.max_minutes)
    epoch_bar = tqdm(range(config.epochs), desc="training", unit="epoch", disable=not progress)
    for epoch in epoch_bar:
        model.train()
        order = torch.randperm(len(windows.train), generator=shuffle_generator).to(device)
        total_loss = 0.0
        out_of_time = False
        for start in range(0, len(order), config.batch_size):
            batch = order[start : start + config.batch_size]
            sensors = train[0][batch]
            if config.input_noise_std > 0:
                sensors = sensors + config.input_noise_std * torch.randn_like(sensors)
            logits = model(sensors, train[1][batch]).failure_logits
            assert logits is not None
            loss = F.binary_cross_entropy_with_logits(logits, train[2][batch], pos_weight=weights)

            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
            optimizer.step()
            scheduler.step()
            averaged.update_parameters(model)
            total_loss += loss.item() * len(batch)
            if deadline is not None and time.monotonic() > deadline:
                out_of_time = True
                break

        validation_loss, validation_precision = _validate(averaged.module, validation, weights)
        history.append(
            {
                "epoch": float(epoch + 1),
                "train_loss": total_loss / len(windows.train),
                "validation_loss": validation_loss,
                "validation_average_precision": validation_precision,
            }
        )
        epoch_bar.set_postfix(val=f"{validation_loss:.4f}", ap=f"{validation_precision:.3f}")
        logger.debug(
            "epoch %d: validation loss %.4f, mean average precision %.3f",
            epoch + 1,
            validation_loss,
            validation_precision,
        )
        score = _selection_score(history[-1], config.select_by)
        if stopping.should_stop(score, averaged.module, out_of_time):
            break
    epoch_bar.close()

    best = min(history, key=lambda record: _selection_score(record, config.select_by))
    logger.info(
        "training stopped after %d epochs (%s); best epoch %d: validation loss %.4f, "
        "mean average precision %.3f",
        len(history),
        stopping.stop_reason,
        best["epoch"],
        best["validation_loss"],
        best["validation_average_precision"],
    )
    result = FusionModel(model_config)
    result.load_state_dict({name: tensor.cpu() for name, tensor in stopping.best_state.items()})
    return result.eval(), history


def _selection_score(record: dict[str, float], select_by: str) -> float:
    """Return the score that early stopping minimises for one epoch's history record."""
    if select_by == "loss":
        return record["validation_loss"]
    return -record["validation_average_precision"]


@torch.no_grad()
def _validate(
    module: torch.nn.Module, tensors: tuple[torch.Tensor, ...], weights: torch.Tensor
) -> tuple[float, float]:
    """Return the weighted loss and the mean average precision over labels with positives."""
    module.eval()
    sensors, context, labels = tensors
    total = 0.0
    scores = []
    for start in range(0, len(labels), 4096):
        batch = slice(start, start + 4096)
        logits = module(sensors[batch], context[batch]).failure_logits
        loss = F.binary_cross_entropy_with_logits(logits, labels[batch], pos_weight=weights)
        total += loss.item() * len(labels[batch])
        scores.append(logits.float().cpu().numpy())
    logit_array = np.concatenate(scores)
    label_array = labels.cpu().numpy()
    precisions = [
        average_precision(label_array[:, column], logit_array[:, column])
        for column in range(label_array.shape[1])
        if label_array[:, column].any()
    ]
    return total / len(labels), float(np.mean(precisions)) if precisions else 0.0


def _tensors(windows: TabularWindows, device: torch.device) -> tuple[torch.Tensor, ...]:
    return (
        torch.from_numpy(windows.sensors).to(device),
        torch.from_numpy(windows.context).to(device),
        torch.from_numpy(windows.labels).to(device),
    )


def _parent_architecture(
    config: TabularTrainConfig, parent: LoadedModel, data: TabularData
) -> TabularTrainConfig:
    """Return ``config`` with the parent's window and sizes, checking that channels match."""
    if parent.config.channels != data.channels:
        raise ValueError(
            f"model {parent.version} reads channels {parent.config.channels}, but the plant's "
            f"dataset has {data.channels}; adapting keeps the temporal encoder, which needs "
            "the same channels in the same order"
        )
    return replace(
        config,
        window=parent.config.window,
        d_model=parent.config.d_model,
        n_layers=parent.config.n_layers,
        dropout=parent.config.dropout,
    )


def _start_from_parent(model: FusionModel, parent: LoadedModel) -> None:
    """Copy every parent tensor whose name and shape fit, then freeze the temporal encoder."""
    own = model.state_dict()
    inherited = {
        name: tensor
        for name, tensor in parent.model.state_dict().items()
        if name in own and own[name].shape == tensor.shape
    }
    model.load_state_dict(inherited, strict=False)
    fresh = sorted(set(own) - set(inherited))
    frozen = freeze_temporal_encoder(model)
    assert not set(frozen) & set(fresh), "the temporal encoder must come from the parent"
    logger.info(
        "adapting model %s: %d tensors frozen, %d trainable from the parent, fresh: %s",
        parent.version,
        len(frozen),
        len(inherited) - len(frozen),
        fresh or "none",
    )


def _log_split(data: TabularData, windows: TabularSplitWindows, device: torch.device) -> None:
    for name, split in (
        ("training", windows.train),
        ("validation", windows.validation),
        ("test", windows.test),
    ):
        positives = dict(
            zip(data.labels, split.labels.sum(axis=0).astype(int).tolist(), strict=True)
        )
        logger.info("%s: %d windows, positives %s", name, len(split), positives)
    logger.info(
        "%d channels, %d context inputs, %d labels, device %s",
        len(data.channels),
        len(data.context_fields),
        len(data.labels),
        device,
    )


def _warn_if_data_changed(data: TabularData, lineage: Lineage) -> None:
    current = hash_data_files(data.files)
    for path, digest in current.items():
        recorded = lineage.data_files.get(path)
        if recorded is not None and recorded != digest:
            logger.warning(
                "%s changed since the model was trained (sha256 %s, trained on %s); the test "
                "blocks may now hold other operations",
                path,
                digest,
                recorded,
            )
