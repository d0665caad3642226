"""Schedule data returned by the solver or the dispatching rule, free of any solver."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

from scheduler.plan import Plan

ScheduleStatus = Literal["optimal", "feasible", "fallback", "infeasible"]


@dataclass(frozen=True)
class ScheduledOperation:
    """Operation number `operation` (0-based) of job `job`, placed on a machine."""

    job: str
    operation: int
    machine: str
    start: int
    end: int


@dataclass(frozen=True)
class MaintenanceWindow:
    """A planned maintenance of `machine` that resets its remaining useful life."""

    machine: str
    start: int
    end: int
    reason: str


@dataclass(frozen=True)
class Schedule:
    """A solved plan with its solver status and key figures.

    `status` is one of:

    - "optimal": CP-SAT proved that no better schedule exists.
    - "feasible": CP-SAT's best schedule within the time limit. `bound` and `gap` limit
      how far from optimal it can be.
    - "fallback": CP-SAT found no schedule in time, so this one comes from the
      dispatching rule.
    - "infeasible": no schedule at all. Either CP-SAT proved that none exists, or neither
      CP-SAT within the time limit nor the dispatching rule found one. The operation
      and maintenance lists are empty.

    `objective` and `bound` are in the units of the weighted objective. `gap` is
    (objective - bound) / max(|objective|, 1). `makespan` is the latest operation end;
    maintenance windows do not count towards it. `changed_operations` counts the
    operations of the plan's reference that run on another machine or start at another
    time here.
    """

    operations: tuple[ScheduledOperation, ...]
    maintenance: tuple[MaintenanceWindow, ...]
    status: ScheduleStatus
    objective: float | None
    bound: float | None
    gap: float | None
    solve_seconds: float
    makespan: int
    total_weighted_tardiness: float
    maintenance_count: int
    maintenance_cost: float
    changed_operations: int = 0

    @classmethod
    def from_assignment(
        cls,
        plan: Plan,
        operations: Iterable[ScheduledOperation],
        maintenance: Iterable[MaintenanceWindow],
        *,
        status: ScheduleStatus,
        objective: float | None,
        bound: float | None,
        solve_seconds: float,
    ) -> Schedule:
        """Build a schedule and compute its key figures from the plan.

        Operations are sorted by start, machine and job, and windows by start and
        machine, so equal assignments give equal schedules.
        """
        sorted_operations = tuple(
            sorted(operations, key=lambda item: (item.start, item.machine, item.job))
        )
        sorted_windows = tuple(sorted(maintenance, key=lambda item: (item.start, item.machine)))
        costs = {entry.machine: entry.cost for entry in plan.maintenance}

        return cls(
            operations=sorted_operations,
            maintenance=sorted_windows,
            status=status,
            objective=objective,
            bound=bound,
            gap=relative_gap(objective, bound),
            solve_seconds=solve_seconds,
            makespan=max((item.end for item in sorted_operations), default=0),
            total_weighted_tardiness=weighted_tardiness(plan, sorted_operations),
            maintenance_count=len(sorted_windows),
            maintenance_cost=float(sum(costs.get(item.machine, 0.0) for item in sorted_windows)),
            changed_operations=changed_operations(plan, sorted_operations),
        )

    @classmethod
    def empty(cls, status: ScheduleStatus, solve_seconds: float) -> Schedule:
        """Return a schedule without operations, used for the "infeasible" status."""
        return cls(
            operations=(),
            maintenance=(),
            status=status,
            objective=None,
            bound=None,
            gap=None,
            solve_seconds=solve_seconds,
            makespan=0,
            total_weighted_tardiness=0.0,
            maintenance_count=0,
            maintenance_cost=0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the schedule as plain lists, numbers and strings, ready for `json.dumps`."""
        result = asdict(self)
        result["operations"] = [asdict(item) for item in self.operations]
        result["maintenance"] = [asdict(item) for item in self.maintenance]
        return result


def weighted_tardiness(plan: Plan, operations: Iterable[ScheduledOperation]) -> float:
    """Return the sum over jobs with a due date of weight * max(0, completion - due).

    A job's completion is the latest end of its scheduled operations.
    """
    completion: dict[str, int] = {}
    for item in operations:
        completion[item.job] = max(completion.get(item.job, item.end), item.end)

    total = 0.0
    for job in plan.jobs:
        if job.due is None or job.id not in completion:
            continue
        total += job.weight * max(0, completion[job.id] - job.due)
    return total


def changed_operations(plan: Plan, operations: Iterable[ScheduledOperation]) -> int:
    """Return how many of the plan's reference assignments `operations` do not keep.

    An assignment is kept when its operation runs on the same machine from the same start.
    """
    placed = {(item.job, item.operation): (item.machine, item.start) for item in operations}
    return sum(
        1
        for assignment in plan.reference
        if placed.get((assignment.job, assignment.operation))
        != (assignment.machine, assignment.start)
    )


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """Return (objective - bound) / max(|objective|, 1), or None when either is missing."""
    if objective is None or bound is None:
        return None
    return max(0.0, objective - bound) / max(abs(objective), 1.0)
