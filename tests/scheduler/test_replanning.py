"""Re-plan features of the model: downtime, fixed operations, the stability term, hints."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from scheduler import (
    Job,
    MachineDowntime,
    MachineMaintenance,
    ObjectiveWeights,
    Operation,
    OperationAssignment,
    OperationOption,
    Plan,
    Schedule,
    ScheduledOperation,
    SolverSettings,
    WindowAssignment,
    check_schedule,
    dispatch_schedule,
    read_fjs,
    solve,
)
from tests.scheduler.plans import crossing_deadline_plan, single_option_job

MAKESPAN_ONLY = ObjectiveWeights(makespan=1, weighted_tardiness=0, maintenance_cost=0, changes=0)


def settings(weights: ObjectiveWeights = MAKESPAN_ONLY, **fields: object) -> SolverSettings:
    quick = SolverSettings(time_limit_s=5, workers=2, weights=weights)
    return dataclasses.replace(quick, **fields)  # type: ignore[arg-type]


def solve_checked(plan: Plan, solver_settings: SolverSettings) -> Schedule:
    schedule = solve(plan, solver_settings)
    assert schedule.status in ("optimal", "feasible", "fallback")
    assert check_schedule(plan, schedule) == []
    return schedule


def placements(schedule: Schedule) -> dict[tuple[str, int], tuple[str, int, int]]:
    return {
        (item.job, item.operation): (item.machine, item.start, item.end)
        for item in schedule.operations
    }


def flexible_job(job_id: str, fast: int = 3, slow: int = 4, **fields: object) -> Job:
    """One operation: `fast` units on M1 or `slow` units on M2."""
    operation = Operation((OperationOption("M1", fast), OperationOption("M2", slow)))
    return Job(job_id, (operation,), **fields)  # type: ignore[arg-type]


def test_downtime_moves_work_to_other_machine() -> None:
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(flexible_job("J1", fast=3, slow=5),),
        downtime=(MachineDowntime("M1", 0, 10, "spindle failure"),),
    )

    schedule = solve_checked(plan, settings())

    assert schedule.status == "optimal"
    assert placements(schedule) == {("J1", 0): ("M2", 0, 5)}


def test_downtime_delays_work_on_only_machine() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=(single_option_job("J1", "M1", 2), single_option_job("J2", "M1", 2)),
        downtime=(MachineDowntime("M1", 3, 6),),
    )

    schedule = solve_checked(plan, settings())

    assert schedule.status == "optimal"
    assert sorted((item.start, item.end) for item in schedule.operations) == [(0, 2), (6, 8)]
    assert schedule.makespan == 8


def test_machine_down_for_good_runs_nothing_after() -> None:
    plan = Plan(
        machines=("M1", "M2"),
        jobs=tuple(flexible_job(f"J{number}", fast=2, slow=6) for number in range(3)),
        downtime=(MachineDowntime("M1", 4, None, "awaiting spare part"),),
    )

    schedule = solve_checked(plan, settings())

    on_m1 = [item for item in schedule.operations if item.machine == "M1"]
    assert all(item.end <= 4 for item in on_m1)
    assert len(on_m1) == 2
    assert schedule.makespan == 6


def test_downtime_before_plan_start_counts_from_zero() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=(single_option_job("J1", "M1", 2),),
        downtime=(MachineDowntime("M1", -5, 3),),
    )

    schedule = solve_checked(plan, settings())

    assert placements(schedule) == {("J1", 0): ("M1", 3, 5)}


def test_maintenance_window_avoids_downtime() -> None:
    plan = dataclasses.replace(
        crossing_deadline_plan(), downtime=(MachineDowntime("M1", 4, 9, "planned stop"),)
    )

    schedule = solve_checked(plan, settings())

    (window,) = schedule.maintenance
    assert window.end <= 4 or window.start >= 9
    assert schedule.makespan == 20


def test_fixed_operations_keep_machine_and_start() -> None:
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(flexible_job("J1"), flexible_job("J2")),
        fixed=(OperationAssignment("J2", 0, "M2", 2),),
    )

    schedule = solve_checked(plan, settings())

    assert schedule.status == "optimal"
    assert placements(schedule) == {("J1", 0): ("M1", 0, 3), ("J2", 0): ("M2", 2, 6)}
    assert schedule.makespan == 6


def test_fixed_prefix_leaves_rest_of_job_free() -> None:
    job = Job(
        "J1",
        (
            Operation((OperationOption("M1", 2), OperationOption("M2", 2))),
            Operation((OperationOption("M1", 3), OperationOption("M2", 3))),
        ),
    )
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(job, single_option_job("J2", "M2", 4)),
        fixed=(OperationAssignment("J1", 0, "M2", 1),),
    )

    schedule = solve_checked(plan, settings())

    assert placements(schedule) == {
        ("J1", 0): ("M2", 1, 3),
        ("J1", 1): ("M1", 3, 6),
        ("J2", 0): ("M2", 3, 7),
    }


def test_stability_weight_trades_makespan_for_changes() -> None:
    # The reference runs J1 on the slower M2, so keeping it costs one unit of makespan.
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(flexible_job("J1", fast=3, slow=4),),
        reference=(OperationAssignment("J1", 0, "M2", 0),),
    )
    results = {}

    for changes in (0.0, 0.5, 2.0):
        weights = dataclasses.replace(MAKESPAN_ONLY, changes=changes)
        schedule = solve_checked(plan, settings(weights))
        results[changes] = (
            schedule.operations[0].machine,
            schedule.changed_operations,
            schedule.objective,
        )

    assert results == {0.0: ("M1", 1, 3.0), 0.5: ("M1", 1, 3.5), 2.0: ("M2", 0, 4.0)}


def test_changed_operations_count_machine_and_start() -> None:
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(flexible_job("J1"), flexible_job("J2"), flexible_job("J3")),
        reference=(
            OperationAssignment("J1", 0, "M1", 0),
            OperationAssignment("J2", 0, "M2", 0),
            OperationAssignment("J3", 0, "M1", 3),
        ),
    )
    moved = (
        ScheduledOperation("J1", 0, "M1", 0, 3),
        ScheduledOperation("J2", 0, "M1", 3, 6),
        ScheduledOperation("J3", 0, "M2", 0, 4),
    )

    schedule = Schedule.from_assignment(
        plan, moved, (), status="feasible", objective=None, bound=None, solve_seconds=0
    )

    assert schedule.changed_operations == 2


def test_objective_includes_changes() -> None:
    # Three jobs on two machines: the reference is a valid but longer schedule.
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(flexible_job("J1"), flexible_job("J2"), flexible_job("J3")),
        reference=(
            OperationAssignment("J1", 0, "M1", 0),
            OperationAssignment("J2", 0, "M1", 3),
            OperationAssignment("J3", 0, "M1", 6),
        ),
    )
    weights = ObjectiveWeights(makespan=1, weighted_tardiness=0, maintenance_cost=0, changes=0.5)

    schedule = solve_checked(plan, settings(weights))

    # Moving one job to M2 shortens the makespan from 9 to 6 for one change.
    assert schedule.status == "optimal"
    assert schedule.makespan == 6
    assert schedule.changed_operations == 1
    assert schedule.objective == pytest.approx(
        weights.evaluate(schedule.makespan, 0, 0, schedule.changed_operations)
    )


def test_changes_alone_without_reference_has_no_objective() -> None:
    weights = ObjectiveWeights(makespan=0, weighted_tardiness=0, maintenance_cost=0, changes=1)
    plan = Plan(machines=("M1", "M2"), jobs=(flexible_job("J1"),))

    schedule = solve_checked(plan, settings(weights))

    assert schedule.objective is None
    assert schedule.bound is None


def test_reference_is_first_solution(
    brandimarte_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    plan = read_fjs(brandimarte_dir / "mk01.fjs")
    first = solve_checked(plan, settings())
    reference = tuple(
        OperationAssignment(item.job, item.operation, item.machine, item.start)
        for item in first.operations
    )
    hinted = dataclasses.replace(plan, reference=reference)

    with caplog.at_level(logging.INFO, logger="scheduler.solver"):
        schedule = solve_checked(hinted, settings(workers=1, log_progress=True))

    search_lines = [r.message for r in caplog.records if r.name == "scheduler.solver.cpsat"]
    solutions = [line for line in search_lines if line.startswith("#1 ")]
    assert len(solutions) == 1
    assert "[hint]" in solutions[0]
    assert f"best:{first.makespan}" in solutions[0]
    assert schedule.makespan == 40


def test_reference_windows_are_accepted_as_hint() -> None:
    plan = dataclasses.replace(
        crossing_deadline_plan(),
        reference=(
            OperationAssignment("J1", 0, "M1", 0),
            OperationAssignment("J2", 0, "M1", 7),
            OperationAssignment("J3", 0, "M1", 11),
        ),
        reference_windows=(WindowAssignment("M1", 4),),
    )

    schedule = solve_checked(plan, settings())

    assert schedule.makespan == 15
    assert schedule.changed_operations == 0
    assert [(w.start, w.end) for w in schedule.maintenance] == [(4, 7)]


def test_fallback_keeps_fixed_operations_and_downtime(brandimarte_dir: Path) -> None:
    benchmark = read_fjs(brandimarte_dir / "mk03.fjs")
    first_job = benchmark.jobs[0]
    first_option = first_job.operations[0].options[0]
    plan = dataclasses.replace(
        benchmark,
        downtime=(MachineDowntime("M2", 0, 50, "repair"),),
        fixed=(OperationAssignment(first_job.id, 0, first_option.machine, 7),),
    )
    if first_option.machine == "M2":
        pytest.fail("mk03's first option runs on M2; pick another machine for the downtime")

    schedule = solve(plan, SolverSettings(time_limit_s=0.001, workers=2))

    assert schedule.status == "fallback"
    assert check_schedule(plan, schedule) == []
    assert placements(schedule)[(first_job.id, 0)][:2] == (first_option.machine, 7)
    assert all(item.start >= 50 for item in schedule.operations if item.machine == "M2")


def test_dispatch_places_work_around_downtime_and_fixed() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=(
            single_option_job("J1", "M1", 2),
            single_option_job("J2", "M1", 3),
            single_option_job("J3", "M1", 1),
        ),
        downtime=(MachineDowntime("M1", 2, 4),),
        fixed=(OperationAssignment("J2", 0, "M1", 5),),
    )

    schedule = dispatch_schedule(plan)

    # J3 can finish first, at 1. J1 then fits neither the gap before the downtime nor
    # the one before the fixed J2, so it follows J2.
    assert check_schedule(plan, schedule) == []
    assert placements(schedule) == {
        ("J3", 0): ("M1", 0, 1),
        ("J2", 0): ("M1", 5, 8),
        ("J1", 0): ("M1", 8, 10),
    }


def test_dispatch_puts_window_outside_downtime() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=tuple(single_option_job(f"J{number}", "M1", 4) for number in (1, 2)),
        maintenance=(MachineMaintenance("M1", deadline=6, duration=3, cost=1.0),),
        downtime=(MachineDowntime("M1", 4, 8),),
    )

    schedule = dispatch_schedule(plan)

    assert check_schedule(plan, schedule) == []
    assert [(w.start, w.end) for w in schedule.maintenance] == [(8, 11)]
    assert placements(schedule)[("J2", 0)] == ("M1", 11, 15)


def test_dispatch_skips_machine_down_for_good() -> None:
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(flexible_job("J1", fast=2, slow=6),),
        downtime=(MachineDowntime("M1", 0, None),),
    )

    schedule = dispatch_schedule(plan)

    assert placements(schedule) == {("J1", 0): ("M2", 0, 6)}
