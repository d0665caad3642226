"""`plantpulse explain` on stored machine states: the chain it prints and its errors."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.events import LikelyCause, MachineState, RecommendedAction, RemainingUsefulLife
from ingest.history.parquet import ParquetHistory
from ingest.predictor import PREDICTOR_GROUP, Predictor
from ingest.replay import cmapss_readings, publish_readings, read_cmapss_rows
from ingest.stream import StreamProcessor
from ingest.topics import MACHINE_STATE, SENSORS
from models import InferenceEngine, diagnose
from models.plant import example_plant
from plantpulse.cli import app
from plantpulse.services import run_until_stopped

START = datetime(2026, 2, 1, tzinfo=UTC)


def explain(*arguments: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["explain", *arguments])
    return result.exit_code, result.stdout, result.stderr


def stored_state(**changes: object) -> MachineState:
    fields: dict[str, object] = {
        "machine_id": "engine-007",
        "ts": datetime(2026, 3, 2, 14, 30, tzinfo=UTC),
        "seq": 120,
        "model_version": "v0042",
        "state": "critical",
        "state_probabilities": {"healthy": 0.05, "degrading": 0.15, "critical": 0.8},
        "rul": RemainingUsefulLife(p10=8.0, p50=15.5, p90=30.0),
        "top_channels": ["s11", "s3", "s4"],
        "channel_scores": {"s11": 0.5, "s3": 0.3, "s4": 0.2},
        "likely_causes": [
            LikelyCause(
                component="hpc", failure_mode="hpc-degradation", score=0.8, evidence=["s11", "s3"]
            ),
            LikelyCause(
                component="lpt", failure_mode="lpt-degradation", score=0.2, evidence=["s4"]
            ),
        ],
        "recommended_action": RecommendedAction(
            name="hpc-overhaul", duration_minutes=480, skill="engine-mechanic", crew_size=2
        ),
    }
    fields.update(changes)
    return MachineState.model_validate(fields)


def write_history(root: Path, *states: MachineState) -> Path:
    with ParquetHistory(root) as store:
        store.write_events(states)
    return root


def test_explain_prints_chain_with_evidence(tmp_path: Path) -> None:
    history = write_history(tmp_path / "history", stored_state())

    code, output, errors = explain("engine-007", "--history", str(history))

    assert code == 0, errors
    lines = output.splitlines()
    assert lines[0] == "engine-007 at 2026-03-02 14:30 UTC (reading 120), model v0042"
    assert lines[1] == "state critical: P(healthy) 5.0%, P(degrading) 15.0%, P(critical) 80.0%"
    assert lines[2] == "RUL p10 / p50 / p90: 8.0 / 15.5 / 30.0 cycles"
    assert "plant plant-1 (C-MAPSS FD001 turbofan fleet)" in lines[3]
    assert "   s11         50.0%  hpc          Ps30, static pressure at HPC outlet" in lines
    assert "   1. hpc           80.0%  high-pressure compressor" in lines
    assert "      from s11 50.0%, s3 30.0%" in lines
    assert "   2. lpt           20.0%  low-pressure turbine" in lines
    # hpc-degradation: 0.5 + 0.3 = 0.8; lpt-degradation: 0.2, so 80% and 20%.
    assert "   1. hpc-degradation (hpc)  80.0%  (raw 0.800)" in lines
    assert "      from s11 50.0% x 1, s3 30.0% x 1" in lines
    assert "   2. lpt-degradation (lpt)  20.0%  (raw 0.200)" in lines
    assert "4. Recommended action: hpc-overhaul, the first action for hpc-degradation" in lines
    assert "   replace worn HPC blades and seals" in lines
    assert (
        "   480 min (8.0 h), 2 x engine-mechanic, cost 100, "
        "spare parts: hpc blade set, hpc seal kit"
    ) in lines
    assert "   other actions for hpc-degradation: compressor-water-wash" in lines
    assert "Note:" not in output


def test_explain_reads_latest_state(tmp_path: Path) -> None:
    older = stored_state(seq=100, ts=datetime(2026, 3, 2, 4, 30, tzinfo=UTC))
    newer = stored_state(
        seq=101,
        ts=datetime(2026, 3, 2, 5, 0, tzinfo=UTC),
        channel_scores={"s2": 1.0},
        likely_causes=[
            LikelyCause(component="lpc", failure_mode="lpc-degradation", score=1.0, evidence=["s2"])
        ],
    )
    history = write_history(tmp_path / "history", newer, older)

    code, output, _ = explain("engine-007", "--history", str(history))

    assert code == 0
    assert "(reading 101)" in output
    assert "4. Recommended action: compressor-water-wash, the first action for lpc-degradation" in (
        output
    )


def test_explain_reports_tie(tmp_path: Path) -> None:
    state = stored_state(channel_scores={"s2": 0.5, "s12": 0.5}, likely_causes=[])
    history = write_history(tmp_path / "history", state)

    code, output, _ = explain("engine-007", "--history", str(history))

    assert code == 0
    assert "   1. lpc-degradation (lpc)  50.0%  (raw 0.500)" in output
    assert "tied with fuel-flow-deviation" in output


def test_explain_notes_changed_plant_description(tmp_path: Path) -> None:
    state = stored_state(
        likely_causes=[
            LikelyCause(component="fan", failure_mode="fan-degradation", score=1.0, evidence=[])
        ]
    )
    history = write_history(tmp_path / "history", state)

    code, output, _ = explain("engine-007", "--history", str(history))

    assert code == 0
    assert "Note: the predictor stored the likely causes fan-degradation" in output
    assert "this plant description ranks hpc-degradation" in output


def test_explain_with_other_plant_finds_no_cause(tmp_path: Path) -> None:
    history = write_history(tmp_path / "history", stored_state())
    ai4i = Path(__file__).resolve().parents[2] / "models" / "plants" / "ai4i2020.toml"

    code, output, _ = explain("engine-007", "--history", str(history), "--plant", str(ai4i))

    assert code == 0
    assert f"described in {ai4i}" in output
    assert "observes a component of plant description ai4i-mill" in output
    assert "Recommended action" not in output


def test_explain_state_without_shares(tmp_path: Path) -> None:
    state = stored_state(channel_scores={}, likely_causes=[], recommended_action=None)
    history = write_history(tmp_path / "history", state)

    code, output, _ = explain("engine-007", "--history", str(history))

    assert code == 0
    assert "carries no channel shares" in output
    assert "Top channels: s11, s3, s4." in output


def test_explain_unknown_machine(tmp_path: Path) -> None:
    history = write_history(tmp_path / "history", stored_state())

    code, output, errors = explain("press-9", "--history", str(history))

    assert code == 1
    assert output == ""
    assert "unknown machine 'press-9'" in errors
    assert "engine-001, engine-002, engine-003 ... engine-100" in errors
    assert "Traceback" not in errors


def test_explain_known_machine_without_state(tmp_path: Path) -> None:
    history = write_history(tmp_path / "history", stored_state())

    code, _, errors = explain("engine-050", "--history", str(history))

    assert code == 1
    assert "no machine state of engine-050" in errors
    assert str(history) in errors


def test_explain_missing_history(tmp_path: Path) -> None:
    code, _, errors = explain("engine-007", "--history", str(tmp_path / "nowhere"))

    assert code == 1
    assert f"no history at {tmp_path / 'nowhere'}" in errors
    assert "--history" in errors
    assert not (tmp_path / "nowhere").exists()


def test_explain_invalid_plant_file(tmp_path: Path) -> None:
    history = write_history(tmp_path / "history", stored_state())
    plant = tmp_path / "plant.toml"
    plant.write_text('plant_id = "p"\n')

    code, _, errors = explain("engine-007", "--history", str(history), "--plant", str(plant))

    assert code == 2
    assert str(plant) in errors
    assert "machines" in errors


@pytest.mark.broker
@pytest.mark.slow
def test_explain_after_predictor_run(
    kafka: KafkaConfig, data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    ensure_topics(kafka)
    rows = read_cmapss_rows(data_dir / "cmapss" / "test_FD001.txt")
    producer = EventProducer(kafka)
    publish_readings(producer, cmapss_readings(rows, START, [3, 4]))
    producer.close()
    plant = example_plant("cmapss")
    history = tmp_path / "history"

    engine = InferenceEngine.from_registry(trained_registry, device="cpu")
    output = EventProducer(kafka)
    predictor = Predictor(engine, output, history=ParquetHistory(history), plant=plant)
    processor = StreamProcessor(kafka, PREDICTOR_GROUP, [SENSORS], predictor, output)
    run_until_stopped(processor, threading.Event(), idle_stop_s=1.0)
    states = [
        MachineState.model_validate_json(record.value)
        for record in read_topic(kafka, MACHINE_STATE)
    ]
    latest = max((s for s in states if s.machine_id == "engine-004"), key=lambda s: s.seq)

    code, text, errors = explain("engine-004", "--history", str(history))

    assert code == 0, errors
    assert text.startswith(
        f"engine-004 at {latest.ts:%Y-%m-%d %H:%M} UTC (reading {latest.seq}), "
        f"model {engine.version}\n"
    )
    expected = diagnose(latest.channel_scores, plant)
    top_mode = expected.failure_modes[0]
    assert latest.likely_causes[0].failure_mode == top_mode.failure_mode
    assert f"   1. {top_mode.failure_mode} ({top_mode.component})  {top_mode.score:.1%}" in text
    for rank, component in enumerate(expected.components, start=1):
        assert f"   {rank}. {component.component:<12} {component.score:6.1%}" in text
    assert latest.recommended_action is not None
    action = latest.recommended_action.name
    assert f"4. Recommended action: {action}, the first action for {top_mode.failure_mode}" in text
    top_channel, top_share = next(iter(expected.channel_shares.items()))
    assert f"   {top_channel:<10} {top_share:6.1%}" in text
    assert "Note:" not in text
