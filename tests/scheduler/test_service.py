"""The Kafka-facing scheduler service: plan state, deadlines from predictions, publishing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingest.clients import EventProducer, ensure_topics, read_topic
from ingest.config import KafkaConfig
from ingest.events import (
    FailureReported,
    JobCancelled,
    JobReleased,
    MachineOption,
    MachineState,
    MaintenanceDone,
    OperationCompleted,
    OperationSpec,
    OperationStarted,
    RecommendedAction,
    RemainingUsefulLife,
    Schedule,
    ScheduledOperationOut,
    ScheduleKpis,
)
from ingest.stream import DeadLetterSink, DecodedRecord
from ingest.topics import SCHEDULE
from scheduler import Crew, ObjectiveWeights, SolverSettings, check_schedule, solve
from scheduler.service import (
    MaintenancePolicy,
    Outage,
    PlanState,
    SchedulerService,
    build_plan,
    to_schedule_event,
)

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


BEARING_SWAP = RecommendedAction(
    name="bearing-swap", duration_minutes=150, skill="mechanic", crew_size=2, cost=900.0
)
SENSOR_CHECK = RecommendedAction(
    name="sensor-check", duration_minutes=30, skill="electrician", crew_size=1, cost=40.0
)
CREWS = (Crew("mechanic", 2), Crew("electrician", 1))


def recommending(state: MachineState, action: RecommendedAction | None) -> MachineState:
    return state.model_copy(update={"recommended_action": action})


def test_window_follows_recommended_action() -> None:
    state = PlanState()
    state.jobs["J1"] = job("J1", {"M1": 60}, {"M2": 60})
    state.machine_states["M1"] = recommending(machine_state("M1", p10=1.0), BEARING_SWAP)
    state.machine_states["M2"] = recommending(machine_state("M2", p10=1.0), SENSOR_CHECK)
    state.advance_clock(NOW)
    policy = MaintenancePolicy(cycles_per_hour=1.0, maintenance_minutes=480, crews=CREWS)

    plan, _ = build_plan(state, policy, unit_minutes=60)

    entries = plan.maintenance_by_machine()
    assert entries["M1"].duration == 3  # 150 minutes rounded up to whole hours
    assert entries["M1"].skill == "mechanic"
    assert entries["M1"].crew_size == 2
    assert entries["M1"].cost == 900.0
    assert entries["M1"].action == "bearing-swap"
    assert entries["M2"].duration == 1
    assert entries["M2"].skill == "electrician"
    assert entries["M2"].cost == 40.0
    assert plan.crew_capacity() == {"electrician": 1, "maintenance": 1, "mechanic": 2}


def test_window_without_action_uses_policy_defaults() -> None:
    state = PlanState()
    state.jobs["J1"] = job("J1", {"M1": 60})
    state.machine_states["M1"] = machine_state("M1", p10=1.0)
    state.advance_clock(NOW)
    policy = MaintenancePolicy(
        cycles_per_hour=1.0,
        maintenance_minutes=90,
        maintenance_cost=70.0,
        crew_size=3,
        crews=CREWS,
        default_skill="fitter",
    )

    plan, _ = build_plan(state, policy, unit_minutes=60)

    (entry,) = plan.maintenance
    assert (entry.duration, entry.cost, entry.skill, entry.crew_size) == (2, 70.0, "fitter", 1)
    assert entry.action == ""
    assert plan.crew_capacity()["fitter"] == 3


def test_unstaffable_action_falls_back_to_default_crew(caplog: pytest.LogCaptureFixture) -> None:
    welding = RecommendedAction(
        name="reweld-frame", duration_minutes=240, skill="welder", crew_size=2, cost=500.0
    )
    service = SchedulerService(
        FakeProducer(),  # type: ignore[arg-type]
        "plant-test",
        MaintenancePolicy(cycles_per_hour=1.0, crew_size=1, crews=CREWS),
        SolverSettings(time_limit_s=5),
        debounce_s=0,
    )

    with caplog.at_level("WARNING", logger="scheduler.service"):
        service.handle(
            records(
                job("J1", {"M1": 60}),
                recommending(machine_state("M1", p10=1.0), welding),
                recommending(machine_state("M1", p10=0.5), welding),
            ),
            DeadLetterSink(FakeProducer()),  # type: ignore[arg-type]
        )
    plan, _ = build_plan(service.state, service.policy, unit_minutes=60)

    (entry,) = plan.maintenance
    assert (entry.duration, entry.cost, entry.skill, entry.crew_size) == (
        4,
        500.0,
        "maintenance",
        1,
    )
    assert entry.reason.endswith("staffed by the 'maintenance' crew")
    warnings = [r.getMessage() for r in caplog.records if "cannot be staffed" in r.getMessage()]
    assert warnings == [
        "machine M1: recommended action reweld-frame cannot be staffed because no crew has "
        "skill 'welder' (crews: ['electrician', 'maintenance', 'mechanic']); its window goes "
        "to the 'maintenance' crew"
    ]


def test_published_window_names_action_and_its_length() -> None:
    state = PlanState()
    state.jobs["J1"] = job("J1", {"M1": 60})
    state.machine_states["M1"] = recommending(machine_state("M1", p10=0.0), BEARING_SWAP)
    state.advance_clock(NOW)
    plan, origin = build_plan(
        state, MaintenancePolicy(cycles_per_hour=1.0, crews=CREWS), unit_minutes=30
    )

    solved = solve(plan, SolverSettings(time_limit_s=5))
    event = to_schedule_event(solved, "plant-test", origin, 30, "1-test", ["v0001"])

    assert check_schedule(plan, solved) == []
    (window,) = event.maintenance_windows
    assert window.end - window.start == timedelta(minutes=150)
    assert window.reason == "bearing-swap: RUL p10 0 cycles (critical), model v0001"
    assert event.kpis.maintenance_cost == 900.0
    (operation,) = event.operations
    assert operation.start >= window.end


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


class FakeProducer:
    """A producer stand-in that collects sent events, for tests without a broker."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str | None, object]] = []

    def send(self, topic: str, key: str | None, event: object) -> None:
        self.sent.append((topic, key, event))

    def flush(self) -> None:
        pass


