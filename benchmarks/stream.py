"""Streaming throughput and latency of the predictor beside a bare kafka-python consumer.

One run writes C-MAPSS training trajectories, spread over many machines, to the sensor
topic and then measures four things:

1. the ceiling: a bare consumer that reads and JSON-decodes every record;
2. the relay floor: a consumer that reads and decodes every record and sends one
   prepared MachineState-sized record per reading with the predictor's producer, flushing
   before each commit. It does no validation and no model, so no predictor built on
   kafka-python can be faster than this on the same machine;
3. the predictor over the same records, end to end, as the service builds it with the
   shipped C-MAPSS plant description (validation, range checks, windows, micro-batched
   inference, likely causes, one MachineState per window, commits after flush);
4. event-to-MachineState latency, measured in a separate process, while a paced producer
   sends fresh readings at a fraction of the measured predictor rate.

    python benchmarks/stream.py --readings 1000000 --machines 500

`--precision bfloat16` serves the model as `predictor.precision = "bfloat16"` does, in
the predictor and in each scale-out process.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from ingest.clients import EventProducer, ensure_topics
from ingest.config import KafkaConfig
from ingest.datasets import dataset_path, resolve_data_dir
from ingest.predictor import PREDICTOR_GROUP, Predictor
from ingest.replay import CMAPSS_CHANNELS, cmapss_context, read_cmapss_rows
from ingest.stream import StreamProcessor, freeze_startup_objects
from ingest.topics import MACHINE_STATE, SENSORS
from models import InferenceEngine, Precision, Registry, TrainConfig, train_cmapss
from models.plant import example_plant
from plantpulse.broker import EmbeddedBroker

logger = logging.getLogger("benchmarks.stream")
START = datetime(2026, 1, 1, tzinfo=UTC)
SCALE_OUT_GROUP = "bench-scale-out"
RELAY_TOPIC = "bench.relay"


def trajectory_source(data_dir: Path) -> list[np.ndarray]:
    rows = read_cmapss_rows(dataset_path("cmapss", "train_FD001.txt", data_dir))
    return [rows[rows[:, 0] == unit] for unit in np.unique(rows[:, 0])]


def reading_bytes(machine: str, seq: int, ts: datetime, row: np.ndarray) -> bytes:
    document = {
        "schema_version": 1,
        "machine_id": machine,
        "ts": ts.isoformat().replace("+00:00", "Z"),
        "seq": seq,
        "channels": dict(zip(CMAPSS_CHANNELS, row[5:26].tolist(), strict=True)),
        "context": cmapss_context(row),
    }
    return json.dumps(document).encode()


def fill_topic(
    kafka: KafkaConfig, trajectories: list[np.ndarray], machines: int, readings: int
) -> float:
    """Write `readings` readings, machines interleaved cycle by cycle; return seconds taken."""
    producer = KafkaProducer(
        **{**kafka.producer_options(), "linger_ms": 20, "batch_size": 512 * 1024}
    )
    per_machine = readings // machines
    started = time.perf_counter()
    for step in range(per_machine):
        for machine in range(machines):
            trajectory = trajectories[machine % len(trajectories)]
            row = trajectory[step % len(trajectory)]
            name = f"m{machine:04d}"
            value = reading_bytes(name, step + 1, START + timedelta(hours=step), row)
            producer.send(SENSORS, key=name.encode(), value=value)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


def measure_ceiling(kafka: KafkaConfig, expected: int) -> tuple[float, float]:
    """Read and JSON-decode `expected` records with a bare consumer; return (records/s, s)."""
    consumer = KafkaConsumer(SENSORS, **kafka.consumer_options("bench-ceiling"))
    count = 0
    first: float | None = None
    while count < expected:
        for records in consumer.poll(timeout_ms=500).values():
            if first is None:
                first = time.perf_counter()
            for record in records:
                json.loads(record.value)
            count += len(records)
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    return count / elapsed, elapsed


def measure_relay(kafka: KafkaConfig, expected: int, state_bytes: bytes) -> tuple[float, float]:
    """Read and decode `expected` records and send `state_bytes` for each; return (records/s, s).

    Offsets are committed once a second after a producer flush, as the predictor does.
    """
    consumer = KafkaConsumer(SENSORS, **kafka.consumer_options("bench-relay"))
    producer = EventProducer(kafka)
    count = 0
    first: float | None = None
    last_commit = time.monotonic()
    while count < expected:
        for records in consumer.poll(timeout_ms=500).values():
            if first is None:
                first = time.perf_counter()
            for record in records:
                reading = json.loads(record.value)
                producer.send_bytes(RELAY_TOPIC, reading["machine_id"], state_bytes)
            count += len(records)
        if time.monotonic() - last_commit >= 1.0:
            producer.flush()
            consumer.commit()
            last_commit = time.monotonic()
    producer.flush()
    consumer.commit()
    elapsed = time.perf_counter() - (first or time.perf_counter())
    consumer.close()
    producer.close()
    return count / elapsed, elapsed


def sample_state_bytes(kafka: KafkaConfig) -> bytes:
    """Return the largest MachineState record the predictor wrote, as the relay's payload."""
    consumer = KafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    partition = TopicPartition(MACHINE_STATE, 0)
    consumer.assign([partition])
    largest = b""
    for records in consumer.poll(timeout_ms=5000, max_records=500).values():
        for record in records:
            if len(record.value) > len(largest):
                largest = record.value
    consumer.close()
    if not largest:
        raise RuntimeError(f"no MachineState found on {MACHINE_STATE}[0] for the relay floor")
    return bytes(largest)


