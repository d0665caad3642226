"""The scheduler service: plan and machine-state events in, `Schedule` events out.

This is the only module of the package that knows Kafka. It keeps the open plan and each
machine's latest prediction, turns them into a solver-free `Plan` on the event-time clock
(the latest event time seen, so a replay plans as the plant would have), and re-solves
when something that matters changes: a job released or cancelled, an operation started
or completed, a machine whose RUL p10 falls below the risk threshold, a failure. Triggers
within `debounce_s` of each other lead to one solve.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ingest.clients import EventProducer
from ingest.events import (
    FailureReported,
    JobCancelled,
    JobReleased,
    MachineState,
    MaintenanceDone,
    MaintenanceWindowOut,
    OperationCompleted,
    OperationStarted,
    Schedule,
    ScheduledOperationOut,
    ScheduleKpis,
)
from ingest.stream import DeadLetterSink, DecodedRecord
from ingest.topics import MACHINE_STATE, MAINTENANCE, PLAN, SCHEDULE
from scheduler.objective import ObjectiveWeights
from scheduler.plan import Job, MachineMaintenance, Operation, OperationOption, Plan
from scheduler.schedule import Schedule as SolvedSchedule
from scheduler.solver import SolverSettings, solve

logger = logging.getLogger(__name__)

SCHEDULER_GROUP = "plantpulse-scheduler"
SCHEDULER_TOPICS = [PLAN, MACHINE_STATE, MAINTENANCE]


@dataclass(frozen=True)
class MaintenancePolicy:
    """How predictions become maintenance deadlines, and what maintenance costs."""

    cycles_per_hour: float = 1.0
    maintenance_minutes: int = 480
    maintenance_cost: float = 100.0
    crew_size: int = 1
    risk_threshold_cycles: float = 30.0


@dataclass
class PlanState:
    """The open plan as the events so far describe it."""

    jobs: dict[str, JobReleased] = field(default_factory=dict)
    started: dict[tuple[str, int], OperationStarted] = field(default_factory=dict)
    completed: set[tuple[str, int]] = field(default_factory=set)
    machine_states: dict[str, MachineState] = field(default_factory=dict)
    down_until: dict[str, datetime] = field(default_factory=dict)
    clock: datetime | None = None
    version: int = 0

    def advance_clock(self, ts: datetime) -> None:
        if self.clock is None or ts > self.clock:
            self.clock = ts


def _units(delta: timedelta, unit_minutes: int) -> int:
    return max(0, math.ceil(delta.total_seconds() / 60.0 / unit_minutes))


def build_plan(
    state: PlanState, policy: MaintenancePolicy, unit_minutes: int, name: str = ""
) -> tuple[Plan, datetime]:
    """Turn the open plan into solver input on a grid of `unit_minutes`, origin = the clock.

    Completed operations are dropped; a started operation keeps only the machine it
    started on, with the time it has left. A machine whose RUL p10 is known gets a
    deadline: the time at which that p10 is used up at `cycles_per_hour`.
    """
    now = state.clock
    if now is None:
        raise ValueError("no event has been seen yet, so the plan has no time origin")

    jobs: list[Job] = []
    machines: set[str] = set()
    for job_id, released in state.jobs.items():
        operations: list[Operation] = []
        first_open = 0
        for index, spec in enumerate(released.operations):
            if (job_id, index) in state.completed:
                first_open = index + 1
                continue
            started = state.started.get((job_id, index))
            if started is not None:
                option = next(o for o in spec.options if o.machine_id == started.machine_id)
                elapsed = (now - started.ts).total_seconds() / 60.0
                remaining = max(1, math.ceil((option.duration_minutes - elapsed) / unit_minutes))
                options: tuple[OperationOption, ...] = (
                    OperationOption(started.machine_id, remaining),
                )
            else:
                options = tuple(
                    OperationOption(
                        o.machine_id, max(1, math.ceil(o.duration_minutes / unit_minutes))
                    )
                    for o in spec.options
                )
            operations.append(Operation(options))
            machines.update(option.machine for option in options)
        if not operations or first_open >= len(released.operations):
            continue
        jobs.append(
            Job(
                id=job_id,
                operations=tuple(operations),
                release=_units(released.release - now, unit_minutes),
                due=(
                    None
                    if released.due is None
                    else max(
                        _units(released.due - now, unit_minutes),
                        _units(released.release - now, unit_minutes),
                    )
                ),
                weight=released.weight,
            )
        )

    maintenance: list[MachineMaintenance] = []
    duration = max(1, math.ceil(policy.maintenance_minutes / unit_minutes))
    for machine in sorted(machines):
        machine_state = state.machine_states.get(machine)
        down = state.down_until.get(machine)
        if down is not None and down > now:
            maintenance.append(
                MachineMaintenance(
                    machine,
                    0,
                    max(1, _units(down - now, unit_minutes)),
                    0.0,
                    "machine down (failure reported)",
                )
            )
            continue
        if machine_state is None:
            continue
        hours_since_prediction = (now - machine_state.ts).total_seconds() / 3600.0
        hours_left = machine_state.rul.p10 / policy.cycles_per_hour - hours_since_prediction
        deadline = math.floor(hours_left * 60.0 / unit_minutes)
        reason = (
            f"RUL p10 {machine_state.rul.p10:.0f} cycles ({machine_state.state}), "
            f"model {machine_state.model_version}"
        )
        maintenance.append(
            MachineMaintenance(machine, deadline, duration, policy.maintenance_cost, reason)
        )

    plan = Plan(
        machines=tuple(sorted(machines)),
        jobs=tuple(sorted(jobs, key=lambda job: job.id)),
        maintenance=tuple(maintenance),
        crew_size=policy.crew_size,
        name=name,
    )
    return plan, now


def to_schedule_event(
    solved: SolvedSchedule,
    plant_id: str,
    origin: datetime,
    unit_minutes: int,
    plan_version: str,
    model_versions: list[str],
) -> Schedule:
    """Convert a solver result on the unit grid back to wall-clock times."""

    def at(units: int) -> datetime:
        return origin + timedelta(minutes=units * unit_minutes)

    return Schedule(
        schedule_id=uuid.uuid4().hex[:12],
        plant_id=plant_id,
        created=origin,
        plan_version=plan_version,
        model_versions=model_versions,
        operations=[
            ScheduledOperationOut(
                job_id=op.job,
                operation=op.operation,
                machine_id=op.machine,
                start=at(op.start),
                end=at(op.end),
            )
            for op in solved.operations
        ],
        maintenance_windows=[
            MaintenanceWindowOut(
                machine_id=w.machine, start=at(w.start), end=at(w.end), reason=w.reason
            )
            for w in solved.maintenance
        ],
        kpis=ScheduleKpis(
            makespan_minutes=float(solved.makespan * unit_minutes),
            weighted_tardiness_minutes=float(solved.total_weighted_tardiness * unit_minutes),
            maintenance_count=solved.maintenance_count,
            maintenance_cost=solved.maintenance_cost,
        ),
        solver_status=solved.status,
        objective=solved.objective,
        bound=solved.bound,
        gap=solved.gap,
        solve_seconds=solved.solve_seconds,
    )


class SchedulerService:
    """A `RecordHandler` over plan, machine-state and maintenance events."""

    def __init__(
        self,
        producer: EventProducer,
        plant_id: str,
        policy: MaintenancePolicy,
        solver_settings: SolverSettings,
        unit_minutes: int = 60,
        debounce_s: float = 2.0,
    ) -> None:
        self.producer = producer
        self.plant_id = plant_id
        self.policy = policy
        self.solver_settings = solver_settings
        self.unit_minutes = unit_minutes
        self.debounce_s = debounce_s
        self.state = PlanState()
        self._dirty_since: float | None = None
        self.published: list[Schedule] = []
        self.last_plan: Plan | None = None
        self.last_solved: SolvedSchedule | None = None

    def _trigger(self, reason: str) -> None:
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()
            logger.debug("re-plan requested: %s", reason)

    def handle(self, records: list[DecodedRecord], dead_letters: DeadLetterSink) -> None:
        for record in records:
            try:
                self._apply(record.event)
            except ValueError as error:
                dead_letters.send_record(record, str(error))

    def _apply(self, event: object) -> None:
        state = self.state
        if isinstance(event, JobReleased):
            state.jobs[event.job_id] = event
            state.advance_clock(event.ts)
            state.version += 1
            self._trigger(f"job {event.job_id} released")
        elif isinstance(event, JobCancelled):
            if state.jobs.pop(event.job_id, None) is None:
                raise ValueError(f"job {event.job_id} was cancelled but is not in the open plan")
            state.advance_clock(event.ts)
            state.version += 1
            self._trigger(f"job {event.job_id} cancelled")
        elif isinstance(event, OperationStarted | OperationCompleted):
            job = state.jobs.get(event.job_id)
            if job is None or event.operation >= len(job.operations):
                raise ValueError(
                    f"operation {event.operation} of job {event.job_id} is not in the open plan"
                )
            if event.machine_id not in {
                o.machine_id for o in job.operations[event.operation].options
            }:
                raise ValueError(
                    f"machine {event.machine_id} is not eligible for operation {event.operation} of job {event.job_id}"
                )
            key = (event.job_id, event.operation)
            if isinstance(event, OperationStarted):
                state.started[key] = event
            else:
                state.started.pop(key, None)
                state.completed.add(key)
            state.advance_clock(event.ts)
            state.version += 1
            self._trigger(f"operation {key} {event.__class__.__name__}")
        elif isinstance(event, MachineState):
            previous = state.machine_states.get(event.machine_id)
            state.machine_states[event.machine_id] = event
            state.advance_clock(event.ts)
            threshold = self.policy.risk_threshold_cycles
            crossed = event.rul.p10 < threshold and (
                previous is None or previous.rul.p10 >= threshold
            )
            if crossed or (previous is not None and previous.state != event.state):
                self._trigger(f"machine {event.machine_id} risk changed")
        elif isinstance(event, FailureReported):
            state.down_until[event.machine_id] = event.ts + timedelta(
                minutes=event.duration_minutes
            )
            state.advance_clock(event.ts)
            self._trigger(f"machine {event.machine_id} down")
        elif isinstance(event, MaintenanceDone):
            state.down_until.pop(event.machine_id, None)
            state.machine_states.pop(event.machine_id, None)
            state.advance_clock(event.ts)
            self._trigger(f"machine {event.machine_id} maintained")

    def flush(self) -> None:
        """Nothing is pending between polls: schedules are sent as they are solved."""

    def pending(self) -> bool:
        """True when a change arrived that no published schedule reflects yet."""
        return self._dirty_since is not None

    def due(self) -> bool:
        return (
            self._dirty_since is not None
            and time.monotonic() - self._dirty_since >= self.debounce_s
        )

    def plan_version(self) -> str:
        digest = hashlib.sha256(
            ",".join(sorted(self.state.jobs)).encode() + str(self.state.version).encode()
        ).hexdigest()
        return f"{self.state.version}-{digest[:8]}"

    def solve_and_publish(self) -> Schedule | None:
        """Solve the open plan now and publish the schedule; None when the plan is empty."""
        self._dirty_since = None
        if not self.state.jobs or self.state.clock is None:
            return None
        plan, origin = build_plan(self.state, self.policy, self.unit_minutes, name=self.plant_id)
        solved = solve(plan, self.solver_settings)
        self.last_plan, self.last_solved = plan, solved
        model_versions = sorted({s.model_version for s in self.state.machine_states.values()})
        event = to_schedule_event(
            solved, self.plant_id, origin, self.unit_minutes, self.plan_version(), model_versions
        )
        self.producer.send(SCHEDULE, self.plant_id, event)
        self.producer.flush()
        self.published.append(event)
        logger.info(
            "schedule %s published: %s, makespan %.0f min, %d maintenance windows, gap %s",
            event.schedule_id,
            event.solver_status,
            event.kpis.makespan_minutes,
            event.kpis.maintenance_count,
            "n/a" if event.gap is None else f"{event.gap:.2%}",
        )
        return event


def solver_settings_from(
    time_limit_s: float, workers: int, makespan: float, tardiness: float, maintenance_cost: float
) -> SolverSettings:
    return SolverSettings(
        time_limit_s=time_limit_s,
        workers=workers,
        weights=ObjectiveWeights(
            makespan=makespan, weighted_tardiness=tardiness, maintenance_cost=maintenance_cost
        ),
    )
