"""Production plan data: machines, jobs and maintenance needs, free of any solver.

Times are integers counted from the plan's start, so t=0 is the moment the plan is
made. Every class validates itself at construction and raises `PlanError` with the
reasons, so a `Plan` that exists can always be handed to the solver.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any


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
    A maintenance window takes `duration` time units of the machine and one crew member,
    costs `cost`, and resets the machine's life for the rest of the plan.
    """

    machine: str
    deadline: int | None
    duration: int
    cost: float
    reason: str = ""

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

        if problems:
            raise PlanError(problems)


@dataclass(frozen=True)
class Plan:
    """A flexible job shop: machines, jobs and per-machine maintenance needs.

    `crew_size` is the number of maintenance windows that can run at the same time.
    Construction raises `PlanError` listing every problem it finds.
    """

    machines: tuple[str, ...]
    jobs: tuple[Job, ...]
    maintenance: tuple[MachineMaintenance, ...] = ()
    crew_size: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "machines", tuple(self.machines))
        object.__setattr__(self, "jobs", tuple(self.jobs))
        object.__setattr__(self, "maintenance", tuple(self.maintenance))

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

        if not _is_integer(self.crew_size) or self.crew_size < 1:
            problems.append(f"crew_size {self.crew_size!r} must be an integer >= 1")

        return problems

    def maintenance_by_machine(self) -> dict[str, MachineMaintenance]:
        """Return the maintenance entries keyed by machine name."""
        return {entry.machine: entry for entry in self.maintenance}

    @property
    def operation_count(self) -> int:
        """Number of operations over all jobs."""
        return sum(len(job.operations) for job in self.jobs)
