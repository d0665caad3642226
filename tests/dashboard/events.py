"""Hand-built MachineState and Schedule events for the dashboard tests; all of them validate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ingest.events import (
    LikelyCause,
    MachineState,
    MaintenanceWindowOut,
    RecommendedAction,
    RemainingUsefulLife,
    Schedule,
    ScheduledOperationOut,
    ScheduleKpis,
)

ORIGIN = datetime(2026, 1, 12, 6, 0, tzinfo=UTC)
MACHINES = tuple(f"engine-{unit:03d}" for unit in range(1, 7))


HPC_OVERHAUL = RecommendedAction(
    name="hpc-overhaul",
    duration_minutes=480,
    skill="engine-mechanic",
    crew_size=2,
    cost=100.0,
    description="replace worn HPC blades and seals",
    spare_parts=["hpc blade set", "hpc seal kit"],
)


def machine_state(
    machine_id: str,
    seq: int,
    p50: float,
    state: str = "healthy",
    model_version: str = "v0003",
    diagnosed: bool = True,
) -> MachineState:
    """A prediction `seq` half-hours after ORIGIN with a p10-p90 band around `p50`.

    When `diagnosed`, its likely causes are hpc-degradation (80%) and lpt-degradation, and
    its recommended action is hpc-overhaul.
    """
    critical = {"healthy": 0.02, "degrading": 0.15, "critical": 0.7}[state]
    causes = [
        LikelyCause(
            component="hpc", failure_mode="hpc-degradation", score=0.8, evidence=["s11", "s3"]
        ),
        LikelyCause(component="lpt", failure_mode="lpt-degradation", score=0.2, evidence=["s4"]),
    ]
    return MachineState.model_validate(
        {
            "machine_id": machine_id,
            "ts": ORIGIN + timedelta(minutes=30 * seq),
            "seq": seq,
            "model_version": model_version,
            "state": state,
            "state_probabilities": {
                "healthy": round(0.9 - critical, 3),
                "degrading": 0.1,
                "critical": critical,
            },
            "rul": RemainingUsefulLife(p10=max(0.0, p50 - 15), p50=p50, p90=p50 + 20),
            "top_channels": ["s11", "s4", "s12"],
            "likely_causes": causes if diagnosed else [],
            "recommended_action": HPC_OVERHAUL if diagnosed else None,
        }
    )


def operation(
    job: int, index: int, machine: str, start_h: float, hours: float
) -> ScheduledOperationOut:
    start = ORIGIN + timedelta(hours=start_h)
    return ScheduledOperationOut(
        job_id=f"J{job:02d}",
        operation=index,
        machine_id=machine,
        start=start,
        end=start + timedelta(hours=hours),
    )


def window(machine: str, start_h: float, hours: float, reason: str) -> MaintenanceWindowOut:
    start = ORIGIN + timedelta(hours=start_h)
    return MaintenanceWindowOut(
        machine_id=machine, start=start, end=start + timedelta(hours=hours), reason=reason
    )


def schedule(
    schedule_id: str,
    operations: list[ScheduledOperationOut],
    windows: list[MaintenanceWindowOut],
    plant_id: str = "plant-1",
    status: str = "optimal",
    gap: float | None = 0.0,
) -> Schedule:
    makespan = max(op.end for op in operations) - ORIGIN
    return Schedule.model_validate(
        {
            "schedule_id": schedule_id,
            "plant_id": plant_id,
            "created": ORIGIN,
            "plan_version": f"plan-{schedule_id}",
            "model_versions": ["v0003"],
            "operations": operations,
            "maintenance_windows": windows,
            "kpis": ScheduleKpis(
                makespan_minutes=makespan.total_seconds() / 60,
                weighted_tardiness_minutes=120.0,
                maintenance_count=len(windows),
                maintenance_cost=100.0 * len(windows),
            ),
            "solver_status": status,
            "objective": 4210.0,
            "bound": 4210.0 if gap == 0.0 else 4000.0,
            "gap": gap,
            "solve_seconds": 2.4,
        }
    )


def job_shop_schedule(schedule_id: str, jobs: int = 8, shift_h: float = 0.0) -> Schedule:
    """`jobs` jobs of three operations each over MACHINES, and two maintenance windows.

    Every operation of the first job starts `shift_h` hours later than the others would,
    so two such schedules differ in exactly those operations.
    """
    operations = []
    for job in range(jobs):
        for index in range(3):
            machine = MACHINES[(job + 2 * index) % len(MACHINES)]
            start = 3.0 * index + (job // len(MACHINES)) * 9.0 + (shift_h if job == 0 else 0.0)
            operations.append(operation(job + 1, index, machine, start + 0.5 * (job % 2), 2.5))
    windows = [
        window(MACHINES[1], 20.0, 8.0, "RUL p10 18 cycles (critical), model v0003"),
        window(MACHINES[4], 24.0, 8.0, "RUL p10 41 cycles (degrading), model v0003"),
    ]
    return schedule(schedule_id, operations, windows)
