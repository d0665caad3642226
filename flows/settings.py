"""Connections of the flows: model registry, history store, datasets and Kafka."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from ingest.config import KafkaConfig
from ingest.history import HistoryConfig


class FlowSettings(BaseModel):
    """Connections of a flow run, passed in by the command line or a deployment."""

    registry_dir: Path = Field(description="model registry folder")
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    data_dir: Path | None = Field(default=None, description="datasets folder (C-MAPSS)")
    kafka: KafkaConfig | None = Field(
        default=None, description="where promotions are announced; None announces nothing"
    )

    def deployment_parameters(self) -> dict[str, Any]:
        """Return these settings as JSON for a stored deployment, without any secret.

        The history token is excluded by its field. The Kafka SASL password is left
        out here, so a served run that needs it must get it some other way.
        """
        # NOTE: served runs therefore cannot announce to a Kafka cluster that needs a
        # SASL password; runs started by `plantpulse flows run` can.
        return self.model_dump(mode="json", exclude={"kafka": {"sasl_password"}})
