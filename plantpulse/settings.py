"""Settings from `PLANTPULSE_*` environment variables and an optional TOML file.

Precedence, highest first: explicit arguments, environment variables (nested fields use a
double underscore, e.g. `PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS`), the TOML file named by
`PLANTPULSE_CONFIG` or `--config`, then the embedded defaults below.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ingest.config import KafkaConfig
from ingest.history import HistoryConfig
from ingest.privacy import MIN_KEY_LENGTH, PseudonymKeyError, check_key, load_or_create_key

if TYPE_CHECKING:
    from models.plant import PlantDescription

# The TOML file of the `load_settings` call in progress; a context variable, so loading
# settings never changes the process environment.
_CONFIG_FILE: ContextVar[str | None] = ContextVar("plantpulse_config_file", default=None)


def _user_state_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "plantpulse"


class PredictorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stride: int = Field(default=1, ge=1, description="predict on every n-th reading of a machine")
    max_batch: int = Field(default=256, ge=1, description="windows per forward pass")
    max_machines: int = Field(default=100_000, ge=1, description="machines tracked at most")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["float32", "bfloat16"] = Field(
        default="float32",
        description="number format of inference. bfloat16 is faster on CPUs and GPUs with "
        "native bfloat16 and moved RUL p50 by 0.3 cycles on average on FD001",
    )
    torch_threads: int = Field(
        default=1,
        ge=0,
        description="CPU threads for inference; 0 keeps torch's default. Scale out with more "
        "predictor processes, because several processes with several threads each share cores badly",
    )


class SchedulerSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plant_id: str = "plant-1"
    time_limit_s: float = Field(default=10.0, gt=0)
    workers: int = Field(default=2, ge=1)
    time_unit_minutes: int = Field(default=60, ge=1, description="granularity of the plan")
    cycles_per_hour: float = Field(default=2.0, gt=0, description="machine cycles in one hour")
    maintenance_minutes: int = Field(
        default=480,
        ge=1,
        description="window duration in minutes when a machine state recommends no action",
    )
    maintenance_cost: float = Field(
        default=100.0,
        ge=0,
        description="window cost when a machine state recommends no action",
    )
    default_skill: str = Field(
        default="maintenance",
        min_length=1,
        description="crew skill of windows without a recommended action, or whose action's "
        "skill has no crew large enough",
    )
    crew_size: int = Field(
        default=1,
        ge=1,
        description="people in the default skill's crew, unless the plant description lists it",
    )
    debounce_s: float = Field(default=2.0, ge=0)
    risk_threshold_cycles: float = Field(
        default=30.0, ge=0, description="re-plan when a machine's RUL p10 falls below this"
    )
    makespan_weight: float = Field(default=1.0, ge=0)
    tardiness_weight: float = Field(default=1.0, ge=0)
    maintenance_cost_weight: float = Field(default=0.1, ge=0)
    changes_weight: float = Field(
        default=1.0, ge=0, description="cost of each operation moved against the published schedule"
    )
    freeze_minutes: int = Field(
        default=60, ge=0, description="published operations starting this soon stay in place"
    )
    max_wait_s: float = Field(
        default=30.0, gt=0, description="maximum delay of a re-plan while triggers keep arriving"
    )


class PrivacySettings(BaseModel):
    """The key that pseudonymises the plant description's personal context fields.

    Without `pseudonym_key`, a random key is created once in `key_file` (mode 0600) and
    reused, so a person's pseudonym stays the same across restarts and between the
    predictor and the scheduler on one host. Hosts that must agree on pseudonyms need
    the same `pseudonym_key`.
    """

    model_config = ConfigDict(extra="forbid")

    pseudonym_key: SecretStr | None = Field(
        default=None,
        description=f"HMAC-SHA256 key of at least {MIN_KEY_LENGTH} characters, best passed as "
        "PLANTPULSE_PRIVACY__PSEUDONYM_KEY. When unset, the key in key_file is used",
    )
    key_file: Path | None = Field(
        default=None,
        description="file of the generated key when pseudonym_key is unset (default: "
        "pseudonym.key in the user state folder)",
    )


class DashboardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        default="127.0.0.1", description="address to bind; other than loopback needs a token"
    )
    port: int = Field(default=8080, ge=0, le=65535, description="TCP port; 0 picks a free one")
    token: SecretStr | None = Field(
        default=None, description="required on every request when set; bearer, cookie or ?token="
    )
    history_points: int = Field(
        default=120, ge=2, description="RUL predictions kept per machine for the trend line"
    )
    max_machines: int = Field(
        default=2000, ge=1, description="machines shown at most; the least recently updated go"
    )


class Settings(BaseSettings):
    """Every setting of a PlantPulse process; the defaults run on one machine, no set-up."""

    model_config = SettingsConfigDict(
        env_prefix="PLANTPULSE_",
        env_nested_delimiter="__",
        extra="forbid",
        toml_file=None,
    )

    data_dir: Path | None = Field(default=None, description="datasets folder")
    plant: Path | None = Field(
        default=None,
        description="plant description file (TOML or YAML); the shipped C-MAPSS example when unset",
    )
    registry_dir: Path = Field(default_factory=lambda: _user_state_dir() / "registry")
    output_dir: Path = Path("plantpulse-output")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    embedded_broker: bool = Field(
        default=True,
        description="start Tansu on 127.0.0.1 instead of using kafka.bootstrap_servers",
    )
    kafka: KafkaConfig = Field(default_factory=KafkaConfig)
    predictor: PredictorSettings = Field(default_factory=PredictorSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    dashboard: DashboardSettings = Field(default_factory=DashboardSettings)
    history: HistoryConfig = Field(
        default_factory=HistoryConfig,
        description="history store; the Parquet default lives beside the registry",
    )
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)

    @model_validator(mode="after")
    def _default_paths(self) -> Settings:
        if self.history.path is None:
            self.history.path = _user_state_dir() / "history"
        if self.privacy.key_file is None:
            self.privacy.key_file = _user_state_dir() / "pseudonym.key"
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _CONFIG_FILE.get() or os.environ.get("PLANTPULSE_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)


class SettingsError(ValueError):
    """The settings file or environment contains an invalid or unreadable value."""


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Load settings, reading `config_file` (TOML) when given.

    Raises FileNotFoundError for a missing file and SettingsError, naming the file or
    variable, for invalid TOML or an invalid or unknown setting.
    """
    named_by = "--config"
    if config_file is None and os.environ.get("PLANTPULSE_CONFIG"):
        config_file = Path(os.environ["PLANTPULSE_CONFIG"])
        named_by = "PLANTPULSE_CONFIG"
    if config_file is not None and not config_file.is_file():
        raise FileNotFoundError(f"settings file {config_file} named by {named_by} not found")

    token = _CONFIG_FILE.set(str(config_file) if config_file is not None else None)
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as error:
        raise SettingsError(f"settings file {config_file} is not valid TOML: {error}") from error
    except ValidationError as error:
        source = f"settings file {config_file} or " if config_file is not None else ""
        problems = "; ".join(
            f"{'.'.join(str(part) for part in detail['loc'])}: {detail['msg']}"
            for detail in error.errors(include_url=False)
        )
        raise SettingsError(
            f"invalid settings in {source}PLANTPULSE_* environment variables: {problems}"
        ) from error
    finally:
        _CONFIG_FILE.reset(token)


def load_plant_description(settings: Settings) -> PlantDescription:
    """Load the plant description that ``settings.plant`` names, or the shipped C-MAPSS one.

    Raises models.plant.PlantDescriptionError naming the file and field when it is invalid.
    """
    from models.plant import example_plant, load_plant  # imports torch through models

    if settings.plant is None:
        return example_plant("cmapss")
    return load_plant(settings.plant)


def load_pseudonym_key(settings: Settings) -> bytes:
    """Return the pseudonym key: `privacy.pseudonym_key`, or the one in `privacy.key_file`.

    The key file is created with a random key when it does not exist yet.

    Raises ingest.privacy.PseudonymKeyError when the key is too short or the key file
    cannot be read, created or trusted.
    """
    privacy = settings.privacy
    if privacy.pseudonym_key is not None:
        return check_key(privacy.pseudonym_key.get_secret_value(), "privacy.pseudonym_key")

    assert privacy.key_file is not None, "set by Settings._default_paths"
    try:
        return load_or_create_key(privacy.key_file)
    except OSError as error:
        raise PseudonymKeyError(
            f"cannot read or create the pseudonym key file {privacy.key_file}: {error}. Set "
            "privacy.key_file to a writable path or privacy.pseudonym_key to a key"
        ) from error
