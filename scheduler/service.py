"""The scheduler service: plan and machine-state events in, `Schedule` events out.

This is the only module of the package that imports Kafka clients and events. It keeps
the open plan, each machine's latest prediction and which machines are down. It turns
them into a solver-free `Plan` on the event-time clock (the latest event time seen, so
a replay plans as the plant would have), and re-plans when something that matters
changes:

- a job is released, updated or cancelled;
- a machine's RUL p10 falls below the risk threshold;
- a machine goes down (`FailureReported`, for its `duration_minutes`, or until further
  notice when that is 0) or comes back up (`MaintenanceDone`);
- an operation starts on another machine, or at another time, than published.

Triggers are debounced: the service solves once no new trigger has arrived for
`debounce_s`, or `max_wait_s` after the first one at the latest.

Each re-plan keeps what the plant has already acted on. Started operations stay on
their machine, and published operations that start within `freeze_minutes` stay where
they are. A frozen operation moves only when the change makes its place impossible,
because its machine went down, its maintenance deadline moved before its end, or an
earlier step of its job moved. The rest of the published schedule is the reference for
the stability objective term and the solver's starting point.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
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
    RecommendedAction,
    Schedule,
    ScheduledOperationOut,
    ScheduleKpis,
)
from ingest.history import HistoryStore
from ingest.stream import DeadLetterSink, DecodedRecord
from ingest.topics import MACHINE_STATE, MAINTENANCE, PLAN, SCHEDULE
from scheduler.objective import ObjectiveWeights
from scheduler.plan import (
    DEFAULT_SKILL,
    Crew,
    Job,
    MachineDowntime,
    MachineMaintenance,
    Operation,
    OperationAssignment,
    OperationOption,
    Plan,
    PlanError,
    WindowAssignment,
)
from scheduler.schedule import Schedule as SolvedSchedule
from scheduler.solver import SolverSettings, solve

logger = logging.getLogger(__name__)

SCHEDULER_GROUP = "plantpulse-scheduler"
SCHEDULER_TOPICS = [PLAN, MACHINE_STATE, MAINTENANCE]
# Events the service writes to the history store, once applied without error.
HISTORY_EVENTS = (MaintenanceDone, FailureReported, OperationStarted, OperationCompleted)


@dataclass(frozen=True)
class MaintenancePolicy:
    """Conversion of RUL predictions to maintenance deadlines, and how windows are staffed.

    A machine whose latest `MachineState` recommends an action gets a window of that
    action's duration, skill, crew size and cost. Without a recommendation the window
    takes `maintenance_minutes`, one person of `default_skill`, and costs
    `maintenance_cost`. `crews` are the people per skill, usually the plant
    description's. The crew of `default_skill` has `crew_size` people unless `crews`
    names that skill.
    """

    cycles_per_hour: float = 1.0
    maintenance_minutes: int = 480
    maintenance_cost: float = 100.0
    crew_size: int = 1
    risk_threshold_cycles: float = 30.0
    crews: tuple[Crew, ...] = ()
    default_skill: str = DEFAULT_SKILL

    def crew_capacity(self) -> dict[str, int]:
        """Return the people of each skill, the default skill's crew included."""
        capacity = {crew.skill: crew.size for crew in self.crews}
        capacity.setdefault(self.default_skill, self.crew_size)
        return capacity

    def staffing_problem(self, action: RecommendedAction) -> str | None:
        """Return why the crews cannot staff `action`, or None when they can."""
        capacity = self.crew_capacity()
        size = capacity.get(action.skill)
        if size is None:
            return f"no crew has skill {action.skill!r} (crews: {sorted(capacity)})"
        if action.crew_size > size:
            return (
                f"it needs {action.crew_size} people with skill {action.skill!r}, but that "
                f"crew has {size}"
            )
        return None


@dataclass(frozen=True)
class Outage:
    """A machine that is down from `since` until `until`, or until further notice (None)."""

    since: datetime
    until: datetime | None
    reason: str


