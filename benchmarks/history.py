"""History write throughput (Parquet, influxdb-client, raw line protocol) and a retrain run.

The script writes the same C-MAPSS readings three ways, one after the other. They come
from the FD001 training and test files, repeated under new machine ids until `--points`
is reached, and one point is one reading with 21 channels, 3 context fields and `seq`:

1. `ParquetHistory`, flushing every `--flush-every` points, with fsync, as a consumer
   would before each offset commit;
2. `InfluxHistory` (influxdb-client, synchronous writes in batches of `--batch-size`)
   into a VictoriaMetrics server started on 127.0.0.1, flushing as above;
3. a raw line-protocol POST to the same server's `/api/v2/write`, serialised with
   f-strings and sent with `http.client` in the same batch size.

Then it times one `retrain` flow run on FD001 (source dataset, default `TrainConfig`
unless `--retrain-minutes` caps the training time) against an existing champion, and
writes the figures under "History and flows" in benchmarks/RESULTS.md.

    python benchmarks/history.py
    python benchmarks/history.py --points 50000 --skip-retrain
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

# Run as a script, this file's folder comes first on sys.path; the packages live above it.
REPOSITORY = Path(__file__).resolve().parents[1]
sys.path = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).parent]
sys.path.insert(0, str(REPOSITORY))

import numpy as np  # noqa: E402

from ingest.events import SensorReading  # noqa: E402
from ingest.history.influx import InfluxHistory  # noqa: E402
from ingest.history.parquet import ParquetHistory  # noqa: E402
from ingest.replay import read_cmapss_rows  # noqa: E402

if TYPE_CHECKING:
    from flows import RetrainResult

RESULTS = REPOSITORY / "benchmarks" / "RESULTS.md"
SECTION = "## History and flows"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=REPOSITORY.parent / "shared" / "data")
    parser.add_argument("--points", type=int, default=100_000, help="points written each way")
    parser.add_argument("--flush-every", type=int, default=1000, help="points per flush")
    parser.add_argument("--batch-size", type=int, default=5000, help="points per HTTP request")
    parser.add_argument("--retrain-minutes", type=float, default=None, help="training budget")
    parser.add_argument("--skip-retrain", action="store_true", help="measure writes only")
    parser.add_argument("--no-results", action="store_true", help="print, do not edit RESULTS.md")
    parser.add_argument("--repeat", type=int, default=3, help="write measurements per writer")
    arguments = parser.parse_args()

    load_before = os.getloadavg()
    readings = fd001_readings(arguments.data_dir, arguments.points)
    with tempfile.TemporaryDirectory(prefix="plantpulse-bench-") as scratch:
        root = Path(scratch)
        rates: list[tuple[float, float, float]] = []
        for repeat in range(arguments.repeat):
            rates.append(measure_writes(root / f"run-{repeat}", readings, arguments))
            print(f"run {repeat + 1}: " + ", ".join(f"{rate:,.0f}" for rate in rates[-1]))
        writers = [
            f"Parquet (`ParquetHistory`, fsync, flush every {arguments.flush_every})",
            f"influxdb-client into victoria-metrics (`InfluxHistory`, batch "
            f"{arguments.batch_size}, flush every {arguments.flush_every})",
            f"raw line-protocol HTTP POST into victoria-metrics (batch {arguments.batch_size})",
        ]
        lines = []
        for index, writer in enumerate(writers):
            values = sorted(run[index] for run in rates)
            lines.append(
                f"| {writer} | {statistics.median(values):,.0f} | "
                f"{values[0]:,.0f} to {values[-1]:,.0f} |"
            )
        print("\n".join(lines))

        retrain_line = None
        if not arguments.skip_retrain:
            seconds, result = time_retrain(
                root / "prefect", arguments.data_dir, arguments.retrain_minutes
            )
            budget = arguments.retrain_minutes or "default 3"
            training = result.training_metrics
            champion_rmse = (result.champion_metrics or {}).get("rmse", float("nan"))
            retrain_line = (
                f"| FD001 training file, 100 engines (20 held out), `TrainConfig` defaults, "
                f"max_minutes {budget} | {seconds:.0f} s | "
                f"{training.get('epochs_run', 0):.0f} epochs in "
                f"{training.get('train_seconds', 0):.0f} s; held-out RMSE "
                f"{result.challenger_metrics['rmse']:.2f} against {champion_rmse:.2f} of the "
                f"first champion; {'promoted' if result.promoted else 'not promoted'} |"
            )
            print(retrain_line)

    if not arguments.no_results:
        write_results(arguments, lines, retrain_line, len(readings), load_before)


def measure_writes(
    root: Path, readings: list[SensorReading], arguments: argparse.Namespace
) -> tuple[float, float, float]:
    """Return points/s of Parquet, influxdb-client and raw POST, after checking the counts."""
    parquet = time_parquet(root / "parquet", readings, arguments.flush_every)
    with VictoriaMetrics(root / "vm") as server:
        client = time_influx_client(server, readings, arguments.flush_every, arguments.batch_size)
        raw = time_raw_post(server, readings, arguments.batch_size)
        stored = server.count("sensor_reading_seq", len(readings))
        raw_stored = server.count("sensor_reading_raw_seq", len(readings))
    kept = len(
        ParquetHistory(root / "parquet").readings(
            readings[0].ts, readings[-1].ts + timedelta(seconds=1)
        )
    )
    if (stored, raw_stored, kept) != (len(readings),) * 3:
        raise SystemExit(
            f"stored {kept} points in Parquet and {stored} and {raw_stored} samples in "
            f"victoria-metrics, expected {len(readings)} each; the figures are not valid"
        )
    return parquet, client, raw


def fd001_readings(data_dir: Path, count: int) -> list[SensorReading]:
    """Return `count` readings of FD001 in time order, as a plant would stream them."""
    return sorted(_fd001_readings(data_dir, count), key=lambda reading: reading.ts)


def _fd001_readings(data_dir: Path, count: int) -> Iterator[SensorReading]:
    """Yield `count` readings of FD001, one machine id per engine and copy, recent times."""
    folder = data_dir / "cmapss"
    train = read_cmapss_rows(folder / "train_FD001.txt")
    test = read_cmapss_rows(folder / "test_FD001.txt")
    # Test engines are numbered 1..100 like the training engines; 101..200 keeps them apart.
    test[:, 0] += 100
    rows = np.concatenate([train, test])
    # victoria-metrics rejects samples in the future and older than its retention.
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    produced = 0
    copy = 0
    while produced < count:
        for row in rows:
            unit, cycle = int(row[0]), int(row[1])
            yield SensorReading(
                machine_id=f"engine-{copy}-{unit:03d}",
                ts=start + timedelta(seconds=cycle, milliseconds=unit),
                seq=cycle,
                channels={f"s{i}": float(row[4 + i]) for i in range(1, 22)},
                context={f"setting{i}": float(row[1 + i]) for i in range(1, 4)},
            )
            produced += 1
            if produced == count:
                return
        copy += 1


def time_parquet(root: Path, readings: list[SensorReading], flush_every: int) -> float:
    store = ParquetHistory(root, fsync=True)
    started = time.perf_counter()
    for first in range(0, len(readings), flush_every):
        store.write_events(readings[first : first + flush_every])
        store.flush()
    store.close()
    return len(readings) / (time.perf_counter() - started)


def time_influx_client(
    server: VictoriaMetrics, readings: list[SensorReading], flush_every: int, batch_size: int
) -> float:
    store = InfluxHistory(server.url, org="bench", bucket="bench", batch_size=batch_size)
    started = time.perf_counter()
    for first in range(0, len(readings), flush_every):
        store.write_events(readings[first : first + flush_every])
        store.flush()
    store.close()
    return len(readings) / (time.perf_counter() - started)


def time_raw_post(server: VictoriaMetrics, readings: list[SensorReading], batch_size: int) -> float:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    started = time.perf_counter()
    for first in range(0, len(readings), batch_size):
        body = "\n".join(line_protocol(r) for r in readings[first : first + batch_size])
        connection.request(
            "POST",
            "/api/v2/write?org=bench&bucket=bench&precision=us",
            body=body.encode(),
            headers={"Content-Type": "text/plain; charset=utf-8"},
        )
        response = connection.getresponse()
        response.read()
        if response.status != 204:
            raise RuntimeError(f"raw write failed with HTTP {response.status}")
    elapsed = time.perf_counter() - started
    connection.close()
    return len(readings) / elapsed


def line_protocol(reading: SensorReading) -> str:
    """Serialise a reading as the store would, under measurement sensor_reading_raw."""
    fields = [f"seq={reading.seq}i"]
    fields += [f"channel.{name}={value!r}" for name, value in reading.channels.items()]
    fields += [f"context.{name}={value!r}" for name, value in reading.context.items()]
    micros = int(reading.ts.timestamp()) * 1_000_000 + reading.ts.microsecond
    return f"sensor_reading_raw,machine_id={reading.machine_id} {','.join(fields)} {micros}"


def time_retrain(
    prefect_home: Path, data_dir: Path, minutes: float | None
) -> tuple[float, RetrainResult]:
    os.environ["PREFECT_HOME"] = str(prefect_home)
    os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    from flows import FlowSettings, RetrainOptions, retrain
    from ingest.history import HistoryConfig
    from models import TrainConfig

    settings = FlowSettings(
        registry_dir=prefect_home / "registry",
        history=HistoryConfig(path=prefect_home / "history"),
        data_dir=data_dir,
    )
    # A quick first champion, not timed, so that the timed run compares against one and
    # the Prefect API is already started.
    quick = TrainConfig(epochs=2, max_minutes=0.5, d_model=16, n_layers=3, device="cpu")
    retrain(settings, RetrainOptions(source="dataset", max_machines=12, train=quick))

    train = TrainConfig(device="cpu")
    if minutes is not None:
        train = dataclasses.replace(train, max_minutes=minutes)
    started = time.perf_counter()
    result = retrain(settings, RetrainOptions(source="dataset", train=train))
    return time.perf_counter() - started, result


class VictoriaMetrics:
    """A victoria-metrics server on a free 127.0.0.1 port, stopped on exit."""

    def __init__(self, data_dir: Path) -> None:
        binary = shutil.which("victoria-metrics")
        if binary is None:
            raise SystemExit("victoria-metrics not found; apt-get install -y victoria-metrics")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            binary,
            f"-storageDataPath={data_dir}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
            "-dedup.minScrapeInterval=1ms",
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> VictoriaMetrics:
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                    if response.read().strip() == b"OK":
                        return self
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("victoria-metrics did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def count(self, metric: str, expected: int) -> int:
        """Count the samples of `metric`, waiting up to 60 s for `expected` to be searchable."""
        urllib.request.urlopen(
            urllib.request.Request(f"{self.url}/internal/force_flush", method="POST"), timeout=30
        ).read()
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline:
            query = urllib.parse.urlencode({"match[]": f'{{__name__="{metric}"}}'})
            with urllib.request.urlopen(
                f"{self.url}/api/v1/export?{query}", timeout=60
            ) as response:
                count = sum(line.count(b",") + 1 for line in _timestamps(response.read()))
            if count >= expected:
                return count
            time.sleep(1.0)
        return count


def _timestamps(export: bytes) -> Iterator[bytes]:
    for line in export.splitlines():
        start = line.find(b'"timestamps":[')
        if start >= 0:
            yield line[start + len(b'"timestamps":[') : line.rindex(b"]")]


def write_results(
    arguments: argparse.Namespace,
    lines: list[str],
    retrain_line: str | None,
    points: int,
    load_before: tuple[float, float, float],
) -> None:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    # The Debian build prints no version, so the package manager is asked.
    vm_version = (
        subprocess.run(
            ["dpkg-query", "-W", "-f=${Version}", "victoria-metrics"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "version unknown"
    )
    command = ("python benchmarks/history.py " + " ".join(sys.argv[1:])).strip()
    setting = (
        f"Measured {datetime.now(UTC):%Y-%m-%d} with `{command}` on {os.cpu_count()} CPU "
        f"cores ({cpu}), shared with other engineers' test runs: the load average was "
        f"{load_before[0]:.1f} at the start. pyarrow {metadata.version('pyarrow')}, "
        f"influxdb-client {metadata.version('influxdb-client')}, Prefect "
        f"{metadata.version('prefect')}, victoria-metrics {vm_version} on 127.0.0.1."
    )
    writes = (
        f"History write throughput: {points:,} points, each one FD001 reading (21 channels, "
        "3 context fields and seq) in time order, written by each writer in turn. Every "
        "point was counted back afterwards (Parquet read, victoria-metrics export API)."
    )
    body = [
        SECTION,
        "",
        textwrap.fill(setting, width=88),
        "",
        textwrap.fill(writes, width=88),
        "",
        f"| writer | points/s, median of {arguments.repeat} | range |",
        "| --- | ---: | ---: |",
        *lines,
        "",
    ]
    if retrain_line is not None:
        retrain_text = (
            "Retrain flow on FD001 with the Prefect local API, on the CPU: read the dataset, "
            "train a challenger, score it and the champion on the same held-out engines, "
            "register it with its drift reference and decide. The champion it competes with "
            "is a quick first model (2 epochs on 12 engines) trained beforehand, not timed."
        )
        body += [
            textwrap.fill(retrain_text, width=88),
            "",
            "| retrain run | wall time | outcome |",
            "| --- | ---: | --- |",
            retrain_line,
            "",
        ]
    replace_section(RESULTS, "\n".join(body))


def replace_section(path: Path, section: str) -> None:
    """Replace this benchmark's section of RESULTS.md, or append it; leave others alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    lines = text.splitlines()
    if SECTION in lines:
        start = lines.index(SECTION)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        lines = lines[:start] + section.rstrip("\n").splitlines() + [""] + lines[end:]
    else:
        lines = [*lines, "", *section.rstrip("\n").splitlines()]
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
