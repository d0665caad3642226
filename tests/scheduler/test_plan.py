"""Validation of plan data at construction."""

from __future__ import annotations

import re

import pytest

from scheduler import Job, MachineMaintenance, Operation, OperationOption, Plan, PlanError


def one_step_job(job_id: str, machine: str = "M1", duration: int = 3) -> Job:
    return Job(job_id, (Operation((OperationOption(machine, duration),)),))


def test_valid_plan_is_accepted() -> None:
    plan = Plan(
        machines=("M1", "M2"),
        jobs=(one_step_job("J1"), one_step_job("J2", "M2")),
        maintenance=(MachineMaintenance("M1", deadline=10, duration=2, cost=5.0),),
        crew_size=1,
        name="two jobs",
    )

    assert plan.operation_count == 2
    assert plan.maintenance_by_machine()["M1"].deadline == 10


def test_lists_are_stored_as_tuples() -> None:
    operation = Operation([OperationOption("M1", 2)])  # type: ignore[arg-type]
    plan = Plan(machines=["M1"], jobs=[Job("J1", [operation])])  # type: ignore[arg-type]

    assert isinstance(operation.options, tuple)
    assert isinstance(plan.machines, tuple)
    assert isinstance(plan.jobs, tuple)
    assert isinstance(plan.jobs[0].operations, tuple)


def test_operation_without_machine_is_rejected() -> None:
    with pytest.raises(PlanError, match="no eligible machine"):
        Operation(())


@pytest.mark.parametrize("duration", [0, -4])
def test_non_positive_duration_is_rejected(duration: int) -> None:
    with pytest.raises(PlanError, match=f"duration {duration}; durations must be positive"):
        OperationOption("M1", duration)


def test_fractional_duration_is_rejected() -> None:
    with pytest.raises(PlanError, match="positive integers"):
        OperationOption("M1", 2.5)  # type: ignore[arg-type]


def test_machine_listed_twice_in_operation_is_rejected() -> None:
    with pytest.raises(PlanError, match="lists machine 'M1' more than once"):
        Operation((OperationOption("M1", 2), OperationOption("M1", 3)))


def test_unknown_machine_is_rejected() -> None:
    with pytest.raises(PlanError) as caught:
        Plan(machines=("M1",), jobs=(one_step_job("J1", "M7"),))

    assert caught.value.problems == (
        "job 'J1' operation 0: machine 'M7' is not one of the plan's machines",
    )


def test_due_before_release_is_rejected() -> None:
    operations = (Operation((OperationOption("M1", 2),)),)

    with pytest.raises(PlanError, match="job 'J1': due 4 is before release 5"):
        Job("J1", operations, release=5, due=4)


def test_due_equal_to_release_is_accepted() -> None:
    operations = (Operation((OperationOption("M1", 2),)),)

    assert Job("J1", operations, release=5, due=5).due == 5


def test_negative_release_means_released_earlier() -> None:
    operations = (Operation((OperationOption("M1", 2),)),)

    job = Job("J1", operations, release=-30, due=-10)

    assert job.release == -30


def test_duplicate_job_ids_are_rejected() -> None:
    with pytest.raises(PlanError, match="job id 'J1' is used by 2 jobs"):
        Plan(machines=("M1",), jobs=(one_step_job("J1"), one_step_job("J1")))


def test_job_without_operations_is_rejected() -> None:
    with pytest.raises(PlanError, match="job 'J1' has no operations"):
        Job("J1", ())


def test_negative_job_weight_is_rejected() -> None:
    operations = (Operation((OperationOption("M1", 2),)),)

    with pytest.raises(PlanError, match=re.escape("weight -1.0 must be a number >= 0")):
        Job("J1", operations, weight=-1.0)


def test_duplicate_machines_are_rejected() -> None:
    with pytest.raises(PlanError, match="machine 'M1' is listed 2 times"):
        Plan(machines=("M1", "M1"), jobs=(one_step_job("J1"),))


def test_plan_without_machines_is_rejected() -> None:
    with pytest.raises(PlanError, match="plan has no machines"):
        Plan(machines=(), jobs=())


@pytest.mark.parametrize("duration", [0, -1])
def test_non_positive_maintenance_duration_is_rejected(duration: int) -> None:
    with pytest.raises(PlanError, match="must be a positive integer"):
        MachineMaintenance("M1", deadline=5, duration=duration, cost=1.0)


def test_negative_maintenance_cost_is_rejected() -> None:
    with pytest.raises(PlanError, match=re.escape("cost -2.0 must be a number >= 0")):
        MachineMaintenance("M1", deadline=5, duration=2, cost=-2.0)


def test_maintenance_of_unknown_machine_is_rejected() -> None:
    with pytest.raises(PlanError, match="maintenance names machine 'M9'"):
        Plan(
            machines=("M1",),
            jobs=(one_step_job("J1"),),
            maintenance=(MachineMaintenance("M9", deadline=5, duration=2, cost=1.0),),
        )


def test_two_maintenance_entries_for_one_machine_are_rejected() -> None:
    entry = MachineMaintenance("M1", deadline=5, duration=2, cost=1.0)

    with pytest.raises(PlanError, match="machine 'M1' has 2 maintenance entries"):
        Plan(machines=("M1",), jobs=(one_step_job("J1"),), maintenance=(entry, entry))


def test_crew_size_below_one_is_rejected() -> None:
    with pytest.raises(PlanError, match="crew_size 0 must be an integer >= 1"):
        Plan(machines=("M1",), jobs=(one_step_job("J1"),), crew_size=0)


def test_every_plan_problem_is_reported_at_once() -> None:
    with pytest.raises(PlanError) as caught:
        Plan(
            machines=("M1",),
            jobs=(one_step_job("J1", "M2"), one_step_job("J1")),
            crew_size=0,
        )

    assert len(caught.value.problems) == 3
