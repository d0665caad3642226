"""A dispatching-rule schedule, published when CP-SAT finds none within its time limit.

Fixed operations and downtime are placed first, exactly where the plan puts them. The
rule then builds the rest one operation at a time. Among the next operation of every
unfinished job, it places the one that can finish first on any of its eligible
machines, in the earliest gap of that machine that is long enough. Ties go to the
earlier due date, then to the job listed first in the plan.

If an operation would end past its machine's deadline and the machine has not been
maintained yet, the rule first puts the maintenance window in the earliest gap that the
machine has and in which the crew of the window's skill has enough people free. The operation follows the window. Every operation
placed on that machine before then ended by the deadline, and every later one either
does too or starts after the window. Only a machine with a downtime without end can
lack such a gap, and `Plan` guarantees every operation an eligible machine without one.
The rule therefore finds a schedule for every valid plan, though usually a much longer
one than CP-SAT.
"""

from __future__ import annotations

import bisect
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
    """The partial schedule: what each machine, job and crew is doing so far.

    `busy` lists each machine's occupied intervals sorted by start. The end of a
    downtime without end is infinity.
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.maintenance = plan.maintenance_by_machine()
        self.crews = plan.crew_capacity()
        self.busy: dict[str, list[tuple[float, float]]] = {machine: [] for machine in plan.machines}
        self.window_end: dict[str, int] = {}
        self.job_ready = [max(job.release, 0) for job in plan.jobs]
        self.next_operation = [0] * len(plan.jobs)
        self.operations: list[ScheduledOperation] = []
        self.windows: list[MaintenanceWindow] = []

        for interval in plan.downtime:
            end = math.inf if interval.end is None else interval.end
            bisect.insort(self.busy[interval.machine], (interval.start, end))

        job_indexes = {job.id: index for index, job in enumerate(plan.jobs)}
        for assignment in sorted(plan.fixed, key=lambda item: (item.job, item.operation)):
            end = plan.fixed_end(assignment)
            self._commit(
                job_indexes[assignment.job],
                _Placement(assignment.machine, assignment.start, end, window_start=None),
            )

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
                if placement is None:
                    continue
                key = (placement.end, due, job_index)
                if best is None or key < best[0]:
                    best = (key, job_index, placement)

        assert best is not None, "every unfinished job has a machine that is not down for good"
        _, job_index, placement = best
        self._commit(job_index, placement)

    def _earliest_placement(self, machine: str, duration: int, ready: int) -> _Placement | None:
        start = self._earliest_gap(machine, ready, duration)
        if start is None:
            return None

        entry = self.maintenance.get(machine)
        if entry is None or entry.deadline is None or start + duration <= entry.deadline:
            return _Placement(machine, start, start + duration, window_start=None)

        window_start: int | None = None
        if machine in self.window_end:
            earliest = self.window_end[machine]
        else:
            window_start = self._earliest_window(machine, entry)
            if window_start is None:
                return None
            earliest = window_start + entry.duration

        # The window, when new, ends by `earliest`, so it cannot collide with this gap.
        start = self._earliest_gap(machine, max(ready, earliest), duration)
        if start is None:
            return None
        return _Placement(machine, start, start + duration, window_start=window_start)

    def _earliest_gap(self, machine: str, earliest: float, duration: int) -> int | None:
        """Return the first start from `earliest` at which `machine` is free for `duration`."""
        start = earliest
        for busy_start, busy_end in self.busy[machine]:
            if start + duration <= busy_start:
                break
            start = max(start, busy_end)
        return None if math.isinf(start) else int(start)

    def _earliest_window(self, machine: str, entry: MachineMaintenance) -> int | None:
        """Return the first start at which `machine` and enough of its crew are free.

        Machine and crew use only change when an interval or window ends, so the first
        common slot starts at 0 or at one of those ends.
        """
        ends = {end for _, end in self.busy[machine] if not math.isinf(end)}
        ends |= {window.end for window in self.windows}
        for start in sorted({0} | {int(end) for end in ends if end > 0}):
            free_from = self._earliest_gap(machine, start, entry.duration)
            if free_from == start and self._crew_free(entry, start, start + entry.duration):
                return start
        return None

    def _crew_free(self, entry: MachineMaintenance, start: int, end: int) -> bool:
        """Return whether the crew of `entry.skill` has `entry.crew_size` people free throughout."""
        overlapping = [
            window
            for window in self.windows
            if window.start < end
            and start < window.end
            and self.maintenance[window.machine].skill == entry.skill
        ]
        free = self.crews[entry.skill] - entry.crew_size
        # The people in use reach their max at `start` or where an overlapping window starts.
        check_points = [start] + [w.start for w in overlapping if w.start > start]
        return all(
            sum(
                self.maintenance[w.machine].crew_size
                for w in overlapping
                if w.start <= point < w.end
            )
            <= free
            for point in check_points
        )

    def _commit(self, job_index: int, placement: _Placement) -> None:
        job = self.plan.jobs[job_index]
        operation_index = self.next_operation[job_index]

        if placement.window_start is not None:
            entry = self.maintenance[placement.machine]
            window = MaintenanceWindow(
                machine=placement.machine,
                start=placement.window_start,
                end=placement.window_start + entry.duration,
                reason=entry.window_reason,
            )
            self.windows.append(window)
            self.window_end[placement.machine] = window.end
            bisect.insort(self.busy[placement.machine], (window.start, window.end))

        self.operations.append(
            ScheduledOperation(
                job=job.id,
                operation=operation_index,
                machine=placement.machine,
                start=placement.start,
                end=placement.end,
            )
        )
        bisect.insort(self.busy[placement.machine], (placement.start, placement.end))
        self.job_ready[job_index] = placement.end
        self.next_operation[job_index] = operation_index + 1