def measure_predictor(
    kafka: KafkaConfig,
    registry: Path,
    expected: int,
    stride: int = 1,
    precision: Precision = "float32",
) -> tuple[StreamProcessor, float, float]:
    """Run the predictor over `expected` records; return (processor, records/s, s)."""
    torch.set_num_threads(1)  # as the predictor service does by default
    engine = InferenceEngine.from_registry(registry, device="cpu", precision=precision)
    output = EventProducer(kafka)
    processor = StreamProcessor(
        kafka,
        PREDICTOR_GROUP,
        [SENSORS],
        Predictor(engine, output, stride=stride, plant=example_plant("cmapss")),
        output,
    )
    freeze_startup_objects()
    first: float | None = None
    while processor.records_in < expected:
        count = processor.poll_once(timeout_ms=500)
        if count and first is None:
            first = time.perf_counter() - 0.0
    processor.checkpoint.commit()
    elapsed = time.perf_counter() - (first or time.perf_counter())
    return processor, processor.records_in / elapsed, elapsed


def scale_out_member(
    bootstrap: str,
    partitions: int,
    registry: str,
    stride: int,
    precision: Precision,
    stop: multiprocessing.Event,  # type: ignore[valid-type]
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """Run one predictor process of the scale-out group and report its progress to `out`."""
    logging.getLogger("kafka").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    kafka = KafkaConfig(bootstrap_servers=bootstrap, partitions=partitions)
    engine = InferenceEngine.from_registry(Path(registry), device="cpu", precision=precision)
    output = EventProducer(kafka)
    processor = StreamProcessor(
        kafka,
        SCALE_OUT_GROUP,
        [SENSORS],
        Predictor(engine, output, stride=stride, plant=example_plant("cmapss")),
        output,
    )
    freeze_startup_objects()
    first: float | None = None
    last = time.time()
    reported = 0
    while not stop.is_set():  # type: ignore[attr-defined]
        if processor.poll_once(timeout_ms=200):
            last = time.time()
            first = first if first is not None else last
        if processor.records_in - reported >= 5000:
            out.put(("progress", processor.records_in - reported))
            reported = processor.records_in
    processor.checkpoint.commit()
    processor.close()
    output.close()
    out.put(("progress", processor.records_in - reported))
    out.put(("done", processor.records_in, first, last))


def measure_scale_out(
    kafka: KafkaConfig,
    registry: Path,
    expected: int,
    members: int,
    stride: int,
    precision: Precision = "float32",
) -> dict[str, float]:
    """Run `members` predictor processes in one new group over the filled topic.

    The time runs from the first record any member reads to the last one, so it
    includes the group's rebalances. Records read twice after a rebalance count once in
    `readings_per_s` and are reported as `reprocessed`.
    """
    # Spawned, not forked: a fork of a process that has run torch can hang in OpenMP.
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    queue = context.Queue()
    processes = [
        context.Process(
            target=scale_out_member,
            args=(
                kafka.bootstrap_servers,
                kafka.partitions,
                str(registry),
                stride,
                precision,
                stop,
                queue,
            ),
        )
        for _ in range(members)
    ]
    for process in processes:
        process.start()
    processed = 0
    while processed < expected:
        kind, *values = queue.get(timeout=600)
        if kind == "progress":
            processed += values[0]
    stop.set()
    finished = []
    while len(finished) < members:
        kind, *values = queue.get(timeout=120)
        if kind == "done":
            finished.append(values)
        else:
            processed += values[0]
    for process in processes:
        process.join(timeout=60)
    total = sum(records for records, _, _ in finished)
    started = min(first for _, first, _ in finished if first is not None)
    ended = max(last for _, first, last in finished if first is not None)
    return {
        "members": float(members),
        "readings_per_s": expected / (ended - started),
        "seconds": ended - started,
        "reprocessed": float(max(0, total - expected)),
    }


def paced_producer(
    bootstrap: str, rate: float, seconds: float, machines: int, first_seq: int, data_dir: str
) -> None:
    trajectories = trajectory_source(Path(data_dir))
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=2)
    interval = 1.0 / rate
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        machine = sent % machines
        step = first_seq + sent // machines
        trajectory = trajectories[machine % len(trajectories)]
        name = f"m{machine:04d}"
        value = reading_bytes(name, step, datetime.now(UTC), trajectory[step % len(trajectory)])
        producer.send(SENSORS, key=name.encode(), value=value)
        sent += 1
        delay = started + sent * interval - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    producer.flush()
    producer.close()


