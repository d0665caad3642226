from __future__ import annotations

import socket
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from plantpulse.broker import BrokerError, EmbeddedBroker, find_tansu_binary


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_broker_starts_on_free_port_and_stops(tmp_path: Path) -> None:
    broker = EmbeddedBroker(log_path=tmp_path / "tansu.log")

    broker.start()
    try:
        assert broker.running
        assert port_open(broker.port)
        admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
        assert admin.list_topics() == []
        admin.close()
    finally:
        broker.stop()

    assert not broker.running
    assert not port_open(broker.port)


def test_missing_binary_gives_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-such-tansu"))

    with pytest.raises(BrokerError, match="no-such-tansu"):
        find_tansu_binary()


def test_broker_that_cannot_bind_fails_to_start(tmp_path: Path) -> None:
    with socket.socket() as occupied:
        occupied.bind(("127.0.0.1", 0))
        occupied.listen()
        port = occupied.getsockname()[1]
        broker = EmbeddedBroker(port=port, start_timeout_s=5, log_path=tmp_path / "tansu.log")

        with pytest.raises(BrokerError):
            broker.start()

    assert not broker.running