@dataclass
class PlanState:
    """The open plan as the events so far describe it.

    `completed` contains (job, operation) pairs. A completed or started operation implies
    that every earlier operation of its job is complete. Jobs leave `jobs` when their
    last operation completes.
    """

    jobs: dict[str, JobReleased] = field(default_factory=dict)
    started: dict[tuple[str, int], OperationStarted] = field(default_factory=dict)
    completed: set[tuple[str, int]] = field(default_factory=set)
    machine_states: dict[str, MachineState] = field(default_factory=dict)
    outages: dict[str, Outage] = field(default_factory=dict)
    clock: datetime | None = None
    version: int = 0

    def advance_clock(self, ts: datetime) -> None:
        if self.clock is None or ts > self.clock:
            self.clock = ts

    def first_open_operation(self, job_id: str) -> int:
        """Return the index of the job's first operation that is not complete."""
        done = [index for job, index in self.completed if job == job_id]
        return max(done) + 1 if done else 0

    def active_outage(self, machine: str, now: datetime) -> Outage | None:
        """Return the machine's outage when it is still down at `now`, else None."""
        outage = self.outages.get(machine)
        if outage is None or (outage.until is not None and outage.until <= now):
            return None
        return outage

    def forget_job(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self.completed = {key for key in self.completed if key[0] != job_id}
        self.started = {key: value for key, value in self.started.items() if key[0] != job_id}


@dataclass(frozen=True)
class PlanSnapshot:
    """A `Plan` built from the open plan, and what is needed to map its results back.

    `first_operation[job]` is the event-side index of the plan job's operation 0, since
    completed operations are left out of the plan. `waiting_jobs` are open jobs left out
    because every machine of one of their operations is down until further notice.
    """

    plan: Plan
    origin: datetime
    first_operation: dict[str, int]
    waiting_jobs: tuple[str, ...] = ()


def _ceil_units(delta: timedelta, unit: timedelta) -> int:
    """Return `delta` in whole units, rounded up, with integer arithmetic on timedeltas."""
    return -((-delta) // unit)


def _units(delta: timedelta, unit_minutes: int) -> int:
    return max(0, _ceil_units(delta, timedelta(minutes=unit_minutes)))


def build_plan(
    state: PlanState,
    policy: MaintenancePolicy,
    unit_minutes: int,
    name: str = "",
    published: Schedule | None = None,
    freeze_minutes: int = 0,
) -> tuple[Plan, datetime]:
    """Turn the open plan into solver input on a grid of `unit_minutes`, origin = the clock.

    `snapshot_plan` describes the details. This returns only the plan and its origin.
    """
    snapshot = snapshot_plan(state, policy, unit_minutes, name, published, freeze_minutes)
    return snapshot.plan, snapshot.origin


def snapshot_plan(
    state: PlanState,
    policy: MaintenancePolicy,
    unit_minutes: int,
    name: str = "",
    published: Schedule | None = None,
    freeze_minutes: int = 0,
) -> PlanSnapshot:
    """Turn the open plan into solver input on a grid of `unit_minutes`, origin = the clock.

    Completed operations are left out. A started operation keeps only the machine it
    started on, with the time it has left, and is fixed at time 0. A machine whose RUL
    p10 is known gets a deadline: the time at which that p10 is used up at
    `cycles_per_hour`, but not before its started operation ends. A machine that is
    down gets a downtime interval instead, because its repair restores it.

    With `published`, its operations that start within `freeze_minutes` of the clock
    are fixed where they are, as far as the plan now allows, and its operations and
    windows that still lie ahead become the plan's reference.

    Raises:
        ValueError: no event has been seen yet, so the plan has no time origin.
    """
    now = state.clock
    if now is None:
        raise ValueError("no event has been seen yet, so the plan has no time origin")
    unit = timedelta(minutes=unit_minutes)

    all_machines = {
        option.machine_id
        for released in state.jobs.values()
        for spec in released.operations
        for option in spec.options
    }
    downtime = _downtime(state, now, unit, all_machines)
    down_for_good = {interval.machine for interval in downtime if interval.end is None}

    jobs: list[Job] = []
    first_operation: dict[str, int] = {}
    waiting: list[str] = []
    started_ends: dict[str, int] = {}
    fixed: list[OperationAssignment] = []

    for job_id in sorted(state.jobs):
        released = state.jobs[job_id]
        first_open = state.first_open_operation(job_id)
        operations: list[Operation] = []
        running: dict[int, int] = {}
        for index in range(first_open, len(released.operations)):
            operation, started_end = _operation(state, released, index, now, unit_minutes)
            if started_end is not None:
                running[len(operations)] = started_end
            operations.append(operation)
        if not operations:
            continue

        if any(set(operation.machines) <= down_for_good for operation in operations):
            waiting.append(job_id)
            logger.warning(
                "job %s waits: every machine of one of its operations is down until further notice",
                job_id,
            )
            # The job's running operation still occupies its machine.
            for plan_index, end in running.items():
                machine = operations[plan_index].machines[0]
                downtime.append(MachineDowntime(machine, 0, end, f"runs waiting job {job_id}"))
            continue

        for plan_index, end in running.items():
            machine = operations[plan_index].machines[0]
            started_ends[machine] = end
            fixed.append(OperationAssignment(job_id, plan_index, machine, 0))

        first_operation[job_id] = first_open
        jobs.append(_job(released, operations, now, unit_minutes, started=bool(running)))

    maintenance = _maintenance(state, policy, now, unit_minutes, all_machines, started_ends)
    plan = Plan(
        machines=tuple(sorted(all_machines)),
        jobs=tuple(jobs),
        maintenance=tuple(maintenance),
        crews=tuple(Crew(skill, size) for skill, size in sorted(policy.crew_capacity().items())),
        name=name,
        downtime=tuple(downtime),
        fixed=tuple(fixed),
    )

    if published is not None:
        plan = _with_published(plan, published, now, unit, freeze_minutes, first_operation)
    return PlanSnapshot(
        plan=plan, origin=now, first_operation=first_operation, waiting_jobs=tuple(waiting)
    )


def _job(
    released: JobReleased,
    operations: list[Operation],
    now: datetime,
    unit_minutes: int,
    started: bool,
) -> Job:
    """Return the plan job of the open operations of a released job.

    A job with a started operation has been released, whatever its release time is.
    """
    release = 0 if started else _units(released.release - now, unit_minutes)
    due = None
    if released.due is not None:
        due = max(_units(released.due - now, unit_minutes), release)
    return Job(
        id=released.job_id,
        operations=tuple(operations),
        release=release,
        due=due,
        weight=released.weight,
    )


def _operation(
    state: PlanState, released: JobReleased, index: int, now: datetime, unit_minutes: int
) -> tuple[Operation, int | None]:
    """Return one open operation, and its end when it has started, in plan units."""
    spec = released.operations[index]
    started = state.started.get((released.job_id, index))
    if started is None:
        options = tuple(
            OperationOption(o.machine_id, max(1, math.ceil(o.duration_minutes / unit_minutes)))
            for o in spec.options
        )
        return Operation(options), None

    option = next(o for o in spec.options if o.machine_id == started.machine_id)
    elapsed = (now - started.ts).total_seconds() / 60.0
    remaining = max(1, math.ceil((option.duration_minutes - elapsed) / unit_minutes))
    return Operation((OperationOption(started.machine_id, remaining),)), remaining


def _downtime(
    state: PlanState, now: datetime, unit: timedelta, machines: set[str]
) -> list[MachineDowntime]:
    downtime = []
    for machine in sorted(machines):
        outage = state.active_outage(machine, now)
        if outage is None:
            continue
        end = None if outage.until is None else _ceil_units(outage.until - now, unit)
        start = min(_ceil_units(outage.since - now, unit), 0)
        downtime.append(MachineDowntime(machine, start, end, outage.reason))
    return downtime


def _maintenance(
    state: PlanState,
    policy: MaintenancePolicy,
    now: datetime,
    unit_minutes: int,
    machines: set[str],
    started_ends: dict[str, int],
) -> list[MachineMaintenance]:
    maintenance = []

    for machine in sorted(machines):
        machine_state = state.machine_states.get(machine)
        if machine_state is None or state.active_outage(machine, now) is not None:
            continue

        hours_since_prediction = (now - machine_state.ts).total_seconds() / 3600.0
        hours_left = machine_state.rul.p10 / policy.cycles_per_hour - hours_since_prediction
        deadline = math.floor(hours_left * 60.0 / unit_minutes)
        reason = (
            f"RUL p10 {machine_state.rul.p10:.0f} cycles ({machine_state.state}), "
            f"model {machine_state.model_version}"
        )

        running_until = started_ends.get(machine)
        if running_until is not None and running_until > deadline:
            # A started operation cannot be stopped for maintenance, so the window can
            # only follow it.
            logger.warning(
                "machine %s: the operation running on it ends at unit %d, past its RUL "
                "deadline %d; maintenance follows that operation",
                machine,
                running_until,
                deadline,
            )
            deadline = running_until
            reason += ", after the running operation"

        maintenance.append(
            _maintenance_entry(
                machine, deadline, reason, machine_state.recommended_action, policy, unit_minutes
            )
        )
    return maintenance


def _maintenance_entry(
    machine: str,
    deadline: int,
    reason: str,
    action: RecommendedAction | None,
    policy: MaintenancePolicy,
    unit_minutes: int,
) -> MachineMaintenance:
    """Size a machine's window from its recommended action, or from the policy without one.

    An action that the crews cannot staff keeps its duration and cost but falls back
    to the default skill's crew, needing the action's crew size capped at that crew's size.
    """
    if action is None:
        return MachineMaintenance(
            machine,
            deadline,
            duration=_duration_units(policy.maintenance_minutes, unit_minutes),
            cost=policy.maintenance_cost,
            reason=reason,
            skill=policy.default_skill,
        )

    skill, crew_size = action.skill, action.crew_size
    if policy.staffing_problem(action) is not None:
        skill = policy.default_skill
        crew_size = min(action.crew_size, policy.crew_capacity()[skill])
        reason += f", staffed by the {skill!r} crew"
    return MachineMaintenance(
        machine,
        deadline,
        duration=_duration_units(action.duration_minutes, unit_minutes),
        cost=action.cost,
        reason=reason,
        skill=skill,
        crew_size=crew_size,
        action=action.name,
    )


def _duration_units(minutes: int, unit_minutes: int) -> int:
    """Return a duration in whole plan units, rounded up and at least 1."""
    return max(1, math.ceil(minutes / unit_minutes))


def _with_published(
    plan: Plan,
    published: Schedule,
    now: datetime,
    unit: timedelta,
    freeze_minutes: int,
    first_operation: Mapping[str, int],
) -> Plan:
    """Return `plan` with the published schedule's freeze window fixed and the rest as reference."""
    freeze_units = _ceil_units(timedelta(minutes=freeze_minutes), unit)
    jobs = {job.id: job for job in plan.jobs}
    fixed = list(plan.fixed)
    fixed_keys = {(item.job, item.operation) for item in fixed}
    reference: list[OperationAssignment] = []

    for published_operation in sorted(published.operations, key=lambda item: item.start):
        job = jobs.get(published_operation.job_id)
        if job is None:
            continue
        index = published_operation.operation - first_operation[job.id]
        start = _ceil_units(published_operation.start - now, unit)
        if index < 0 or start < 0 or (job.id, index) in fixed_keys:
            continue
        if job.operations[index].duration_on(published_operation.machine_id) is None:
            continue

        assignment = OperationAssignment(job.id, index, published_operation.machine_id, start)
        reference.append(assignment)
        if start < freeze_units and _can_fix(plan, fixed, assignment):
            fixed.append(assignment)
            fixed_keys.add((job.id, index))

    maintained = {entry.machine for entry in plan.maintenance}
    windows: dict[str, WindowAssignment] = {}
    for window in published.maintenance_windows:
        start = _ceil_units(window.start - now, unit)
        if window.machine_id in maintained and start >= 0:
            windows.setdefault(window.machine_id, WindowAssignment(window.machine_id, start))

    frozen = len(fixed) - len(plan.fixed)
    logger.debug(
        "plan %r: %d operations frozen, %d in the reference", plan.name, frozen, len(reference)
    )
    return replace(
        plan,
        fixed=tuple(fixed),
        reference=tuple(reference),
        reference_windows=tuple(windows.values()),
    )


def _can_fix(plan: Plan, fixed: list[OperationAssignment], candidate: OperationAssignment) -> bool:
    """Return whether `candidate` can join `fixed` without making the plan invalid.

    The checks are those `Plan` applies to fixed operations: the job's earlier
    operations are fixed and end in time, the machine is free and up, and the deadline
    is not passed.
    """
    job = next(job for job in plan.jobs if job.id == candidate.job)
    end = plan.fixed_end(candidate)

    ready = max(job.release, 0)
    if candidate.operation > 0:
        previous = next(
            (
                item
                for item in fixed
                if (item.job, item.operation) == (candidate.job, candidate.operation - 1)
            ),
            None,
        )
        if previous is None:
            return False
        ready = plan.fixed_end(previous)
    if candidate.start < ready:
        return False

    for item in fixed:
        if item.machine == candidate.machine and (
            item.start < end and candidate.start < plan.fixed_end(item)
        ):
            return False
    for interval in plan.downtime:
        if interval.machine == candidate.machine and interval.overlaps(candidate.start, end):
            return False

    entry = plan.maintenance_by_machine().get(candidate.machine)
    return entry is None or entry.deadline is None or end <= entry.deadline


def to_schedule_event(
    solved: SolvedSchedule,
    plant_id: str,
    origin: datetime,
    unit_minutes: int,
    plan_version: str,
    model_versions: list[str],
    first_operation: Mapping[str, int] | None = None,
    freeze_minutes: int = 0,
) -> Schedule:
    """Convert a solver result on the unit grid back to wall-clock times.

    `first_operation` maps each job to the event-side index of the plan's operation 0.
    Jobs missing from it start at index 0.
    """
    offsets = first_operation or {}

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
                operation=op.operation + offsets.get(op.job, 0),
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
        freeze_until=origin + timedelta(minutes=freeze_minutes) if freeze_minutes > 0 else None,
    )


class SchedulerService:
    """A `RecordHandler` over plan, machine-state and maintenance events.

    `handle` updates the open plan and records re-plan triggers. The caller's poll loop
    calls `solve_and_publish()` whenever `due()` returns True. `clock` returns seconds for the
    debounce and is `time.monotonic` unless a test replaces it.
    """

    def __init__(
        self,
        producer: EventProducer,
        plant_id: str,
        policy: MaintenancePolicy,
        solver_settings: SolverSettings,
        unit_minutes: int = 60,
        debounce_s: float = 2.0,
        freeze_minutes: int = 60,
        max_wait_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        history: HistoryStore | None = None,
    ) -> None:
        if unit_minutes < 1:
            raise ValueError(f"unit_minutes={unit_minutes!r} must be at least 1")
        if freeze_minutes < 0:
            raise ValueError(f"freeze_minutes={freeze_minutes!r} must be >= 0")

        self.producer = producer
        self.plant_id = plant_id
        self.policy = policy
        self.solver_settings = solver_settings
        self.unit_minutes = unit_minutes
        self.debounce_s = debounce_s
        self.freeze_minutes = freeze_minutes
        self.max_wait_s = max_wait_s
        self.clock = clock
        self.history = history
        self.state = PlanState()
        self.last_published: Schedule | None = None
        self.last_plan: Plan | None = None
        self.last_solved: SolvedSchedule | None = None
        self.published_count = 0
        self._first_trigger_at: float | None = None
        self._last_trigger_at: float | None = None
        self._reasons: list[str] = []

    @property
    def pending_reasons(self) -> tuple[str, ...]:
        """Why a re-plan is pending, one entry per trigger since the last solve."""
        return tuple(self._reasons)

    def handle(self, records: list[DecodedRecord], dead_letters: DeadLetterSink) -> None:
        """Apply each event to the open plan, and store maintenance and operation events."""
        stored = []
        for record in records:
            try:
                self._apply(record.event)
            except ValueError as error:
                dead_letters.send_record(record, str(error))
                continue
            if isinstance(record.event, HISTORY_EVENTS):
                stored.append(record.event)
        if self.history is not None:
            self.history.write_events(stored)

    def flush(self) -> None:
        """Store pending history; schedules are sent as they are solved."""
        if self.history is not None:
            self.history.flush()

    def pending(self) -> bool:
        """True when a change arrived that no published schedule reflects yet."""
        return self._first_trigger_at is not None

    def due(self) -> bool:
        """True when a re-plan is pending and the debounce is over."""
        if self._first_trigger_at is None or self._last_trigger_at is None:
            return False
        now = self.clock()
        quiet = now - self._last_trigger_at >= self.debounce_s
        waited_long = now - self._first_trigger_at >= self.max_wait_s
        return quiet or waited_long

    def solve_if_due(self) -> Schedule | None:
        """Solve and publish when `due()`, and return the published schedule."""
        return self.solve_and_publish() if self.due() else None

    def plan_version(self) -> str:
        digest = hashlib.sha256(
            ",".join(sorted(self.state.jobs)).encode() + str(self.state.version).encode()
        ).hexdigest()
        return f"{self.state.version}-{digest[:8]}"

    def solve_and_publish(self) -> Schedule | None:
        """Solve the open plan now and publish the schedule; None when the plan is empty."""
        reasons = self._reasons
        self._first_trigger_at = self._last_trigger_at = None
        self._reasons = []
        if not self.state.jobs or self.state.clock is None:
            return None

        try:
            snapshot = snapshot_plan(
                self.state,
                self.policy,
                self.unit_minutes,
                name=self.plant_id,
                published=self.last_published,
                freeze_minutes=self.freeze_minutes,
            )
        except PlanError as error:
            # Only events that this module fails to reconcile lead here. Publishing
            # nothing keeps the last schedule in force, and the next trigger tries again.
            logger.error(
                "plant %s: no schedule published because the open plan is invalid: %s",
                self.plant_id,
                "; ".join(error.problems),
            )
            return None
        solved = solve(snapshot.plan, self.solver_settings)
        self.last_plan, self.last_solved = snapshot.plan, solved

        model_versions = sorted({s.model_version for s in self.state.machine_states.values()})
        event = to_schedule_event(
            solved,
            self.plant_id,
            snapshot.origin,
            self.unit_minutes,
            self.plan_version(),
            model_versions,
            snapshot.first_operation,
            self.freeze_minutes,
        )
        self.producer.send(SCHEDULE, self.plant_id, event)
        self.producer.flush()
        if self.history is not None:
            self.history.write_events([event])
            self.history.flush()
        self.last_published = event
        self.published_count += 1

        logger.info(
            "schedule %s published: %s, makespan %.0f min, %d maintenance windows, gap %s, "
            "%d fixed and %d changed operations, %d jobs waiting; re-planned for: %s",
            event.schedule_id,
            event.solver_status,
            event.kpis.makespan_minutes,
            event.kpis.maintenance_count,
            "n/a" if event.gap is None else f"{event.gap:.2%}",
            len(snapshot.plan.fixed),
            solved.changed_operations,
            len(snapshot.waiting_jobs),
            "; ".join(reasons) or "explicit request",
        )
        return event

    def _trigger(self, reason: str) -> None:
        now = self.clock()
        if self._first_trigger_at is None:
            self._first_trigger_at = now
        self._last_trigger_at = now
        self._reasons.append(reason)
        logger.info("re-plan requested: %s", reason)

    def _record_change(self, ts: datetime, reason: str | None) -> None:
        """Move the plan clock up to `ts`, count a new plan version and request a re-plan for `reason`.

        A `reason` of None changes the plan without requesting a re-plan.
        """
        self.state.advance_clock(ts)
        self.state.version += 1
        if reason is not None:
            self._trigger(reason)

    @functools.singledispatchmethod
    def _apply(self, event: object) -> None:
        """Update the open plan from `event` with the handler registered for its type.

        Events of other types leave the plan as it is.
        """

    @_apply.register
    def _job_released(self, event: JobReleased) -> None:
        state = self.state
        known = event.job_id in state.jobs
        if known:
            state.forget_job(event.job_id)
        state.jobs[event.job_id] = event
        self._record_change(event.ts, f"job {event.job_id} {'updated' if known else 'released'}")

    @_apply.register
    def _job_cancelled(self, event: JobCancelled) -> None:
        state = self.state
        if event.job_id not in state.jobs:
            raise ValueError(
                f"job {event.job_id} was cancelled but is not in the open plan; it was never "
                "released, already cancelled or already complete"
            )
        state.forget_job(event.job_id)
        self._record_change(event.ts, f"job {event.job_id} cancelled")

    def _check_operation(self, event: OperationStarted | OperationCompleted) -> None:
        job = self.state.jobs.get(event.job_id)
        if job is None or event.operation >= len(job.operations):
            raise ValueError(
                f"operation {event.operation} of job {event.job_id} is not in the open plan"
            )
        eligible = {option.machine_id for option in job.operations[event.operation].options}
        if event.machine_id not in eligible:
            raise ValueError(
                f"machine {event.machine_id} is not eligible for operation {event.operation} "
                f"of job {event.job_id}; eligible: {sorted(eligible)}"
            )

    @_apply.register
    def _operation_started(self, event: OperationStarted) -> None:
        self._check_operation(event)
        state = self.state
        key = (event.job_id, event.operation)

        for other_key, other in list(state.started.items()):
            if other.machine_id == event.machine_id and other_key != key:
                # A machine runs one operation at a time, so the earlier one has finished
                # even though its completion has not arrived (yet).
                logger.warning(
                    "operation %d of job %s started on %s, which still ran operation %d of "
                    "job %s; that one is taken as complete",
                    event.operation,
                    event.job_id,
                    event.machine_id,
                    other_key[1],
                    other_key[0],
                )
                self._complete(other_key)

        if event.machine_id in state.outages:
            logger.warning(
                "machine %s was reported down but started operation %d of job %s; it is "
                "taken as up",
                event.machine_id,
                event.operation,
                event.job_id,
            )
            del state.outages[event.machine_id]

        if event.operation > 0:
            self._complete((event.job_id, event.operation - 1))
        state.started[key] = event
        self._record_change(event.ts, self._deviation_from_published(event))

    def _deviation_from_published(self, event: OperationStarted) -> str | None:
        published = self.last_published
        if published is None:
            return None
        planned = next(
            (
                item
                for item in published.operations
                if (item.job_id, item.operation) == (event.job_id, event.operation)
            ),
            None,
        )
        label = f"operation {event.operation} of job {event.job_id}"
        if planned is None:
            return f"{label} started on {event.machine_id} but is not in the published schedule"
        if planned.machine_id != event.machine_id:
            return f"{label} started on {event.machine_id}, published on {planned.machine_id}"
        if abs(event.ts - planned.start) >= timedelta(minutes=self.unit_minutes):
            return (
                f"{label} started at {event.ts.isoformat()}, published for "
                f"{planned.start.isoformat()}"
            )
        return None

    @_apply.register
    def _operation_completed(self, event: OperationCompleted) -> None:
        self._check_operation(event)
        self._complete((event.job_id, event.operation))
        self._record_change(event.ts, None)

    def _complete(self, key: tuple[str, int]) -> None:
        state = self.state
        job_id, index = key
        state.completed.add(key)
        for earlier in range(index + 1):
            state.started.pop((job_id, earlier), None)
        if index + 1 >= len(state.jobs[job_id].operations):
            state.forget_job(job_id)

    @_apply.register
    def _machine_state(self, event: MachineState) -> None:
        state = self.state
        previous = state.machine_states.get(event.machine_id)
        state.machine_states[event.machine_id] = event
        state.advance_clock(event.ts)

        action = event.recommended_action
        previous_action = None if previous is None else previous.recommended_action
        if action is not None and action != previous_action:
            problem = self.policy.staffing_problem(action)
            if problem is not None:
                logger.warning(
                    "machine %s: recommended action %s cannot be staffed because %s; its "
                    "window goes to the %r crew",
                    event.machine_id,
                    action.name,
                    problem,
                    self.policy.default_skill,
                )

        threshold = self.policy.risk_threshold_cycles
        was_below = previous is not None and previous.rul.p10 < threshold
        if event.rul.p10 < threshold and not was_below:
            self._trigger(
                f"machine {event.machine_id} RUL p10 {event.rul.p10:.0f} cycles fell below the "
                f"risk threshold {threshold:g}"
            )

    @_apply.register
    def _machine_down(self, event: FailureReported) -> None:
        state = self.state
        until = (
            None
            if event.duration_minutes == 0
            else event.ts + timedelta(minutes=event.duration_minutes)
        )
        state.outages[event.machine_id] = Outage(
            since=event.ts, until=until, reason=f"down: {event.kind} failure"
        )
        # The repair restores the machine, so its last prediction no longer applies.
        state.machine_states.pop(event.machine_id, None)

        for key, started in list(state.started.items()):
            if started.machine_id == event.machine_id:
                logger.warning(
                    "operation %d of job %s was interrupted by the failure of %s and will be "
                    "planned again",
                    key[1],
                    key[0],
                    event.machine_id,
                )
                del state.started[key]

        until_text = "further notice" if until is None else until.isoformat()
        self._record_change(event.ts, f"machine {event.machine_id} down until {until_text}")

    @_apply.register
    def _machine_maintained(self, event: MaintenanceDone) -> None:
        state = self.state
        was_down = state.outages.pop(event.machine_id, None) is not None
        state.machine_states.pop(event.machine_id, None)
        self._record_change(
            event.ts, f"machine {event.machine_id} {'up' if was_down else 'maintained'}"
        )


def solver_settings_from(
    time_limit_s: float,
    workers: int,
    makespan: float,
    tardiness: float,
    maintenance_cost: float,
    changes: float = 1.0,
) -> SolverSettings:
    """Return solver settings with the given time limit, workers and objective weights."""
    return SolverSettings(
        time_limit_s=time_limit_s,
        workers=workers,
        weights=ObjectiveWeights(
            makespan=makespan,
            weighted_tardiness=tardiness,
            maintenance_cost=maintenance_cost,
            changes=changes,
        ),
    )
