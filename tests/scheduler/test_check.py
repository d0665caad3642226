"""The independent feasibility check: it accepts valid schedules and names each violation."""

from __future__ import annotations

import dataclasses

import pytest

from scheduler import (
    Job,
    MachineDowntime,
    MachineMaintenance,
    MaintenanceWindow,
    Operation,
    OperationAssignment,
    OperationOption,
    Plan,
    Schedule,
    ScheduledOperation,
    check_schedule,
)
from tests.scheduler.plans import skilled_crew_plan

PLAN = Plan(
    machines=("M1", "M2"),
    jobs=(
        Job(
            "J1",
            (
                Operation((OperationOption("M1", 3), OperationOption("M2", 5))),
                Operation((OperationOption("M2", 2),)),
            ),
        ),
        Job("J2", (Operation((OperationOption("M1", 4),)),), release=2),
    ),
    maintenance=(
        MachineMaintenance("M1", deadline=5, duration=2, cost=1.0),
        MachineMaintenance("M2", deadline=0, duration=1, cost=1.0),
    ),
    crew_size=1,
)

# J1 runs on M1 at 0-3 and on M2 at 3-5. M1 is maintained at 3-5, before J2 runs past
# M1's deadline 5 at 5-9. M2 (deadline 0) is maintained at 0-1, before J1's second step.
VALID_OPERATIONS = (
    ScheduledOperation("J1", 0, "M1", 0, 3),
    ScheduledOperation("J1", 1, "M2", 3, 5),
    ScheduledOperation("J2", 0, "M1", 5, 9),
)
VALID_WINDOWS = (
    MaintenanceWindow("M2", 0, 1, ""),
    MaintenanceWindow("M1", 3, 5, ""),
)


def schedule_of(
    operations: tuple[ScheduledOperation, ...] = VALID_OPERATIONS,
    windows: tuple[MaintenanceWindow, ...] = VALID_WINDOWS,
) -> Schedule:
    return Schedule.from_assignment(
        PLAN, operations, windows, status="feasible", objective=None, bound=None, solve_seconds=0
    )


def replace_operation(index: int, **changes: object) -> tuple[ScheduledOperation, ...]:
    operations = list(VALID_OPERATIONS)
    operations[index] = dataclasses.replace(operations[index], **changes)  # type: ignore[arg-type]
    return tuple(operations)


def test_valid_schedule_has_no_violations() -> None:
    schedule = schedule_of()

    assert check_schedule(PLAN, schedule) == []
    assert schedule.makespan == 9
    assert schedule.maintenance_cost == 2.0


def test_missing_operation_is_reported() -> None:
    violations = check_schedule(PLAN, schedule_of(VALID_OPERATIONS[:2]))

    assert violations == ["job 'J2' operation 0 is not scheduled"]


def test_duplicate_operation_is_reported() -> None:
    operations = (*VALID_OPERATIONS, ScheduledOperation("J2", 0, "M1", 9, 13))

    assert "job 'J2' operation 0 is scheduled 2 times" in check_schedule(
        PLAN, schedule_of(operations)
    )


def test_unknown_operation_is_reported() -> None:
    operations = (*VALID_OPERATIONS, ScheduledOperation("J9", 0, "M1", 9, 13))

    assert "job 'J9' operation 0 is not in the plan" in check_schedule(
        PLAN, schedule_of(operations)
    )


def test_ineligible_machine_is_reported() -> None:
    operations = replace_operation(1, machine="M1", start=9, end=11)

    violations = check_schedule(PLAN, schedule_of(operations))

    assert (
        "job 'J1' operation 1 runs on 'M1', which is not one of its eligible machines ['M2']"
        in violations
    )


def test_wrong_duration_is_reported() -> None:
    operations = replace_operation(0, end=2)

    violations = check_schedule(PLAN, schedule_of(operations))

    assert violations == ["job 'J1' operation 0 runs from 0 to 2 on 'M1', but takes 3 there"]


def test_start_before_release_is_reported() -> None:
    operations = replace_operation(2, machine="M1", start=1, end=5)
    windows = (VALID_WINDOWS[0], MaintenanceWindow("M1", 5, 7, ""))

    violations = check_schedule(PLAN, schedule_of(operations, windows))

    assert "job 'J2' operation 0 starts at 1, before the job's release 2 (or time 0)" in violations


def test_broken_job_order_is_reported() -> None:
    operations = replace_operation(1, start=2, end=4)

    violations = check_schedule(PLAN, schedule_of(operations))

    assert "job 'J1' operation 1 starts at 2, before operation 0 of the job ends at 3" in violations


def test_machine_overlap_is_reported() -> None:
    operations = replace_operation(2, start=4, end=8)

    violations = check_schedule(PLAN, schedule_of(operations))

    assert (
        "machine 'M1' runs job 'J2' operation 0 from 4 while its maintenance window still "
        "runs until 5"
    ) in violations


def test_deadline_without_window_is_reported() -> None:
    violations = check_schedule(PLAN, schedule_of(windows=VALID_WINDOWS[:1]))

    assert violations == [
        "job 'J2' operation 0 ends at 9 on 'M1', past the machine's maintenance deadline 5, "
        "and no maintenance window of that machine ends before it starts"
    ]


