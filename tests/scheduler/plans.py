"""Small hand-made plans with known optimal schedules, shared by the scheduler tests."""

from __future__ import annotations

from scheduler import Crew, Job, MachineMaintenance, Operation, OperationOption, Plan, Schedule


def single_option_job(job_id: str, machine: str, duration: int, **fields: object) -> Job:
    return Job(job_id, (Operation((OperationOption(machine, duration),)),), **fields)  # type: ignore[arg-type]


def crossing_deadline_plan() -> Plan:
    """Three 4-unit jobs that only M1 can run, while M1's deadline is 6.

    Only the first job fits before the deadline, so M1 must be maintained (3 units) and
    the best makespan is 4 * 3 + 3 = 15.
    """
    return Plan(
        machines=("M1", "M2"),
        jobs=tuple(single_option_job(f"J{number}", "M1", 4) for number in (1, 2, 3)),
        maintenance=(MachineMaintenance("M1", deadline=6, duration=3, cost=1.0, reason="worn"),),
        name="crossing deadline",
    )


def passed_deadline_plan(deadline: int) -> Plan:
    """One operation: 2 units on M1, whose deadline has passed, or 20 units on M2.

    Maintaining M1 first (3 units, cost 1) and then running there gives makespan 5.
    """
    operation = Operation((OperationOption("M1", 2), OperationOption("M2", 20)))
    return Plan(
        machines=("M1", "M2"),
        jobs=(Job("J1", (operation,)),),
        maintenance=(MachineMaintenance("M1", deadline=deadline, duration=3, cost=1.0),),
        name="passed deadline",
    )


def crew_plan(crew_size: int) -> Plan:
    """Three machines past their deadline, each needed for one 2-unit job.

    Each needs a 4-unit window first. With one crew member the windows run one after
    another and the makespan is 3 * 4 + 2 = 14. With three it is 4 + 2 = 6.
    """
    machines = ("A", "B", "C")
    return Plan(
        machines=machines,
        jobs=tuple(single_option_job(f"J{machine}", machine, 2) for machine in machines),
        maintenance=tuple(
            MachineMaintenance(machine, deadline=0, duration=4, cost=1.0) for machine in machines
        ),
        crew_size=crew_size,
        name=f"crew of {crew_size}",
    )


def costly_maintenance_plan() -> Plan:
    """One operation: 15 units on M2, or 10 units on M1 after a 2-unit window costing 100.

    M1's deadline is 5, so running there needs the window first.
    """
    operation = Operation((OperationOption("M1", 10), OperationOption("M2", 15)))
    return Plan(
        machines=("M1", "M2"),
        jobs=(Job("J1", (operation,)),),
        maintenance=(MachineMaintenance("M1", deadline=5, duration=2, cost=100.0),),
    )


def deadline_violations(plan: Plan, schedule: Schedule) -> list[str]:
    """Return operations that end past their machine's deadline without a window first.

    This repeats the deadline part of `check_schedule` directly, so that a test does not
    depend on the checker alone.
    """
    entries = plan.maintenance_by_machine()
    window_ends = {window.machine: window.end for window in schedule.maintenance}
    found = []
    for item in schedule.operations:
        entry = entries.get(item.machine)
        if entry is None or entry.deadline is None or item.end <= entry.deadline:
            continue
        if item.machine not in window_ends or window_ends[item.machine] > item.start:
            found.append(f"{item.job}/{item.operation} on {item.machine} ends at {item.end}")
    return found


def skilled_crew_plan(electricians: int, people_per_window: int = 1) -> Plan:
    """Machines A and B need an electrician window first, machine C a mechanic window.

    Each machine is needed for one 2-unit job and is past its deadline. A's action
    takes 4 units and B's 3, each with `people_per_window` electricians. C's takes 5
    units and the one mechanic. When A's and B's windows cannot overlap, the later of
    their jobs ends at 9 at the earliest. When they can, both windows start at 0.
    """

    def window(
        machine: str, duration: int, cost: float, action: str, skill: str, people: int
    ) -> MachineMaintenance:
        return MachineMaintenance(
            machine, 0, duration, cost, "RUL", skill=skill, crew_size=people, action=action
        )

    return Plan(
        machines=("A", "B", "C"),
        jobs=tuple(single_option_job(f"J{machine}", machine, 2) for machine in "ABC"),
        maintenance=(
            window("A", 4, 30.0, "replace-drive", "electrician", people_per_window),
            window("B", 3, 20.0, "rewire-sensor", "electrician", people_per_window),
            window("C", 5, 10.0, "replace-belt", "mechanic", 1),
        ),
        crews=(Crew("electrician", electricians), Crew("mechanic", 1)),
        name=f"{electricians} electricians, {people_per_window} per window",
    )
