"""Secrets stay out of logs and help: a full run at DEBUG level is captured and searched.

The predictor and the scheduler run as processes against the real broker, the predictor
writing history to a real line-protocol server (VictoriaMetrics) with an InfluxDB token,
while C-MAPSS readings and a Brandimarte plan are replayed. Every secret setting is set
in the environment, and neither the processes' output nor any command's help shows one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.clients import read_topic
from ingest.config import KafkaConfig
from ingest.topics import MACHINE_STATE, SCHEDULE
from tests.ingest.victoria_metrics import VictoriaMetrics, find_binary

pytestmark = [pytest.mark.broker, pytest.mark.slow]

SECRETS = {
    "PLANTPULSE_HISTORY__TOKEN": "influx-token-7f3a9c",
    "PLANTPULSE_KAFKA__SASL_PASSWORD": "sasl-password-b81d2e",
    "PLANTPULSE_DASHBOARD__TOKEN": "dashboard-token-4c6e0a",
}
ENGINES = [f"engine-{unit:03d}" for unit in range(1, 7)]


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    binary = find_binary()
    if binary is None:
        pytest.skip("victoria-metrics not found on PATH; `apt-get install -y victoria-metrics`")
    server = VictoriaMetrics(binary, tmp_path / "vm-data", tmp_path / "vm.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def run_command(arguments: list[str], environment: dict[str, str], log: Path) -> None:
    with log.open("a") as output:
        subprocess.run(
            [sys.executable, "-m", "plantpulse.cli", *arguments],
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=300,
            check=True,
        )


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def test_full_run_logs_show_no_secret(
    kafka: KafkaConfig,
    victoria_metrics: VictoriaMetrics,
    trained_registry: Path,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    environment = {
        **os.environ,
        **SECRETS,
        "PLANTPULSE_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "PLANTPULSE_EMBEDDED_BROKER": "false",
        "PLANTPULSE_REGISTRY_DIR": str(trained_registry),
        "PLANTPULSE_DATA_DIR": str(data_dir),
        "PLANTPULSE_LOG_LEVEL": "DEBUG",
        "PLANTPULSE_HISTORY__BACKEND": "influxdb",
        "PLANTPULSE_HISTORY__URL": victoria_metrics.url,
        "PLANTPULSE_SCHEDULER__TIME_LIMIT_S": "3",
        "PLANTPULSE_SCHEDULER__DEBOUNCE_S": "0.5",
    }
    log = tmp_path / "run.log"
    run_command(["replay", "cmapss", "--machines", "6"], environment, log)
    plan = data_dir / "fjsp" / "brandimarte" / "mk01.fjs"
    run_command(["replay", "plan", str(plan), "--machines", ",".join(ENGINES)], environment, log)

    with log.open("a") as output:
        services = [
            subprocess.Popen(
                [sys.executable, "-m", "plantpulse.cli", command],
                env=environment,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
            for command in ("predictor", "scheduler")
        ]
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if read_topic(kafka, MACHINE_STATE) and read_topic(kafka, SCHEDULE):
                break
            time.sleep(2.0)
    finally:
        codes = [stop(process) for process in services]

    text = log.read_text()
    assert codes == [0, 0], text[-3000:]
    assert read_topic(kafka, MACHINE_STATE), "the predictor published no machine state"
    assert read_topic(kafka, SCHEDULE), "the scheduler published no schedule"
    assert victoria_metrics.count_samples("machine_state_rul_p50", 1) >= 1
    assert "DEBUG" in text
    # The replay ends at the present, so no reading is dead-lettered as future.
    assert "dead letter" not in text
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} appears in the run's output"


@pytest.mark.parametrize(
    "command",
    [[], ["demo"], ["predictor"], ["scheduler"], ["dashboard"], ["flows", "serve"], ["train"]],
)
def test_help_shows_no_secret(command: list[str]) -> None:
    environment = {**os.environ, **SECRETS}

    result = subprocess.run(
        [sys.executable, "-m", "plantpulse.cli", *command, "--help"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    for secret in SECRETS.values():
        assert secret not in result.stdout + result.stderr
