"""Differences between two published schedules of one plant, in the page's JSON shape."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ingest.events import MaintenanceWindowOut, Schedule, ScheduledOperationOut


def _minutes_between(earlier: Any, later: Any) -> float:
    return (later - earlier).total_seconds() / 60.0


def _operation_json(operation: ScheduledOperationOut) -> dict[str, Any]:
    return operation.model_dump(mode="json")


def _window_json(window: MaintenanceWindowOut) -> dict[str, Any]:
    return window.model_dump(mode="json")


def _operation_changes(previous: Schedule, latest: Schedule) -> dict[str, Any]:
    before = {(op.job_id, op.operation): op for op in previous.operations}
    after = {(op.job_id, op.operation): op for op in latest.operations}

    moved = []
    unchanged = 0
    for key in sorted(before.keys() & after.keys()):
        old, new = before[key], after[key]
        if old.machine_id == new.machine_id and old.start == new.start and old.end == new.end:
            unchanged += 1
            continue
        moved.append(
            {
                "job_id": new.job_id,
                "operation": new.operation,
                "from_machine": old.machine_id,
                "to_machine": new.machine_id,
                "from_start": old.start.isoformat(),
                "to_start": new.start.isoformat(),
                "start_shift_minutes": _minutes_between(old.start, new.start),
            }
        )

    return {
        "operations_added": [
            _operation_json(after[key]) for key in sorted(after.keys() - before.keys())
        ],
        "operations_removed": [
            _operation_json(before[key]) for key in sorted(before.keys() - after.keys())
        ],
        "operations_moved": moved,
        "operations_unchanged": unchanged,
    }


def _window_changes(previous: Schedule, latest: Schedule) -> dict[str, Any]:
    """Pair each machine's windows in time order: the n-th before with the n-th after."""
    before: dict[str, list[MaintenanceWindowOut]] = defaultdict(list)
    after: dict[str, list[MaintenanceWindowOut]] = defaultdict(list)
    for window in sorted(previous.maintenance_windows, key=lambda w: w.start):
        before[window.machine_id].append(window)
    for window in sorted(latest.maintenance_windows, key=lambda w: w.start):
        after[window.machine_id].append(window)

    added: list[dict[str, Any]] = []
    removed: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []
    for machine in sorted(before.keys() | after.keys()):
        old_windows, new_windows = before[machine], after[machine]
        for old, new in zip(old_windows, new_windows, strict=False):
            if old.start != new.start or old.end != new.end:
                moved.append(
                    {
                        "machine_id": machine,
                        "from_start": old.start.isoformat(),
                        "to_start": new.start.isoformat(),
                        "start_shift_minutes": _minutes_between(old.start, new.start),
                        "reason": new.reason,
                    }
                )
        added.extend(_window_json(w) for w in new_windows[len(old_windows) :])
        removed.extend(_window_json(w) for w in old_windows[len(new_windows) :])

    return {"windows_added": added, "windows_removed": removed, "windows_moved": moved}


def schedule_changes(previous: Schedule | None, latest: Schedule) -> dict[str, Any] | None:
    """Compare `latest` with the `previous` schedule of the same plant; None without one.

    Operations are matched by job and operation index, so an operation counts as moved
    when its machine, start or end differs. KPI deltas are latest minus previous.
    """
    if previous is None:
        return None

    kpi_deltas = {
        name: float(getattr(latest.kpis, name)) - float(getattr(previous.kpis, name))
        for name in type(latest.kpis).model_fields
    }
    return {
        "previous_schedule_id": previous.schedule_id,
        "previous_created": previous.created.isoformat(),
        "previous_solver_status": previous.solver_status,
        **_operation_changes(previous, latest),
        **_window_changes(previous, latest),
        "kpi_deltas": kpi_deltas,
    }
