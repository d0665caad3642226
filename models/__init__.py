"""Fusion model, C-MAPSS and tabular data, training, adaptation, evaluation, registry, inference."""

from models.adaptation import adapt_cmapss, adapt_on_engines
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
    average_precision,
    choose_thresholds,
    classification_metrics,
    evaluate_cmapss_test,
    evaluate_engines,
    failure_metrics,
    phm08_score,
    rmse,
)
from models.fusion import FusionConfig, FusionModel, FusionOutput
from models.inference import InferenceEngine, ModelParts, Prediction
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
from models.tabular import TabularData, TabularDataError, load_tabular
from models.tabular_training import (
    TabularTrainConfig,
    evaluate_tabular_test,
    train_on_tabular,
    train_tabular,
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
    "CmapssData",
    "CorruptVersionError",
    "EngineRun",
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
    "Prediction",
    "Registry",
    "RegistryError",
    "TabularData",
    "TabularDataError",
    "TabularTrainConfig",
    "TrainConfig",
    "TrainedModel",
    "VersionNotFoundError",
    "WindowSet",
    "adapt_cmapss",
    "adapt_on_engines",
    "average_precision",
    "cap_rul",
    "choose_thresholds",
    "classification_metrics",
    "constant_channels",
    "evaluate_cmapss_test",
    "evaluate_engines",
    "evaluate_tabular_test",
    "failure_metrics",
    "fit_normaliser",
    "health_state_labels",
    "informative_channels",
    "load_cmapss",
    "load_tabular",
    "make_windows",
    "phm08_score",
    "pinball_loss",
    "resolve_cmapss_dir",
    "rmse",
    "split_engines",
    "train_cmapss",
    "train_on_engines",
    "train_on_tabular",
    "train_tabular",
]
