"""The Kafka-facing scheduler service: plan state, deadlines from predictions, publishing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.events import (
    JobCancelled,
    JobReleased,
    MachineOption,
    MachineState,
    OperationCompleted,
    OperationSpec,
    RemainingUsefulLife,
    Schedule,
)
from ingest.stream import DeadLetterSink, DecodedRecord
from ingest.topics import SCHEDULE
from scheduler import ObjectiveWeights, SolverSettings, check_schedule
from scheduler.service import MaintenancePolicy, PlanState, SchedulerService, build_plan

NOW = datetime(2026, 5, 4, 8, 0, tzinfo=UTC)


def job(job_id: str, *operations: dict[str, int], due_hours: int | None = None) -> JobReleased:
    return JobReleased(
        job_id=job_id,
        ts=NOW,
        operations=[
            OperationSpec(
                options=[MachineOption(machine_id=m, duration_minutes=d) for m, d in op.items()]
            )
            for op in operations
        ],
        release=NOW,
        due=None if due_hours is None else NOW + timedelta(hours=due_hours),
    )


def machine_state(machine: str, p10: float, ts: datetime = NOW) -> MachineState:
    return MachineState(
        machine_id=machine,
        ts=ts,
        seq=100,
        model_version="v0001",
        state="critical" if p10 < 30 else "healthy",
        state_probabilities={"healthy": 0.1, "degrading": 0.2, "critical": 0.7},
        rul=RemainingUsefulLife(p10=p10, p50=p10 + 10, p90=p10 + 20),
        top_channels=["s11"],
    )


def records(*events: object) -> list[DecodedRecord]:
    return [DecodedRecord("t", 0, index, None, b"", event) for index, event in enumerate(events)]


def test_deadline_is_rul_p10_converted_by_cycles_per_hour() -> None:
    state = PlanState()
    state.jobs["J1"] = job("J1", {"M1": 60}, {"M2": 120})
    state.machine_states["M1"] = machine_state("M1", p10=10.0, ts=NOW - timedelta(hours=1))
    state.advance_clock(NOW)

    plan, origin = build_plan(
        state, MaintenancePolicy(cycles_per_hour=2.0, maintenance_minutes=90), unit_minutes=60
    )

    assert origin == NOW
    maintenance = {entry.machine: entry for entry in plan.maintenance}
    assert set(maintenance) == {"M1"}
    assert maintenance["M1"].deadline == 4  # 10 cycles at 2 per hour = 5 h, predicted 1 h ago
    assert maintenance["M1"].duration == 2  # 90 minutes rounded up to whole hours
    assert [op.options[0].duration for op in plan.jobs[0].operations] == [1, 2]


def test_completed_operations_leave_the_plan() -> None:
    state = PlanState()
    state.jobs["J1"] = job("J1", {"M1": 60}, {"M2": 120})
    state.completed.add(("J1", 0))
    state.advance_clock(NOW)

    plan, _ = build_plan(state, MaintenancePolicy(), unit_minutes=60)

    assert len(plan.jobs[0].operations) == 1
    assert plan.jobs[0].operations[0].machines == ("M2",)


@pytest.mark.broker
def test_service_publishes_feasible_schedule_with_maintenance_first(kafka: KafkaConfig) -> None:
    ensure_topics(kafka)
    producer = EventProducer(kafka)
    service = SchedulerService(
        producer,
        plant_id="plant-test",
        policy=MaintenancePolicy(cycles_per_hour=1.0, maintenance_minutes=120, crew_size=1),
        solver_settings=SolverSettings(
            time_limit_s=5, workers=2, weights=ObjectiveWeights(1, 1, 0)
        ),
        unit_minutes=60,
        debounce_s=0,
    )
    dead_letters = DeadLetterSink(producer)
    service.handle(
        records(
            job("J1", {"M1": 180}, {"M2": 120}),
            job("J2", {"M2": 60, "M1": 60}, {"M1": 240}),
            job("J3", {"M1": 60}),
            machine_state("M1", p10=2.0),
            JobCancelled(job_id="J3", ts=NOW),
            OperationCompleted(job_id="J9", operation=0, machine_id="M1", ts=NOW),
        ),
        dead_letters,
    )

    published = service.solve_and_publish()
    producer.close()

    assert published is not None
    assert dead_letters.counts["t"] == 1  # the completion of an unknown job
    on_topic = [Schedule.model_validate_json(r.value) for r in read_topic(kafka, SCHEDULE)]
    assert [s.schedule_id for s in on_topic] == [published.schedule_id]
    assert {op.job_id for op in published.operations} == {"J1", "J2"}
    windows = [w for w in published.maintenance_windows if w.machine_id == "M1"]
    assert len(windows) == 1
    deadline = NOW + timedelta(hours=2)
    for op in published.operations:
        if op.machine_id == "M1" and op.end > deadline:
            assert op.start >= windows[0].end
    plan, _ = build_plan(service.state, service.policy, unit_minutes=60)
    assert published.solver_status in {"optimal", "feasible"}
    assert published.kpis.maintenance_count == 1
    assert check_schedule(plan, _solved_back(published, plan)) == []


def _solved_back(event: Schedule, plan: object) -> object:
    """Rebuild the solver-side schedule from the published event, on the hour grid."""
    from scheduler import MaintenanceWindow, ScheduledOperation
    from scheduler import Schedule as Solved

    def units(at: datetime) -> int:
        return int((at - NOW).total_seconds() // 3600)

    return Solved.from_assignment(
        plan,
        [
            ScheduledOperation(o.job_id, o.operation, o.machine_id, units(o.start), units(o.end))
            for o in event.operations
        ],
        [
            MaintenanceWindow(w.machine_id, units(w.start), units(w.end), w.reason)
            for w in event.maintenance_windows
        ],
        status=event.solver_status,
        objective=event.objective,
        bound=event.bound,
        solve_seconds=event.solve_seconds,
    )
