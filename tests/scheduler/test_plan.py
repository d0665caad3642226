"""Validation of plan data at construction."""

from __future__ import annotations

import re

import pytest

from scheduler import (
    Crew,
    Job,
    MachineDowntime,
    MachineMaintenance,
    Operation,
    OperationAssignment,
    OperationOption,
    Plan,
    PlanError,
    WindowAssignment,
)


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


def electrician_window(machine: str, people: int = 1) -> MachineMaintenance:
    return MachineMaintenance(
        machine, deadline=5, duration=2, cost=1.0, skill="electrician", crew_size=people
    )


def test_skill_without_crew_is_rejected() -> None:
    with pytest.raises(PlanError) as caught:
        Plan(
            machines=("M1",),
            jobs=(one_step_job("J1"),),
            maintenance=(electrician_window("M1"),),
            crews=(Crew("mechanic", 2),),
        )

    assert caught.value.problems == (
        "maintenance of 'M1' needs skill 'electrician', but no crew has it "
        "(crews: ['mechanic']); add a crew with that skill",
    )


def test_skill_missing_from_default_crew_is_rejected() -> None:
    with pytest.raises(PlanError, match="needs skill 'electrician', but no crew has it"):
        Plan(
            machines=("M1",),
            jobs=(one_step_job("J1"),),
            maintenance=(electrician_window("M1"),),
            crew_size=3,
        )


def test_crew_size_above_crew_is_rejected() -> None:
    with pytest.raises(PlanError) as caught:
        Plan(
            machines=("M1",),
            jobs=(one_step_job("J1"),),
            maintenance=(electrician_window("M1", people=3),),
            crews=(Crew("electrician", 2),),
        )

    assert caught.value.problems == (
        "maintenance of 'M1' needs 3 people with skill 'electrician', but that crew has 2",
    )


def test_repeated_crew_skill_is_rejected() -> None:
    with pytest.raises(PlanError, match="crew skill 'electrician' is listed 2 times"):
        Plan(
            machines=("M1",),
            jobs=(one_step_job("J1"),),
            crews=(Crew("electrician", 1), Crew("electrician", 2)),
        )


def test_crew_size_beside_crews_is_rejected() -> None:
    with pytest.raises(PlanError, match="crew_size 2 is given together with crews"):
        Plan(
            machines=("M1",),
            jobs=(one_step_job("J1"),),
            crews=(Crew("electrician", 1),),
            crew_size=2,
        )


@pytest.mark.parametrize(
    ("skill", "size", "expected"),
    [
        ("", 1, "crew skill '' is empty"),
        ("welder", 0, "crew 'welder': size 0 must be an integer >= 1"),
    ],
)
def test_invalid_crew_is_rejected(skill: str, size: int, expected: str) -> None:
    with pytest.raises(PlanError) as caught:
        Crew(skill, size)

    assert caught.value.problems == (expected,)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"skill": ""}, "maintenance of 'M1': skill '' is empty"),
        ({"crew_size": 0}, "maintenance of 'M1': crew_size 0 must be an integer >= 1"),
    ],
)
def test_invalid_staffing_is_rejected(fields: dict[str, object], expected: str) -> None:
    with pytest.raises(PlanError) as caught:
        MachineMaintenance("M1", deadline=5, duration=2, cost=1.0, **fields)  # type: ignore[arg-type]

    assert caught.value.problems == (expected,)


def test_default_crew_holds_crew_size_people() -> None:
    plan = Plan(machines=("M1",), jobs=(one_step_job("J1"),), crew_size=3)

    assert plan.crew_capacity() == {"maintenance": 3}


def test_every_plan_problem_is_reported_at_once() -> None:
    with pytest.raises(PlanError) as caught:
        Plan(
            machines=("M1",),
            jobs=(one_step_job("J1", "M2"), one_step_job("J1")),
            crew_size=0,
        )

    assert len(caught.value.problems) == 3


def two_step_job(job_id: str, release: int = 0) -> Job:
    """A job that runs 3 units on M1 or 5 on M2, then 2 units on M2."""
    return Job(
        job_id,
        (
            Operation((OperationOption("M1", 3), OperationOption("M2", 5))),
            Operation((OperationOption("M2", 2),)),
        ),
        release=release,
    )


def replan(**fields: object) -> Plan:
    """A two-machine plan with jobs J1 and J2 and the given re-plan fields."""
    return Plan(
        machines=("M1", "M2"),
        jobs=(two_step_job("J1"), two_step_job("J2", release=4)),
        **fields,  # type: ignore[arg-type]
    )


def problems_of(**fields: object) -> tuple[str, ...]:
    with pytest.raises(PlanError) as caught:
        replan(**fields)
    return caught.value.problems


