from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from models import (
    CorruptVersionError,
    InferenceEngine,
    MismatchedVersionError,
    NoChampionError,
    Registry,
    TrainedModel,
    VersionNotFoundError,
)
from models.lineage import sha256_file


def test_register_numbers_versions_in_order(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)

    first = registry.register(small_trained)
    second = registry.register(small_trained)

    assert first == "v0001"
    assert second == "v0002"
    assert registry.versions() == ["v0001", "v0002"]
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".")]


def test_register_writes_files_and_manifest(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    folder = tmp_path / registry.register(small_trained)

    manifest = json.loads((folder / "manifest.json").read_text())

    assert sorted(path.name for path in folder.iterdir()) == [
        "config.json",
        "lineage.json",
        "manifest.json",
        "metrics.json",
        "normaliser.json",
        "weights.safetensors",
    ]
    assert manifest["files"]["weights.safetensors"] == sha256_file(folder / "weights.safetensors")
    assert json.loads((folder / "config.json").read_text())["d_model"] == 16
    # A safetensors file starts with the 8-byte length of its JSON header, never a pickle.
    assert (folder / "weights.safetensors").read_bytes()[8:9] == b"{"


def test_load_round_trips_a_registered_model(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    version = registry.register(small_trained)

    loaded = registry.load(version)

    assert loaded.version == version
    assert loaded.config == small_trained.config
    assert loaded.normaliser == small_trained.normaliser
    assert loaded.metrics == small_trained.metrics
    assert loaded.lineage == small_trained.lineage
    assert loaded.history == small_trained.history
    original = small_trained.model.state_dict()
    for name, tensor in loaded.model.state_dict().items():
        torch.testing.assert_close(tensor, original[name], msg=name)


def test_champion_is_none_before_promotion(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    registry.register(small_trained)

    assert registry.champion() is None


def test_promote_replaces_champion_pointer(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    first = registry.register(small_trained)
    second = registry.register(small_trained)

    registry.promote(first)
    registry.promote(second)

    assert registry.champion() == "v0002"
    assert (tmp_path / "champion").read_text() == "v0002\n"
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".champion")]


def test_promote_unknown_version_raises(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    registry.register(small_trained)

    with pytest.raises(VersionNotFoundError, match="v0042 not found") as error:
        registry.promote("v0042")

    assert error.value.version == "v0042"
    assert registry.champion() is None


def test_load_missing_version_lists_known_versions(
    tmp_path: Path, small_trained: TrainedModel
) -> None:
    registry = Registry(tmp_path)
    registry.register(small_trained)

    with pytest.raises(VersionNotFoundError, match=r"registered versions: \['v0001'\]"):
        registry.load("v0009")


def test_load_rejects_malformed_version_id(tmp_path: Path) -> None:
    with pytest.raises(VersionNotFoundError, match="invalid model version id"):
        Registry(tmp_path).load("../elsewhere")


def test_load_detects_changed_weights(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    version = registry.register(small_trained)
    weights = tmp_path / version / "weights.safetensors"
    content = bytearray(weights.read_bytes())
    content[-1] ^= 0xFF
    weights.write_bytes(bytes(content))

    with pytest.raises(CorruptVersionError, match=r"sha256 of weights\.safetensors") as error:
        registry.load(version)

    assert error.value.version == version
    assert "v0001" in str(error.value)


def test_promote_rejects_corrupt_version(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    version = registry.register(small_trained)
    (tmp_path / version / "weights.safetensors").write_bytes(b"not weights")

    with pytest.raises(CorruptVersionError):
        registry.promote(version)

    assert registry.champion() is None


def test_load_detects_missing_file(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    version = registry.register(small_trained)
    os.remove(tmp_path / version / "normaliser.json")

    with pytest.raises(CorruptVersionError, match=r"normaliser\.json is missing"):
        registry.load(version)


def test_load_detects_config_weights_mismatch(tmp_path: Path, small_trained: TrainedModel) -> None:
    registry = Registry(tmp_path)
    version = registry.register(small_trained)
    folder = tmp_path / version
    config = json.loads((folder / "config.json").read_text())
    config["d_model"] = 32
    (folder / "config.json").write_text(json.dumps(config))
    # Rewrite the manifest too, as a buggy writer would, so the hash check passes.
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["config.json"] = sha256_file(folder / "config.json")
    (folder / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(MismatchedVersionError, match="does not match weights") as error:
        registry.load(version)

    assert error.value.version == version
    assert "blocks.0.conv1.conv.bias has shape (16,) in the weights but (32,)" in str(error.value)


def test_load_champion_without_promotion_raises(tmp_path: Path) -> None:
    with pytest.raises(NoChampionError, match="promote"):
        Registry(tmp_path).load_champion()


def test_load_champion_missing_folder_reported(tmp_path: Path) -> None:
    with pytest.raises(NoChampionError, match=r"registry folder .*absent not found"):
        Registry(tmp_path / "absent").load_champion()


def test_inference_engine_needs_a_champion(tmp_path: Path, small_trained: TrainedModel) -> None:
    Registry(tmp_path).register(small_trained)

    with pytest.raises(NoChampionError, match="no champion model"):
        InferenceEngine.from_registry(tmp_path)
