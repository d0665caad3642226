"""Production plan data: machines, jobs and maintenance needs, free of any solver.

Times are integers counted from the plan's start, so t=0 is the moment the plan is
made. Every class validates itself at construction and raises `PlanError` with the
reasons, so a `Plan` that exists can always be handed to the solver.

Besides the work itself, a plan can carry what a rolling re-plan needs. It lists the
intervals in which machines are down and the operations fixed in place, such as started
ones and those inside the freeze window. It also contains the schedule now published,
which the stability term and the solver's starting point refer to.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

# The skill of maintenance entries and of the crew of plans that name none.
DEFAULT_SKILL = "maintenance"


class PlanError(ValueError):
    """An impossible or inconsistent plan, with one reason per problem found."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("invalid plan: " + "; ".join(problems))


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class OperationOption:
    """One machine that can run an operation, with the duration it needs there."""

    machine: str
    duration: int

    def __post_init__(self) -> None:
        if not _is_integer(self.duration) or self.duration <= 0:
            raise PlanError(
                [
                    f"operation option on machine {self.machine!r} has duration "
                    f"{self.duration!r}; durations must be positive integers"
                ]
            )


@dataclass(frozen=True)
class Operation:
    """A step of a job that runs on exactly one of its eligible machines."""

    options: tuple[OperationOption, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))

        if not self.options:
            raise PlanError(["operation has no eligible machine; give it at least one option"])

        repeated = [name for name, count in Counter(self.machines).items() if count > 1]
        if repeated:
            raise PlanError(
                [f"operation lists machine {repeated[0]!r} more than once; keep one duration"]
            )

    @property
    def machines(self) -> tuple[str, ...]:
        """Eligible machine names, in option order."""
        return tuple(option.machine for option in self.options)

    def duration_on(self, machine: str) -> int | None:
        """Return the duration on `machine`, or None when the machine is not eligible."""
        for option in self.options:
            if option.machine == machine:
                return option.duration
        return None


@dataclass(frozen=True)
class Job:
    """Operations that run in the given order, from `release` on, ideally done by `due`.

    A negative release means the job was released before the plan's start. Its
    operations still start at t=0 or later. `weight` scales the job's tardiness in the objective.
    """

    id: str
    operations: tuple[Operation, ...]
    release: int = 0
    due: int | None = None
    weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "operations", tuple(self.operations))
        problems: list[str] = []

        if not self.id:
            problems.append("job id is empty")
        if not self.operations:
            problems.append(f"job {self.id!r} has no operations")
        if not _is_integer(self.release):
            problems.append(f"job {self.id!r}: release {self.release!r} is not an integer")
        if self.due is not None and not _is_integer(self.due):
            problems.append(f"job {self.id!r}: due {self.due!r} is not an integer")
        elif self.due is not None and _is_integer(self.release) and self.due < self.release:
            problems.append(f"job {self.id!r}: due {self.due} is before release {self.release}")
        if not isinstance(self.weight, int | float) or not self.weight >= 0:
            problems.append(f"job {self.id!r}: weight {self.weight!r} must be a number >= 0")

        if problems:
            raise PlanError(problems)


