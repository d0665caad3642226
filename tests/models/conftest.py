"""Fixtures for the models tests: the C-MAPSS data folder and one small trained model."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from models import CmapssData, TrainConfig, TrainedModel, load_cmapss, train_cmapss

# Small enough to train in seconds on two CPU cores. These tests check behaviour, not accuracy.
SMALL_TRAIN_CONFIG = TrainConfig(
    seed=0,
    epochs=3,
    batch_size=128,
    lr=3e-3,
    patience=10,
    max_engines=12,
    validation_fraction=0.25,
    device="cpu",
    max_minutes=None,
    stride=2,
    d_model=16,
    n_layers=4,
    ema_decay=0.9,
)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    configured = os.environ.get("PLANTPULSE_DATA_DIR")
    if configured:
        root = Path(configured)
    else:
        root = Path(__file__).resolve().parents[2].parent / "shared" / "data"
    if not (root / "cmapss" / "train_FD001.txt").is_file():
        pytest.skip(
            f"C-MAPSS FD001 not found in {root / 'cmapss'}; "
            "set PLANTPULSE_DATA_DIR to the folder that contains cmapss/"
        )
    return root


@pytest.fixture(scope="session")
def cmapss(data_dir: Path) -> CmapssData:
    return load_cmapss(data_dir)


@pytest.fixture(scope="session")
def small_trained(data_dir: Path) -> TrainedModel:
    return train_cmapss(data_dir, SMALL_TRAIN_CONFIG, progress=False)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Run on one torch thread, where tiny models train faster on a busy two-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