def latency_collector(
    bootstrap: str,
    seconds: float,
    first_seq: int,
    ready: multiprocessing.Event,  # type: ignore[valid-type]
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        enable_auto_commit=False,
        fetch_max_wait_ms=KafkaConfig().fetch_max_wait_ms,
    )
    partitions = [
        TopicPartition(MACHINE_STATE, p)
        for p in sorted(consumer.partitions_for_topic(MACHINE_STATE) or [])
    ]
    consumer.assign(partitions)
    consumer.seek_to_end(*partitions)
    for partition in partitions:
        consumer.position(partition)
    ready.set()
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=200).values():
            now = datetime.now(UTC)
            for record in records:
                state = json.loads(record.value)
                if state["seq"] < first_seq:
                    continue  # a state of the throughput phase, not of the paced readings
                latencies.append(
                    (now - datetime.fromisoformat(state["ts"])).total_seconds() * 1000.0
                )
    consumer.close()
    out.put(latencies)


def measure_latency(
    kafka: KafkaConfig,
    processor: StreamProcessor,
    rate: float,
    seconds: float,
    machines: int,
    first_seq: int,
    data_dir: Path,
) -> dict[str, float]:
    ready = multiprocessing.Event()
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    collector = multiprocessing.Process(
        target=latency_collector,
        args=(kafka.bootstrap_servers, seconds + 8, first_seq, ready, queue),
    )
    collector.start()
    ready.wait(30)
    producer = multiprocessing.Process(
        target=paced_producer,
        args=(kafka.bootstrap_servers, rate, seconds, machines, first_seq, str(data_dir)),
    )
    producer.start()
    stop = threading.Event()
    deadline = time.monotonic() + seconds + 6
    while time.monotonic() < deadline and not stop.is_set():
        processor.poll_once(timeout_ms=50)
    producer.join()
    latencies = queue.get(timeout=60)
    collector.join()
    values = np.array(latencies)
    return {
        "rate": rate,
        "states": float(len(values)),
        "p50_ms": float(np.percentile(values, 50)) if len(values) else float("nan"),
        "p99_ms": float(np.percentile(values, 99)) if len(values) else float("nan"),
        "max_ms": float(values.max()) if len(values) else float("nan"),
    }