@dataclass(frozen=True)
class MachineMaintenance:
    """A maintenance need for one machine, derived from its predicted remaining life.

    `deadline` is the time at which the machine's remaining useful life is used up, or
    None when there is no limit. A deadline <= 0 means the life is already used up.
    A maintenance window takes `duration` time units of the machine and `crew_size`
    people of the crew with `skill`, costs `cost`, and resets the machine's life for
    the rest of the plan. `action` names the maintenance action, and a window's reason
    starts with it.
    """

    machine: str
    deadline: int | None
    duration: int
    cost: float
    reason: str = ""
    skill: str = DEFAULT_SKILL
    crew_size: int = 1
    action: str = ""

    def __post_init__(self) -> None:
        problems: list[str] = []

        if self.deadline is not None and not _is_integer(self.deadline):
            problems.append(
                f"maintenance of {self.machine!r}: deadline {self.deadline!r} is not an integer"
            )
        if not _is_integer(self.duration) or self.duration <= 0:
            problems.append(
                f"maintenance of {self.machine!r}: duration {self.duration!r} must be a "
                "positive integer"
            )
        if not isinstance(self.cost, int | float) or not self.cost >= 0:
            problems.append(
                f"maintenance of {self.machine!r}: cost {self.cost!r} must be a number >= 0"
            )
        if not isinstance(self.skill, str) or not self.skill:
            problems.append(f"maintenance of {self.machine!r}: skill {self.skill!r} is empty")
        if not _is_integer(self.crew_size) or self.crew_size < 1:
            problems.append(
                f"maintenance of {self.machine!r}: crew_size {self.crew_size!r} must be an "
                "integer >= 1"
            )

        if problems:
            raise PlanError(problems)

    @property
    def window_reason(self) -> str:
        """The reason a window of this entry carries: the action name, then `reason`."""
        if self.action and self.reason:
            return f"{self.action}: {self.reason}"
        return self.action or self.reason


@dataclass(frozen=True)
class Crew:
    """`size` people with one `skill`; maintenance windows needing the skill share them."""

    skill: str
    size: int

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.skill, str) or not self.skill:
            problems.append(f"crew skill {self.skill!r} is empty")
        if not _is_integer(self.size) or self.size < 1:
            problems.append(f"crew {self.skill!r}: size {self.size!r} must be an integer >= 1")
        if problems:
            raise PlanError(problems)


@dataclass(frozen=True)
class MachineDowntime:
    """An interval in which `machine` runs nothing: a failure, a repair or a planned stop.

    The machine is unavailable from `start` up to `end`. An `end` of None means down
    until further notice, that is for the rest of the plan. A negative `start` means
    the machine went down before the plan's start.
    """

    machine: str
    start: int
    end: int | None
    reason: str = ""

    def __post_init__(self) -> None:
        problems: list[str] = []

        if not _is_integer(self.start):
            problems.append(f"downtime of {self.machine!r}: start {self.start!r} is not an integer")
        if self.end is not None and not _is_integer(self.end):
            problems.append(f"downtime of {self.machine!r}: end {self.end!r} is not an integer")
        elif self.end is not None and _is_integer(self.start) and self.end <= self.start:
            problems.append(
                f"downtime of {self.machine!r}: end {self.end} is not after start {self.start}"
            )

        if problems:
            raise PlanError(problems)

    def overlaps(self, start: int, end: int) -> bool:
        """True when the machine is down at some time in [start, end)."""
        return self.start < end and (self.end is None or start < self.end)


@dataclass(frozen=True)
class OperationAssignment:
    """Operation number `operation` (0-based) of job `job`, on `machine` from `start`."""

    job: str
    operation: int
    machine: str
    start: int

    def __post_init__(self) -> None:
        if not _is_integer(self.operation) or not _is_integer(self.start):
            raise PlanError(
                [
                    f"assignment of job {self.job!r}: operation {self.operation!r} and start "
                    f"{self.start!r} must be integers"
                ]
            )

    @property
    def label(self) -> str:
        return f"job {self.job!r} operation {self.operation}"


@dataclass(frozen=True)
class WindowAssignment:
    """A maintenance window of `machine` that starts at `start`."""

    machine: str
    start: int

    def __post_init__(self) -> None:
        if not _is_integer(self.start):
            raise PlanError(
                [f"window assignment of {self.machine!r}: start {self.start!r} is not an integer"]
            )


