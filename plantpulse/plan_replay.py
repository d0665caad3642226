"""Replay of a job-shop plan file (`.fjs`, JSPLIB or PlantPulse JSON) as `JobReleased` events."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from ingest.events import JobReleased, MachineOption, OperationSpec
from scheduler.plan import Plan
from scheduler.readers import read_plan


def map_machines(plan: Plan, targets: Sequence[str]) -> dict[str, str]:
    """Map the plan's machines onto `targets`, spread evenly and in order.

    With more targets than plan machines, plan machine i goes to target
    `i * len(targets) // len(plan.machines)`, so a small plan covers a cross-section
    of a large fleet. With fewer targets, targets are reused in turn.
    """
    if not targets:
        raise ValueError("no target machines to map the plan's machines onto")
    count = len(plan.machines)
    if len(targets) >= count:
        return {
            machine: targets[index * len(targets) // count]
            for index, machine in enumerate(plan.machines)
        }
    return {machine: targets[index % len(targets)] for index, machine in enumerate(plan.machines)}


def plan_events(
    plan: Plan,
    machine_map: Mapping[str, str],
    origin: datetime,
    time_unit_minutes: int = 60,
    due_factor: float | None = None,
) -> list[JobReleased]:
    """Turn each job of `plan` into a `JobReleased` event; plan times count from `origin`.

    When two plan machines map onto one target, an operation keeps the shorter duration.
    A job without a due date gets one when `due_factor` is set: its release plus
    `due_factor` times the sum of its operations' shortest durations.
    """
    unit = timedelta(minutes=time_unit_minutes)
    events = []
    for job in plan.jobs:
        operations = []
        for operation in job.operations:
            durations: dict[str, int] = {}
            for option in operation.options:
                target = machine_map[option.machine]
                minutes = option.duration * time_unit_minutes
                durations[target] = min(minutes, durations.get(target, minutes))
            operations.append(
                OperationSpec(
                    options=[
                        MachineOption(machine_id=machine, duration_minutes=minutes)
                        for machine, minutes in durations.items()
                    ]
                )
            )
        due = job.due
        if due is None and due_factor is not None:
            shortest = sum(
                min(o.duration for o in operation.options) for operation in job.operations
            )
            due = job.release + math.ceil(due_factor * shortest)
        events.append(
            JobReleased(
                job_id=job.id,
                ts=origin,
                operations=operations,
                release=origin + job.release * unit,
                due=None if due is None else origin + due * unit,
                weight=job.weight,
            )
        )
    return events


def read_plan_events(
    path: Path,
    targets: Sequence[str],
    origin: datetime,
    time_unit_minutes: int = 60,
    due_factor: float | None = None,
) -> list[JobReleased]:
    """Read a plan file and map its machines onto `targets`."""
    plan = read_plan(path)
    return plan_events(plan, map_machines(plan, targets), origin, time_unit_minutes, due_factor)
