"""A dispatching-rule schedule, published when CP-SAT finds none within its time limit.

The rule builds the schedule one operation at a time. Among the next operation of every
unfinished job, it places the one that can finish first on any of its eligible
machines, appended after whatever that machine already runs. Ties go to the earlier due
date, then to the job listed first in the plan.

If an operation would end past its machine's deadline and the machine has not been
maintained yet, the rule inserts the maintenance window first: right after the
machine's last operation, or later if the crew is busy. Until that point every
operation on the machine ended by the deadline, so the window starts by the deadline
whenever the crew is free. The rule therefore finds a schedule for every valid plan,
though usually a much longer one than CP-SAT.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from scheduler.plan import MachineMaintenance, Plan
from scheduler.schedule import MaintenanceWindow, Schedule, ScheduledOperation


@dataclass(frozen=True)
class _Placement:
    machine: str
    start: int
    end: int
    window_start: int | None


def dispatch_schedule(plan: Plan) -> Schedule:
    """Schedule `plan` with the earliest-finish-time rule and return it as "fallback".

    The returned schedule has no objective or bound, because the rule does not know the
    objective weights. `solve` fills them in when it publishes this schedule.
    """
    started = time.perf_counter()
    builder = _DispatchBuilder(plan)

    while not builder.done:
        builder.place_next()

    return Schedule.from_assignment(
        plan,
        builder.operations,
        builder.windows,
        status="fallback",
        objective=None,
        bound=None,
        solve_seconds=time.perf_counter() - started,
    )


class _DispatchBuilder:
    """The partial schedule: what each machine, job and the crew is doing so far."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.maintenance = plan.maintenance_by_machine()
        self.machine_free = dict.fromkeys(plan.machines, 0)
        self.maintained: set[str] = set()
        self.job_ready = [max(job.release, 0) for job in plan.jobs]
        self.next_operation = [0] * len(plan.jobs)
        self.operations: list[ScheduledOperation] = []
        self.windows: list[MaintenanceWindow] = []

    @property
    def done(self) -> bool:
        return all(
            next_index == len(job.operations)
            for next_index, job in zip(self.next_operation, self.plan.jobs, strict=True)
        )

    def place_next(self) -> None:
        best: tuple[tuple[float, ...], int, _Placement] | None = None

        for job_index, job in enumerate(self.plan.jobs):
            operation_index = self.next_operation[job_index]
            if operation_index == len(job.operations):
                continue

            due = math.inf if job.due is None else job.due
            for option in job.operations[operation_index].options:
                placement = self._earliest_placement(
                    option.machine, option.duration, self.job_ready[job_index]
                )
                key = (placement.end, due, job_index)
                if best is None or key < best[0]:
                    best = (key, job_index, placement)

        assert best is not None, "place_next called on a finished schedule"
        _, job_index, placement = best
        self._commit(job_index, placement)

    def _earliest_placement(self, machine: str, duration: int, ready: int) -> _Placement:
        start = max(ready, self.machine_free[machine])
        entry = self.maintenance.get(machine)
        if not self._needs_maintenance(entry, start + duration):
            return _Placement(machine, start, start + duration, window_start=None)

        assert entry is not None
        window_start = self._earliest_crew_slot(self.machine_free[machine], entry.duration)
        start = max(ready, window_start + entry.duration)
        return _Placement(machine, start, start + duration, window_start=window_start)

    def _needs_maintenance(self, entry: MachineMaintenance | None, end: int) -> bool:
        if entry is None or entry.deadline is None or entry.machine in self.maintained:
            return False
        return end > entry.deadline

    def _earliest_crew_slot(self, earliest: int, duration: int) -> int:
        """Return the first time from `earliest` at which a crew member is free for `duration`.

        Crew use only changes when a window starts or ends, so the first free slot starts
        at `earliest` or at the end of some window.
        """
        candidates = sorted({earliest} | {w.end for w in self.windows if w.end > earliest})
        for start in candidates:
            if self._crew_free(start, start + duration):
                return start
        raise AssertionError("the end of the last window always has a free crew member")

    def _crew_free(self, start: int, end: int) -> bool:
        overlapping = [w for w in self.windows if w.start < end and start < w.end]
        # The crew in use is highest at `start` or at the start of an overlapping window.
        check_points = [start] + [w.start for w in overlapping if w.start > start]
        return all(
            sum(1 for w in overlapping if w.start <= point < w.end) < self.plan.crew_size
            for point in check_points
        )

    def _commit(self, job_index: int, placement: _Placement) -> None:
        job = self.plan.jobs[job_index]
        operation_index = self.next_operation[job_index]

        if placement.window_start is not None:
            entry = self.maintenance[placement.machine]
            self.windows.append(
                MaintenanceWindow(
                    machine=placement.machine,
                    start=placement.window_start,
                    end=placement.window_start + entry.duration,
                    reason=entry.reason,
                )
            )
            self.maintained.add(placement.machine)

        self.operations.append(
            ScheduledOperation(
                job=job.id,
                operation=operation_index,
                machine=placement.machine,
                start=placement.start,
                end=placement.end,
            )
        )
        self.machine_free[placement.machine] = placement.end
        self.job_ready[job_index] = placement.end
        self.next_operation[job_index] = operation_index + 1