@dataclass(frozen=True)
class Plan:
    """A flexible job shop: machines, jobs and per-machine maintenance needs.

    `crews` lists the maintenance crews, one per skill. The windows that need a skill
    share its crew: at any time their `crew_size` sum is at most the crew's size. A plan
    without `crews` has one crew of skill `DEFAULT_SKILL` with `crew_size` people, so
    with one-person entries `crew_size` windows can run at the same time. A plan with
    `crews` must leave `crew_size` at 1.

    The remaining fields describe a re-plan and are empty for a fresh plan:

    - `downtime`: intervals in which a machine runs neither operations nor windows.
    - `fixed`: operations that must run exactly as assigned, such as started ones and
      those inside the freeze window. The fixed operations of a job are its first ones,
      and none may end past its machine's maintenance deadline, since no window can be
      placed in front of work that must not move.
    - `reference` and `reference_windows`: the schedule now published. The stability
      objective term counts the operations that differ from `reference`, and the solver
      starts its search from both.

    Construction raises `PlanError` listing every problem it finds.
    """

    machines: tuple[str, ...]
    jobs: tuple[Job, ...]
    maintenance: tuple[MachineMaintenance, ...] = ()
    crew_size: int = 1
    name: str = ""
    downtime: tuple[MachineDowntime, ...] = ()
    crews: tuple[Crew, ...] = ()
    fixed: tuple[OperationAssignment, ...] = ()
    reference: tuple[OperationAssignment, ...] = ()
    reference_windows: tuple[WindowAssignment, ...] = ()

    def __post_init__(self) -> None:
        for name in (
            "machines",
            "jobs",
            "maintenance",
            "crews",
            "downtime",
            "fixed",
            "reference",
            "reference_windows",
        ):
            object.__setattr__(self, name, tuple(getattr(self, name)))

        problems = self.find_problems()
        if problems:
            raise PlanError(problems)

    def find_problems(self) -> list[str]:
        """Return the reasons this plan cannot be scheduled, empty when there are none.

        Problems inside a single option, operation, job or maintenance entry are already
        rejected when that object is built. This checks how the parts fit together.
        """
        problems: list[str] = []
        known = set(self.machines)

        if not self.machines:
            problems.append("plan has no machines")
        if any(not machine for machine in self.machines):
            problems.append("a machine name is empty")
        for machine, count in Counter(self.machines).items():
            if count > 1:
                problems.append(f"machine {machine!r} is listed {count} times")

        for job_id, count in Counter(job.id for job in self.jobs).items():
            if count > 1:
                problems.append(f"job id {job_id!r} is used by {count} jobs")

        for job in self.jobs:
            for index, operation in enumerate(job.operations):
                for machine in operation.machines:
                    if machine not in known:
                        problems.append(
                            f"job {job.id!r} operation {index}: machine {machine!r} is not "
                            "one of the plan's machines"
                        )

        for entry in self.maintenance:
            if entry.machine not in known:
                problems.append(
                    f"maintenance names machine {entry.machine!r}, which is not one of the "
                    "plan's machines"
                )
        for machine, count in Counter(entry.machine for entry in self.maintenance).items():
            if count > 1:
                problems.append(f"machine {machine!r} has {count} maintenance entries; give it one")

        problems += _crew_problems(self)
        problems += _downtime_problems(self)
        if not problems:
            # The assignment checks look operations and machines up, so they run only on a
            # plan whose jobs and machines are consistent.
            problems += _fixed_problems(self)
            problems += _reference_problems(self)
        return problems

    def crew_capacity(self) -> dict[str, int]:
        """Return the people of each skill: `crews`, or the default crew when it is empty."""
        if self.crews:
            return {crew.skill: crew.size for crew in self.crews}
        return {DEFAULT_SKILL: self.crew_size}

    def maintenance_by_machine(self) -> dict[str, MachineMaintenance]:
        """Return the maintenance entries keyed by machine name."""
        return {entry.machine: entry for entry in self.maintenance}

    def downtime_by_machine(self) -> dict[str, list[MachineDowntime]]:
        """Return the downtime intervals of each machine that has any, sorted by start."""
        by_machine: dict[str, list[MachineDowntime]] = defaultdict(list)
        for interval in sorted(self.downtime, key=lambda item: item.start):
            by_machine[interval.machine].append(interval)
        return dict(by_machine)

    def fixed_end(self, assignment: OperationAssignment) -> int:
        """Return the end of an assignment of one of this plan's operations."""
        job = next(job for job in self.jobs if job.id == assignment.job)
        duration = job.operations[assignment.operation].duration_on(assignment.machine)
        if duration is None:
            raise KeyError(f"{assignment.label} cannot run on {assignment.machine!r}")
        return assignment.start + duration

    @property
    def operation_count(self) -> int:
        """Number of operations over all jobs."""
        return sum(len(job.operations) for job in self.jobs)


