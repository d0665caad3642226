"""Model registry on a file system: one folder per version and an atomic champion pointer.

Layout under the registry root::

    v0001/
        weights.safetensors   model tensors (safetensors, no pickled objects)
        config.json           FusionConfig
        normaliser.json       Normaliser
        metrics.json          {"summary": {...}, "history": [{...}, ...]}
        lineage.json          Lineage
        manifest.json         sha256 of each file above
    champion                  the serving version id, one line

A version folder is written under a hidden staging name and renamed into place, so a
reader never sees a half-written version. Several processes may register into the same
root because a rename onto an existing version folder fails and the writer takes the
next number.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from models.fusion import FusionConfig, FusionModel
from models.lineage import Lineage, sha256_file, utc_now_iso
from models.normaliser import Normaliser

if TYPE_CHECKING:
    from models.training import TrainedModel

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "weights.safetensors"
CONFIG_FILE = "config.json"
NORMALISER_FILE = "normaliser.json"
METRICS_FILE = "metrics.json"
LINEAGE_FILE = "lineage.json"
MANIFEST_FILE = "manifest.json"
CHAMPION_FILE = "champion"

_VERSION_PATTERN = re.compile(r"^v(\d{4,})$")
_HASHED_FILES = (WEIGHTS_FILE, CONFIG_FILE, NORMALISER_FILE, METRICS_FILE, LINEAGE_FILE)


class RegistryError(Exception):
    """A registry operation failed on one version; ``version`` names it when known."""

    def __init__(self, version: str | None, message: str) -> None:
        self.version = version
        super().__init__(message)


class VersionNotFoundError(RegistryError):
    pass


class CorruptVersionError(RegistryError):
    """A version's files are missing, unreadable or differ from their manifest hashes."""


class MismatchedVersionError(RegistryError):
    """A version's files are intact but disagree with each other, e.g. config vs weights."""


class NoChampionError(RegistryError):
    pass


