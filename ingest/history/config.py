"""Settings of the history store, and the function that opens the configured backend."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ingest.history.store import HistoryStore


class HistoryConfig(BaseModel):
    """The history backend and the settings that reach it."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["parquet", "influxdb"] = Field(
        default="parquet", description="parquet: files under `path`; influxdb: an InfluxDB 2 bucket"
    )
    path: Path | None = Field(default=None, description="root folder of the Parquet backend")
    url: str = Field(default="http://127.0.0.1:8086", description="InfluxDB base URL")
    org: str = Field(default="plantpulse", description="InfluxDB organisation name or id")
    bucket: str = Field(default="plantpulse", description="InfluxDB bucket")
    # Excluded from dumps, so it never lands in logs, flow-run parameters or deployments;
    # when unset, InfluxHistory reads the PLANTPULSE_HISTORY__TOKEN environment variable.
    token: SecretStr | None = Field(default=None, exclude=True, description="InfluxDB API token")
    batch_size: int = Field(default=5000, ge=1, description="points per InfluxDB write request")
    max_buffer_points: int = Field(
        default=100_000, ge=1, description="points held before writes block (backpressure)"
    )
    retry_interval_s: float = Field(default=1.0, gt=0, description="first retry delay, seconds")
    max_retry_delay_s: float = Field(default=30.0, gt=0, description="maximum retry delay, seconds")
    max_retry_time_s: float = Field(
        default=60.0, gt=0, description="seconds of failed writes before a flush gives up"
    )
    timeout_s: float = Field(default=10.0, gt=0, description="InfluxDB request timeout, seconds")
    lookback_hours: float = Field(
        default=24 * 30, gt=0, description="how far back warm-up reads look for recent readings"
    )
    compact_after_parts: int = Field(
        default=32, ge=2, description="Parquet files per partition before a writer merges them"
    )
    fsync: bool = Field(default=True, description="fsync Parquet files before a flush returns")


def open_history(config: HistoryConfig) -> HistoryStore:
    """Open the configured history backend; raises ValueError when its settings are missing."""
    if config.backend == "parquet":
        from ingest.history.parquet import ParquetHistory

        if config.path is None:
            raise ValueError(
                "history backend parquet needs a folder: set history.path "
                "(PLANTPULSE_HISTORY__PATH)"
            )
        return ParquetHistory(
            config.path,
            max_buffer_points=config.max_buffer_points,
            compact_after_parts=config.compact_after_parts,
            fsync=config.fsync,
        )

    from ingest.history.influx import InfluxHistory

    return InfluxHistory(
        url=config.url,
        org=config.org,
        bucket=config.bucket,
        token=config.token,
        batch_size=config.batch_size,
        max_buffer_points=max(config.max_buffer_points, config.batch_size),
        retry_interval_s=config.retry_interval_s,
        max_retry_delay_s=config.max_retry_delay_s,
        max_retry_time_s=config.max_retry_time_s,
        timeout_s=config.timeout_s,
        lookback=timedelta(hours=config.lookback_hours),
    )
