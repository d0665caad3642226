"""Adapting a registered RUL model to a new plant with little data.

The new model starts from the parent's weights. The temporal encoder (sensor embedding,
block convolutions and layer norms) stays frozen, because it holds what the parent
learned about how the channels evolve. The context encoder, the FiLM projections and the
heads learn from the new data. The new plant's readings get their own normaliser,
fitted on its training engines, so the frozen encoder receives inputs on the scale it
was trained on. Tabular failure-mode models adapt through `train_on_tabular`'s ``parent``.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from models.cmapss import CONTEXT_FIELDS, EngineRun, load_cmapss, split_engines
from models.device import resolve_device
from models.registry import LoadedModel
from models.training import TrainConfig, TrainedModel, _fit, engine_windows, trained_model
from models.windows import fit_normaliser

logger = logging.getLogger(__name__)


def adapt_cmapss(
    parent: LoadedModel, data_dir: Path, config: TrainConfig, progress: bool = True
) -> TrainedModel:
    """Adapt ``parent`` on the first ``config.max_engines`` C-MAPSS FD001 training engines."""
    data = load_cmapss(data_dir)
    engines = data.train[: config.max_engines] if config.max_engines else data.train
    return adapt_on_engines(parent, engines, config, data.files, progress)


def adapt_on_engines(
    parent: LoadedModel,
    engines: Sequence[EngineRun],
    config: TrainConfig,
    data_files: Sequence[Path] = (),
    progress: bool = True,
) -> TrainedModel:
    """Train the context encoder and heads of a copy of ``parent`` on ``engines``.

    The new model keeps the parent's channels, context fields, window, sizes and RUL
    cap, which override those fields of ``config``. The lineage records the settings
    actually used and the parent's version. Raises ValueError for a parent that does
    not predict RUL or that reads context fields C-MAPSS does not have.
    """
    started = time.monotonic()
    parent_config = parent.config
    if not parent_config.predicts_rul:
        raise ValueError(
            f"model {parent.version} predicts failure modes only; adapt it on a plant's "
            "tabular dataset with --plant instead"
        )
    unknown = [name for name in parent_config.context_fields if name not in CONTEXT_FIELDS]
    if unknown:
        raise ValueError(
            f"model {parent.version} reads context fields {unknown}, which C-MAPSS does not have"
        )
    config = dataclasses.replace(
        config,
        window=parent_config.window,
        d_model=parent_config.d_model,
        n_layers=parent_config.n_layers,
        dropout=parent_config.dropout,
        members=parent_config.members,
        window_statistics=parent_config.window_statistics,
        rul_cap=round(parent_config.rul_scale),
    )
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)

    train_engines, validation_engines = split_engines(
        engines, config.validation_fraction, config.seed
    )
    channels = parent_config.channels
    normaliser = fit_normaliser(train_engines, channels, parent_config.context_fields)
    train_windows, validation_windows = engine_windows(
        train_engines,
        validation_engines,
        channels,
        parent_config.context_fields,
        normaliser,
        config,
    )
    logger.info(
        "adapting model %s on %d windows from %d engines, validating on %d windows from "
        "%d engines, device %s",
        parent.version,
        len(train_windows),
        len(train_engines),
        len(validation_windows),
        len(validation_engines),
        device,
    )

    deadline = started + config.max_minutes * 60 if config.max_minutes else None
    model, history = _fit(
        parent_config,
        config,
        train_windows,
        validation_windows,
        device,
        deadline,
        progress,
        initial_model=parent.model,
    )

    return trained_model(
        model,
        parent_config,
        normaliser,
        history,
        config,
        (train_engines, validation_engines),
        data_files,
        started,
        parent_version=parent.version,
    )
