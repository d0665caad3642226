"""CP-SAT constraints of a plan: machine choice, job order, machines, crew and deadlines.

Maintenance rule. Each machine m with a deadline D gets at most one maintenance window,
which resets its remaining useful life for the rest of the plan:

- An operation on m that ends after D must start at or after the end of m's window,
  so the window must be present. Operations that run before the window therefore end
  by D. A deadline <= 0 means the life is already used up, so m runs nothing until it
  has been maintained.
- The window itself need not start by D. The deadline counts the machine's running
  time, so a machine that is idle after D wears no further, and delaying the
  window only delays the operations that wait for it. This also keeps every plan
  feasible when the crew cannot reach every machine before its deadline.
- A window is present only when some operation on m ends after D. A window that no
  operation needs only adds cost, so forbidding it loses no optimal schedule, and it
  keeps unneeded windows out of schedules whose objective ignores maintenance cost.
- Windows share the crews: each window needs its entry's `crew_size` people of its
  entry's skill, and the people of one skill in windows that run at once never
  exceed that skill's crew. A window occupies its machine, so no operation overlaps it.

A machine without a deadline, or whose deadline lies at or beyond the horizon, never
gets a window.

Downtime intervals join their machine's no-overlap constraint, so neither operations
nor a maintenance window run while the machine is down. A fixed operation runs on its
assigned machine from its assigned start.

On request, and only when operations can choose between machines, a redundant
cumulative constraint limits the operations that run at once to the number of
machines. The machine constraints imply it. It lifts CP-SAT's lower bound on
Brandimarte mk05 from 127 to 170, but with it CP-SAT found longer mk05 schedules in
the same time. For the makespan, the machine-load bound of `scheduler.objective`
reaches 172, the optimum, without that cost.
"""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise

from ortools.sat.python import cp_model

from scheduler.plan import Plan
from scheduler.variables import MaintenanceVariables, OperationVariables, PlanVariables


def add_constraints(
    model: cp_model.CpModel,
    plan: Plan,
    variables: PlanVariables,
    redundant_cumulative: bool = False,
) -> None:
    """Add every constraint of `plan` to `model`, over the variables made for it.

    With `redundant_cumulative`, also add the cumulative constraint over all operations
    that the module docstring describes.
    """
    operations = [operation for job in variables.operations for operation in job]

    for operation in operations:
        _run_on_one_machine(model, operation)

    _keep_job_order(model, plan, variables)
    _keep_fixed_assignments(model, plan, variables)

    for machine in plan.machines:
        _run_one_thing_at_a_time(model, variables, machine)
    if redundant_cumulative:
        _bound_parallel_work(model, plan, operations)

    _share_maintenance_crews(model, plan, variables)

    for maintenance in variables.maintenance.values():
        _respect_deadline(model, variables, maintenance)


def _run_on_one_machine(model: cp_model.CpModel, operation: OperationVariables) -> None:
    model.add_exactly_one(option.selected for option in operation.options)
    model.add(
        operation.end
        == operation.start + sum(option.duration * option.selected for option in operation.options)
    )


def _keep_job_order(model: cp_model.CpModel, plan: Plan, variables: PlanVariables) -> None:
    """Start each job's first operation at its release and every other after the previous."""
    for job, operations in zip(plan.jobs, variables.operations, strict=True):
        model.add(operations[0].start >= max(job.release, 0))

        for previous, current in pairwise(operations):
            model.add(current.start >= previous.end)


def _keep_fixed_assignments(model: cp_model.CpModel, plan: Plan, variables: PlanVariables) -> None:
    job_indexes = {job.id: index for index, job in enumerate(plan.jobs)}

    for assignment in plan.fixed:
        operation = variables.operations[job_indexes[assignment.job]][assignment.operation]
        model.add(operation.start == assignment.start)
        for option in operation.options:
            model.add(option.selected == int(option.machine == assignment.machine))


def _run_one_thing_at_a_time(
    model: cp_model.CpModel, variables: PlanVariables, machine: str
) -> None:
    intervals = [option.interval for option in variables.options_on(machine)]
    intervals += variables.downtime.get(machine, [])

    maintenance = variables.maintenance.get(machine)
    if maintenance is not None:
        intervals.append(maintenance.interval)

    if len(intervals) > 1:
        model.add_no_overlap(intervals)


def _bound_parallel_work(
    model: cp_model.CpModel, plan: Plan, operations: list[OperationVariables]
) -> None:
    """Limit the operations that run at once to the number of machines (a redundant constraint).

    With every machine choice fixed, the no-overlap constraints already imply all of it.
    """
    if all(len(operation.options) == 1 for operation in operations):
        return

    intervals = []
    for operation in operations:
        durations = [option.duration for option in operation.options]
        size = model.new_int_var(min(durations), max(durations), "")
        model.add(size == sum(option.duration * option.selected for option in operation.options))
        intervals.append(model.new_interval_var(operation.start, size, operation.end, ""))
    model.add_cumulative(intervals, [1] * len(intervals), len(plan.machines))


def _share_maintenance_crews(model: cp_model.CpModel, plan: Plan, variables: PlanVariables) -> None:
    """Add one cumulative resource per skill over the windows that need that skill."""
    by_skill: dict[str, list[MaintenanceVariables]] = defaultdict(list)
    for maintenance in variables.maintenance.values():
        by_skill[maintenance.entry.skill].append(maintenance)

    capacity = plan.crew_capacity()
    for skill, windows in by_skill.items():
        demands = [window.entry.crew_size for window in windows]
        if sum(demands) > capacity[skill]:
            model.add_cumulative([window.interval for window in windows], demands, capacity[skill])


def _respect_deadline(
    model: cp_model.CpModel, variables: PlanVariables, maintenance: MaintenanceVariables
) -> None:
    """Apply the maintenance rule of the module docstring to one machine."""
    deadline = maintenance.entry.deadline
    if deadline is None or deadline >= variables.horizon:
        model.add(maintenance.present == 0)
        return

    # One literal per option: the operation runs on this machine and ends after the
    # deadline, so it has to wait for the maintenance window.
    late_literals: list[cp_model.IntVar] = []
    for job in variables.operations:
        for operation in job:
            for option in operation.options:
                if option.machine != maintenance.entry.machine:
                    continue

                if option.duration > deadline:
                    late = option.selected
                else:
                    late = model.new_bool_var(f"late[{option.interval.name}]")
                    model.add_implication(late, option.selected)
                    model.add(operation.start + option.duration > deadline).only_enforce_if(late)
                    model.add(operation.start + option.duration <= deadline).only_enforce_if(
                        [option.selected, ~late]
                    )

                model.add_implication(late, maintenance.present)
                model.add(operation.start >= maintenance.end).only_enforce_if(late)
                late_literals.append(late)

    if late_literals:
        model.add_bool_or(late_literals).only_enforce_if(maintenance.present)
    else:
        model.add(maintenance.present == 0)
