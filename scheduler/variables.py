"""CP-SAT decision variables for a plan: operation times, machine choices, maintenance."""

from __future__ import annotations

from dataclasses import dataclass

from ortools.sat.python import cp_model

from scheduler.plan import MachineMaintenance, Plan


@dataclass(frozen=True)
class OptionVariables:
    """The choice of one machine for one operation.

    The interval starts at the operation's start and has the option's fixed duration.
    It is present exactly when `selected` is true.
    """

    machine: str
    duration: int
    selected: cp_model.IntVar
    interval: cp_model.IntervalVar


@dataclass(frozen=True)
class OperationVariables:
    """Start and end of one operation, and one optional interval per eligible machine."""

    job_index: int
    operation_index: int
    start: cp_model.IntVar
    end: cp_model.IntVar
    options: tuple[OptionVariables, ...]


@dataclass(frozen=True)
class MaintenanceVariables:
    """The optional maintenance window of one machine."""

    entry: MachineMaintenance
    present: cp_model.IntVar
    start: cp_model.IntVar
    end: cp_model.IntVar
    interval: cp_model.IntervalVar


@dataclass(frozen=True)
class PlanVariables:
    """All decision variables of a plan's model.

    `operations[j][k]` belongs to operation k of `plan.jobs[j]`. `maintenance` is keyed by
    machine name and has an entry for every machine with a maintenance entry in the plan.
    `downtime` contains one fixed interval per downtime of the plan that lies partly inside
    [0, horizon], keyed by machine. Every time variable lies in [0, horizon].
    """

    horizon: int
    operations: tuple[tuple[OperationVariables, ...], ...]
    maintenance: dict[str, MaintenanceVariables]
    downtime: dict[str, list[cp_model.IntervalVar]]

    def options_on(self, machine: str) -> list[OptionVariables]:
        """Return the option variables of every operation that may run on `machine`."""
        return [
            option
            for job in self.operations
            for operation in job
            for option in operation.options
            if option.machine == machine
        ]


def schedule_horizon(plan: Plan) -> int:
    """Return a time by which some optimal schedule is complete.

    Wait until every release, every downtime with an end, every fixed operation and
    every reference assignment is over. Running every maintenance window and then every
    other operation one after another from there, each on its slowest machine that is
    not down for good, is a feasible schedule that ends by this time. Shifting the
    operations and windows of an optimal schedule as early as they can go, leaving fixed
    operations and those at their reference assignment in place, never makes any
    objective term worse and also ends by this time.
    """
    fixed_ends = [plan.fixed_end(assignment) for assignment in plan.fixed]
    downtime_ends = [interval.end for interval in plan.downtime if interval.end is not None]
    reference_ends = [plan.fixed_end(assignment) for assignment in plan.reference]
    window_ends = [
        window.start + _window_duration(plan, window.machine) for window in plan.reference_windows
    ]
    busy_until = max(
        [
            0,
            *(job.release for job in plan.jobs),
            *fixed_ends,
            *downtime_ends,
            *reference_ends,
            *window_ends,
        ]
    )

    slowest_work = sum(
        max(option.duration for option in operation.options)
        for job in plan.jobs
        for operation in job.operations
    )
    maintenance_time = sum(entry.duration for entry in plan.maintenance)
    return busy_until + slowest_work + maintenance_time


def _window_duration(plan: Plan, machine: str) -> int:
    return plan.maintenance_by_machine()[machine].duration


def create_variables(model: cp_model.CpModel, plan: Plan) -> PlanVariables:
    """Create the interval variables of `plan` in `model` and return them."""
    horizon = schedule_horizon(plan)

    operations = tuple(
        tuple(
            _create_operation(model, plan, job_index, operation_index, horizon)
            for operation_index in range(len(job.operations))
        )
        for job_index, job in enumerate(plan.jobs)
    )

    maintenance = {
        entry.machine: _create_maintenance(model, entry, horizon) for entry in plan.maintenance
    }

    downtime: dict[str, list[cp_model.IntervalVar]] = {}
    for index, interval in enumerate(plan.downtime):
        start = max(interval.start, 0)
        end = horizon if interval.end is None else min(interval.end, horizon)
        if start < end:
            downtime.setdefault(interval.machine, []).append(
                model.new_fixed_size_interval_var(
                    start, end - start, f"down[{interval.machine}#{index}]"
                )
            )

    return PlanVariables(
        horizon=horizon, operations=operations, maintenance=maintenance, downtime=downtime
    )


def _create_operation(
    model: cp_model.CpModel, plan: Plan, job_index: int, operation_index: int, horizon: int
) -> OperationVariables:
    job = plan.jobs[job_index]
    operation = job.operations[operation_index]
    label = f"{job.id}/{operation_index}"

    start = model.new_int_var(0, horizon, f"start[{label}]")
    end = model.new_int_var(0, horizon, f"end[{label}]")

    options = []
    for option in operation.options:
        selected = model.new_bool_var(f"selected[{label}@{option.machine}]")
        interval = model.new_optional_fixed_size_interval_var(
            start, option.duration, selected, f"run[{label}@{option.machine}]"
        )
        options.append(
            OptionVariables(
                machine=option.machine,
                duration=option.duration,
                selected=selected,
                interval=interval,
            )
        )

    return OperationVariables(
        job_index=job_index,
        operation_index=operation_index,
        start=start,
        end=end,
        options=tuple(options),
    )


def _create_maintenance(
    model: cp_model.CpModel, entry: MachineMaintenance, horizon: int
) -> MaintenanceVariables:
    present = model.new_bool_var(f"maintained[{entry.machine}]")
    start = model.new_int_var(0, horizon, f"maintenance_start[{entry.machine}]")
    end = model.new_int_var(0, horizon, f"maintenance_end[{entry.machine}]")
    interval = model.new_optional_interval_var(
        start, entry.duration, end, present, f"maintenance[{entry.machine}]"
    )
    return MaintenanceVariables(
        entry=entry, present=present, start=start, end=end, interval=interval
    )
