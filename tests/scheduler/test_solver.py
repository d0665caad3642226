"""CP-SAT solving: benchmark optima, the maintenance rule, the crew, objective terms, fallback."""

from __future__ import annotations

import dataclasses
import json
import logging
from itertools import pairwise
from pathlib import Path

import pytest

from scheduler import (
    MachineMaintenance,
    ObjectiveWeights,
    Plan,
    Schedule,
    SolverSettings,
    check_schedule,
    read_fjs,
    read_jsplib,
    solve,
)
from tests.scheduler.plans import (
    costly_maintenance_plan,
    crew_plan,
    crossing_deadline_plan,
    deadline_violations,
    passed_deadline_plan,
    single_option_job,
    skilled_crew_plan,
)

QUICK = SolverSettings(time_limit_s=5, workers=2)


def solve_checked(plan: Plan, settings: SolverSettings = QUICK) -> Schedule:
    schedule = solve(plan, settings)
    assert schedule.status in ("optimal", "feasible", "fallback")
    assert check_schedule(plan, schedule) == []
    return schedule


def test_mk01_reaches_optimum(brandimarte_dir: Path) -> None:
    plan = read_fjs(brandimarte_dir / "mk01.fjs")

    schedule = solve_checked(plan, SolverSettings(time_limit_s=30, workers=2))

    assert schedule.status in ("optimal", "feasible")
    assert schedule.makespan == 40
    assert len(schedule.operations) == 55
    assert schedule.maintenance == ()


def test_mk02_proves_optimum(brandimarte_dir: Path) -> None:
    plan = read_fjs(brandimarte_dir / "mk02.fjs")

    schedule = solve_checked(plan, SolverSettings(time_limit_s=30, workers=2))

    # The machine-load bound on the makespan lets CP-SAT prove 26 in about a second with
    # 2 workers on a 2-core machine. Without it, a 60 s run ended with the bound at 25.
    assert schedule.status == "optimal"
    assert schedule.makespan == 26
    assert schedule.bound == 26.0


def test_mk05_bound_reaches_optimum(brandimarte_dir: Path) -> None:
    plan = read_fjs(brandimarte_dir / "mk05.fjs")

    schedule = solve_checked(plan, SolverSettings(time_limit_s=10, workers=2))

    # 172 is mk05's optimal makespan. With the machine-load bound, CP-SAT's bound reaches
    # it as soon as the search starts. The redundant cumulative alone stopped at 170.
    assert schedule.bound == 172.0
    assert schedule.makespan >= 172


def test_redundant_cumulative_keeps_optimum(brandimarte_dir: Path) -> None:
    plan = read_fjs(brandimarte_dir / "mk01.fjs")
    settings = SolverSettings(time_limit_s=30, workers=2, redundant_cumulative=True)

    schedule = solve_checked(plan, settings)

    assert schedule.status == "optimal"
    assert schedule.makespan == 40


def test_ft06_reaches_optimum(jsplib_dir: Path) -> None:
    plan = read_jsplib(jsplib_dir / "ft06")

    schedule = solve_checked(plan, SolverSettings(time_limit_s=30, workers=2))

    assert schedule.makespan == 55
    assert schedule.objective == 55.0


@pytest.mark.parametrize("name", ["la01", "la05", "la06", "la10", "la11"])
def test_small_jsplib_reaches_optimum(jsplib_dir: Path, name: str) -> None:
    optima = json.loads((jsplib_dir.parent / "instances.json").read_text())
    optimum = next(entry["optimum"] for entry in optima if entry["name"] == name)
    plan = read_jsplib(jsplib_dir / name)

    schedule = solve_checked(plan, SolverSettings(time_limit_s=30, workers=2))

    assert schedule.status == "optimal"
    assert schedule.makespan == optimum


def test_window_precedes_work_past_deadline() -> None:
    plan = crossing_deadline_plan()

    schedule = solve_checked(plan)

    assert schedule.status == "optimal"
    assert schedule.makespan == 15
    assert len(schedule.maintenance) == 1
    window = schedule.maintenance[0]
    assert (window.machine, window.end - window.start, window.reason) == ("M1", 3, "worn")
    for item in schedule.operations:
        assert item.end <= 6 or item.start >= window.end
    assert any(item.end > 6 for item in schedule.operations)
    assert deadline_violations(plan, schedule) == []


def test_mk01_with_deadlines_respects_them(brandimarte_dir: Path) -> None:
    benchmark = read_fjs(brandimarte_dir / "mk01.fjs")
    plan = dataclasses.replace(
        benchmark,
        maintenance=(
            MachineMaintenance("M1", deadline=12, duration=5, cost=2.0),
            MachineMaintenance("M2", deadline=20, duration=5, cost=2.0),
            MachineMaintenance("M6", deadline=8, duration=5, cost=2.0),
        ),
    )

    schedule = solve_checked(plan, SolverSettings(time_limit_s=10, workers=2))

    assert len(schedule.operations) == 55
    assert deadline_violations(plan, schedule) == []
    # The optimum is makespan 44 plus three windows costing 2 each. CP-SAT proved it in
    # under 1 s with 2 workers on a 2-core machine, far inside the 10 s limit.
    assert schedule.objective == 50.0
    # Every window serves at least one operation that ends past the machine's deadline.
    for window in schedule.maintenance:
        deadline = plan.maintenance_by_machine()[window.machine].deadline
        assert deadline is not None
        assert any(
            item.machine == window.machine and item.end > deadline and item.start >= window.end
            for item in schedule.operations
        )


