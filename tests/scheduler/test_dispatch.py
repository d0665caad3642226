"""The dispatching-rule schedule used when CP-SAT finds nothing in time."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import pytest

from scheduler import Plan, check_schedule, dispatch_schedule, read_fjs, read_jsplib
from tests.scheduler.plans import (
    crew_plan,
    crossing_deadline_plan,
    deadline_violations,
    passed_deadline_plan,
    single_option_job,
    skilled_crew_plan,
)


@pytest.mark.parametrize("name", ["mk01", "mk02", "mk03", "mk04", "mk05"])
def test_dispatch_brandimarte_is_feasible(brandimarte_dir: Path, name: str) -> None:
    plan = read_fjs(brandimarte_dir / f"{name}.fjs")

    schedule = dispatch_schedule(plan)

    assert schedule.status == "fallback"
    assert check_schedule(plan, schedule) == []
    assert len(schedule.operations) == plan.operation_count


def test_dispatch_ft06_is_feasible(jsplib_dir: Path) -> None:
    plan = read_jsplib(jsplib_dir / "ft06")

    schedule = dispatch_schedule(plan)

    assert check_schedule(plan, schedule) == []
    assert schedule.makespan >= 55


def test_dispatch_inserts_window_before_deadline() -> None:
    plan = crossing_deadline_plan()

    schedule = dispatch_schedule(plan)

    assert check_schedule(plan, schedule) == []
    assert deadline_violations(plan, schedule) == []
    (window,) = schedule.maintenance
    # The first job runs 0-4, the second would end at 8 > 6, so the window follows the first.
    assert (window.start, window.end) == (4, 7)
    assert schedule.makespan == 15


def test_dispatch_maintains_passed_deadline_first() -> None:
    plan = passed_deadline_plan(deadline=0)

    schedule = dispatch_schedule(plan)

    assert check_schedule(plan, schedule) == []
    (window,) = schedule.maintenance
    (operation,) = schedule.operations
    assert (window.start, window.end) == (0, 3)
    assert (operation.machine, operation.start) == ("M1", 3)


def test_dispatch_crew_of_one_runs_windows_in_turn() -> None:
    plan = crew_plan(crew_size=1)

    schedule = dispatch_schedule(plan)

    assert check_schedule(plan, schedule) == []
    assert schedule.maintenance_count == 3
    for earlier, later in pairwise(schedule.maintenance):
        assert earlier.end <= later.start
    assert schedule.makespan == 14


def test_dispatch_crew_of_two_shares_windows() -> None:
    plan = crew_plan(crew_size=2)

    schedule = dispatch_schedule(plan)

    assert check_schedule(plan, schedule) == []
    assert sorted(window.start for window in schedule.maintenance) == [0, 0, 4]
    assert schedule.makespan == 10


def test_dispatch_one_electrician_runs_windows_in_turn() -> None:
    plan = skilled_crew_plan(electricians=1)

    schedule = dispatch_schedule(plan)

    windows = {window.machine: (window.start, window.end) for window in schedule.maintenance}
    assert check_schedule(plan, schedule) == []
    assert windows["C"] == (0, 5)
    assert sorted(windows[machine] for machine in "AB") in ([(0, 3), (3, 7)], [(0, 4), (4, 7)])


def test_dispatch_two_electricians_share_windows() -> None:
    plan = skilled_crew_plan(electricians=2)

    schedule = dispatch_schedule(plan)

    windows = {window.machine: (window.start, window.end) for window in schedule.maintenance}
    assert check_schedule(plan, schedule) == []
    assert windows == {"A": (0, 4), "B": (0, 3), "C": (0, 5)}


def test_dispatch_two_person_windows_run_in_turn() -> None:
    plan = skilled_crew_plan(electricians=2, people_per_window=2)

    schedule = dispatch_schedule(plan)

    windows = {window.machine: (window.start, window.end) for window in schedule.maintenance}
    assert check_schedule(plan, schedule) == []
    assert sorted(windows[machine] for machine in "AB") in ([(0, 3), (3, 7)], [(0, 4), (4, 7)])


def test_dispatch_order_by_finish_and_due() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=(
            single_option_job("late", "M1", 3, due=50),
            single_option_job("urgent", "M1", 3, due=4),
            single_option_job("released-later", "M1", 1, release=10),
        ),
    )

    schedule = dispatch_schedule(plan)

    order = [item.job for item in schedule.operations]
    assert order == ["urgent", "late", "released-later"]
    assert schedule.operations[2].start == 10
    assert schedule.total_weighted_tardiness == 0.0