def test_passed_deadline_without_window_is_reported() -> None:
    violations = check_schedule(PLAN, schedule_of(windows=VALID_WINDOWS[1:]))

    assert violations == [
        "job 'J1' operation 1 ends at 5 on 'M2', past the machine's maintenance deadline 0, "
        "and no maintenance window of that machine ends before it starts"
    ]


def test_window_after_late_operation_is_reported() -> None:
    windows = (VALID_WINDOWS[0], MaintenanceWindow("M1", 9, 11, ""))

    violations = check_schedule(PLAN, schedule_of(windows=windows))

    assert len(violations) == 1
    assert violations[0].startswith("job 'J2' operation 0 ends at 9 on 'M1', past the machine's")


def test_crew_overload_is_reported() -> None:
    operations = replace_operation(1, start=4, end=6)
    windows = (MaintenanceWindow("M2", 3, 4, ""), MaintenanceWindow("M1", 3, 5, ""))

    violations = check_schedule(PLAN, schedule_of(operations, windows))

    assert violations == [
        "2 maintenance windows need 2 people with skill 'maintenance' at time 3 (M1, M2), "
        "but that crew has 1"
    ]


def overlapping_electrician_windows(plan: Plan) -> Schedule:
    """Start the windows of A, B and C at 0, and every job after its machine's window."""
    operations = (
        ScheduledOperation("JA", 0, "A", 4, 6),
        ScheduledOperation("JB", 0, "B", 3, 5),
        ScheduledOperation("JC", 0, "C", 5, 7),
    )
    windows = (
        MaintenanceWindow("A", 0, 4, ""),
        MaintenanceWindow("B", 0, 3, ""),
        MaintenanceWindow("C", 0, 5, ""),
    )
    return Schedule.from_assignment(
        plan, operations, windows, status="feasible", objective=None, bound=None, solve_seconds=0
    )


@pytest.mark.parametrize(
    ("electricians", "people_per_window", "expected"),
    [
        (2, 1, []),
        (
            1,
            1,
            [
                "2 maintenance windows need 2 people with skill 'electrician' at time 0 "
                "(A, B), but that crew has 1"
            ],
        ),
        (
            2,
            2,
            [
                "2 maintenance windows need 4 people with skill 'electrician' at time 0 "
                "(A, B), but that crew has 2"
            ],
        ),
    ],
)
def test_crew_of_each_skill_is_checked(
    electricians: int, people_per_window: int, expected: list[str]
) -> None:
    plan = skilled_crew_plan(electricians, people_per_window)

    violations = check_schedule(plan, overlapping_electrician_windows(plan))

    assert violations == expected


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        (
            MaintenanceWindow("M1", 3, 6, ""),
            "maintenance window on 'M1' runs from 3 to 6, but maintenance takes 2",
        ),
        (
            MaintenanceWindow("M1", -2, 0, ""),
            "maintenance window on 'M1' starts at -2, before time 0",
        ),
    ],
)
def test_bad_window_is_reported(window: MaintenanceWindow, expected: str) -> None:
    violations = check_schedule(PLAN, schedule_of(windows=(VALID_WINDOWS[0], window)))

    assert expected in violations


def test_window_without_maintenance_entry_is_reported() -> None:
    plan = dataclasses.replace(PLAN, maintenance=PLAN.maintenance[1:])

    violations = check_schedule(plan, schedule_of())

    assert (
        "maintenance window on 'M1' at 3, but the plan has no maintenance entry for that machine"
        in violations
    )


def test_second_window_on_machine_is_reported() -> None:
    windows = (*VALID_WINDOWS, MaintenanceWindow("M1", 9, 11, ""))

    violations = check_schedule(PLAN, schedule_of(windows=windows))

    assert "machine 'M1' has 2 maintenance windows; at most 1" in violations


def test_operation_during_downtime_is_reported() -> None:
    plan = dataclasses.replace(PLAN, downtime=(MachineDowntime("M1", 6, 8, "repair"),))

    violations = check_schedule(plan, schedule_of())

    assert violations == [
        "machine 'M1' runs job 'J2' operation 0 from 5 to 9, but it is down from 6 until 8"
    ]


def test_window_during_downtime_is_reported() -> None:
    plan = dataclasses.replace(PLAN, downtime=(MachineDowntime("M2", -3, 4),))

    violations = check_schedule(plan, schedule_of())

    assert violations == [
        "machine 'M2' runs job 'J1' operation 1 from 3 to 5, but it is down from -3 until 4",
        "machine 'M2' runs its maintenance window from 0 to 1, but it is down from -3 until 4",
    ]


def test_work_around_downtime_is_accepted() -> None:
    plan = dataclasses.replace(PLAN, downtime=(MachineDowntime("M2", 1, 3),))

    assert check_schedule(plan, schedule_of()) == []


def test_moved_fixed_operation_is_reported() -> None:
    plan = dataclasses.replace(PLAN, fixed=(OperationAssignment("J1", 0, "M1", 0),))
    moved = replace_operation(0, machine="M2", start=0, end=5)

    violations = check_schedule(plan, schedule_of(moved))

    assert "job 'J1' operation 0 runs on 'M2' from 0, but it is fixed on 'M1' from 0" in violations