@pytest.mark.parametrize("deadline", [0, -5])
def test_passed_deadline_forces_maintenance_first(deadline: int) -> None:
    plan = passed_deadline_plan(deadline)

    schedule = solve_checked(plan)

    assert schedule.status == "optimal"
    assert len(schedule.maintenance) == 1
    window = schedule.maintenance[0]
    (operation,) = schedule.operations
    assert (window.machine, window.start, window.end) == ("M1", 0, 3)
    assert (operation.machine, operation.start, operation.end) == ("M1", 3, 5)
    assert schedule.objective == 6.0
    assert deadline_violations(plan, schedule) == []


def test_crew_of_one_serializes_windows() -> None:
    plan = crew_plan(crew_size=1)

    schedule = solve_checked(plan)

    assert schedule.status == "optimal"
    assert schedule.maintenance_count == 3
    for earlier, later in pairwise(schedule.maintenance):
        assert earlier.end <= later.start
    assert schedule.makespan == 14


def test_larger_crew_runs_windows_together() -> None:
    plan = crew_plan(crew_size=3)

    schedule = solve_checked(plan)

    assert schedule.maintenance_count == 3
    assert {window.start for window in schedule.maintenance} == {0}
    assert schedule.makespan == 6


def windows_of(schedule: Schedule) -> dict[str, tuple[int, int]]:
    return {window.machine: (window.start, window.end) for window in schedule.maintenance}


def test_one_electrician_serializes_electrician_windows() -> None:
    schedule = solve_checked(skilled_crew_plan(electricians=1))

    windows = windows_of(schedule)
    assert schedule.status == "optimal"
    assert windows["A"][1] - windows["A"][0] == 4
    assert windows["B"][1] - windows["B"][0] == 3
    assert windows["A"][1] <= windows["B"][0] or windows["B"][1] <= windows["A"][0]
    assert windows["C"] == (0, 5)  # the mechanic works alongside the electrician
    assert schedule.makespan == 9
    assert schedule.maintenance_cost == 60.0


def test_two_electricians_overlap_one_person_windows() -> None:
    schedule = solve_checked(skilled_crew_plan(electricians=2))

    windows = windows_of(schedule)
    assert windows["A"] == (0, 4)
    assert windows["B"] == (0, 3)
    assert schedule.makespan == 7


def test_two_person_windows_take_the_whole_crew() -> None:
    schedule = solve_checked(skilled_crew_plan(electricians=2, people_per_window=2))

    windows = windows_of(schedule)
    assert windows["A"][1] <= windows["B"][0] or windows["B"][1] <= windows["A"][0]
    assert schedule.makespan == 9


def test_window_reason_starts_with_action() -> None:
    schedule = solve_checked(skilled_crew_plan(electricians=2))

    reasons = {window.machine: window.reason for window in schedule.maintenance}
    assert reasons == {
        "A": "replace-drive: RUL",
        "B": "rewire-sensor: RUL",
        "C": "replace-belt: RUL",
    }


def test_maintenance_cost_weight_avoids_costly_window() -> None:
    plan = costly_maintenance_plan()
    weights = ObjectiveWeights(makespan=1, weighted_tardiness=0, maintenance_cost=1)

    schedule = solve_checked(plan, dataclasses.replace(QUICK, weights=weights))

    assert schedule.maintenance == ()
    assert schedule.operations[0].machine == "M2"
    assert schedule.objective == 15.0
    assert schedule.maintenance_cost == 0.0


def test_zero_maintenance_cost_weight_buys_window() -> None:
    plan = costly_maintenance_plan()
    weights = ObjectiveWeights(makespan=1, weighted_tardiness=0, maintenance_cost=0)

    schedule = solve_checked(plan, dataclasses.replace(QUICK, weights=weights))

    assert schedule.maintenance_count == 1
    assert schedule.operations[0].machine == "M1"
    assert schedule.makespan == 12
    assert schedule.objective == 12.0
    assert schedule.maintenance_cost == 100.0


def test_tardiness_weight_orders_heavier_job_first() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=(
            single_option_job("light", "M1", 5, due=5, weight=1.0),
            single_option_job("heavy", "M1", 5, due=5, weight=3.0),
        ),
    )
    weights = ObjectiveWeights(makespan=0, weighted_tardiness=1, maintenance_cost=0)

    schedule = solve_checked(plan, dataclasses.replace(QUICK, weights=weights))

    starts = {item.job: item.start for item in schedule.operations}
    assert starts == {"heavy": 0, "light": 5}
    assert schedule.total_weighted_tardiness == 5.0
    assert schedule.objective == 5.0


