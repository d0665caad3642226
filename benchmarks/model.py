"""Fusion model accuracy on C-MAPSS FD001 beside a gradient-boosting peer, and CPU throughput.

For each seed the fusion model trains with the `TrainConfig` defaults, or the
`--members`, `--d-model`, `--epochs` and `--window` given, and a time budget of
`--max-minutes` (10 by default). The seed splits the FD001 training engines into
training and validation engines. The peer, scikit-learn's
`HistGradientBoostingRegressor` on per-channel window statistics (last value, mean,
standard deviation and least-squares slope) and the window's mean context (operating
settings and age in cycles), trains on the same training windows and stops early on the
same validation engines, with the same window length, channels, normaliser and RUL cap. Both are scored on the last window of each of the 100
FD001 test engines with the true RUL capped at 125: RMSE and PHM08 score of the point
prediction (RUL p50 for the fusion model).

Inference throughput is measured on the CPU with the seed of the first run: batches of
256 raw test windows through `InferenceEngine.predict` with the channel attributions,
through `InferenceEngine.predict` without them (under `torch.inference_mode`), and
through the model's forward pass alone on normalised windows.
`--precision bfloat16` scores and times the model with bfloat16 weights and inputs, as
an `InferenceEngine` with that precision serves it.

    python -m benchmarks.model --seeds 0,1,2,3,4 --output /tmp/model-benchmark.json

scikit-learn comes with the `bench` extra: `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, get_args

import numpy as np
import sklearn
import torch
from sklearn.ensemble import HistGradientBoostingRegressor

from models import (
    CmapssData,
    InferenceEngine,
    Normaliser,
    Precision,
    TrainConfig,
    TrainedModel,
    WindowSet,
    evaluate_engines,
    load_cmapss,
    make_windows,
    phm08_score,
    precision_dtype,
    rmse,
    train_on_engines,
)

logger = logging.getLogger("benchmarks.model")

REPOSITORY = Path(__file__).resolve().parents[1]
THROUGHPUT_BATCH = 256


@dataclass(frozen=True)
class SeedResult:
    """Test figures of the fusion model and the peer trained with one seed's split."""

    seed: int
    fusion_rmse: float
    fusion_phm08: float
    fusion_train_seconds: float
    fusion_best_epoch: int
    fusion_validation_rmse: float
    peer_rmse: float
    peer_phm08: float
    peer_train_seconds: float
    peer_iterations: int


@dataclass(frozen=True)
class Throughput:
    """Windows per second and the 99th-percentile latency of one batch, on the CPU."""

    batch_size: int
    batches: int
    torch_threads: int
    precision: str
    with_attributions_windows_per_second: float
    with_attributions_p99_ms: float
    without_attributions_windows_per_second: float
    without_attributions_p99_ms: float
    forward_only_windows_per_second: float
    forward_only_p99_ms: float


def window_statistics(sensors: np.ndarray) -> np.ndarray:
    """Return per-channel last value, mean, standard deviation and slope, shape (N, 4C).

    ``sensors`` is (N, W, C). The slope is the least-squares slope per cycle.
    """
    steps = np.arange(sensors.shape[1], dtype=np.float64)
    centred_steps = steps - steps.mean()
    slope = np.einsum("w,nwc->nc", centred_steps, sensors) / np.sum(centred_steps**2)
    features = [sensors[:, -1], sensors.mean(axis=1), sensors.std(axis=1), slope]
    return np.concatenate(features, axis=1).astype(np.float32)


def peer_features(windows: WindowSet) -> np.ndarray:
    """Return the peer's inputs: the window statistics and the window's mean context.

    The context contains the operating settings and the age in cycles, the same context
    the fusion model reads.
    """
    return np.concatenate([window_statistics(windows.sensors), windows.context], axis=1)


