"""An independent feasibility check of a schedule against its plan.

The check reads only the plan and the schedule and shares no code with the CP-SAT
model or the dispatching rule, so it can catch mistakes in either.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from scheduler.plan import Operation, Plan
from scheduler.schedule import MaintenanceWindow, Schedule, ScheduledOperation


def check_schedule(plan: Plan, schedule: Schedule) -> list[str]:
    """Return one readable sentence per rule of `plan` that `schedule` breaks.

    An empty list means the schedule is feasible:

    - Every operation is scheduled exactly once, on an eligible machine and with that
      machine's duration.
    - It starts at or after time 0, its job's release and the end of the job's previous
      operation.
    - No machine runs two operations, or an operation and its maintenance window, at once.
    - Each machine has at most one window, of its maintenance duration.
    - No operation ends past its machine's maintenance deadline unless a window of that
      machine ends before the operation starts.
    - At no time do the windows that need one skill need more people than that skill's
      crew has, counting each window's `crew_size` from its machine's maintenance entry.
    - No operation or window runs on a machine while it is down.
    - Every fixed operation runs on its assigned machine from its assigned start.
    """
    violations: list[str] = []
    violations += _check_operations(plan, schedule.operations)
    violations += _check_job_order(plan, schedule.operations)
    violations += _check_windows(plan, schedule.maintenance)
    violations += _check_machine_overlap(schedule)
    violations += _check_deadlines(plan, schedule)
    violations += _check_crew(plan, schedule.maintenance)
    violations += _check_downtime(plan, schedule)
    violations += _check_fixed(plan, schedule.operations)
    return violations


def _label(job: str, operation: int) -> str:
    return f"job {job!r} operation {operation}"


def _check_operations(plan: Plan, operations: tuple[ScheduledOperation, ...]) -> list[str]:
    violations = []
    expected: dict[tuple[str, int], Operation] = {}
    releases = {job.id: max(job.release, 0) for job in plan.jobs}
    for job in plan.jobs:
        for index, operation in enumerate(job.operations):
            expected[(job.id, index)] = operation

    counts = Counter((item.job, item.operation) for item in operations)
    for key, count in counts.items():
        if count > 1:
            violations.append(f"{_label(*key)} is scheduled {count} times")
    for key in expected:
        if key not in counts:
            violations.append(f"{_label(*key)} is not scheduled")

    for item in operations:
        label = _label(item.job, item.operation)
        planned = expected.get((item.job, item.operation))
        if planned is None:
            violations.append(f"{label} is not in the plan")
            continue

        duration = planned.duration_on(item.machine)
        if duration is None:
            violations.append(
                f"{label} runs on {item.machine!r}, which is not one of its eligible machines "
                f"{list(planned.machines)}"
            )
        elif item.end - item.start != duration:
            violations.append(
                f"{label} runs from {item.start} to {item.end} on {item.machine!r}, but takes "
                f"{duration} there"
            )

        if item.start < releases[item.job]:
            violations.append(
                f"{label} starts at {item.start}, before the job's release "
                f"{releases[item.job]} (or time 0)"
            )
    return violations


def _check_job_order(plan: Plan, operations: tuple[ScheduledOperation, ...]) -> list[str]:
    violations = []
    by_key = {(item.job, item.operation): item for item in operations}

    for job in plan.jobs:
        for index in range(1, len(job.operations)):
            previous = by_key.get((job.id, index - 1))
            current = by_key.get((job.id, index))
            if previous is None or current is None:
                continue
            if current.start < previous.end:
                violations.append(
                    f"{_label(job.id, index)} starts at {current.start}, before operation "
                    f"{index - 1} of the job ends at {previous.end}"
                )
    return violations


def _check_windows(plan: Plan, windows: tuple[MaintenanceWindow, ...]) -> list[str]:
    violations = []
    entries = plan.maintenance_by_machine()

    for machine, count in Counter(window.machine for window in windows).items():
        if count > 1:
            violations.append(f"machine {machine!r} has {count} maintenance windows; at most 1")

    for window in windows:
        entry = entries.get(window.machine)
        if entry is None:
            violations.append(
                f"maintenance window on {window.machine!r} at {window.start}, but the plan has "
                "no maintenance entry for that machine"
            )
            continue
        if window.end - window.start != entry.duration:
            violations.append(
                f"maintenance window on {window.machine!r} runs from {window.start} to "
                f"{window.end}, but maintenance takes {entry.duration}"
            )
        if window.start < 0:
            violations.append(
                f"maintenance window on {window.machine!r} starts at {window.start}, before time 0"
            )
    return violations


def _machine_spans(schedule: Schedule) -> list[tuple[str, int, int, str]]:
    """Return machine, start, end and label of every operation and window of `schedule`."""
    spans = [
        (item.machine, item.start, item.end, _label(item.job, item.operation))
        for item in schedule.operations
    ]
    spans += [
        (window.machine, window.start, window.end, "its maintenance window")
        for window in schedule.maintenance
    ]
    return spans


def _check_machine_overlap(schedule: Schedule) -> list[str]:
    violations = []
    busy: dict[str, list[tuple[int, int, str]]] = defaultdict(list)
    for machine, start, end, label in _machine_spans(schedule):
        busy[machine].append((start, end, label))

    for machine, spans in busy.items():
        spans.sort()
        latest_end, latest_label = spans[0][1], spans[0][2]
        for start, end, label in spans[1:]:
            if start < latest_end:
                violations.append(
                    f"machine {machine!r} runs {label} from {start} while {latest_label} "
                    f"still runs until {latest_end}"
                )
            if end > latest_end:
                latest_end, latest_label = end, label
    return violations


def _check_deadlines(plan: Plan, schedule: Schedule) -> list[str]:
    violations = []
    entries = plan.maintenance_by_machine()
    window_ends = {window.machine: window.end for window in schedule.maintenance}

    for item in schedule.operations:
        entry = entries.get(item.machine)
        if entry is None or entry.deadline is None or item.end <= entry.deadline:
            continue

        window_end = window_ends.get(item.machine)
        if window_end is None or window_end > item.start:
            violations.append(
                f"{_label(item.job, item.operation)} ends at {item.end} on {item.machine!r}, "
                f"past the machine's maintenance deadline {entry.deadline}, and no maintenance "
                "window of that machine ends before it starts"
            )
    return violations


def _check_crew(plan: Plan, windows: tuple[MaintenanceWindow, ...]) -> list[str]:
    violations = []
    entries = plan.maintenance_by_machine()
    capacity = plan.crew_capacity()
    # Windows without a maintenance entry are reported by `_check_windows`.
    staffed = [window for window in windows if window.machine in entries]

    # The people busy with one skill can only rise when a window starts.
    for start in sorted({window.start for window in staffed}):
        running = [window for window in staffed if window.start <= start < window.end]
        by_skill: dict[str, list[MaintenanceWindow]] = defaultdict(list)
        for window in running:
            by_skill[entries[window.machine].skill].append(window)

        for skill, skill_windows in sorted(by_skill.items()):
            needed = sum(entries[window.machine].crew_size for window in skill_windows)
            available = capacity.get(skill, 0)
            if needed > available:
                machines = ", ".join(window.machine for window in skill_windows)
                violations.append(
                    f"{len(skill_windows)} maintenance windows need {needed} people with "
                    f"skill {skill!r} at time {start} ({machines}), but that crew has "
                    f"{available}"
                )
    return violations


def _check_downtime(plan: Plan, schedule: Schedule) -> list[str]:
    violations = []
    spans = _machine_spans(schedule)

    for interval in plan.downtime:
        until = "further notice" if interval.end is None else str(interval.end)
        for machine, start, end, label in spans:
            if machine == interval.machine and interval.overlaps(start, end):
                violations.append(
                    f"machine {machine!r} runs {label} from {start} to {end}, but it is down "
                    f"from {interval.start} until {until}"
                )
    return violations


def _check_fixed(plan: Plan, operations: tuple[ScheduledOperation, ...]) -> list[str]:
    violations = []
    by_key = {(item.job, item.operation): item for item in operations}

    for assignment in plan.fixed:
        item = by_key.get((assignment.job, assignment.operation))
        if item is None:
            continue
        if (item.machine, item.start) != (assignment.machine, assignment.start):
            violations.append(
                f"{_label(item.job, item.operation)} runs on {item.machine!r} from {item.start}, "
                f"but it is fixed on {assignment.machine!r} from {assignment.start}"
            )
    return violations