def test_objective_matches_key_figures() -> None:
    plan = dataclasses.replace(
        crossing_deadline_plan(),
        jobs=(
            single_option_job("J1", "M1", 4, due=3, weight=2.5),
            single_option_job("J2", "M1", 4, release=2, due=9, weight=0.5),
            single_option_job("J3", "M1", 4),
        ),
    )
    weights = ObjectiveWeights(makespan=0.5, weighted_tardiness=2, maintenance_cost=1.5)

    schedule = solve_checked(plan, dataclasses.replace(QUICK, weights=weights))

    expected = weights.evaluate(
        schedule.makespan, schedule.total_weighted_tardiness, schedule.maintenance_cost
    )
    assert schedule.objective == pytest.approx(expected)
    assert schedule.maintenance_count == 1


def test_machine_without_deadline_gets_no_window() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=(single_option_job("J1", "M1", 4), single_option_job("J2", "M1", 4)),
        maintenance=(MachineMaintenance("M1", deadline=None, duration=2, cost=0.0),),
    )
    weights = ObjectiveWeights(makespan=1, weighted_tardiness=0, maintenance_cost=0)

    schedule = solve_checked(plan, dataclasses.replace(QUICK, weights=weights))

    assert schedule.maintenance == ()
    assert schedule.makespan == 8


def test_deadline_beyond_the_work_gets_no_window() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=(single_option_job("J1", "M1", 4),),
        maintenance=(MachineMaintenance("M1", deadline=5, duration=2, cost=0.0),),
    )
    weights = ObjectiveWeights(makespan=1, weighted_tardiness=0, maintenance_cost=0)

    schedule = solve_checked(plan, dataclasses.replace(QUICK, weights=weights))

    assert schedule.maintenance == ()


def test_release_delays_first_operation() -> None:
    plan = Plan(machines=("M1",), jobs=(single_option_job("J1", "M1", 4, release=7),))

    schedule = solve_checked(plan)

    assert (schedule.operations[0].start, schedule.makespan) == (7, 11)


def test_plan_without_jobs_solves_empty() -> None:
    plan = Plan(
        machines=("M1",),
        jobs=(),
        maintenance=(MachineMaintenance("M1", deadline=0, duration=3, cost=1.0),),
    )

    schedule = solve_checked(plan)

    assert schedule.status == "optimal"
    assert schedule.operations == ()
    assert schedule.maintenance == ()
    assert schedule.makespan == 0


def test_zero_weights_find_feasible_schedule() -> None:
    weights = ObjectiveWeights(makespan=0, weighted_tardiness=0, maintenance_cost=0)

    schedule = solve_checked(crew_plan(1), dataclasses.replace(QUICK, weights=weights))

    assert schedule.objective is None
    assert schedule.bound is None
    assert len(schedule.operations) == 3


def test_short_time_limit_returns_fallback(brandimarte_dir: Path) -> None:
    plan = read_fjs(brandimarte_dir / "mk03.fjs")

    schedule = solve_checked(plan, SolverSettings(time_limit_s=0.001, workers=2))

    assert schedule.status == "fallback"
    assert len(schedule.operations) == 150
    # mk03's optimal makespan is 204, so no schedule can be shorter.
    assert schedule.makespan >= 204
    assert schedule.objective == float(schedule.makespan)
    assert schedule.bound is None or schedule.bound <= schedule.objective


def test_schedule_to_dict_is_json_ready() -> None:
    schedule = solve_checked(crossing_deadline_plan())

    document = json.loads(json.dumps(schedule.to_dict()))

    assert document["status"] == "optimal"
    assert document["makespan"] == 15
    assert len(document["operations"]) == 3
    assert document["operations"][0] == {
        "job": schedule.operations[0].job,
        "operation": 0,
        "machine": "M1",
        "start": schedule.operations[0].start,
        "end": schedule.operations[0].end,
    }
    assert document["maintenance"][0]["reason"] == "worn"


def test_log_progress_sends_search_log(caplog: pytest.LogCaptureFixture) -> None:
    settings = dataclasses.replace(QUICK, log_progress=True)

    with caplog.at_level(logging.INFO, logger="scheduler.solver"):
        solve_checked(crossing_deadline_plan(), settings)

    search_lines = [r.message for r in caplog.records if r.name == "scheduler.solver.cpsat"]
    assert any(line.startswith("Starting CP-SAT solver") for line in search_lines)
    assert all(line.strip() for line in search_lines)
    summaries = [r.message for r in caplog.records if r.name == "scheduler.solver"]
    assert len(summaries) == 1
    assert summaries[0].startswith(
        "plan 'crossing deadline': status=optimal objective=16.0 bound=16.0 gap=0.0 "
        "makespan=15 windows=1 in "
    )


def test_settings_reject_bad_values() -> None:
    with pytest.raises(ValueError, match="time_limit_s=0 must be a positive number"):
        SolverSettings(time_limit_s=0)
    with pytest.raises(ValueError, match="workers=0 must be at least 1"):
        SolverSettings(workers=0)
    with pytest.raises(ValueError, match="makespan=-1 must be a number >= 0"):
        ObjectiveWeights(makespan=-1)