def train_peer(
    data: CmapssData, trained: TrainedModel, seed: int
) -> tuple[HistGradientBoostingRegressor, float]:
    """Fit the gradient-boosting peer on the fusion run's split.

    Returns the fitted peer and its training time in seconds.
    """
    started = time.monotonic()
    train_config = TrainConfig.from_dict(trained.lineage.train_config)
    train_units = set(trained.lineage.train_units)
    validation_units = set(trained.lineage.validation_units)
    train_engines = [engine for engine in data.train if engine.unit in train_units]
    validation_engines = [engine for engine in data.train if engine.unit in validation_units]

    options = _window_options(trained)
    train_windows = make_windows(train_engines, min_history=train_config.min_history, **options)
    validation_windows = make_windows(validation_engines, **options)

    peer = HistGradientBoostingRegressor(
        learning_rate=0.05,
        max_iter=2000,
        max_leaf_nodes=15,
        min_samples_leaf=50,
        l2_regularization=1.0,
        early_stopping=True,
        n_iter_no_change=50,
        random_state=seed,
    )
    peer.fit(
        peer_features(train_windows),
        train_windows.rul,
        X_val=peer_features(validation_windows),
        y_val=validation_windows.rul,
    )
    logger.info(
        "peer seed %d: %d boosting iterations on %d windows, window %d",
        seed,
        peer.n_iter_,
        len(train_windows),
        train_config.window,
    )
    return peer, time.monotonic() - started


def score_peer(
    data: CmapssData, trained: TrainedModel, peer: HistGradientBoostingRegressor
) -> tuple[float, float]:
    """Return the peer's RMSE and PHM08 score on the last window of each test engine."""
    windows = make_windows(data.test, last_only=True, **_window_options(trained))
    predicted = np.clip(peer.predict(peer_features(windows)), 0.0, None)
    return rmse(predicted, windows.rul), phm08_score(predicted, windows.rul)


def _window_options(trained: TrainedModel) -> dict[str, Any]:
    train_config = TrainConfig.from_dict(trained.lineage.train_config)
    return {
        "channels": trained.config.channels,
        "context_fields": trained.config.context_fields,
        "normaliser": trained.normaliser,
        "window": trained.config.window,
        "rul_cap": train_config.rul_cap,
        "thresholds": train_config.health_thresholds,
    }


def run_seed(
    data: CmapssData, config: TrainConfig, precision: Precision = "float32"
) -> tuple[SeedResult, TrainedModel]:
    """Train and score the fusion model and the peer for ``config.seed``."""
    trained = train_on_engines(data.train, config, data.files, progress=False)
    engine = InferenceEngine(
        trained, version=f"benchmark-seed-{config.seed}", device="cpu", precision=precision
    )
    fusion = evaluate_engines(engine, data.test, rul_cap=config.rul_cap)

    peer, peer_seconds = train_peer(data, trained, config.seed)
    peer_rmse, peer_phm08 = score_peer(data, trained, peer)

    result = SeedResult(
        seed=config.seed,
        fusion_rmse=fusion["rmse"],
        fusion_phm08=fusion["phm08_score"],
        fusion_train_seconds=trained.metrics["train_seconds"],
        fusion_best_epoch=int(trained.metrics["best_epoch"]),
        fusion_validation_rmse=trained.metrics["validation_rmse"],
        peer_rmse=peer_rmse,
        peer_phm08=peer_phm08,
        peer_train_seconds=peer_seconds,
        peer_iterations=int(peer.n_iter_),
    )
    logger.info(
        "seed %d: fusion RMSE %.2f PHM08 %.0f in %.0f s; peer RMSE %.2f PHM08 %.0f in %.0f s",
        result.seed,
        result.fusion_rmse,
        result.fusion_phm08,
        result.fusion_train_seconds,
        result.peer_rmse,
        result.peer_phm08,
        result.peer_train_seconds,
    )
    return result, trained


