"""The `retrain` flow: train a challenger, compare it with the champion, promote if better.

The flow reads run-to-failure runs from the history (or a C-MAPSS dataset folder), holds
out whole machines and trains a challenger on the rest. It scores challenger and
champion on the same held-out machines and registers the challenger with its drift
reference. The challenger is promoted only when its RMSE beats the champion's by
`min_improvement`, and a promotion is announced on the `plantpulse.models` topic.
Running predictors switch to it on their next registry check.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import BaseModel, Field

from flows.drift import build_reference, save_reference
from flows.promotion import PromotionDecision, decide_promotion
from flows.reports import markdown_table, metrics_rows
from flows.settings import FlowSettings
from flows.training_data import (
    HoldoutSplit,
    MachineRuns,
    evaluation_cuts,
    runs_from_engines,
    runs_from_history,
    split_holdout,
    with_shuffled_labels,
)
from ingest.clients import EventProducer, ensure_topics
from ingest.config import KafkaConfig
from ingest.events import ModelPromoted
from ingest.history import FAILURE, MAINTENANCE, HistoryStore, open_history
from ingest.replay import cmapss_machine_id
from ingest.topics import MODELS
from models import (
    AGE_FIELD,
    SETTING_FIELDS,
    EngineRun,
    InferenceEngine,
    LoadedModel,
    ModelParts,
    Registry,
    TrainConfig,
    TrainedModel,
    evaluate_engines,
    load_cmapss,
    train_on_engines,
)

IO_RETRIES = 3
IO_RETRY_DELAYS_S: list[float] = [2.0, 10.0, 30.0]


class RetrainOptions(BaseModel):
    """Training data, training settings and promotion margin of a retrain run."""

    source: Literal["history", "dataset"] = Field(
        default="history", description="history: runs ended by reported failures; dataset: FD001"
    )
    start: datetime | None = Field(
        default=None, description="history from (default: stop - lookback)"
    )
    stop: datetime | None = Field(default=None, description="history until (default: now)")
    lookback_days: float = Field(default=90.0, gt=0, description="history window, days")
    dataset_dir: Path | None = Field(
        default=None, description="C-MAPSS folder for source=dataset (default: settings.data_dir)"
    )
    max_machines: int | None = Field(
        default=None, ge=2, description="use only the first N machines, for quick runs"
    )
    holdout_fraction: float = Field(default=0.2, gt=0, lt=1, description="machines held out")
    evaluation_cuts: int = Field(
        default=5, ge=1, description="points per held-out run at which RUL is scored"
    )
    min_improvement: float = Field(
        default=0.02, ge=0, lt=1, description="relative RMSE decrease needed for promotion"
    )
    shuffle_labels: bool = Field(
        default=False,
        description="control run: permute RUL labels within each run; the gate must refuse it",
    )
    announce: bool = Field(default=True, description="announce a promotion on plantpulse.models")
    train: TrainConfig = Field(default_factory=TrainConfig)


class RetrainResult(BaseModel):
    """Outcome of one retrain run and the reason for it."""

    promoted: bool
    reason: str
    announced: bool
    challenger_version: str
    champion_before: str | None
    champion_after: str | None
    challenger_metrics: dict[str, float]
    training_metrics: dict[str, float]  # validation loss and RMSE, epochs run, seconds
    champion_metrics: dict[str, float] | None
    source: str
    train_machines: list[str]
    holdout_machines: list[str]
    seconds: float


@flow(
    name="retrain", description="Train a challenger and promote it only if it beats the champion."
)
def retrain(settings: FlowSettings, options: RetrainOptions | None = None) -> RetrainResult:
    options = options or RetrainOptions()
    started = time.monotonic()

    runs = load_training_runs(settings, options)
    split = hold_out_machines(runs, options)
    challenger = train_challenger(split.train, options)
    champion = load_champion(settings.registry_dir)
    champion_version = None if champion is None else champion.version
    cuts = cut_holdout_runs(split.holdout, options, challenger, champion)
    challenger_metrics = evaluate_model(challenger, "challenger", cuts, options)
    champion_metrics = (
        evaluate_model(champion, champion.version, cuts, options) if champion else None
    )

    decision = decide_promotion(
        challenger_metrics["rmse"],
        None if champion_metrics is None else champion_metrics["rmse"],
        champion_version,
        options.min_improvement,
    )
    version = register_challenger(settings.registry_dir, challenger, split.train)
    if decision.promote:
        decision = promote_if_unchanged(settings.registry_dir, version, champion_version, decision)
    announced = False
    if decision.promote and options.announce and settings.kafka is not None:
        # A failed announcement does not undo the promotion: predictors poll the registry.
        announcement = announce_promotion(
            settings.kafka,
            settings.registry_dir,
            version,
            champion,
            challenger_metrics,
            decision,
            return_state=True,
        )
        announced = announcement.is_completed()

    result = RetrainResult(
        promoted=decision.promote,
        reason=decision.reason,
        announced=announced,
        challenger_version=version,
        champion_before=champion_version,
        champion_after=Registry(settings.registry_dir).champion(),
        challenger_metrics=challenger_metrics,
        training_metrics=dict(challenger.metrics),
        champion_metrics=champion_metrics,
        source=runs.source,
        train_machines=split.train.machines(),
        holdout_machines=split.holdout.machines(),
        seconds=time.monotonic() - started,
    )
    publish_retrain_report(result)
    return result


@task(retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS_S, cache_policy=NO_CACHE)
def load_training_runs(settings: FlowSettings, options: RetrainOptions) -> MachineRuns:
    """Read run-to-failure runs from the history store or the C-MAPSS dataset."""
    logger = get_run_logger()
    if options.source == "dataset":
        folder = options.dataset_dir or settings.data_dir
        if folder is None:
            raise ValueError(
                "source=dataset needs a C-MAPSS folder: pass dataset_dir or set data_dir"
            )
        data = load_cmapss(folder)
        engines = data.train
        runs = runs_from_engines(
            engines,
            [cmapss_machine_id(engine.unit) for engine in engines],
            data.files,
            source=f"dataset {data.subset} in {folder}",
        )
    else:
        stop = options.stop or datetime.now(UTC)
        start = options.start or stop - timedelta(days=options.lookback_days)
        with open_history(settings.history) as store:
            runs = _runs_in_history(store, start, stop)
        runs = MachineRuns(
            runs.runs,
            runs.machine_of,
            source=f"{settings.history.backend} history {start.isoformat()} to {stop.isoformat()}",
        )

    if options.max_machines is not None:
        runs = runs.only(runs.machines()[: options.max_machines])
    logger.info(
        "%d run-to-failure runs of %d machines from %s",
        len(runs.runs),
        len(runs.machines()),
        runs.source,
    )
    return runs


@task(cache_policy=NO_CACHE)
def hold_out_machines(runs: MachineRuns, options: RetrainOptions) -> HoldoutSplit:
    split = split_holdout(runs, options.holdout_fraction, options.train.seed)
    get_run_logger().info("held out machines %s", ", ".join(split.holdout.machines()))
    return split


@task(cache_policy=NO_CACHE)
def train_challenger(runs: MachineRuns, options: RetrainOptions) -> TrainedModel:
    engines: list[EngineRun] = runs.runs
    if options.shuffle_labels:
        get_run_logger().warning("training on shuffled labels: a control run, not a real model")
        engines = with_shuffled_labels(engines, options.train.seed)
    config = options.train
    if not runs.ages_reported and AGE_FIELD in config.context_fields:
        get_run_logger().warning(
            "some readings carry no %s, so the challenger reads only %s as context",
            AGE_FIELD,
            list(SETTING_FIELDS),
        )
        config = replace(config, context_fields=SETTING_FIELDS)
    return train_on_engines(engines, config, runs.data_files, progress=False)


@task(retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS_S, cache_policy=NO_CACHE)
def load_champion(registry_dir: Path) -> LoadedModel | None:
    registry = Registry(registry_dir)
    return None if registry.champion() is None else registry.load_champion()


@task(cache_policy=NO_CACHE)
def cut_holdout_runs(
    holdout: MachineRuns,
    options: RetrainOptions,
    challenger: TrainedModel,
    champion: LoadedModel | None,
) -> list[EngineRun]:
    """Cut the held-out runs once, so both models are scored on the same windows."""
    window = max(challenger.config.window, champion.config.window if champion else 0)
    return evaluation_cuts(holdout.runs, options.evaluation_cuts, window)


@task(cache_policy=NO_CACHE)
def evaluate_model(
    model: ModelParts, version: str, cuts: list[EngineRun], options: RetrainOptions
) -> dict[str, float]:
    engine = InferenceEngine(model, version=version, device=options.train.device)
    metrics = evaluate_engines(
        engine, cuts, rul_cap=options.train.rul_cap, thresholds=options.train.health_thresholds
    )
    get_run_logger().info(
        "%s: RMSE %.2f cycles over %d held-out windows", version, metrics["rmse"], len(cuts)
    )
    return metrics


@task(retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS_S, cache_policy=NO_CACHE)
def register_challenger(registry_dir: Path, challenger: TrainedModel, runs: MachineRuns) -> str:
    """Register the challenger and save the drift reference of its training data."""
    version = Registry(registry_dir).register(challenger)
    profile = build_reference(
        version,
        runs.runs,
        challenger.config.channels,
        validation_rmse=challenger.metrics.get("validation_rmse"),
    )
    save_reference(registry_dir, profile)
    get_run_logger().info("registered challenger %s in %s", version, registry_dir)
    return version


@task(retries=IO_RETRIES, retry_delay_seconds=IO_RETRY_DELAYS_S, cache_policy=NO_CACHE)
def promote_if_unchanged(
    registry_dir: Path, version: str, compared_with: str | None, decision: PromotionDecision
) -> PromotionDecision:
    """Promote `version` unless another run changed the champion since it was scored."""
    registry = Registry(registry_dir)
    current = registry.champion()
    if current != compared_with:
        return PromotionDecision(
            False,
            f"champion changed from {compared_with} to {current} during this run, so the "
            f"comparison is stale; {version} stays registered but not promoted",
        )
    registry.promote(version)
    get_run_logger().info("promoted %s: %s", version, decision.reason)
    return decision


@task(retries=2, retry_delay_seconds=[1.0, 5.0], cache_policy=NO_CACHE)
def announce_promotion(
    kafka: KafkaConfig,
    registry_dir: Path,
    version: str,
    previous: LoadedModel | None,
    metrics: dict[str, float],
    decision: PromotionDecision,
) -> None:
    event = ModelPromoted(
        version=version,
        previous_version=None if previous is None else previous.version,
        ts=datetime.now(UTC),
        registry=str(registry_dir),
        metrics={name: value for name, value in metrics.items() if math.isfinite(value)},
        reason=decision.reason,
    )
    ensure_topics(kafka, [MODELS])
    producer = EventProducer(kafka)
    try:
        producer.send(MODELS, "champion", event)
    finally:
        producer.close()
    get_run_logger().info("announced %s on %s", version, MODELS)


@task(cache_policy=NO_CACHE)
def publish_retrain_report(result: RetrainResult) -> None:
    rows = metrics_rows(result.challenger_metrics, result.champion_metrics)
    verdict = "promoted" if result.promoted else "not promoted"
    champion = result.champion_before or "none"
    markdown = "\n\n".join(
        [
            f"# Retrain: {result.challenger_version} {verdict}",
            f"**Decision:** {verdict}. **Reason:** {result.reason}",
            f"Champion before: {champion}; after: {result.champion_after or 'none'}. "
            f"Announced on {MODELS}: {'yes' if result.announced else 'no'}.",
            f"Source: {result.source}. Trained on {len(result.train_machines)} machines, "
            f"scored on {len(result.holdout_machines)} held-out machines: "
            f"{', '.join(result.holdout_machines)}.",
            markdown_table(
                [
                    {
                        "metric": row["metric"],
                        f"challenger {result.challenger_version}": row["challenger"],
                        f"champion {champion}": row["champion"],
                    }
                    for row in rows
                ]
            ),
            f"Training: {result.training_metrics.get('epochs_run', 0):.0f} epochs in "
            f"{result.training_metrics.get('train_seconds', 0):.0f} s, validation RMSE "
            f"{result.training_metrics.get('validation_rmse', float('nan')):.2f} cycles. "
            f"Run time: {result.seconds:.1f} s.",
        ]
    )
    create_markdown_artifact(markdown, key="retrain-report", description=f"retrain {verdict}")
    create_table_artifact(rows, key="retrain-metrics", description=result.reason)


def _runs_in_history(store: HistoryStore, start: datetime, stop: datetime) -> MachineRuns:
    readings = store.readings(start, stop)
    failures: dict[str, list[datetime]] = {}
    for point in store.read(FAILURE, start, stop):
        failures.setdefault(point.tags["machine_id"], []).append(point.time)
    maintenance: dict[str, list[datetime]] = {}
    for point in store.read(MAINTENANCE, start, stop):
        maintenance.setdefault(point.tags["machine_id"], []).append(point.time)
    return runs_from_history(readings, failures, maintenance)