@dataclass
class LoadedModel:
    """A registered model read back from the registry, in evaluation mode on the CPU."""

    version: str
    model: FusionModel
    config: FusionConfig
    normaliser: Normaliser
    metrics: dict[str, float]
    lineage: Lineage
    history: list[dict[str, float]] = field(default_factory=list)


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def versions(self) -> list[str]:
        """Return the registered version ids in registration order."""
        if not self.root.is_dir():
            return []
        found = [
            path.name
            for path in self.root.iterdir()
            if path.is_dir() and _VERSION_PATTERN.match(path.name)
        ]
        return sorted(found, key=_version_number)

    def register(self, trained: TrainedModel) -> str:
        """Write a trained model as a new version and return its id, e.g. "v0003"."""
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
        try:
            staging.chmod(0o755)  # mkdtemp creates 0700; predictors may run as another user
            self._write_version_files(staging, trained)
            version = self._move_into_place(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info("registered model version %s in %s", version, self.root)
        return version

    def promote(self, version: str) -> None:
        """Make ``version`` the champion after checking its files against the manifest.

        The pointer file is replaced atomically, so a concurrent reader sees either the
        old or the new champion. Raises VersionNotFoundError or CorruptVersionError.
        """
        self.verify(version)
        pointer = self.root / CHAMPION_FILE
        _write_atomically(pointer, f"{version}\n".encode())
        logger.info("promoted model version %s to champion in %s", version, self.root)

    def champion(self) -> str | None:
        """Return the champion version id, or None when no version was promoted."""
        try:
            text = (self.root / CHAMPION_FILE).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        return text or None

    def load_champion(self) -> LoadedModel:
        version = self.champion()
        if version is not None:
            return self.load(version)
        if not self.root.is_dir():
            raise NoChampionError(
                None,
                f"registry folder {self.root} not found; check the path, or register a "
                "model and promote it first",
            )
        raise NoChampionError(
            None,
            f"no champion model in registry {self.root}; register a model and promote it first",
        )

    def verify(self, version: str) -> dict[str, str]:
        """Check that every file of ``version`` matches its manifest hash.

        Returns the manifest's file hashes. Raises VersionNotFoundError or
        CorruptVersionError naming the version and the file.
        """
        folder = self._folder(version)
        manifest_path = folder / MANIFEST_FILE
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            expected: dict[str, str] = dict(manifest["files"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CorruptVersionError(
                version, f"model version {version}: {manifest_path} is missing or invalid: {error}"
            ) from error

        for name in _HASHED_FILES:
            path = folder / name
            if name not in expected:
                raise CorruptVersionError(
                    version, f"model version {version}: manifest has no hash for {name}"
                )
            if not path.is_file():
                raise CorruptVersionError(version, f"model version {version}: {path} is missing")
            actual = sha256_file(path)
            if actual != expected[name]:
                raise CorruptVersionError(
                    version,
                    f"model version {version}: sha256 of {name} is {actual} but the manifest "
                    f"records {expected[name]}; the file was changed or damaged after "
                    "registration, so register the model again",
                )
        return expected

    def load(self, version: str) -> LoadedModel:
        """Read, verify and rebuild ``version``.

        Raises VersionNotFoundError, CorruptVersionError, or MismatchedVersionError when
        the weights do not fit the architecture in config.json.
        """
        self.verify(version)
        folder = self._folder(version)

        try:
            config = FusionConfig.from_dict(_read_json(folder / CONFIG_FILE))
            normaliser = Normaliser.from_dict(_read_json(folder / NORMALISER_FILE))
            metrics_file = _read_json(folder / METRICS_FILE)
            metrics = {key: float(value) for key, value in metrics_file["summary"].items()}
            history = list(metrics_file.get("history", []))
            lineage = Lineage.from_dict(_read_json(folder / LINEAGE_FILE))
            tensors = load_safetensors((folder / WEIGHTS_FILE).read_bytes())
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as error:
            raise CorruptVersionError(
                version, f"model version {version}: a file in {folder} is invalid: {error}"
            ) from error

        model = FusionModel(config)
        _check_weights_fit(version, model, tensors)
        model.load_state_dict(tensors)
        model.eval()

        missing_statistics = [
            name
            for name in (*config.channels, *config.context_fields)
            if name not in normaliser.names
        ]
        if missing_statistics:
            raise MismatchedVersionError(
                version,
                f"model version {version}: normaliser.json has no statistics for "
                f"{missing_statistics}, which config.json lists as model inputs",
            )

        return LoadedModel(
            version=version,
            model=model,
            config=config,
            normaliser=normaliser,
            metrics=metrics,
            lineage=lineage,
            history=history,
        )

    def _folder(self, version: str) -> Path:
        if not _VERSION_PATTERN.match(version):
            raise VersionNotFoundError(
                version, f"invalid model version id {version!r}; ids look like v0001"
            )
        folder = self.root / version
        if not folder.is_dir():
            raise VersionNotFoundError(
                version,
                f"model version {version} not found in registry {self.root}; "
                f"registered versions: {self.versions() or 'none'}",
            )
        return folder

    def _write_version_files(self, folder: Path, trained: TrainedModel) -> None:
        state = {
            name: tensor.detach().cpu().contiguous()
            for name, tensor in trained.model.state_dict().items()
        }
        _write_durably(folder / WEIGHTS_FILE, save_safetensors(state))
        _write_durably(folder / CONFIG_FILE, _json_bytes(trained.config.to_dict()))
        _write_durably(folder / NORMALISER_FILE, _json_bytes(trained.normaliser.to_dict()))
        metrics = {"summary": trained.metrics, "history": trained.history}
        _write_durably(folder / METRICS_FILE, _json_bytes(metrics))
        _write_durably(folder / LINEAGE_FILE, _json_bytes(trained.lineage.to_dict()))

        manifest = {
            "created_at": utc_now_iso(),
            "files": {name: sha256_file(folder / name) for name in _HASHED_FILES},
        }
        _write_durably(folder / MANIFEST_FILE, _json_bytes(manifest))

    def _move_into_place(self, staging: Path) -> str:
        # Another process may take the same number between listing and renaming. Its
        # folder is never empty, so our rename fails and we try the next number.
        for _ in range(100):
            existing = self.versions()
            number = _version_number(existing[-1]) + 1 if existing else 1
            version = f"v{number:04d}"
            try:
                staging.rename(self.root / version)
            except OSError:
                if (self.root / version).exists():
                    continue
                raise
            _fsync_directory(self.root)
            return version
        raise RegistryError(
            None, f"failed to allocate a version id in {self.root} after 100 attempts"
        )


def _check_weights_fit(version: str, model: FusionModel, tensors: dict[str, torch.Tensor]) -> None:
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    stored = {name: tuple(tensor.shape) for name, tensor in tensors.items()}

    problems = []
    missing = sorted(expected.keys() - stored.keys())
    unexpected = sorted(stored.keys() - expected.keys())
    if missing:
        problems.append(f"tensors missing from the weights: {missing}")
    if unexpected:
        problems.append(f"tensors in the weights that the config does not define: {unexpected}")
    for name in sorted(expected.keys() & stored.keys()):
        if expected[name] != stored[name]:
            problems.append(
                f"{name} has shape {stored[name]} in the weights but {expected[name]} in the config"
            )
    if problems:
        listed = "; ".join(problems[:5])
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise MismatchedVersionError(
            version,
            f"model version {version}: config.json does not match weights.safetensors: "
            f"{listed}{more}",
        )


def _version_number(version: str) -> int:
    match = _VERSION_PATTERN.match(version)
    assert match is not None
    return int(match.group(1))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _write_durably(path: Path, content: bytes) -> None:
    with path.open("wb") as stream:
        stream.write(content)
        stream.flush()
        os.fsync(stream.fileno())


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            os.fchmod(stream.fileno(), 0o644)  # mkstemp creates 0600
            stream.write(content)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
