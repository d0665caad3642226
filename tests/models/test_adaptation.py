"""Adapting a registered model: the temporal encoder stays bit-identical, the rest learns."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models import CmapssData, Registry, TrainedModel
from models.adaptation import adapt_on_engines
from models.fusion import is_temporal_encoder_parameter
from models.plant import parse_plant
from models.tabular import load_tabular
from models.tabular_training import TabularTrainConfig, train_on_tabular

from .conftest import SMALL_TRAIN_CONFIG
from .test_tabular import PRESS_PLANT


def split_state(model: torch.nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Return the temporal encoder's tensors and all other tensors, as separate dicts."""
    state = model.state_dict()
    encoder = {name: t for name, t in state.items() if is_temporal_encoder_parameter(name)}
    rest = {name: t for name, t in state.items() if name not in encoder}
    return encoder, rest


@pytest.fixture(scope="module")
def adapted(
    small_trained: TrainedModel, cmapss: CmapssData, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Registry, str, str]:
    registry = Registry(tmp_path_factory.mktemp("adapt-registry"))
    parent_version = registry.register(small_trained)
    parent = registry.load(parent_version)
    # The parent's architecture wins over the given config's, branch included.
    config = replace(
        SMALL_TRAIN_CONFIG, epochs=2, max_engines=None, seed=1, window_statistics=False
    )

    trained = adapt_on_engines(parent, cmapss.train[40:46], config, progress=False)
    return registry, parent_version, registry.register(trained)


def test_adapting_keeps_encoder_bit_identical(adapted: tuple[Registry, str, str]) -> None:
    registry, parent_version, child_version = adapted
    parent_encoder, _ = split_state(registry.load(parent_version).model)
    child_encoder, _ = split_state(registry.load(child_version).model)

    assert parent_encoder.keys() == child_encoder.keys()
    # The sensor embedding, a norm and two convolutions per block, and the statistics
    # branch's embedding with its two standardisation buffers.
    assert len(parent_encoder) == 2 + 4 * 6 + 2 + 2
    for name, tensor in parent_encoder.items():
        assert torch.equal(tensor, child_encoder[name]), name


def test_adapting_changes_context_encoder_and_heads(adapted: tuple[Registry, str, str]) -> None:
    registry, parent_version, child_version = adapted
    _, parent_rest = split_state(registry.load(parent_version).model)
    _, child_rest = split_state(registry.load(child_version).model)

    changed = {
        name for name, tensor in parent_rest.items() if not torch.equal(tensor, child_rest[name])
    }

    for name in ("rul_head.weight", "state_head.weight", "context_encoder.0.weight", "pool.weight"):
        assert name in changed


def test_adapted_version_records_its_parent(
    adapted: tuple[Registry, str, str], small_trained: TrainedModel
) -> None:
    registry, parent_version, child_version = adapted

    child = registry.load(child_version)

    assert child.lineage.parent_version == parent_version
    assert child.config == small_trained.config
    assert set(child.lineage.train_units) | set(child.lineage.validation_units) == set(
        range(41, 47)
    )
    assert child.lineage.train_config["window"] == small_trained.config.window
    assert child.lineage.train_config["members"] == small_trained.config.members
    assert child.lineage.train_config["window_statistics"] is True


def write_press_log(data_dir: Path, shifts: tuple[str, ...], seed: int) -> Path:
    """Write 200 operations of two presses; a press stops when the ram force exceeds 1.3."""
    rng = np.random.default_rng(seed)
    lines = ["Stamped at,Press,Shift,Sheet (mm),Force kN,Oil degC,Stopped,Die crack"]
    for press in ("press-1", "press-2"):
        for minute in range(200):
            force, oil = rng.normal(size=2)
            shift = shifts[minute // 20 % len(shifts)]
            stopped = int(force > 1.3)
            lines.append(
                f"2026-01-01T{minute // 60:02d}:{minute % 60:02d}:00,{press},{shift},"
                f"{2 + rng.random():.2f},{force:.4f},{oil:.4f},{stopped},{stopped}"
            )
    (data_dir / "press").mkdir(parents=True)
    (data_dir / "press" / "log.csv").write_text("\n".join(lines) + "\n")
    return data_dir


@pytest.mark.usefixtures("one_torch_thread")
def test_adapting_failure_model_to_new_context(tmp_path: Path) -> None:
    plant_a = parse_plant(PRESS_PLANT, ".toml")
    # The second plant runs three shifts, so its context encoder needs a wider input layer.
    plant_b = parse_plant(
        PRESS_PLANT.replace(
            'categories = ["day", "night"]', 'categories = ["early", "late", "night"]'
        ),
        ".toml",
    )
    data_a = load_tabular(plant_a, write_press_log(tmp_path / "a", ("day", "night"), seed=0))
    data_b = load_tabular(
        plant_b, write_press_log(tmp_path / "b", ("early", "late", "night"), seed=1)
    )
    config = TabularTrainConfig(
        epochs=2, window=3, block_length=20, d_model=8, n_layers=2, device="cpu", max_minutes=None
    )
    registry = Registry(tmp_path / "registry")
    parent_version = registry.register(train_on_tabular(data_a, config, progress=False))
    parent = registry.load(parent_version)

    adapted = train_on_tabular(data_b, config, progress=False, parent=parent)
    child = registry.load(registry.register(adapted))

    parent_encoder, parent_rest = split_state(parent.model)
    child_encoder, child_rest = split_state(child.model)
    for name, tensor in parent_encoder.items():
        assert torch.equal(tensor, child_encoder[name]), name
    assert parent_rest["context_encoder.0.weight"].shape == (8, 3)
    assert child_rest["context_encoder.0.weight"].shape == (8, 4)
    assert not torch.equal(parent_rest["failure_head.weight"], child_rest["failure_head.weight"])
    assert child.lineage.parent_version == parent_version
    assert child.config.context_fields == (
        "shift=early",
        "shift=late",
        "shift=night",
        "sheet_thickness",
    )