def ensure_model(registry: Path, data_dir: Path) -> None:
    if Registry(registry).champion() is None:
        logger.info("no champion in %s; training one", registry)
        trained = train_cmapss(data_dir, TrainConfig(seed=0), progress=True)
        reg = Registry(registry)
        reg.promote(reg.register(trained))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=1_000_000)
    parser.add_argument("--machines", type=int, default=500)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument(
        "--latency-fraction",
        type=float,
        default=0.5,
        help="paced rate as a share of the predictor rate",
    )
    parser.add_argument(
        "--registry", type=Path, default=Path.home() / ".local/share/plantpulse/registry"
    )
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument(
        "--stride", type=int, default=1, help="predict on every n-th reading of a machine"
    )
    parser.add_argument(
        "--scale-out",
        type=int,
        default=0,
        help="also run this many predictor processes in one group over the same records",
    )
    parser.add_argument(
        "--precision",
        default="float32",
        choices=get_args(Precision),
        help="number format the predictor serves the model in",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures to this file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.ERROR)

    data_dir = resolve_data_dir(args.data_dir)
    ensure_model(args.registry, data_dir)
    trajectories = trajectory_source(data_dir)
    readings = (args.readings // args.machines) * args.machines

    with EmbeddedBroker() as broker:
        kafka = KafkaConfig(bootstrap_servers=broker.bootstrap_servers, partitions=args.partitions)
        ensure_topics(kafka)
        ensure_topics(kafka, [RELAY_TOPIC])
        fill_seconds = fill_topic(kafka, trajectories, args.machines, readings)
        logger.info(
            "wrote %d readings in %.1f s (%.0f/s)", readings, fill_seconds, readings / fill_seconds
        )

        ceiling, ceiling_seconds = measure_ceiling(kafka, readings)
        logger.info("ceiling: %.0f records/s", ceiling)
        processor, rate, seconds = measure_predictor(
            kafka, args.registry, readings, stride=args.stride, precision=args.precision
        )
        states = processor.handler.stats.states  # type: ignore[attr-defined]
        logger.info("predictor: %.0f readings/s, %d machine states", rate, states)

        latency = measure_latency(
            kafka,
            processor,
            rate * args.latency_fraction,
            args.latency_seconds,
            args.machines,
            readings // args.machines + 1,
            data_dir,
        )
        processor.close()
        processor.producer.close()

        # After the latency phase: the relay adds a million records to the broker.
        state_bytes = sample_state_bytes(kafka)
        relay, relay_seconds = measure_relay(kafka, readings, state_bytes)
        logger.info("relay floor: %.0f records/s with %d-byte states", relay, len(state_bytes))

        scale_out = None
        if args.scale_out > 0:
            scale_out = measure_scale_out(
                kafka, args.registry, readings, args.scale_out, args.stride, args.precision
            )
            logger.info("scale-out: %s", scale_out)

    figures = {
        "readings": readings,
        "machines": args.machines,
        "partitions": args.partitions,
        "stride": args.stride,
        "precision": args.precision,
        "fill_readings_per_s": readings / fill_seconds,
        "ceiling_records_per_s": ceiling,
        "ceiling_seconds": ceiling_seconds,
        "relay_records_per_s": relay,
        "relay_seconds": relay_seconds,
        "relay_state_bytes": len(state_bytes),
        "relay_share_of_ceiling": relay / ceiling,
        "predictor_readings_per_s": rate,
        "predictor_seconds": seconds,
        "predictor_machine_states": states,
        "predictor_share_of_ceiling": rate / ceiling,
        "latency": latency,
        "scale_out": scale_out,
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
