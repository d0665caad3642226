"""Fixtures shared by every test: the real datasets and a real embedded broker."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.config import KafkaConfig
from plantpulse.broker import EmbeddedBroker

REPOSITORY = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    explicit = os.environ.get("PLANTPULSE_DATA_DIR")
    if explicit:
        return Path(explicit)
    beside_checkout = REPOSITORY.parent / "shared" / "data"
    if beside_checkout.is_dir():
        return beside_checkout
    from ingest.datasets import default_cache_dir  # where `plantpulse data fetch` writes

    return default_cache_dir()


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = _shared_data_dir()
    if not (path / "cmapss" / "train_FD001.txt").is_file():
        pytest.skip(
            f"datasets not found in {path}; run `plantpulse data fetch`, or set "
            "PLANTPULSE_DATA_DIR to a folder that contains them"
        )
    return path


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    """A fresh, memory-only Tansu broker on a free loopback port."""
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as embedded:
        yield embedded


@pytest.fixture
def kafka(broker: EmbeddedBroker) -> KafkaConfig:
    return KafkaConfig(bootstrap_servers=broker.bootstrap_servers, partitions=4)


@pytest.fixture(scope="session")
def trained_registry(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A registry whose champion is a small fusion model trained on 12 real FD001 engines."""
    from models import Registry, TrainConfig, train_cmapss

    root = tmp_path_factory.mktemp("registry")
    trained = train_cmapss(
        data_dir,
        # The stream tests count predictions from each machine's 30th reading on.
        TrainConfig(seed=0, epochs=3, max_engines=12, max_minutes=2.0, ema_decay=0.9, window=30),
        progress=False,
    )
    registry = Registry(root)
    registry.promote(registry.register(trained))
    return root


@pytest.fixture(autouse=True, scope="session")
def pseudonym_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Keep the pseudonym key that tests and their commands create out of the user's folder.

    Subprocesses inherit the variable, so `plantpulse demo` in a test creates its key here.
    """
    path = tmp_path_factory.mktemp("privacy") / "pseudonym.key"
    previous = os.environ.get("PLANTPULSE_PRIVACY__KEY_FILE")
    os.environ["PLANTPULSE_PRIVACY__KEY_FILE"] = str(path)
    yield path
    if previous is None:
        del os.environ["PLANTPULSE_PRIVACY__KEY_FILE"]
    else:
        os.environ["PLANTPULSE_PRIVACY__KEY_FILE"] = previous
