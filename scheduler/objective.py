"""The weighted objective: makespan, weighted tardiness, maintenance cost and changes."""

from __future__ import annotations

from dataclasses import dataclass

from ortools.sat.python import cp_model

from scheduler.plan import Plan
from scheduler.variables import PlanVariables


@dataclass(frozen=True)
class ObjectiveWeights:
    """Weight of each objective term. A term with weight 0 is left out of the model.

    The objective is makespan * `makespan` + sum(job weight * tardiness) *
    `weighted_tardiness` + sum(window cost) * `maintenance_cost` + changed operations *
    `changes`. Times count in plan time units and costs in the plan's cost unit, so the
    weights also convert between the two. An operation counts as changed when it runs
    on another machine or starts at another time than in the plan's reference (the
    schedule now published), so the `changes` term exists only for plans with one.
    """

    makespan: float = 1.0
    weighted_tardiness: float = 1.0
    maintenance_cost: float = 1.0
    changes: float = 1.0

    def __post_init__(self) -> None:
        for name in ("makespan", "weighted_tardiness", "maintenance_cost", "changes"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value >= 0:
                raise ValueError(f"objective weight {name}={value!r} must be a number >= 0")

    def evaluate(
        self,
        makespan: float,
        total_weighted_tardiness: float,
        maintenance_cost: float,
        changed_operations: int = 0,
    ) -> float:
        """Return the objective value of a schedule with the given key figures."""
        return (
            self.makespan * makespan
            + self.weighted_tardiness * total_weighted_tardiness
            + self.maintenance_cost * maintenance_cost
            + self.changes * changed_operations
        )

    @property
    def is_empty(self) -> bool:
        """True when every weight is 0, so the solver only looks for a feasible schedule."""
        return (
            self.makespan == 0
            and self.weighted_tardiness == 0
            and self.maintenance_cost == 0
            and self.changes == 0
        )


def set_objective(
    model: cp_model.CpModel, plan: Plan, variables: PlanVariables, weights: ObjectiveWeights
) -> bool:
    """Make `model` minimize the weighted sum of the terms whose weight is positive.

    Return whether the model got an objective. It gets none when every weight is 0, or
    when only `changes` is positive and the plan has no reference.
    """
    terms: list[cp_model.ObjLinearExprT] = []

    if weights.makespan > 0:
        terms.append(_coefficient(weights.makespan) * _makespan(model, plan, variables))
    if weights.weighted_tardiness > 0:
        tardiness = _weighted_tardiness(model, plan, variables)
        terms.append(_coefficient(weights.weighted_tardiness) * tardiness)
    if weights.maintenance_cost > 0:
        terms.append(_coefficient(weights.maintenance_cost) * _maintenance_cost(variables))
    if weights.changes > 0 and plan.reference:
        terms.append(_coefficient(weights.changes) * _changed_operations(model, plan, variables))

    if terms:
        model.minimize(sum(terms))
    return bool(terms)


def _makespan(model: cp_model.CpModel, plan: Plan, variables: PlanVariables) -> cp_model.IntVar:
    makespan = model.new_int_var(0, variables.horizon, "makespan")
    job_ends = [operations[-1].end for operations in variables.operations]
    if job_ends:
        model.add_max_equality(makespan, job_ends)
    else:
        model.add(makespan == 0)

    for machine in plan.machines:
        _bound_makespan_by_load(model, variables, machine, makespan)
    return makespan


def _bound_makespan_by_load(
    model: cp_model.CpModel, variables: PlanVariables, machine: str, makespan: cp_model.IntVar
) -> None:
    """Keep the makespan at or above the time `machine` spends on operations and its window.

    The constraint is redundant. Every operation ends by the makespan, and a present
    window ends before the operation that waits for it starts, so all of them lie in
    [0, makespan] without overlapping. Stated as a linear constraint, it still lifts
    CP-SAT's lower bound when operations can choose between machines. On Brandimarte
    mk05 with 2 workers, the bound is the optimum, 172, as soon as the search starts,
    where it stayed at 127 for 60 s without this constraint.
    """
    load = [option.duration * option.selected for option in variables.options_on(machine)]

    maintenance = variables.maintenance.get(machine)
    if maintenance is not None:
        load.append(maintenance.entry.duration * maintenance.present)

    if load:
        model.add(makespan >= sum(load))


def _weighted_tardiness(
    model: cp_model.CpModel, plan: Plan, variables: PlanVariables
) -> cp_model.ObjLinearExprT:
    weighted_terms: list[cp_model.ObjLinearExprT] = []

    for job, operations in zip(plan.jobs, variables.operations, strict=True):
        if job.due is None or job.weight == 0:
            continue

        # An equality, not just tardiness >= end - due, keeps the objective of every
        # intermediate solution equal to the one computed from its schedule.
        latest_tardiness = variables.horizon - min(job.due, 0)
        tardiness = model.new_int_var(0, latest_tardiness, f"tardiness[{job.id}]")
        model.add_max_equality(tardiness, [operations[-1].end - job.due, 0])
        weighted_terms.append(_coefficient(job.weight) * tardiness)

    return sum(weighted_terms)


def _maintenance_cost(variables: PlanVariables) -> cp_model.ObjLinearExprT:
    return sum(
        _coefficient(maintenance.entry.cost) * maintenance.present
        for maintenance in variables.maintenance.values()
    )


def _changed_operations(
    model: cp_model.CpModel, plan: Plan, variables: PlanVariables
) -> cp_model.ObjLinearExprT:
    """Count the operations that leave their reference machine or start."""
    job_indexes = {job.id: index for index, job in enumerate(plan.jobs)}
    unchanged_literals: list[cp_model.IntVar] = []

    for assignment in plan.reference:
        operation = variables.operations[job_indexes[assignment.job]][assignment.operation]
        on_machine = next(
            option.selected for option in operation.options if option.machine == assignment.machine
        )
        label = f"{assignment.job}/{assignment.operation}"

        # Both literals are equivalences, so every solution's count is exact, not only
        # the optimal one's.
        same_start = model.new_bool_var(f"same_start[{label}]")
        model.add(operation.start == assignment.start).only_enforce_if(same_start)
        model.add(operation.start != assignment.start).only_enforce_if(~same_start)

        unchanged = model.new_bool_var(f"unchanged[{label}]")
        model.add_bool_and([same_start, on_machine]).only_enforce_if(unchanged)
        model.add_bool_or([~same_start, ~on_machine]).only_enforce_if(~unchanged)
        unchanged_literals.append(unchanged)

    return len(unchanged_literals) - sum(unchanged_literals)


def _coefficient(value: float) -> int | float:
    """Return whole numbers as int, so that CP-SAT keeps an integer objective."""
    return int(value) if float(value).is_integer() else float(value)