class FakeClock:
    """A monotonic clock that moves only when a test sets `now`."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make_service(kafka: KafkaConfig, clock: FakeClock, **options: object) -> SchedulerService:
    ensure_topics(kafka)
    fields: dict[str, object] = {
        "plant_id": "plant-test",
        "policy": MaintenancePolicy(cycles_per_hour=1.0, maintenance_minutes=60, crew_size=1),
        "solver_settings": SolverSettings(
            time_limit_s=5, workers=2, weights=ObjectiveWeights(1, 1, 0, 1)
        ),
        "unit_minutes": 60,
        "debounce_s": 2.0,
        "freeze_minutes": 60,
        "clock": clock,
    }
    fields.update(options)
    return SchedulerService(EventProducer(kafka), **fields)  # type: ignore[arg-type]


def feed(service: SchedulerService, *events: object) -> DeadLetterSink:
    dead_letters = DeadLetterSink(service.producer)
    service.handle(records(*events), dead_letters)
    return dead_letters


def published_on_topic(kafka: KafkaConfig) -> list[Schedule]:
    return [Schedule.model_validate_json(r.value) for r in read_topic(kafka, SCHEDULE)]


def placed(schedule: Schedule) -> dict[tuple[str, int], tuple[str, datetime]]:
    return {(op.job_id, op.operation): (op.machine_id, op.start) for op in schedule.operations}


def at(hours: float) -> datetime:
    return NOW + timedelta(hours=hours)


def two_machine_jobs() -> tuple[JobReleased, JobReleased]:
    """J1 and J2: two 1-hour steps each, on M1 or M2 (2 hours), then on M2."""
    return (
        job("J1", {"M1": 60, "M2": 120}, {"M2": 60}),
        job("J2", {"M1": 60, "M2": 120}, {"M2": 60}),
    )


@pytest.mark.broker
def test_new_jobs_trigger_one_debounced_replan(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock)
    first, second = two_machine_jobs()

    feed(service, first)
    clock.now = 1.5
    feed(service, second)
    due_while_busy = [service.due()]
    clock.now = 3.0
    due_while_busy.append(service.due())
    clock.now = 3.5
    reasons = service.pending_reasons
    published = service.solve_if_due()

    assert due_while_busy == [False, False]
    assert reasons == ("job J1 released", "job J2 released")
    assert published is not None
    assert {key[0] for key in placed(published)} == {"J1", "J2"}
    assert not service.pending()
    assert [s.schedule_id for s in published_on_topic(kafka)] == [published.schedule_id]


@pytest.mark.broker
def test_debounce_waits_at_most_max_wait(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock, debounce_s=2.0, max_wait_s=10.0)
    due_at = []

    for step in range(12):
        clock.now = float(step)
        feed(service, job(f"J{step}", {"M1": 60}))
        if service.due():
            due_at.append(clock.now)

    assert due_at == [10.0, 11.0]
    assert len(service.pending_reasons) == 12


@pytest.mark.broker
def test_cancelled_job_triggers_replan_without_it(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock)
    feed(service, *two_machine_jobs())
    service.solve_and_publish()

    feed(service, JobCancelled(job_id="J2", ts=NOW))
    reasons = service.pending_reasons
    clock.now = 2.0
    published = service.solve_if_due()

    assert reasons == ("job J2 cancelled",)
    assert published is not None
    assert {key[0] for key in placed(published)} == {"J1"}
    assert len(published_on_topic(kafka)) == 2


@pytest.mark.broker
def test_risk_crossing_triggers_replan_with_window(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock, freeze_minutes=0)
    feed(service, job("J1", {"M1": 60}), job("J2", {"M1": 60}), job("J3", {"M1": 60}))
    first = service.solve_and_publish()

    feed(service, machine_state("M1", p10=50.0))
    after_healthy = service.pending_reasons
    feed(service, machine_state("M1", p10=1.0), machine_state("M1", p10=0.5))
    reasons = service.pending_reasons
    clock.now = 2.0
    published = service.solve_if_due()

    assert first is not None
    assert first.maintenance_windows == []
    assert after_healthy == ()
    assert reasons == ("machine M1 RUL p10 1 cycles fell below the risk threshold 30",)
    assert published is not None
    (window,) = published.maintenance_windows
    assert window.machine_id == "M1"
    # A p10 of 0.5 cycles at 1 cycle per hour leaves no whole hour, so M1 is maintained first.
    assert (window.start, window.end) == (at(0), at(1))
    assert all(op.start >= window.end for op in published.operations)


@pytest.mark.broker
def test_machine_down_triggers_replan_around_it(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock, freeze_minutes=0)
    feed(service, *two_machine_jobs())
    first = service.solve_and_publish()

    failure = FailureReported(machine_id="M1", ts=NOW, kind="spindle", duration_minutes=180)
    feed(service, failure)
    reasons = service.pending_reasons
    clock.now = 2.0
    published = service.solve_if_due()

    assert first is not None
    assert any(machine == "M1" for machine, _ in placed(first).values())
    assert reasons == (f"machine M1 down until {at(3).isoformat()}",)
    assert published is not None
    for machine, start in placed(published).values():
        assert machine != "M1" or start >= at(3)
    assert service.last_plan is not None and service.last_solved is not None
    assert check_schedule(service.last_plan, service.last_solved) == []


@pytest.mark.broker
def test_machine_up_triggers_replan_using_it(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock, freeze_minutes=0)
    feed(
        service,
        job("J1", {"M1": 60, "M2": 300}),
        FailureReported(machine_id="M1", ts=NOW, kind="spindle", duration_minutes=0),
    )
    while_down = service.solve_and_publish()

    feed(service, MaintenanceDone(machine_id="M1", ts=NOW, kind="repair", duration_minutes=60))
    reasons = service.pending_reasons
    clock.now = 2.0
    published = service.solve_if_due()

    assert while_down is not None
    assert placed(while_down) == {("J1", 0): ("M2", at(0))}
    assert reasons == ("machine M1 up",)
    assert published is not None
    assert placed(published) == {("J1", 0): ("M1", at(0))}


@pytest.mark.broker
def test_job_waits_while_only_machine_is_down(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock)
    feed(
        service,
        job("J1", {"M1": 60}),
        job("J2", {"M2": 60}),
        FailureReported(machine_id="M2", ts=NOW, kind="hydraulic", duration_minutes=0),
    )

    published = service.solve_and_publish()

    assert published is not None
    assert set(placed(published)) == {("J1", 0)}


@pytest.mark.broker
def test_start_as_published_does_not_trigger(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock)
    feed(service, job("J1", {"M1": 60, "M2": 60}, {"M2": 60}))
    published = service.solve_and_publish()
    assert published is not None
    machine, start = placed(published)[("J1", 0)]
    elsewhere = "M2" if machine == "M1" else "M1"

    feed(service, OperationStarted(job_id="J1", operation=0, machine_id=machine, ts=start))
    as_published = service.pending_reasons
    feed(service, OperationStarted(job_id="J1", operation=0, machine_id=elsewhere, ts=start))

    assert as_published == ()
    assert service.pending_reasons == (
        f"operation 0 of job J1 started on {elsewhere}, published on {machine}",
    )


@pytest.mark.broker
@pytest.mark.parametrize(("freeze_minutes", "urgent_start"), [(60, at(1)), (0, at(0))])
def test_freeze_window_keeps_imminent_operation(
    kafka: KafkaConfig, freeze_minutes: int, urgent_start: datetime
) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock, freeze_minutes=freeze_minutes)
    feed(service, job("J1", {"M1": 60}), job("J2", {"M1": 60}))
    first = service.solve_and_publish()
    assert first is not None
    imminent = next(key for key, (_, start) in placed(first).items() if start == at(0))

    urgent = job("J3", {"M1": 60}, due_hours=1).model_copy(update={"weight": 10.0})
    feed(service, urgent)
    clock.now = 2.0
    published = service.solve_if_due()

    assert published is not None
    assert placed(published)[("J3", 0)] == ("M1", urgent_start)
    imminent_unchanged = placed(published)[imminent] == ("M1", at(0))
    assert imminent_unchanged == (freeze_minutes > 0)
    assert service.last_plan is not None
    assert len(service.last_plan.fixed) == (1 if freeze_minutes else 0)


@pytest.mark.broker
def test_replan_without_change_keeps_schedule(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock, freeze_minutes=0)
    feed(service, *two_machine_jobs(), job("J3", {"M1": 120, "M2": 60}))
    first = service.solve_and_publish()

    feed(service, MaintenanceDone(machine_id="M9", ts=NOW, kind="preventive", duration_minutes=30))
    second = service.solve_and_publish()

    assert first is not None and second is not None
    assert placed(second) == placed(first)
    assert service.last_solved is not None
    assert service.last_solved.changed_operations == 0
    assert service.last_plan is not None
    assert len(service.last_plan.reference) == len(first.operations)


@pytest.mark.broker
def test_started_operation_stays_with_time_left(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock, freeze_minutes=0)
    feed(
        service,
        job("J1", {"M1": 60}, {"M1": 150, "M2": 60}, {"M2": 60}),
        OperationCompleted(job_id="J1", operation=0, machine_id="M1", ts=NOW - timedelta(hours=1)),
        OperationStarted(job_id="J1", operation=1, machine_id="M1", ts=NOW - timedelta(hours=1)),
        machine_state("M1", p10=0.0),
    )

    published = service.solve_and_publish()

    # 150 minutes started an hour ago leave 90, two units on the hour grid. The deadline
    # of M1 has passed, but the running step cannot stop, so the window follows it.
    assert published is not None
    assert placed(published) == {("J1", 1): ("M1", at(0)), ("J1", 2): ("M2", at(2))}
    assert [(w.machine_id, w.start) for w in published.maintenance_windows] == []
    assert service.last_plan is not None
    assert [a.operation for a in service.last_plan.fixed] == [0]
    assert service.last_plan.maintenance[0].deadline == 2


@pytest.mark.broker
def test_failure_interrupts_started_operation(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock, freeze_minutes=0)
    feed(
        service,
        job("J1", {"M1": 120, "M2": 120}),
        OperationStarted(job_id="J1", operation=0, machine_id="M1", ts=NOW),
        FailureReported(machine_id="M1", ts=NOW, kind="spindle", duration_minutes=600),
    )

    published = service.solve_and_publish()

    assert published is not None
    assert placed(published) == {("J1", 0): ("M2", at(0))}
    assert service.state.started == {}


@pytest.mark.broker
def test_events_for_unknown_work_go_to_dead_letters(kafka: KafkaConfig) -> None:
    clock = FakeClock()
    service = make_service(kafka, clock)
    feed(service, job("J1", {"M1": 60}))

    dead_letters = feed(
        service,
        JobCancelled(job_id="J7", ts=NOW),
        OperationStarted(job_id="J1", operation=0, machine_id="M3", ts=NOW),
        OperationStarted(job_id="J1", operation=4, machine_id="M1", ts=NOW),
    )
    service.producer.flush()

    assert dead_letters.counts["t"] == 3
    assert service.pending_reasons == ("job J1 released",)


def test_started_job_counts_as_released() -> None:
    state = PlanState()
    early = job("J1", {"M1": 120}, {"M2": 60}).model_copy(
        update={"release": NOW + timedelta(hours=5)}
    )
    state.jobs["J1"] = early
    state.started[("J1", 0)] = OperationStarted(job_id="J1", operation=0, machine_id="M1", ts=NOW)
    state.advance_clock(NOW + timedelta(minutes=30))

    plan, _ = build_plan(state, MaintenancePolicy(), unit_minutes=60)

    assert plan.jobs[0].release == 0
    assert [(a.operation, a.machine, a.start) for a in plan.fixed] == [(0, "M1", 0)]
    assert plan.jobs[0].operations[0].options[0].duration == 2  # 90 minutes left, rounded up


def test_freeze_keeps_only_what_the_plan_allows() -> None:
    state = PlanState()
    state.jobs["J1"] = job("J1", {"M1": 60}, {"M1": 60})
    state.jobs["J2"] = job("J2", {"M2": 60})
    state.outages["M2"] = Outage(since=NOW, until=NOW + timedelta(hours=2), reason="down")
    state.advance_clock(NOW)
    published = Schedule(
        schedule_id="s1",
        plant_id="plant-test",
        created=NOW,
        plan_version="1",
        operations=[
            ScheduledOperationOut(
                job_id="J1", operation=0, machine_id="M1", start=NOW, end=NOW + timedelta(hours=1)
            ),
            ScheduledOperationOut(
                job_id="J1",
                operation=1,
                machine_id="M1",
                start=NOW + timedelta(hours=1),
                end=NOW + timedelta(hours=2),
            ),
            ScheduledOperationOut(
                job_id="J2", operation=0, machine_id="M2", start=NOW, end=NOW + timedelta(hours=1)
            ),
        ],
        maintenance_windows=[],
        kpis=ScheduleKpis(
            makespan_minutes=120,
            weighted_tardiness_minutes=0,
            maintenance_count=0,
            maintenance_cost=0,
        ),
        solver_status="optimal",
        solve_seconds=0.1,
    )

    plan, _ = build_plan(
        state, MaintenancePolicy(), unit_minutes=60, published=published, freeze_minutes=120
    )

    # J2 was published on M2, which is now down, so only J1's two steps stay fixed.
    assert [(a.job, a.operation, a.start) for a in plan.fixed] == [("J1", 0, 0), ("J1", 1, 1)]
    assert [(a.job, a.operation) for a in plan.reference] == [("J1", 0), ("J2", 0), ("J1", 1)]
    assert [(d.machine, d.start, d.end) for d in plan.downtime] == [("M2", 0, 2)]
