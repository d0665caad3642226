"""The retrain and drift-check flows under a Prefect test API, on real FD001 history."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from flows import (
    DriftOptions,
    DriftResult,
    FlowSettings,
    RetrainOptions,
    RetrainResult,
    build_deployments,
    drift_check,
    retrain,
)
from flows.drift import reference_path
from ingest.clients import read_topic
from ingest.config import KafkaConfig
from ingest.events import MachineState, ModelPromoted, RemainingUsefulLife
from ingest.history import HistoryConfig
from ingest.history.parquet import ParquetHistory
from ingest.replay import read_cmapss_rows
from ingest.topics import MODELS
from models import InferenceEngine, Registry
from plantpulse.broker import EmbeddedBroker
from plantpulse.cli_flows import flows_app
from tests.flows.conftest import HISTORY_START, QUICK_TRAINING, write_fd001_history

pytestmark = [pytest.mark.slow, pytest.mark.broker]

TRAINING_UNITS = list(range(13, 37))
RECENT_UNITS = list(range(40, 48))
SHIFTED_CHANNELS = ("s2", "s7", "s11")


def run_with_id(flow: Any, *args: Any) -> tuple[Any, UUID]:
    state = flow(*args, return_state=True)
    return state.result(), state.state_details.flow_run_id


def artifacts_of(flow_run_id: UUID) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )
    return {artifact.key: str(artifact.data) for artifact in found if artifact.key}


@dataclass
class RetrainedHistory:
    """Two retrain runs on the same history: a control on shuffled labels, then a real one."""

    settings: FlowSettings
    control: RetrainResult
    trained: RetrainResult
    trained_run: UUID
    promotions: list[ModelPromoted]
    serving_switched: bool
    serving_version: str


@pytest.fixture(scope="module")
def retrained(
    prefect_api: None, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RetrainedHistory]:
    root = tmp_path_factory.mktemp("retrain")
    start, stop = write_fd001_history(root / "history", data_dir, TRAINING_UNITS)
    with EmbeddedBroker(log_path=root / "tansu.log") as broker:
        kafka = KafkaConfig(bootstrap_servers=broker.bootstrap_servers, partitions=1)
        settings = FlowSettings(
            registry_dir=root / "registry",
            history=HistoryConfig(path=root / "history"),
            kafka=kafka,
        )
        options = RetrainOptions(start=start, stop=stop, train=QUICK_TRAINING)

        control = retrain(settings, options.model_copy(update={"shuffle_labels": True}))
        serving = InferenceEngine.from_registry(settings.registry_dir, device="cpu")
        trained, trained_run = run_with_id(retrain, settings, options)
        switched = serving.reload_if_changed()
        promotions = [
            ModelPromoted.model_validate_json(record.value) for record in read_topic(kafka, MODELS)
        ]
        yield RetrainedHistory(
            settings, control, trained, trained_run, promotions, switched, serving.version
        )


def test_first_challenger_becomes_champion(retrained: RetrainedHistory) -> None:
    control = retrained.control

    assert control.promoted
    assert control.reason.startswith("no champion yet")
    assert control.challenger_version == "v0001"
    assert control.champion_before is None
    assert control.champion_metrics is None
    assert control.source.startswith("parquet history")
    assert len(control.train_machines) + len(control.holdout_machines) == len(TRAINING_UNITS)


def test_retrain_from_history_promotes_better_challenger(retrained: RetrainedHistory) -> None:
    result = retrained.trained

    assert result.promoted, result.reason
    assert result.reason.startswith("better")
    assert (result.champion_before, result.challenger_version) == ("v0001", "v0002")
    assert result.champion_after == "v0002"
    assert result.champion_metrics is not None
    assert result.challenger_metrics["rmse"] <= 0.98 * result.champion_metrics["rmse"]
    assert result.holdout_machines == retrained.control.holdout_machines
    assert len(result.holdout_machines) == 5
    assert not set(result.holdout_machines) & set(result.train_machines)
    assert result.challenger_metrics["engines"] == result.champion_metrics["engines"]
    assert Registry(retrained.settings.registry_dir).champion() == "v0002"


def test_promotion_is_announced_and_picked_up(retrained: RetrainedHistory) -> None:
    assert retrained.trained.announced
    assert [(event.version, event.previous_version) for event in retrained.promotions] == [
        ("v0001", None),
        ("v0002", "v0001"),
    ]
    last = retrained.promotions[-1]
    assert last.metrics["rmse"] == pytest.approx(retrained.trained.challenger_metrics["rmse"])
    assert last.registry == str(retrained.settings.registry_dir)
    assert retrained.serving_switched
    assert retrained.serving_version == "v0002"


def test_retrain_run_leaves_report_artifacts(retrained: RetrainedHistory) -> None:
    artifacts = artifacts_of(retrained.trained_run)

    report = artifacts["retrain-report"]
    assert "# Retrain: v0002 promoted" in report
    assert retrained.trained.reason in report
    assert "| rmse |" in report
    table = json.loads(artifacts["retrain-metrics"])
    rmse_row = next(row for row in table if row["metric"] == "rmse")
    assert rmse_row["challenger"] == pytest.approx(
        retrained.trained.challenger_metrics["rmse"], abs=1e-3
    )


@pytest.fixture
def champion_copy(retrained: RetrainedHistory, tmp_path: Path) -> Path:
    copy = tmp_path / "registry"
    shutil.copytree(retrained.settings.registry_dir, copy)
    return copy


def test_retrain_refuses_challenger_on_shuffled_labels(
    retrained: RetrainedHistory, champion_copy: Path
) -> None:
    settings = retrained.settings.model_copy(update={"registry_dir": champion_copy, "kafka": None})
    options = RetrainOptions(
        start=HISTORY_START - timedelta(days=1),
        stop=HISTORY_START + timedelta(days=30),
        shuffle_labels=True,
        train=QUICK_TRAINING,
    )

    result, run_id = run_with_id(retrain, settings, options)

    assert not result.promoted
    assert "not better by the margin" in result.reason
    assert result.champion_metrics is not None
    assert result.challenger_metrics["rmse"] > result.champion_metrics["rmse"]
    assert (result.champion_before, result.champion_after) == ("v0002", "v0002")
    assert result.challenger_version == "v0003"
    assert Registry(champion_copy).versions() == ["v0001", "v0002", "v0003"]
    assert not result.announced
    report = artifacts_of(run_id)["retrain-report"]
    assert "v0003 not promoted" in report
    assert "not better by the margin" in report


def drift_settings(registry: Path, history: Path) -> FlowSettings:
    return FlowSettings(registry_dir=registry, history=HistoryConfig(path=history))


def test_drift_check_is_quiet_on_unshifted_readings(
    data_dir: Path, champion_copy: Path, tmp_path: Path
) -> None:
    start, stop = write_fd001_history(tmp_path / "history", data_dir, RECENT_UNITS)
    options = DriftOptions(
        stop=stop,
        recent_hours=(stop - start) / timedelta(hours=1),
        retrain=RetrainOptions(
            source="dataset", dataset_dir=data_dir, max_machines=12, train=QUICK_TRAINING
        ),
    )

    result, run_id = run_with_id(
        drift_check, drift_settings(champion_copy, tmp_path / "history"), options
    )

    assert isinstance(result, DriftResult)
    assert not result.drifted, result.reasons
    assert result.retrain is None
    assert result.champion == "v0002"
    assert result.readings == int(
        np.isin(read_cmapss_rows(data_dir / "cmapss" / "train_FD001.txt")[:, 0], RECENT_UNITS).sum()
    )
    assert [row.channel for row in result.channels if row.drifted] == []
    assert "no drift past the thresholds" in result.reasons
    assert "keep the champion" in artifacts_of(run_id)["drift-report"]


def test_drift_check_fires_on_shifted_sensors_and_retrains(
    data_dir: Path, champion_copy: Path, tmp_path: Path
) -> None:
    rows = read_cmapss_rows(data_dir / "cmapss" / "train_FD001.txt")
    recent = rows[np.isin(rows[:, 0], RECENT_UNITS)]
    # A calibration offset of two standard deviations on three sensors.
    shift = {name: 2.0 * float(np.std(recent[:, 4 + int(name[1:])])) for name in SHIFTED_CHANNELS}
    start, stop = write_fd001_history(tmp_path / "history", data_dir, RECENT_UNITS, shift=shift)
    options = DriftOptions(
        stop=stop,
        recent_hours=(stop - start) / timedelta(hours=1),
        retrain=RetrainOptions(
            source="dataset", dataset_dir=data_dir, max_machines=12, train=QUICK_TRAINING
        ),
    )
    settings = drift_settings(champion_copy, tmp_path / "history")
    settings = settings.model_copy(update={"data_dir": data_dir})

    result, run_id = run_with_id(drift_check, settings, options)

    assert result.drifted
    drifted = {row.channel for row in result.channels if row.drifted}
    assert drifted == set(SHIFTED_CHANNELS)
    assert any(reason.startswith("PSI above its limit on s2") for reason in result.reasons)
    assert result.retrain is not None
    assert result.retrain.challenger_version == "v0003"
    assert result.retrain.source.startswith("dataset FD001")
    assert len(result.retrain.train_machines) + len(result.retrain.holdout_machines) == 12
    assert "retrain requested" in artifacts_of(run_id)["drift-report"]


def test_drift_check_fires_on_prediction_errors_before_failures(
    data_dir: Path, champion_copy: Path, tmp_path: Path
) -> None:
    history = tmp_path / "history"
    start, stop = write_fd001_history(history, data_dir, RECENT_UNITS)
    store = ParquetHistory(history)
    failures = {
        point.tags["machine_id"]: point.time for point in store.read("failure", start, stop)
    }
    # The champion predicted 80 cycles too many over each machine's last 60 readings.
    states = []
    for machine_id, failure in failures.items():
        machine_readings = store.readings(start, failure, machine_ids=[machine_id])
        last_seq = machine_readings[-1].seq
        for reading in machine_readings[-60:]:
            true_rul = float(last_seq - reading.seq)
            states.append(
                MachineState(
                    machine_id=machine_id,
                    ts=reading.ts,
                    seq=reading.seq,
                    model_version="v0002",
                    state="critical",
                    state_probabilities={"healthy": 0.0, "degrading": 0.1, "critical": 0.9},
                    rul=RemainingUsefulLife(
                        p10=true_rul + 70, p50=true_rul + 80, p90=true_rul + 90
                    ),
                )
            )
    store.write_events(states)
    store.close()
    options = DriftOptions(
        stop=stop, recent_hours=(stop - start) / timedelta(hours=1), retrain_on_drift=False
    )

    result = drift_check(drift_settings(champion_copy, history), options)

    assert result.drifted
    assert result.labelled_states == 60 * len(RECENT_UNITS)
    assert result.prediction_rmse == pytest.approx(80.0)
    assert result.reference_rmse is not None
    assert result.error_ratio == pytest.approx(80.0 / result.reference_rmse)
    assert any(reason.startswith("RUL RMSE 80.00 cycles") for reason in result.reasons)
    assert result.retrain is None


def test_drift_reference_is_rebuilt_from_lineage(
    data_dir: Path, champion_registry: Path, tmp_path: Path
) -> None:
    start, stop = write_fd001_history(tmp_path / "history", data_dir, RECENT_UNITS)
    champion = Registry(champion_registry).champion()
    assert champion is not None
    assert not reference_path(champion_registry, champion).exists()
    options = DriftOptions(
        stop=stop, recent_hours=(stop - start) / timedelta(hours=1), retrain_on_drift=False
    )

    result = drift_check(drift_settings(champion_registry, tmp_path / "history"), options)

    assert result.champion == champion
    assert reference_path(champion_registry, champion).is_file()
    loaded = Registry(champion_registry).load(champion)
    assert {row.channel for row in result.channels} == set(loaded.config.channels)


def test_cli_runs_drift_check(
    data_dir: Path, champion_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, _ = write_fd001_history(tmp_path / "history", data_dir, RECENT_UNITS[:2])
    monkeypatch.setenv("PLANTPULSE_REGISTRY_DIR", str(champion_copy))
    monkeypatch.setenv("PLANTPULSE_HISTORY__PATH", str(tmp_path / "history"))
    monkeypatch.setenv("PLANTPULSE_DATA_DIR", str(data_dir))
    monkeypatch.delenv("PLANTPULSE_CONFIG", raising=False)
    hours = (datetime.now(start.tzinfo) - start) / timedelta(hours=1) + 1

    outcome = CliRunner().invoke(
        flows_app,
        ["run", "drift-check", "--recent-hours", str(hours), "--no-retrain", "--no-announce"],
    )

    assert outcome.exit_code == 0, outcome.output
    assert "no drift for v0002 over" in outcome.output


def test_deployments_store_no_secret(tmp_path: Path) -> None:
    settings = FlowSettings(
        registry_dir=tmp_path / "registry",
        history=HistoryConfig(
            backend="influxdb", url="http://127.0.0.1:8086", token=SecretStr("influx-secret")
        ),
        kafka=KafkaConfig(
            sasl_mechanism="PLAIN", sasl_username="svc", sasl_password=SecretStr("kafka-secret")
        ),
    )

    retrain_deployment, drift_deployment = build_deployments(
        settings, retrain_cron="0 3 * * 0", drift_check_interval=timedelta(hours=6)
    )

    stored = json.dumps([retrain_deployment.parameters, drift_deployment.parameters])
    assert "influx-secret" not in stored
    assert "kafka-secret" not in stored
    assert "token" not in retrain_deployment.parameters["settings"]["history"]
    assert retrain_deployment.parameters["settings"]["history"]["url"] == "http://127.0.0.1:8086"
    assert retrain_deployment.name == "plantpulse-retrain"
    assert drift_deployment.name == "plantpulse-drift-check"
    cron = retrain_deployment.schedules[0].schedule
    assert getattr(cron, "cron", None) == "0 3 * * 0"
    assert getattr(drift_deployment.schedules[0].schedule, "interval", None) == timedelta(hours=6)