def test_replan_fields_are_accepted() -> None:
    plan = replan(
        maintenance=(MachineMaintenance("M2", deadline=20, duration=2, cost=1.0),),
        downtime=(MachineDowntime("M1", 10, 12, "repair"), MachineDowntime("M1", 30, None)),
        fixed=(OperationAssignment("J1", 0, "M1", 0), OperationAssignment("J1", 1, "M2", 3)),
        reference=(OperationAssignment("J2", 0, "M1", 4),),
        reference_windows=(WindowAssignment("M2", 6),),
    )

    assert plan.fixed_end(plan.fixed[1]) == 5
    assert [item.reason for item in plan.downtime_by_machine()["M1"]] == ["repair", ""]


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (5, 5, "downtime of 'M1': end 5 is not after start 5"),
        (5, 2, "downtime of 'M1': end 2 is not after start 5"),
        (1.5, 4, "downtime of 'M1': start 1.5 is not an integer"),
    ],
)
def test_invalid_downtime_is_rejected(start: int, end: int, expected: str) -> None:
    with pytest.raises(PlanError) as caught:
        MachineDowntime("M1", start, end)

    assert caught.value.problems == (expected,)


def test_downtime_of_unknown_machine_is_rejected() -> None:
    assert problems_of(downtime=(MachineDowntime("M9", 0, 4),)) == (
        "downtime names machine 'M9', which is not one of the plan's machines",
    )


def test_operation_without_usable_machine_is_rejected() -> None:
    problems = problems_of(downtime=(MachineDowntime("M2", 0, None),))

    assert problems == tuple(
        f"job {job!r} operation 1: every eligible machine ['M2'] has a downtime without end, "
        "so the operation may find no time to run; give the downtime an end or leave the job out"
        for job in ("J1", "J2")
    )


@pytest.mark.parametrize(
    ("fixed", "expected"),
    [
        (
            (OperationAssignment("J7", 0, "M1", 0),),
            "fixed assignment names job 'J7', which is not in the plan",
        ),
        (
            (OperationAssignment("J1", 2, "M1", 0),),
            "fixed assignment of job 'J1' operation 2: the job has operations 0 to 1",
        ),
        (
            (OperationAssignment("J1", 0, "M1", 0), OperationAssignment("J1", 1, "M1", 3)),
            "fixed assignment of job 'J1' operation 1: machine 'M1' is not eligible",
        ),
        (
            (OperationAssignment("J1", 0, "M1", 0), OperationAssignment("J1", 0, "M1", 0)),
            "job 'J1' operation 0 is fixed 2 times",
        ),
        (
            (OperationAssignment("J1", 1, "M2", 3),),
            "job 'J1' operation 1 is fixed but operation 0 is not; fix a job's operations "
            "from its first one on",
        ),
        (
            (OperationAssignment("J2", 0, "M1", 2),),
            "fixed job 'J2' operation 0 starts at 2, before the job's release or its previous "
            "operation ends at 4",
        ),
        (
            (OperationAssignment("J1", 0, "M1", 0), OperationAssignment("J1", 1, "M2", 2)),
            "fixed job 'J1' operation 1 starts at 2, before the job's release or its previous "
            "operation ends at 3",
        ),
        (
            (OperationAssignment("J1", 0, "M1", 4), OperationAssignment("J2", 0, "M1", 6)),
            "fixed job 'J2' operation 0 starts at 6 on 'M1' while fixed job 'J1' operation 0 "
            "runs there until 7",
        ),
    ],
)
def test_invalid_fixed_assignment_is_rejected(
    fixed: tuple[OperationAssignment, ...], expected: str
) -> None:
    assert problems_of(fixed=fixed) == (expected,)


def test_fixed_operation_during_downtime_is_rejected() -> None:
    problems = problems_of(
        downtime=(MachineDowntime("M1", 2, 6, "repair"),),
        fixed=(OperationAssignment("J1", 0, "M1", 0),),
    )

    assert problems == (
        "fixed job 'J1' operation 0 runs on 'M1' from 0 to 3, while the machine is down from 2",
    )


def test_fixed_operation_past_deadline_is_rejected() -> None:
    problems = problems_of(
        maintenance=(MachineMaintenance("M1", deadline=2, duration=1, cost=1.0),),
        fixed=(OperationAssignment("J1", 0, "M1", 0),),
    )

    assert problems == (
        "fixed job 'J1' operation 0 ends at 3 on 'M1', past the machine's maintenance "
        "deadline 2; unfix it or move the deadline",
    )


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (
            (OperationAssignment("J1", 1, "M1", 5),),
            "reference assignment of job 'J1' operation 1: machine 'M1' is not eligible",
        ),
        (
            (OperationAssignment("J1", 0, "M1", -1),),
            "reference assignment of job 'J1' operation 0 starts at -1, before time 0",
        ),
        (
            (OperationAssignment("J1", 0, "M1", 1), OperationAssignment("J1", 0, "M2", 1)),
            "job 'J1' operation 0 has 2 reference assignments",
        ),
    ],
)
def test_invalid_reference_is_rejected(
    reference: tuple[OperationAssignment, ...], expected: str
) -> None:
    assert problems_of(reference=reference) == (expected,)


def test_reference_window_without_maintenance_entry_is_rejected() -> None:
    problems = problems_of(reference_windows=(WindowAssignment("M1", 3),))

    assert problems == ("reference window on 'M1', which has no maintenance entry",)