def _crew_problems(plan: Plan) -> list[str]:
    """Check the crews, and that each maintenance entry's skill has a crew large enough."""
    problems: list[str] = []

    if not _is_integer(plan.crew_size) or plan.crew_size < 1:
        problems.append(f"crew_size {plan.crew_size!r} must be an integer >= 1")
        return problems
    if plan.crews and plan.crew_size != 1:
        problems.append(
            f"crew_size {plan.crew_size} is given together with crews; add those people as a "
            f"crew of skill {DEFAULT_SKILL!r} instead"
        )
    for skill, count in Counter(crew.skill for crew in plan.crews).items():
        if count > 1:
            problems.append(f"crew skill {skill!r} is listed {count} times; give it one crew")

    capacity = plan.crew_capacity()
    for entry in plan.maintenance:
        size = capacity.get(entry.skill)
        if size is None:
            problems.append(
                f"maintenance of {entry.machine!r} needs skill {entry.skill!r}, but no crew "
                f"has it (crews: {sorted(capacity)}); add a crew with that skill"
            )
        elif entry.crew_size > size:
            problems.append(
                f"maintenance of {entry.machine!r} needs {entry.crew_size} people with skill "
                f"{entry.skill!r}, but that crew has {size}"
            )
    return problems


def _downtime_problems(plan: Plan) -> list[str]:
    problems: list[str] = []
    known = set(plan.machines)
    down_for_good = {item.machine for item in plan.downtime if item.end is None}

    for interval in plan.downtime:
        if interval.machine not in known:
            problems.append(
                f"downtime names machine {interval.machine!r}, which is not one of the "
                "plan's machines"
            )

    for job in plan.jobs:
        for index, operation in enumerate(job.operations):
            if set(operation.machines) <= down_for_good:
                problems.append(
                    f"job {job.id!r} operation {index}: every eligible machine "
                    f"{list(operation.machines)} has a downtime without end, so the operation "
                    "may find no time to run; give the downtime an end or leave the job out"
                )
    return problems


def _assignment_problem(plan: Plan, assignment: OperationAssignment, kind: str) -> str | None:
    """Return why `assignment` names no eligible machine of an operation of `plan`, or None."""
    job = next((job for job in plan.jobs if job.id == assignment.job), None)
    if job is None:
        return f"{kind} assignment names job {assignment.job!r}, which is not in the plan"
    if not 0 <= assignment.operation < len(job.operations):
        return (
            f"{kind} assignment of {assignment.label}: the job has operations 0 to "
            f"{len(job.operations) - 1}"
        )
    if job.operations[assignment.operation].duration_on(assignment.machine) is None:
        return (
            f"{kind} assignment of {assignment.label}: machine {assignment.machine!r} is not "
            "eligible"
        )
    return None


def _fixed_problems(plan: Plan) -> list[str]:
    problems: list[str] = []
    valid: list[OperationAssignment] = []

    for assignment in plan.fixed:
        problem = _assignment_problem(plan, assignment, "fixed")
        if problem is not None:
            problems.append(problem)
        else:
            valid.append(assignment)

    for key, count in Counter((item.job, item.operation) for item in valid).items():
        if count > 1:
            problems.append(f"job {key[0]!r} operation {key[1]} is fixed {count} times")
    if problems:
        return problems

    problems += _fixed_job_problems(plan, valid)
    problems += _fixed_machine_problems(plan, valid)
    return problems


