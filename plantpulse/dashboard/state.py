"""The dashboard's in-memory view of the topics, shared by the consumer thread and the web app.

The consumer thread writes through `apply_machine_state` and `apply_schedule`; request
handlers read `snapshot()` and `updates_since(version)`. Every write bumps one version
counter, so a server-sent-event stream can send only what changed since its last push.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from ingest.events import MachineState, Schedule
from plantpulse.dashboard.changes import schedule_changes

ConnectionStatus = Literal["starting", "connecting", "connected", "disconnected", "stopped"]


@dataclass
class _MachineEntry:
    latest: MachineState
    history: deque[tuple[int, float, float, float]]
    version: int


@dataclass
class _PlantSchedules:
    latest: Schedule
    previous: Schedule | None
    changes: dict[str, Any] | None
    version: int


@dataclass
class _Counters:
    records: dict[str, int] = field(default_factory=dict)
    invalid: dict[str, int] = field(default_factory=dict)
    out_of_order: int = 0
    machines_evicted: int = 0


def _epoch_ms(state: MachineState) -> int:
    return int(state.ts.timestamp() * 1000)


class DashboardState:
    """Latest state and a bounded RUL history per machine, and the last two schedules per plant.

    Machines beyond `max_machines` evict the least recently updated one, and plants beyond
    `max_plants` evict the least recently updated plant, so memory stays bounded whatever
    the topics carry.
    """

    def __init__(
        self,
        history_points: int = 120,
        max_machines: int = 2000,
        max_plants: int = 16,
        risk_threshold_cycles: float = 30.0,
    ) -> None:
        if history_points < 1 or max_machines < 1 or max_plants < 1:
            raise ValueError(
                "history_points, max_machines and max_plants must be at least 1, got "
                f"{history_points}, {max_machines}, {max_plants}"
            )
        self.history_points = history_points
        self.max_machines = max_machines
        self.max_plants = max_plants
        self.risk_threshold_cycles = risk_threshold_cycles

        self._lock = threading.Lock()
        self._machines: OrderedDict[str, _MachineEntry] = OrderedDict()
        self._plants: OrderedDict[str, _PlantSchedules] = OrderedDict()
        self._version = 0
        self._roster_version = 0
        self._connection_version = 0
        self._connection: dict[str, Any] = {
            "status": "starting",
            "detail": "",
            "since": time.time(),
        }
        self._counters = _Counters()
        self._listeners: list[Callable[[], None]] = []
        self._closed = False

    # --- writes, from the consumer thread ------------------------------------------------

    def apply_machine_state(self, state: MachineState) -> bool:
        """Store `state` unless an equal or newer one (by time, then seq) is already stored."""
        with self._lock:
            entry = self._machines.get(state.machine_id)
            if entry is not None and (state.ts, state.seq) <= (entry.latest.ts, entry.latest.seq):
                self._counters.out_of_order += 1
                return False

            self._version += 1
            point = (_epoch_ms(state), state.rul.p10, state.rul.p50, state.rul.p90)
            if entry is None:
                history: deque[tuple[int, float, float, float]] = deque(maxlen=self.history_points)
                history.append(point)
                self._machines[state.machine_id] = _MachineEntry(state, history, self._version)
                self._roster_version = self._version
                self._evict_machines()
            else:
                entry.latest = state
                entry.history.append(point)
                entry.version = self._version
                self._machines.move_to_end(state.machine_id)
        self._notify()
        return True

    def _evict_machines(self) -> None:
        while len(self._machines) > self.max_machines:
            self._machines.popitem(last=False)
            self._counters.machines_evicted += 1

    def apply_schedule(self, schedule: Schedule) -> None:
        """Make `schedule` its plant's latest; the one it replaces becomes the previous."""
        with self._lock:
            self._version += 1
            current = self._plants.pop(schedule.plant_id, None)
            previous = current.latest if current is not None else None
            self._plants[schedule.plant_id] = _PlantSchedules(
                latest=schedule,
                previous=previous,
                changes=schedule_changes(previous, schedule),
                version=self._version,
            )
            while len(self._plants) > self.max_plants:
                self._plants.popitem(last=False)
        self._notify()

    def count_record(self, topic: str, valid: bool) -> None:
        with self._lock:
            counts = self._counters.records if valid else self._counters.invalid
            counts[topic] = counts.get(topic, 0) + 1

    def set_connection(self, status: ConnectionStatus, detail: str = "") -> None:
        with self._lock:
            if self._connection["status"] == status and self._connection["detail"] == detail:
                return
            self._version += 1
            self._connection_version = self._version
            self._connection = {"status": status, "detail": detail, "since": time.time()}
        self._notify()

    # --- reads, from request handlers ---------------------------------------------------------

    @property
    def version(self) -> int:
        with self._lock:
            return self._version

    def latest_schedule(self, plant_id: str) -> Schedule | None:
        with self._lock:
            plant = self._plants.get(plant_id)
            return plant.latest if plant is not None else None

    def machine_state(self, machine_id: str) -> MachineState | None:
        with self._lock:
            entry = self._machines.get(machine_id)
            return entry.latest if entry is not None else None

    def _machine_json(self, entry: _MachineEntry) -> dict[str, Any]:
        latest = entry.latest
        return {
            **latest.model_dump(mode="json"),
            "history": [list(point) for point in entry.history],
            "at_risk": latest.rul.p10 < self.risk_threshold_cycles,
        }

    @staticmethod
    def _plant_json(plant: _PlantSchedules) -> dict[str, Any]:
        return {
            "plant_id": plant.latest.plant_id,
            "schedule": plant.latest.model_dump(mode="json"),
            "changes": plant.changes,
        }

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready data."""
        with self._lock:
            return {
                "version": self._version,
                "risk_threshold_cycles": self.risk_threshold_cycles,
                "connection": dict(self._connection),
                "machines": [self._machine_json(e) for e in self._machines.values()],
                "plants": [self._plant_json(p) for p in self._plants.values()],
            }

    def updates_since(self, version: int) -> tuple[int, dict[str, Any]]:
        """Return the current version and what changed after `version` (empty if nothing).

        `machine_ids` is present only when machines were added or evicted, and then lists
        every machine still tracked, so that the page can drop evicted rows.
        """
        with self._lock:
            update: dict[str, Any] = {}
            machines = [
                self._machine_json(e) for e in self._machines.values() if e.version > version
            ]
            if machines:
                update["machines"] = machines
            if self._roster_version > version:
                update["machine_ids"] = list(self._machines.keys())
            plants = [self._plant_json(p) for p in self._plants.values() if p.version > version]
            if plants:
                update["plants"] = plants
            if self._connection_version > version:
                update["connection"] = dict(self._connection)
            return self._version, update

    def health(self) -> dict[str, Any]:
        """Counters an operator checks first: connection, records read, records rejected."""
        with self._lock:
            return {
                "connection": dict(self._connection),
                "machines": len(self._machines),
                "plants": sorted(self._plants.keys()),
                "records": dict(self._counters.records),
                "invalid_records": dict(self._counters.invalid),
                "out_of_order_machine_states": self._counters.out_of_order,
                "machines_evicted": self._counters.machines_evicted,
            }

    # --- change notification ---------------------------------------------------------------

    def subscribe(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call `listener` after every change, from the writing thread; return an unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Mark the state closed and wake every listener, so that event streams end."""
        self._closed = True
        self._notify()