def measure_throughput(
    data: CmapssData, trained: TrainedModel, batches: int, precision: Precision = "float32"
) -> Throughput:
    """Time ``batches`` batches of raw test windows on the CPU, after two warm-up batches."""
    engine = InferenceEngine(trained, version="benchmark", device="cpu", precision=precision)
    identity = Normaliser(
        names=(*engine.channels, *engine.context_fields),
        mean=(0.0,) * (len(engine.channels) + len(engine.context_fields)),
        std=(1.0,) * (len(engine.channels) + len(engine.context_fields)),
    )
    raw = make_windows(
        data.test,
        channels=engine.channels,
        context_fields=engine.context_fields,
        normaliser=identity,
        window=engine.window,
    )
    needed = (batches + 2) * THROUGHPUT_BATCH
    repeats = -(-needed // len(raw))
    sensors = np.tile(raw.sensors, (repeats, 1, 1))[:needed]  # (N, W, C) raw values
    context = np.tile(raw.context, (repeats, 1))[:needed]  # (N, K) raw values

    full_seconds = _time_batches(lambda rows: engine.predict(sensors[rows], context[rows]), batches)
    inference_seconds = _time_batches(
        lambda rows: engine.predict(sensors[rows], context[rows], attributions=False), batches
    )

    dtype = precision_dtype(precision)
    model = copy.deepcopy(trained.model).to(dtype).eval()
    sensor_mean, sensor_std = trained.normaliser.statistics(engine.channels)
    context_mean, context_std = trained.normaliser.statistics(engine.context_fields)

    def forward_only(rows: slice) -> None:
        normalised_sensors = torch.from_numpy((sensors[rows] - sensor_mean) / sensor_std).to(dtype)
        normalised_context = torch.from_numpy((context[rows] - context_mean) / context_std).to(
            dtype
        )
        with torch.inference_mode():
            output = model(normalised_sensors, normalised_context)
            torch.softmax(output.state_logits, dim=1)

    forward_seconds = _time_batches(forward_only, batches)
    return Throughput(
        batch_size=THROUGHPUT_BATCH,
        batches=batches,
        torch_threads=torch.get_num_threads(),
        precision=precision,
        with_attributions_windows_per_second=THROUGHPUT_BATCH / float(np.mean(full_seconds)),
        with_attributions_p99_ms=1000 * float(np.percentile(full_seconds, 99)),
        without_attributions_windows_per_second=THROUGHPUT_BATCH
        / float(np.mean(inference_seconds)),
        without_attributions_p99_ms=1000 * float(np.percentile(inference_seconds, 99)),
        forward_only_windows_per_second=THROUGHPUT_BATCH / float(np.mean(forward_seconds)),
        forward_only_p99_ms=1000 * float(np.percentile(forward_seconds, 99)),
    )


def _time_batches(predict: Any, batches: int) -> list[float]:
    seconds = []
    for index in range(batches + 2):
        rows = slice(index * THROUGHPUT_BATCH, (index + 1) * THROUGHPUT_BATCH)
        started = time.perf_counter()
        predict(rows)
        if index >= 2:
            seconds.append(time.perf_counter() - started)
    return seconds


def _mean_std(values: list[float], digits: int = 2) -> str:
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {spread:.{digits}f}"


def markdown_report(results: list[SeedResult], throughput: Throughput) -> str:
    """Format the per-seed table, the mean ± sample standard deviation, and throughput."""
    lines = [
        "| seed | fusion RMSE | fusion PHM08 | fusion training s | best epoch "
        "| peer RMSE | peer PHM08 | peer training s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        lines.append(
            f"| {result.seed} | {result.fusion_rmse:.2f} | {result.fusion_phm08:.0f} "
            f"| {result.fusion_train_seconds:.0f} | {result.fusion_best_epoch} "
            f"| {result.peer_rmse:.2f} | {result.peer_phm08:.0f} "
            f"| {result.peer_train_seconds:.0f} |"
        )

    def column(name: str) -> list[float]:
        return [float(getattr(result, name)) for result in results]

    lines.append(
        f"| mean ± std | {_mean_std(column('fusion_rmse'))} "
        f"| {_mean_std(column('fusion_phm08'), 0)} "
        f"| {_mean_std(column('fusion_train_seconds'), 0)} | "
        f"| {_mean_std(column('peer_rmse'))} | {_mean_std(column('peer_phm08'), 0)} "
        f"| {_mean_std(column('peer_train_seconds'), 0)} |"
    )
    lines += [
        "",
        f"CPU inference, batch {throughput.batch_size}, {throughput.batches} batches, "
        f"torch threads {throughput.torch_threads}, {throughput.precision}:",
        "",
        "| path | windows/s | p99 per batch |",
        "| --- | ---: | ---: |",
        f"| `InferenceEngine.predict`, with attributions "
        f"| {throughput.with_attributions_windows_per_second:,.0f} "
        f"| {throughput.with_attributions_p99_ms:.1f} ms |",
        f"| `InferenceEngine.predict`, without attributions (inference mode) "
        f"| {throughput.without_attributions_windows_per_second:,.0f} "
        f"| {throughput.without_attributions_p99_ms:.1f} ms |",
        f"| forward pass only, no attributions "
        f"| {throughput.forward_only_windows_per_second:,.0f} "
        f"| {throughput.forward_only_p99_ms:.1f} ms |",
    ]
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=REPOSITORY.parent / "shared" / "data",
        help="folder that contains cmapss/train_FD001.txt, or the cmapss folder itself",
    )
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated training seeds")
    parser.add_argument(
        "--device", default="cpu", choices=("auto", "cpu", "cuda"), help="training device"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="torch CPU threads for training and inference"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=10.0,
        help="training time budget per seed in minutes, replacing the TrainConfig default",
    )
    parser.add_argument(
        "--throughput-batches", type=int, default=50, help="timed batches of 256 windows"
    )
    defaults = TrainConfig()
    parser.add_argument(
        "--members", type=int, default=defaults.members, help="number of packed ensemble members"
    )
    parser.add_argument(
        "--d-model", type=int, default=defaults.d_model, help="hidden width of each member"
    )
    parser.add_argument(
        "--epochs", type=int, default=defaults.epochs, help="maximum training epochs"
    )
    parser.add_argument(
        "--window",
        type=int,
        default=defaults.window,
        help="cycles per model window (default: TrainConfig's)",
    )
    parser.add_argument(
        "--window-statistics",
        action=argparse.BooleanOptionalAction,
        default=defaults.window_statistics,
        help="give the model the window-statistics branch (default: TrainConfig's)",
    )
    parser.add_argument(
        "--precision",
        default="float32",
        choices=get_args(Precision),
        help="number format of the served model for the test scores and the timing",
    )
    parser.add_argument("--output", type=Path, help="write all figures to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    try:
        seeds = [int(seed) for seed in arguments.seeds.split(",") if seed.strip()]
    except ValueError:
        sys.exit(f"--seeds must be comma-separated integers, got {arguments.seeds!r}")
    if not seeds:
        sys.exit("--seeds is empty; give at least one seed, e.g. --seeds 0")
    torch.set_num_threads(arguments.threads)

    try:
        base_config = TrainConfig(
            device=arguments.device,
            max_minutes=arguments.max_minutes,
            members=arguments.members,
            d_model=arguments.d_model,
            epochs=arguments.epochs,
            window=arguments.window,
            window_statistics=arguments.window_statistics,
        )
    except ValueError as error:
        sys.exit(str(error))
    data = load_cmapss(arguments.data_dir)
    results = []
    first_model: TrainedModel | None = None
    for seed in seeds:
        config = replace(base_config, seed=seed)
        result, trained = run_seed(data, config, arguments.precision)
        results.append(result)
        first_model = first_model or trained
    assert first_model is not None
    throughput = measure_throughput(
        data, first_model, arguments.throughput_batches, arguments.precision
    )

    print(markdown_report(results, throughput))
    if arguments.output:
        report = {
            "command": " ".join(["python", "-m", "benchmarks.model", *(argv or sys.argv[1:])]),
            "train_config": base_config.to_dict(),
            "seeds": [asdict(result) for result in results],
            "throughput": asdict(throughput),
            "environment": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "scikit-learn": sklearn.__version__,
                "cpu_count": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
            },
        }
        arguments.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        logger.info("wrote %s", arguments.output)


if __name__ == "__main__":
    main()
