"""Builders and run loops for the long-running PlantPulse services."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from ingest.clients import EventProducer, ensure_topics
from ingest.config import KafkaConfig
from ingest.history import HistoryStore, open_history
from ingest.predictor import PREDICTOR_GROUP, Predictor
from ingest.privacy import Pseudonymiser
from ingest.stream import StreamProcessor, freeze_startup_objects
from ingest.topics import SENSORS
from models import InferenceEngine
from models.plant import PlantDescription
from plantpulse.broker import EmbeddedBroker
from plantpulse.settings import Settings, load_plant_description, load_pseudonym_key
from scheduler.plan import Crew
from scheduler.service import (
    SCHEDULER_GROUP,
    SCHEDULER_TOPICS,
    MaintenancePolicy,
    SchedulerService,
    solver_settings_from,
)

logger = logging.getLogger(__name__)


@contextmanager
def kafka_for(settings: Settings) -> Iterator[KafkaConfig]:
    """Yield the Kafka settings to use, starting an embedded broker when configured."""
    if not settings.embedded_broker:
        yield settings.kafka
        return
    with EmbeddedBroker() as broker:
        config = settings.kafka.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
        yield config


def build_pseudonymiser(settings: Settings, plant: PlantDescription) -> Pseudonymiser | None:
    """Return the pseudonymiser of the plant's personal fields, or None when it has none.

    Raises ingest.privacy.PseudonymKeyError when no usable key can be loaded or created.
    """
    if not plant.personal_fields:
        return None
    return Pseudonymiser(load_pseudonym_key(settings), plant.personal_fields)


def build_predictor(settings: Settings, kafka: KafkaConfig) -> StreamProcessor:
    """Create the predictor: consumer group `plantpulse-predictor` over the sensor topic.

    Raises models.plant.PlantDescriptionError or ingest.privacy.PseudonymKeyError when
    the plant description or the pseudonym key cannot be used.
    """
    if settings.predictor.torch_threads:
        torch.set_num_threads(settings.predictor.torch_threads)
    plant = load_plant_description(settings)
    pseudonymiser = build_pseudonymiser(settings, plant)
    engine = InferenceEngine.from_registry(
        settings.registry_dir,
        device=settings.predictor.device,
        precision=settings.predictor.precision,
    )
    producer = EventProducer(kafka)
    handler = Predictor(
        engine,
        producer,
        stride=settings.predictor.stride,
        max_batch=settings.predictor.max_batch,
        max_machines=settings.predictor.max_machines,
        history=open_history(settings.history),
        plant=plant,
    )
    logger.info(
        "predictor serves model %s (window %d, %s) for plant %s",
        engine.version,
        engine.window,
        engine.precision,
        plant.plant_id,
    )
    processor = StreamProcessor(
        kafka, PREDICTOR_GROUP, [SENSORS], handler, producer, pseudonymiser=pseudonymiser
    )
    freeze_startup_objects()
    return processor


def maintenance_policy(settings: Settings, plant: PlantDescription) -> MaintenancePolicy:
    """Return the scheduler's maintenance policy: its settings plus the plant's crews."""
    options = settings.scheduler
    crews = tuple(Crew(crew.skill, crew.size) for crew in plant.crews)
    listed = plant.crew_sizes().get(options.default_skill)
    if listed is not None and listed != options.crew_size:
        logger.info(
            "plant %s lists %d people with skill %r, so scheduler.crew_size %d is ignored",
            plant.plant_id,
            listed,
            options.default_skill,
            options.crew_size,
        )
    return MaintenancePolicy(
        cycles_per_hour=options.cycles_per_hour,
        maintenance_minutes=options.maintenance_minutes,
        maintenance_cost=options.maintenance_cost,
        crew_size=options.crew_size,
        risk_threshold_cycles=options.risk_threshold_cycles,
        crews=crews,
        default_skill=options.default_skill,
    )


def build_scheduler(settings: Settings, kafka: KafkaConfig) -> StreamProcessor:
    """Create the scheduler: consumer group `plantpulse-scheduler` over plan, states, maintenance.

    Raises models.plant.PlantDescriptionError or ingest.privacy.PseudonymKeyError when
    the plant description or the pseudonym key cannot be used.
    """
    options = settings.scheduler
    plant = load_plant_description(settings)
    policy = maintenance_policy(settings, plant)
    pseudonymiser = build_pseudonymiser(settings, plant)
    producer = EventProducer(kafka)
    service = SchedulerService(
        producer,
        plant_id=options.plant_id,
        policy=policy,
        solver_settings=solver_settings_from(
            options.time_limit_s,
            options.workers,
            options.makespan_weight,
            options.tardiness_weight,
            options.maintenance_cost_weight,
            options.changes_weight,
        ),
        unit_minutes=options.time_unit_minutes,
        debounce_s=options.debounce_s,
        freeze_minutes=options.freeze_minutes,
        max_wait_s=options.max_wait_s,
        history=open_history(settings.history),
    )
    return StreamProcessor(
        kafka, SCHEDULER_GROUP, SCHEDULER_TOPICS, service, producer, pseudonymiser=pseudonymiser
    )


def run_until_stopped(
    processor: StreamProcessor,
    stop: threading.Event,
    model_check_interval_s: float = 10.0,
    idle_stop_s: float | None = None,
) -> None:
    """Poll until `stop` is set (or idle for `idle_stop_s`); solve or reload models as due."""
    last_model_check = time.monotonic()
    idle_since: float | None = None
    handler = processor.handler
    try:
        while not stop.is_set():
            count = processor.poll_once()
            if isinstance(handler, SchedulerService) and handler.due():
                handler.solve_and_publish()
            if (
                isinstance(handler, Predictor)
                and time.monotonic() - last_model_check > model_check_interval_s
            ):
                last_model_check = time.monotonic()
                if handler.check_for_new_model():
                    processor.checkpoint.commit()
            if idle_stop_s is None:
                continue
            if count == 0 and processor.caught_up():
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= idle_stop_s:
                    break
            else:
                idle_since = None
        if isinstance(handler, SchedulerService) and handler.pending():
            handler.solve_and_publish()
    finally:
        processor.close()
        processor.producer.close()
        history = getattr(handler, "history", None)
        if isinstance(history, HistoryStore):
            history.close()


@contextmanager
def stop_on_signals() -> Iterator[threading.Event]:
    """Yield an event that SIGINT or SIGTERM sets, for a clean shutdown."""
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logger.info(
            "signal %s received; flushing, committing and stopping", signal.Signals(signum).name
        )
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def prepare_topics(kafka: KafkaConfig) -> None:
    ensure_topics(kafka)
