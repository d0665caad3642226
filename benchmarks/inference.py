"""CPU inference throughput of the fusion model at batch 256, with and without attributions.

The speed of a forward pass does not depend on the trained weights, so the model here is
an untrained one with `TrainConfig`'s default width, layers, ensemble members and
window-statistics branch over the 15 sensor channels and the 4 context fields (operating
settings and cycles since maintenance) of an FD001 model.
Each timed step runs `InferenceEngine.predict` (outputs, one backward pass for the
channel attributions, the Prediction objects), then `InferenceEngine.predict` without
attributions (under `torch.inference_mode`), then a bare forward pass on the same batch,
so all three paths see the same load on the machine.

    python benchmarks/inference.py --threads 1 2 --windows 50 100

`--sizes 3x16 1x32` times other sizes in the same run, each written as ensemble members
times `d_model`; the default is `TrainConfig`'s. `--precisions float32 bfloat16` times
both number formats of `InferenceEngine`; the bare forward pass of a bfloat16 row runs
on bfloat16 weights and inputs too. `--statistics-branch with without` times the model
with and without the window-statistics branch.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from dataclasses import dataclass
from typing import get_args

import numpy as np
import torch

from models import (
    CONTEXT_FIELDS,
    FusionConfig,
    FusionModel,
    InferenceEngine,
    Normaliser,
    Precision,
    TrainConfig,
    precision_dtype,
)

CHANNELS = tuple(f"s{i}" for i in (2, 3, 4, 6, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21))
CONTEXT = CONTEXT_FIELDS
BATCH = 256
WARM_UP = 2


@dataclass(frozen=True)
class _Parts:
    model: FusionModel
    config: FusionConfig
    normaliser: Normaliser


def measure(
    window: int,
    threads: int,
    batches: int,
    size: tuple[int, int],
    precision: Precision,
    window_statistics: bool,
) -> list[str]:
    """Time `batches` steps of the three paths; return one markdown row per path."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    members, d_model = size
    config = FusionConfig(
        channels=CHANNELS,
        context_fields=CONTEXT,
        window=window,
        d_model=d_model,
        n_layers=TrainConfig().n_layers,
        members=members,
        window_statistics=window_statistics,
    )
    names = CHANNELS + CONTEXT
    identity = Normaliser(names=names, mean=(0.0,) * len(names), std=(1.0,) * len(names))
    engine = InferenceEngine(
        _Parts(FusionModel(config), config, identity), "bench", "cpu", precision=precision
    )
    dtype = precision_dtype(precision)
    model = FusionModel(config).to(dtype).eval()

    rng = np.random.default_rng(0)
    sensors = rng.normal(size=(BATCH, window, len(CHANNELS))).astype(np.float32)
    context = rng.normal(size=(BATCH, len(CONTEXT))).astype(np.float32)
    with_attributions: list[float] = []
    without_attributions: list[float] = []
    forward_only: list[float] = []
    for step in range(WARM_UP + batches):
        started = time.perf_counter()
        engine.predict(sensors, context)
        explained = time.perf_counter()
        engine.predict(sensors, context, attributions=False)
        predicted = time.perf_counter()
        with torch.inference_mode():
            model(torch.from_numpy(sensors).to(dtype), torch.from_numpy(context).to(dtype))
        finished = time.perf_counter()
        if step >= WARM_UP:
            with_attributions.append(explained - started)
            without_attributions.append(predicted - explained)
            forward_only.append(finished - predicted)

    rows = []
    branch = "with" if window_statistics else "without"
    for path, seconds in (
        ("predict, with attributions", with_attributions),
        ("predict, inference mode", without_attributions),
        ("forward only", forward_only),
    ):
        rows.append(
            f"| {members}x{d_model} | {branch} | {window} | {threads} | {precision} | {path} "
            f"| {BATCH / statistics.median(seconds):,.0f} | "
            f"{BATCH / statistics.mean(seconds):,.0f} | {1000 * np.percentile(seconds, 99):.1f} |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=_HelpFormatter)
    parser.add_argument(
        "--threads", type=int, nargs="+", default=[1, 2], help="torch CPU thread counts to time"
    )
    defaults = TrainConfig()
    parser.add_argument(
        "--windows",
        type=int,
        nargs="+",
        default=[50, defaults.window],
        help="model windows in cycles to time",
    )
    parser.add_argument("--batches", type=int, default=40, help="timed batches per setting")
    parser.add_argument(
        "--precisions",
        nargs="+",
        choices=get_args(Precision),
        default=["float32"],
        help="number formats of InferenceEngine to time",
    )
    parser.add_argument(
        "--sizes",
        type=_size,
        nargs="+",
        default=[(defaults.members, defaults.d_model)],
        help="model sizes as MEMBERSxD_MODEL, e.g. 3x16; the default is TrainConfig's",
    )
    parser.add_argument(
        "--statistics-branch",
        nargs="+",
        choices=["with", "without"],
        default=["with" if defaults.window_statistics else "without"],
        help="time the model with or without the window-statistics branch",
    )
    args = parser.parse_args()

    print(
        "| members x d_model | statistics branch | window | torch threads | precision | path "
        "| windows/s (median batch) | windows/s (mean) | p99 per batch ms |"
    )
    print("| --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: |")
    settings = itertools.product(
        args.sizes, args.statistics_branch, args.windows, args.threads, args.precisions
    )
    for size, branch, window, threads, precision in settings:
        for row in measure(window, threads, args.batches, size, precision, branch == "with"):
            print(row, flush=True)
    return 0


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Help text that keeps the description's line breaks and shows each option's default."""


def _size(text: str) -> tuple[int, int]:
    """Parse a model size written as MEMBERSxD_MODEL, e.g. 3x16."""
    members, separator, d_model = text.partition("x")
    digits = bool(separator) and members.isdigit() and d_model.isdigit()
    if digits and int(members) >= 1 and int(d_model) >= 1:
        return int(members), int(d_model)
    raise argparse.ArgumentTypeError(
        f"invalid size {text!r}: expected MEMBERSxD_MODEL with both at least 1, e.g. 3x16"
    )


if __name__ == "__main__":
    sys.exit(main())
