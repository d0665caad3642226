"""The dashboard's HTTP API through FastAPI's TestClient: token, Host check, language, SSE."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest
import typer
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from ingest.config import KafkaConfig
from plantpulse.cli_dashboard import dashboard
from plantpulse.dashboard import (
    DashboardError,
    DashboardServer,
    DashboardState,
    check_bind_address,
    create_app,
    is_loopback_host,
    preferred_language,
)
from plantpulse.dashboard.app import TOKEN_COOKIE
from plantpulse.settings import DashboardSettings
from tests.dashboard.events import MACHINES, job_shop_schedule, machine_state

TOKEN = "s3cret-token-for-tests"
LOCAL = "http://127.0.0.1:8080"
PAGE_PATHS = ["/", "/static/app.js", "/static/i18n.js", "/static/style.css"]
API_PATHS = ["/api/state", "/api/health", "/api/openapi.json"]


@pytest.fixture
def state() -> DashboardState:
    state = DashboardState(risk_threshold_cycles=30.0)
    state.apply_machine_state(machine_state(MACHINES[0], 1, p50=60.0))
    state.apply_machine_state(machine_state(MACHINES[0], 2, p50=40.0, state="degrading"))
    state.apply_schedule(job_shop_schedule("s1"))
    return state


@pytest.fixture
def client(state: DashboardState) -> Iterator[TestClient]:
    with TestClient(create_app(state), base_url=LOCAL) as test_client:
        yield test_client


@pytest.fixture
def guarded(state: DashboardState) -> Iterator[TestClient]:
    app = create_app(state, token=SecretStr(TOKEN))
    with TestClient(app, base_url="http://plant-dashboard.example:8080") as test_client:
        yield test_client


@pytest.mark.parametrize("path", [*PAGE_PATHS, *API_PATHS])
def test_loopback_needs_no_token(client: TestClient, path: str) -> None:
    response = client.get(path)

    assert response.status_code == 200


def test_page_loads_local_files_only(client: TestClient) -> None:
    response = client.get("/")

    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert 'src="static/app.js"' in response.text
    assert "http://" not in response.text
    assert "https://" not in response.text


def test_static_unknown_file_not_found(client: TestClient) -> None:
    assert client.get("/static/..%2Fapp.py").status_code == 404
    assert client.get("/static/missing.js").status_code == 404


def test_api_docs_are_off(client: TestClient) -> None:
    # Swagger UI and ReDoc would load their scripts from a CDN.
    assert client.get("/docs").status_code == 404
    assert client.get("/redoc").status_code == 404


@pytest.mark.parametrize("path", ["/", "/api/state", "/api/events"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_is_allowed(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path)

    assert response.status_code == 405


def test_non_loopback_host_rejected_without_token(state: DashboardState) -> None:
    with TestClient(create_app(state), base_url="http://attacker.example") as foreign:
        response = foreign.get("/api/state")

    assert response.status_code == 400
    assert "not a loopback name" in response.json()["detail"]


@pytest.mark.parametrize("host", ["http://localhost:8080", "http://[::1]:8080", LOCAL])
def test_loopback_host_names_accepted(state: DashboardState, host: str) -> None:
    with TestClient(create_app(state), base_url=host) as local:
        assert local.get("/api/health").status_code == 200


@pytest.mark.parametrize("path", [*PAGE_PATHS, *API_PATHS, "/api/events", "/missing"])
def test_token_required_on_every_path(guarded: TestClient, path: str) -> None:
    response = guarded.get(path)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "token" in response.json()["detail"]


def test_wrong_token_rejected(guarded: TestClient) -> None:
    response = guarded.get("/api/state", headers={"Authorization": "Bearer not-the-token"})

    assert response.status_code == 401


def test_bearer_token_accepted(guarded: TestClient) -> None:
    response = guarded.get("/api/state", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 200
    assert response.json()["plants"][0]["schedule"]["schedule_id"] == "s1"


def test_query_token_sets_cookie(guarded: TestClient) -> None:
    page = guarded.get(f"/?token={TOKEN}")

    assert page.status_code == 200
    cookie = page.headers["set-cookie"]
    assert cookie.startswith(f"{TOKEN_COOKIE}={TOKEN}")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie

    assert guarded.get("/static/app.js").status_code == 200
    assert guarded.get("/api/state").status_code == 200


def test_cookie_with_wrong_token_rejected(guarded: TestClient) -> None:
    guarded.cookies.set(TOKEN_COOKIE, "guess")

    assert guarded.get("/api/state").status_code == 401


def test_state_lists_machines_and_schedule(client: TestClient) -> None:
    snapshot = client.get("/api/state").json()

    machine = snapshot["machines"][0]
    assert machine["machine_id"] == MACHINES[0]
    assert machine["state"] == "degrading"
    assert machine["rul"] == {"p10": 25.0, "p50": 40.0, "p90": 60.0}
    assert machine["at_risk"] is True
    assert [point[2] for point in machine["history"]] == [60.0, 40.0]
    assert machine["top_channels"] == ["s11", "s4", "s12"]
    assert machine["likely_causes"][0] == {
        "component": "hpc",
        "failure_mode": "hpc-degradation",
        "score": 0.8,
        "evidence": ["s11", "s3"],
    }
    assert machine["recommended_action"]["name"] == "hpc-overhaul"
    assert machine["recommended_action"]["duration_minutes"] == 480
    assert machine["recommended_action"]["crew_size"] == 2
    assert machine["model_version"] == "v0003"
    plant = snapshot["plants"][0]
    assert plant["plant_id"] == "plant-1"
    assert len(plant["schedule"]["operations"]) == 24
    assert len(plant["schedule"]["maintenance_windows"]) == 2
    assert plant["changes"] is None
    assert snapshot["risk_threshold_cycles"] == 30.0


def test_health_counts_records(client: TestClient, state: DashboardState) -> None:
    state.count_record("plantpulse.schedule", valid=True)
    state.count_record("plantpulse.machine-state", valid=False)

    health = client.get("/api/health").json()

    assert health["records"] == {"plantpulse.schedule": 1}
    assert health["invalid_records"] == {"plantpulse.machine-state": 1}
    assert health["machines"] == 1
    assert health["plants"] == ["plant-1"]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("en-US,en;q=0.9,zh-CN;q=0.8", "en"),
        ("de-DE,zh;q=0.5,en;q=0.4", "zh-CN"),
        ("zh-TW", "zh-CN"),
        ("en;q=0.2, zh-Hans;q=0.7", "zh-CN"),
        ("zh;q=0, en", "en"),
        ("fr-FR,de;q=0.8", None),
        ("", None),
        (None, None),
        ("en;q=abc, zh", "zh-CN"),
    ],
)
def test_language_from_accept_language(header: str | None, expected: str | None) -> None:
    assert preferred_language(header) == expected


def test_page_lang_from_accept_language(client: TestClient) -> None:
    chinese = client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    english = client.get("/", headers={"Accept-Language": "en-GB"})
    unknown = client.get("/", headers={"Accept-Language": "fr"})

    assert '<html lang="zh-CN" data-language-source="header">' in chinese.text
    assert '<html lang="en" data-language-source="header">' in english.text
    assert '<html lang="en" data-language-source="none">' in unknown.text


def _read_events(body: str) -> list[tuple[str, dict[str, object]]]:
    events = []
    for block in body.strip().split("\n\n"):
        lines = block.splitlines()
        names = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
        data = [line.removeprefix("data: ") for line in lines if line.startswith("data: ")]
        if names and data:
            events.append((names[0], json.loads("\n".join(data))))
    return events


def test_events_snapshot_then_updates(state: DashboardState) -> None:
    app = create_app(state, push_interval_s=0.05)

    def publish_then_close() -> None:
        state.apply_machine_state(machine_state(MACHINES[1], 1, p50=90.0))
        state.apply_schedule(job_shop_schedule("s2", shift_h=0.5))
        threading.Timer(0.5, state.close).start()

    with TestClient(app, base_url=LOCAL) as client:
        threading.Timer(0.5, publish_then_close).start()
        response = client.get("/api/events")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert "retry: 2000" in response.text
    events = _read_events(response.text)
    assert events[0][0] == "snapshot"
    assert events[0][1]["plants"][0]["schedule"]["schedule_id"] == "s1"  # type: ignore[index]
    updates = [data for name, data in events[1:] if name == "update"]
    assert updates, response.text
    machines = [m["machine_id"] for u in updates for m in u.get("machines", [])]  # type: ignore[attr-defined]
    plants = [p["schedule"]["schedule_id"] for u in updates for p in u.get("plants", [])]  # type: ignore[attr-defined]
    assert machines == [MACHINES[1]]
    assert plants == ["s2"]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)
    check_bind_address(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "dashboard.plant.local"])
def test_non_loopback_bind_needs_token(host: str) -> None:
    assert not is_loopback_host(host)

    with pytest.raises(DashboardError, match="without a token"):
        check_bind_address(host, None)
    with pytest.raises(DashboardError, match="without a token"):
        check_bind_address(host, SecretStr(""))
    check_bind_address(host, SecretStr(TOKEN))


def test_default_settings_bind_loopback() -> None:
    settings = DashboardSettings(port=0)

    server = DashboardServer(settings, KafkaConfig(bootstrap_servers="127.0.0.1:1"))
    try:
        assert settings.host == "127.0.0.1"
        assert settings.token is None
        assert server.url == f"http://127.0.0.1:{server.port}/"
        assert server.port > 0
    finally:
        server.stop()


def test_server_rejects_wildcard_without_token() -> None:
    with pytest.raises(DashboardError, match=r"PLANTPULSE_DASHBOARD__TOKEN"):
        DashboardServer(DashboardSettings(host="0.0.0.0", port=0), KafkaConfig())


def test_server_reports_port_in_use() -> None:
    first = DashboardServer(DashboardSettings(port=0), KafkaConfig(bootstrap_servers="127.0.0.1:1"))
    try:
        with pytest.raises(DashboardError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            DashboardServer(
                DashboardSettings(port=first.port), KafkaConfig(bootstrap_servers="127.0.0.1:1")
            )
    finally:
        first.stop()


def test_cli_rejects_wildcard_without_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PLANTPULSE_DASHBOARD__TOKEN", raising=False)
    monkeypatch.delenv("PLANTPULSE_CONFIG", raising=False)
    cli = typer.Typer()
    cli.command()(dashboard)

    result = CliRunner().invoke(cli, ["--host", "0.0.0.0", "--port", "0"])

    assert result.exit_code == 2
    assert "cannot serve the dashboard on 0.0.0.0 without a token" in result.output
