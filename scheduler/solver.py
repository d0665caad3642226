"""The scheduler's entry point: build the CP-SAT model of a plan, solve it, read it back."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

from ortools.sat.python import cp_model

from scheduler.constraints import add_constraints
from scheduler.dispatch import dispatch_schedule
from scheduler.objective import ObjectiveWeights, set_objective
from scheduler.plan import Plan
from scheduler.schedule import MaintenanceWindow, Schedule, ScheduledOperation
from scheduler.variables import PlanVariables, create_variables

logger = logging.getLogger(__name__)
search_logger = logging.getLogger(f"{__name__}.cpsat")


@dataclass(frozen=True)
class SolverSettings:
    """How long and how CP-SAT searches, and what it minimizes.

    `time_limit_s` is the wall-clock limit of the search in seconds, not counting model
    construction. `workers` is the number of parallel search workers (CP-SAT's
    `num_workers`). With `log_progress`, CP-SAT's search log goes to the
    "scheduler.solver.cpsat" logger at INFO level, one record per non-blank line. With
    `use_hint`, the plan's reference assignments are the search's starting point
    (a CP-SAT solution hint). With `redundant_cumulative`, plans in which operations can
    choose between machines also get the redundant cumulative constraint that
    `scheduler.constraints` describes. It is off by default because it slowed the
    makespan search on Brandimarte mk05.
    """

    time_limit_s: float = 10.0
    workers: int = 2
    weights: ObjectiveWeights = field(default_factory=ObjectiveWeights)
    seed: int = 0
    log_progress: bool = False
    use_hint: bool = True
    redundant_cumulative: bool = False

    def __post_init__(self) -> None:
        if not self.time_limit_s > 0:
            raise ValueError(f"time_limit_s={self.time_limit_s!r} must be a positive number")
        if self.workers < 1:
            raise ValueError(f"workers={self.workers!r} must be at least 1")


def solve(plan: Plan, settings: SolverSettings | None = None) -> Schedule:
    """Return the best schedule for `plan` that CP-SAT finds within the time limit.

    The model chooses one eligible machine and a start time for every operation, and
    which machines get a maintenance window and when. Each job's operations run in
    order, after the job's release. Each machine runs one operation or window at a
    time, and nothing while it is down. The windows that need one skill never need more
    people at once than that skill's crew has.
    No machine runs past its maintenance deadline unless its window comes first, as
    `scheduler.constraints` describes in detail. Fixed operations keep their machine
    and start. The model minimizes the weighted objective of `settings.weights`, and
    starts from the plan's reference schedule when it has one.

    The status of the result reports what was found. "optimal" and "feasible" come from
    CP-SAT, with its bound and relative gap. When CP-SAT finds no schedule within the
    time limit, the result is the dispatching-rule schedule of `dispatch_schedule` with
    status "fallback". Its objective is evaluated with the same weights, and its bound
    is CP-SAT's bound when CP-SAT reached a finite one. "infeasible" means CP-SAT
    proved that no schedule exists, which a valid `Plan` should not allow.

    Raises:
        RuntimeError: CP-SAT rejected the model as invalid, which is a bug in this package.
    """
    settings = settings or SolverSettings()

    model = cp_model.CpModel()
    variables = create_variables(model, plan)
    add_constraints(model, plan, variables, settings.redundant_cumulative)
    has_objective = set_objective(model, plan, variables, settings.weights)
    if settings.use_hint:
        _hint_reference(model, plan, variables)

    solver = _configured_solver(settings)
    status = solver.solve(model)

    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        operations, windows = _read_solution(solver, plan, variables)
        schedule = Schedule.from_assignment(
            plan,
            operations,
            windows,
            status="optimal" if status == cp_model.OPTIMAL else "feasible",
            objective=solver.objective_value if has_objective else None,
            bound=solver.best_objective_bound if has_objective else None,
            solve_seconds=solver.wall_time,
        )
    elif status == cp_model.UNKNOWN:
        schedule = _fallback_schedule(plan, settings, solver, has_objective)
    elif status == cp_model.INFEASIBLE:
        logger.error("plan %r: CP-SAT proved that no schedule exists", plan.name)
        schedule = Schedule.empty("infeasible", solve_seconds=solver.wall_time)
    else:
        raise RuntimeError(
            f"CP-SAT rejected the model of plan {plan.name!r} ({solver.status_name(status)}): "
            f"{model.validate()}"
        )

    logger.info(
        "plan %r: status=%s objective=%s bound=%s gap=%s makespan=%d windows=%d in %.2f s",
        plan.name,
        schedule.status,
        schedule.objective,
        schedule.bound,
        schedule.gap,
        schedule.makespan,
        schedule.maintenance_count,
        schedule.solve_seconds,
    )
    return schedule


def _hint_reference(model: cp_model.CpModel, plan: Plan, variables: PlanVariables) -> None:
    """Hint the reference schedule's machine choices, starts and windows to CP-SAT.

    Machines with a maintenance entry but no reference window are hinted without one.
    Operations without a reference assignment stay unhinted, so the hint is partial
    when the plan has new work. CP-SAT then tries to complete it.
    """
    if not plan.reference and not plan.reference_windows:
        return

    job_indexes = {job.id: index for index, job in enumerate(plan.jobs)}
    for assignment in plan.reference:
        operation = variables.operations[job_indexes[assignment.job]][assignment.operation]
        model.add_hint(operation.start, assignment.start)
        for option in operation.options:
            chosen = option.machine == assignment.machine
            model.add_hint(option.selected, chosen)
            if chosen:
                model.add_hint(operation.end, assignment.start + option.duration)

    window_starts = {window.machine: window.start for window in plan.reference_windows}
    for machine, maintenance in variables.maintenance.items():
        start = window_starts.get(machine)
        model.add_hint(maintenance.present, start is not None)
        if start is not None:
            model.add_hint(maintenance.start, start)
            model.add_hint(maintenance.end, start + maintenance.entry.duration)


def _configured_solver(settings: SolverSettings) -> cp_model.CpSolver:
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = settings.time_limit_s
    solver.parameters.num_workers = settings.workers
    solver.parameters.random_seed = settings.seed

    if settings.log_progress:
        solver.parameters.log_search_progress = True
        solver.parameters.log_to_stdout = False
        solver.log_callback = _log_search_output

    return solver


def _log_search_output(text: str) -> None:
    for line in text.splitlines():
        if line.strip():
            search_logger.info("%s", line)


def _read_solution(
    solver: cp_model.CpSolver, plan: Plan, variables: PlanVariables
) -> tuple[list[ScheduledOperation], list[MaintenanceWindow]]:
    operations = []
    for job, job_variables in zip(plan.jobs, variables.operations, strict=True):
        for operation in job_variables:
            chosen = next(option for option in operation.options if solver.value(option.selected))
            start = solver.value(operation.start)
            operations.append(
                ScheduledOperation(
                    job=job.id,
                    operation=operation.operation_index,
                    machine=chosen.machine,
                    start=start,
                    end=start + chosen.duration,
                )
            )

    windows = [
        MaintenanceWindow(
            machine=machine,
            start=solver.value(maintenance.start),
            end=solver.value(maintenance.end),
            reason=maintenance.entry.window_reason,
        )
        for machine, maintenance in variables.maintenance.items()
        if solver.value(maintenance.present)
    ]
    return operations, windows


def _fallback_schedule(
    plan: Plan, settings: SolverSettings, solver: cp_model.CpSolver, has_objective: bool
) -> Schedule:
    logger.warning(
        "plan %r: CP-SAT found no schedule within %.3g s; publishing the dispatching-rule "
        "schedule instead",
        plan.name,
        settings.time_limit_s,
    )
    dispatched = dispatch_schedule(plan)

    objective = None
    bound = None
    if has_objective:
        objective = settings.weights.evaluate(
            dispatched.makespan,
            dispatched.total_weighted_tardiness,
            dispatched.maintenance_cost,
            dispatched.changed_operations,
        )
        if math.isfinite(solver.best_objective_bound):
            bound = solver.best_objective_bound

    return Schedule.from_assignment(
        plan,
        dispatched.operations,
        dispatched.maintenance,
        status="fallback",
        objective=objective,
        bound=bound,
        solve_seconds=solver.wall_time + dispatched.solve_seconds,
    )
