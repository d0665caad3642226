"""The dashboard's view of the topics: latest states, bounded history, schedule changes."""

from __future__ import annotations

import pytest

from plantpulse.dashboard import DashboardState, schedule_changes
from tests.dashboard.events import (
    MACHINES,
    job_shop_schedule,
    machine_state,
    schedule,
    window,
)


def test_machine_history_is_bounded() -> None:
    state = DashboardState(history_points=3)

    for seq in range(5):
        assert state.apply_machine_state(machine_state(MACHINES[0], seq, p50=100.0 - seq))

    machine = state.snapshot()["machines"][0]
    assert machine["seq"] == 4
    assert machine["rul"]["p50"] == 96.0
    assert [point[2] for point in machine["history"]] == [98.0, 97.0, 96.0]
    assert machine["history"][0][1:] == [83.0, 98.0, 118.0]


def test_older_machine_state_is_ignored() -> None:
    state = DashboardState()
    state.apply_machine_state(machine_state(MACHINES[0], 5, p50=80.0))

    assert not state.apply_machine_state(machine_state(MACHINES[0], 4, p50=90.0))

    stored = state.machine_state(MACHINES[0])
    assert stored is not None
    assert stored.seq == 5
    assert state.health()["out_of_order_machine_states"] == 1
    assert len(state.snapshot()["machines"][0]["history"]) == 1


def test_at_risk_below_threshold() -> None:
    state = DashboardState(risk_threshold_cycles=30.0)
    state.apply_machine_state(machine_state(MACHINES[0], 1, p50=40.0))  # p10 = 25
    state.apply_machine_state(machine_state(MACHINES[1], 1, p50=60.0))  # p10 = 45

    at_risk = {m["machine_id"]: m["at_risk"] for m in state.snapshot()["machines"]}

    assert at_risk == {MACHINES[0]: True, MACHINES[1]: False}


def test_least_recently_updated_machine_evicted() -> None:
    state = DashboardState(max_machines=2)
    state.apply_machine_state(machine_state(MACHINES[0], 1, p50=50.0))
    state.apply_machine_state(machine_state(MACHINES[1], 1, p50=50.0))
    state.apply_machine_state(machine_state(MACHINES[0], 2, p50=49.0))
    version = state.version

    state.apply_machine_state(machine_state(MACHINES[2], 1, p50=50.0))

    _, update = state.updates_since(version)
    assert update["machine_ids"] == [MACHINES[0], MACHINES[2]]
    assert [m["machine_id"] for m in update["machines"]] == [MACHINES[2]]
    assert state.health()["machines_evicted"] == 1


def test_updates_since_lists_only_changes() -> None:
    state = DashboardState()
    state.apply_machine_state(machine_state(MACHINES[0], 1, p50=50.0))
    state.apply_machine_state(machine_state(MACHINES[1], 1, p50=50.0))
    version = state.version

    state.apply_machine_state(machine_state(MACHINES[1], 2, p50=49.0))
    new_version, update = state.updates_since(version)

    assert new_version == version + 1
    assert [m["machine_id"] for m in update["machines"]] == [MACHINES[1]]
    assert "machine_ids" not in update
    assert "plants" not in update
    assert state.updates_since(new_version) == (new_version, {})


def test_schedule_keeps_latest_and_previous_per_plant() -> None:
    state = DashboardState()
    first = job_shop_schedule("s1")
    second = job_shop_schedule("s2", shift_h=0.5)
    other_plant = job_shop_schedule("p2").model_copy(update={"plant_id": "plant-2"})

    state.apply_schedule(first)
    state.apply_schedule(other_plant)
    state.apply_schedule(second)

    plants = {p["plant_id"]: p for p in state.snapshot()["plants"]}
    assert plants["plant-1"]["schedule"]["schedule_id"] == "s2"
    assert plants["plant-1"]["changes"]["previous_schedule_id"] == "s1"
    assert plants["plant-2"]["schedule"]["schedule_id"] == "p2"
    assert plants["plant-2"]["changes"] is None


def test_changes_count_moved_added_removed() -> None:
    previous = job_shop_schedule("s1", jobs=8)
    reshuffled = job_shop_schedule("s2", jobs=9, shift_h=0.5)
    latest = schedule(
        "s2",
        [op for op in reshuffled.operations if op.job_id != "J08"],
        [
            reshuffled.maintenance_windows[0],
            window(MACHINES[4], 26.0, 8.0, "RUL p10 35 cycles (degrading), model v0004"),
            window(MACHINES[5], 30.0, 8.0, "RUL p10 22 cycles (critical), model v0004"),
        ],
    )

    changes = schedule_changes(previous, latest)

    assert changes is not None
    assert changes["previous_schedule_id"] == "s1"
    assert [(m["job_id"], m["operation"]) for m in changes["operations_moved"]] == [
        ("J01", 0),
        ("J01", 1),
        ("J01", 2),
    ]
    assert {m["start_shift_minutes"] for m in changes["operations_moved"]} == {30.0}
    assert [(a["job_id"], a["operation"]) for a in changes["operations_added"]] == [
        ("J09", 0),
        ("J09", 1),
        ("J09", 2),
    ]
    assert [(r["job_id"], r["operation"]) for r in changes["operations_removed"]] == [
        ("J08", 0),
        ("J08", 1),
        ("J08", 2),
    ]
    assert changes["operations_unchanged"] == 8 * 3 - 3 - 3
    assert [w["machine_id"] for w in changes["windows_moved"]] == [MACHINES[4]]
    assert changes["windows_moved"][0]["start_shift_minutes"] == 120.0
    assert [w["machine_id"] for w in changes["windows_added"]] == [MACHINES[5]]
    assert changes["windows_removed"] == []
    assert changes["kpi_deltas"]["maintenance_count"] == 1.0
    assert changes["kpi_deltas"]["maintenance_cost"] == 100.0


def test_first_schedule_has_no_changes() -> None:
    assert schedule_changes(None, job_shop_schedule("s1")) is None


def test_close_wakes_listeners() -> None:
    state = DashboardState()
    calls: list[str] = []
    unsubscribe = state.subscribe(lambda: calls.append("woken"))

    state.close()
    unsubscribe()
    state.apply_machine_state(machine_state(MACHINES[0], 1, p50=50.0))

    assert state.closed
    assert calls == ["woken"]


@pytest.mark.parametrize("argument", ["history_points", "max_machines", "max_plants"])
def test_state_rejects_zero_limits(argument: str) -> None:
    with pytest.raises(ValueError, match="must be at least 1"):
        DashboardState(**{argument: 0})
