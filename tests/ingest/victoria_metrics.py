"""A real VictoriaMetrics process on 127.0.0.1 that accepts InfluxDB line-protocol writes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

BINARY = "victoria-metrics"


def find_binary() -> str | None:
    return shutil.which(BINARY)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class VictoriaMetrics:
    """Starts, stops and restarts one server on a fixed port and data folder."""

    def __init__(self, binary: str, data_dir: Path, log_path: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        command = [
            self.binary,
            f"-storageDataPath={self.data_dir}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
            # Keep one sample per series and millisecond, as InfluxDB keeps one per point.
            "-dedup.minScrapeInterval=1ms",
        ]
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"victoria-metrics exited with {self._process.returncode}; see {self.log_path}"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.read().strip() == b"OK":
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"victoria-metrics did not answer /health within {timeout_s} s")

    def stop(self) -> None:
        """Stop gracefully, so that the server writes the samples it buffers in memory to disk."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None

    def export(self, match: str) -> list[dict[str, Any]]:
        """Return every series matching `match` through the export API, one dict each."""
        self._post("/internal/force_flush", None)
        body = self._post("/api/v1/export", urllib.parse.urlencode({"match[]": match}).encode())
        return [json.loads(line) for line in body.decode().splitlines() if line.strip()]

    def count_samples(self, metric: str, expected: int, timeout_s: float = 20.0) -> int:
        """Count the samples of `metric`, waiting until `expected` are searchable or time is up."""
        deadline = time.monotonic() + timeout_s
        while True:
            series = self.export(f'{{__name__="{metric}"}}')
            count = sum(len(item["timestamps"]) for item in series)
            if count >= expected or time.monotonic() > deadline:
                return count
            time.sleep(0.5)

    def _post(self, path: str, data: bytes | None) -> bytes:
        request = urllib.request.Request(f"{self.url}{path}", data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return bytes(response.read())
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"{path} answered HTTP {error.code}: {error.read()!r}") from error