def _fixed_job_problems(plan: Plan, fixed: list[OperationAssignment]) -> list[str]:
    """Check that fixed operations start each job, in order and after its release."""
    problems: list[str] = []
    by_key = {(item.job, item.operation): item for item in fixed}

    for job in plan.jobs:
        ready = max(job.release, 0)
        for index in range(len(job.operations)):
            assignment = by_key.get((job.id, index))
            if assignment is None:
                later = [item.operation for item in fixed if item.job == job.id]
                if any(operation > index for operation in later):
                    problems.append(
                        f"job {job.id!r} operation {max(later)} is fixed but operation {index} "
                        "is not; fix a job's operations from its first one on"
                    )
                break

            if assignment.start < ready:
                problems.append(
                    f"fixed {assignment.label} starts at {assignment.start}, before the job's "
                    f"release or its previous operation ends at {ready}"
                )
            ready = plan.fixed_end(assignment)
    return problems


def _fixed_machine_problems(plan: Plan, fixed: list[OperationAssignment]) -> list[str]:
    """Check that fixed operations share no machine time, with each other or downtime."""
    problems: list[str] = []
    deadlines = {entry.machine: entry.deadline for entry in plan.maintenance}
    downtime = plan.downtime_by_machine()

    by_machine: dict[str, list[OperationAssignment]] = defaultdict(list)
    for assignment in sorted(fixed, key=lambda item: item.start):
        by_machine[assignment.machine].append(assignment)

    for machine, assignments in by_machine.items():
        previous: OperationAssignment | None = None
        for assignment in assignments:
            end = plan.fixed_end(assignment)
            if previous is not None and assignment.start < plan.fixed_end(previous):
                problems.append(
                    f"fixed {assignment.label} starts at {assignment.start} on {machine!r} "
                    f"while fixed {previous.label} runs there until {plan.fixed_end(previous)}"
                )
            previous = assignment

            for interval in downtime.get(machine, []):
                if interval.overlaps(assignment.start, end):
                    problems.append(
                        f"fixed {assignment.label} runs on {machine!r} from {assignment.start} "
                        f"to {end}, while the machine is down from {interval.start}"
                    )

            deadline = deadlines.get(machine)
            if deadline is not None and end > deadline:
                problems.append(
                    f"fixed {assignment.label} ends at {end} on {machine!r}, past the "
                    f"machine's maintenance deadline {deadline}; unfix it or move the deadline"
                )
    return problems


def _reference_problems(plan: Plan) -> list[str]:
    problems: list[str] = []
    valid: list[OperationAssignment] = []

    for assignment in plan.reference:
        problem = _assignment_problem(plan, assignment, "reference")
        if problem is not None:
            problems.append(problem)
        elif assignment.start < 0:
            problems.append(
                f"reference assignment of {assignment.label} starts at {assignment.start}, "
                "before time 0"
            )
        else:
            valid.append(assignment)

    for key, count in Counter((item.job, item.operation) for item in valid).items():
        if count > 1:
            problems.append(f"job {key[0]!r} operation {key[1]} has {count} reference assignments")

    maintained = {entry.machine for entry in plan.maintenance}
    for window in plan.reference_windows:
        if window.machine not in maintained:
            problems.append(
                f"reference window on {window.machine!r}, which has no maintenance entry"
            )
        if window.start < 0:
            problems.append(
                f"reference window on {window.machine!r} starts at {window.start}, before time 0"
            )
    for machine, count in Counter(window.machine for window in plan.reference_windows).items():
        if count > 1:
            problems.append(f"machine {machine!r} has {count} reference windows; at most 1")
    return problems
