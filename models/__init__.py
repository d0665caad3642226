"""Fusion model, C-MAPSS data, training, evaluation, registry, inference and plant knowledge."""

from models.cmapss import (
    RUL_CAP,
    SENSOR_CHANNELS,
    SETTING_FIELDS,
    CmapssData,
    EngineRun,
    HealthThresholds,
    cap_rul,
    constant_channels,
    health_state_labels,
    informative_channels,
    load_cmapss,
    resolve_cmapss_dir,
    split_engines,
)
from models.evaluation import (
    classification_metrics,
    evaluate_cmapss_test,
    evaluate_engines,
    phm08_score,
    rmse,
)
from models.fusion import FusionConfig, FusionModel, FusionOutput
from models.inference import InferenceEngine, ModelParts, Prediction
from models.knowledge import (
    ChannelEvidence,
    ComponentRanking,
    Diagnosis,
    FailureModeRanking,
    PlantKnowledge,
    diagnose,
)
from models.lineage import Lineage
from models.normaliser import Normaliser
from models.registry import (
    CorruptVersionError,
    LoadedModel,
    MismatchedVersionError,
    NoChampionError,
    Registry,
    RegistryError,
    VersionNotFoundError,
)
from models.training import (
    TrainConfig,
    TrainedModel,
    pinball_loss,
    train_cmapss,
    train_on_engines,
)
from models.windows import WindowSet, fit_normaliser, make_windows

__all__ = [
    "RUL_CAP",
    "SENSOR_CHANNELS",
    "SETTING_FIELDS",
    "ChannelEvidence",
    "CmapssData",
    "ComponentRanking",
    "CorruptVersionError",
    "Diagnosis",
    "EngineRun",
    "FailureModeRanking",
    "FusionConfig",
    "FusionModel",
    "FusionOutput",
    "HealthThresholds",
    "InferenceEngine",
    "Lineage",
    "LoadedModel",
    "MismatchedVersionError",
    "ModelParts",
    "NoChampionError",
    "Normaliser",
    "PlantKnowledge",
    "Prediction",
    "Registry",
    "RegistryError",
    "TrainConfig",
    "TrainedModel",
    "VersionNotFoundError",
    "WindowSet",
    "cap_rul",
    "classification_metrics",
    "constant_channels",
    "diagnose",
    "evaluate_cmapss_test",
    "evaluate_engines",
    "fit_normaliser",
    "health_state_labels",
    "informative_channels",
    "load_cmapss",
    "make_windows",
    "phm08_score",
    "pinball_loss",
    "resolve_cmapss_dir",
    "rmse",
    "split_engines",
    "train_cmapss",
    "train_on_engines",
]
