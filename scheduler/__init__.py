"""Maintenance-aware flexible job shop scheduling with OR-Tools CP-SAT.

A `Plan` lists machines, jobs and the maintenance deadline of each machine, and for a
re-plan also machine downtime, fixed operations and the schedule now published. `solve`
turns it into a `Schedule` within a time limit, falling back to a dispatching rule when
CP-SAT finds nothing in time. `check_schedule` verifies any schedule against its plan.
"""

from scheduler.check import check_schedule
from scheduler.dispatch import dispatch_schedule
from scheduler.objective import ObjectiveWeights
from scheduler.plan import (
    DEFAULT_SKILL,
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
from scheduler.readers import (
    PlanFileError,
    read_fjs,
    read_jsplib,
    read_plan,
    read_plan_json,
    write_plan_json,
)
from scheduler.schedule import (
    MaintenanceWindow,
    Schedule,
    ScheduledOperation,
    ScheduleStatus,
)
from scheduler.solver import SolverSettings, solve

__all__ = [
    "DEFAULT_SKILL",
    "Crew",
    "Job",
    "MachineDowntime",
    "MachineMaintenance",
    "MaintenanceWindow",
    "ObjectiveWeights",
    "Operation",
    "OperationAssignment",
    "OperationOption",
    "Plan",
    "PlanError",
    "PlanFileError",
    "Schedule",
    "ScheduleStatus",
    "ScheduledOperation",
    "SolverSettings",
    "WindowAssignment",
    "check_schedule",
    "dispatch_schedule",
    "read_fjs",
    "read_jsplib",
    "read_plan",
    "read_plan_json",
    "solve",
    "write_plan_json",
]
