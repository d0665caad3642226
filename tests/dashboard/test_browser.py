"""The dashboard page in headless Chromium, fed through a real broker.

Needs Debian's `chromium` and `chromium-driver` and the `selenium` package; skipped
without them. Screenshots go to $PLANTPULSE_TEST_ARTIFACTS when it is set, else to the
test's tmp_path.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest.clients import EventProducer, ensure_topics
from ingest.config import KafkaConfig
from ingest.events import Schedule
from ingest.topics import MACHINE_STATE, SCHEDULE
from models.plant import example_plant
from plantpulse.dashboard import DashboardServer
from plantpulse.settings import DashboardSettings
from tests.dashboard.events import MACHINES, job_shop_schedule, machine_state, schedule, window

pytestmark = pytest.mark.broker

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--window-size=1440,1000",
    "--lang=en-US",
)

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (Path(CHROMIUM).is_file() and Path(CHROMEDRIVER).is_file()):
    pytest.skip(
        f"headless Chromium not found ({CHROMIUM}, {CHROMEDRIVER}); install Debian's "
        "chromium and chromium-driver packages",
        allow_module_level=True,
    )

from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("PLANTPULSE_TEST_ARTIFACTS") or tmp_path) / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def producer(kafka: KafkaConfig) -> Iterator[EventProducer]:
    ensure_topics(kafka, [MACHINE_STATE, SCHEDULE])
    events = EventProducer(kafka)
    yield events
    events.close()


@pytest.fixture
def server(kafka: KafkaConfig, producer: EventProducer) -> Iterator[DashboardServer]:
    dashboard = DashboardServer(DashboardSettings(port=0), kafka, push_interval_s=0.2)
    dashboard.start()
    yield dashboard
    dashboard.stop()


@pytest.fixture
def browser(tmp_path: Path, artifacts: Path) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    service = Service(
        executable_path=CHROMEDRIVER,
        service_args=["--log-level=WARNING"],
        log_output=str(artifacts / "chromedriver.log"),
    )
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def save_full_page(driver: WebDriver, path: Path) -> None:
    """Capture the whole page, not only the window, through the DevTools protocol."""
    import base64

    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def publish(producer: EventProducer, *schedules: Schedule) -> None:
    for event in schedules:
        producer.send(SCHEDULE, event.plant_id, event)
    producer.flush(10)


def wait_until(condition: Any, timeout_s: float, message: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.1)


def drawn(driver: WebDriver, kind: str) -> list[Any]:
    return driver.find_elements(By.CSS_SELECTOR, f'#gantt [data-kind="{kind}"]')


def assert_schedule_drawn(driver: WebDriver, expected: Schedule) -> None:
    """Every operation and maintenance window of `expected`, and nothing else, is drawn."""
    gantt = driver.find_element(By.CSS_SELECTOR, "#gantt svg")
    assert gantt.get_attribute("data-schedule-id") == expected.schedule_id

    operations = {
        (
            bar.get_attribute("data-job"),
            int(bar.get_attribute("data-operation") or -1),
            bar.get_attribute("data-machine"),
            bar.get_attribute("data-start"),
        )
        for bar in drawn(driver, "operation")
    }
    assert len(drawn(driver, "operation")) == len(expected.operations)
    assert operations == {
        (op.job_id, op.operation, op.machine_id, op.start.isoformat().replace("+00:00", "Z"))
        for op in expected.operations
    }

    windows = {
        (bar.get_attribute("data-machine"), bar.get_attribute("data-reason"))
        for bar in drawn(driver, "maintenance")
    }
    assert len(drawn(driver, "maintenance")) == len(expected.maintenance_windows)
    assert windows == {(w.machine_id, w.reason) for w in expected.maintenance_windows}


def health_state(p50: float) -> str:
    if p50 > 90:
        return "healthy"
    if p50 > 45:
        return "degrading"
    return "critical"


def heading(driver: WebDriver, section: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, f"#{section} h2").text)


def cause_and_action(driver: WebDriver, machine: str) -> tuple[Any, Any]:
    row = driver.find_element(By.CSS_SELECTOR, f'#machines tr[data-machine="{machine}"]')
    return row.find_element(By.CSS_SELECTOR, "td.cause"), row.find_element(
        By.CSS_SELECTOR, "td.action"
    )


def test_page_schedule_live_update_language(
    producer: EventProducer,
    server: DashboardServer,
    browser: WebDriver,
    artifacts: Path,
) -> None:
    for seq in range(10):
        for index, machine in enumerate(MACHINES):
            p50 = 190.0 - 6.0 * seq - 25.0 * index
            state = health_state(p50)
            # The last machine's states name no cause, as when no channel observes a component.
            diagnosed = machine != MACHINES[-1]
            producer.send(
                MACHINE_STATE,
                machine,
                machine_state(machine, seq, max(p50, 16.0), state, diagnosed=diagnosed),
            )
    first = job_shop_schedule("sched-0001")
    second = job_shop_schedule("sched-0002", shift_h=0.5)
    publish(producer, first, second)
    wait_until(
        lambda: (
            (latest := server.state.latest_schedule("plant-1")) is not None
            and latest.schedule_id == "sched-0002"
            and server.state.health()["machines"] == len(MACHINES)
        ),
        30,
        f"the dashboard did not read the published events: {server.state.health()}",
    )

    browser.get(server.url)
    wait = WebDriverWait(browser, 20)
    wait.until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '#gantt svg[data-schedule-id="sched-0002"]')
    )
    wait.until(
        lambda d: len(d.find_elements(By.CSS_SELECTOR, "#machines tbody tr")) == len(MACHINES)
    )

    assert_schedule_drawn(browser, second)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    assert heading(browser, "machines-section") == "Machines"
    assert heading(browser, "schedule-section") == "Schedule"
    changes = browser.find_element(By.ID, "changes").text
    assert "Compared with schedule sched-0001" in changes
    assert "3 operations moved, 0 added, 0 removed, 21 unchanged" in changes
    assert browser.find_element(By.ID, "kpi-solver-status").text == "optimal"
    assert browser.find_element(By.ID, "kpi-maintenance-count").text == "2"
    rows = browser.find_elements(By.CSS_SELECTOR, "#machines tbody tr")
    assert [row.get_attribute("data-machine") for row in rows] == list(MACHINES)
    assert all(row.find_elements(By.CSS_SELECTOR, "svg.sparkline polyline") for row in rows)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#windows tbody tr")) == 2
    headers = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#machines th")]
    assert "Likely cause" in headers
    assert "Recommended action" in headers
    cause, action = cause_and_action(browser, MACHINES[0])
    assert cause.text == "hpc-degradation\nhpc · 80%"
    assert cause.get_attribute("data-failure-mode") == "hpc-degradation"
    assert cause.get_attribute("title") == "Evidence: channels s11, s3"
    assert action.text == "hpc-overhaul\n8 h · 2 × engine-mechanic"
    assert action.get_attribute("title") == (
        "replace worn HPC blades and seals\nSpare parts: hpc blade set, hpc seal kit"
    )
    cause, action = cause_and_action(browser, MACHINES[-1])
    assert cause.text == "no evidence"
    assert action.text == "none"
    save_full_page(browser, artifacts / "dashboard-en.png")

    # A marker on `window` survives only if the page is not reloaded.
    browser.execute_script("window.plantpulseTestMarker = 'no reload';")
    third_operations = job_shop_schedule("sched-0003", jobs=9, shift_h=0.5).operations
    third = schedule(
        "sched-0003",
        third_operations,
        [
            *second.maintenance_windows,
            window(MACHINES[5], 30.0, 8.0, "RUL p10 22 cycles (critical), model v0004"),
        ],
        status="feasible",
        gap=0.034,
    )
    publish(producer, third)
    producer.send(
        MACHINE_STATE, MACHINES[0], machine_state(MACHINES[0], 10, 12.0, "critical", "v0004")
    )
    producer.flush(10)

    wait.until(
        lambda d: d.find_elements(By.CSS_SELECTOR, '#gantt svg[data-schedule-id="sched-0003"]')
    )
    wait.until(
        lambda d: (
            d.find_element(
                By.CSS_SELECTOR, f'#machines tr[data-machine="{MACHINES[0]}"]'
            ).get_attribute("data-state")
            == "critical"
        )
    )
    assert browser.execute_script("return window.plantpulseTestMarker;") == "no reload"
    assert_schedule_drawn(browser, third)
    assert browser.find_element(By.ID, "kpi-solver-status").text == "feasible"
    assert browser.find_element(By.ID, "kpi-gap").text == "3.4%"
    assert "0 operations moved, 3 added" in browser.find_element(By.ID, "changes").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#gantt .operation.changed")) == 3
    save_full_page(browser, artifacts / "dashboard-live-update.png")

    browser.find_element(By.ID, "language-toggle").click()
    wait.until(lambda d: heading(d, "machines-section") == "设备")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert heading(browser, "schedule-section") == "生产排程"
    assert browser.find_element(By.ID, "kpi-solver-status").text == "可行"
    assert browser.find_element(By.ID, "language-toggle").text == "English"
    assert "移动 0 道工序，新增 3 道" in browser.find_element(By.ID, "changes").text
    headers = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, "#machines th")]
    assert "最可能原因" in headers
    assert "建议维护措施" in headers
    cause, action = cause_and_action(browser, MACHINES[0])
    assert cause.text == "hpc-degradation\n部件 hpc · 80%"
    assert cause.get_attribute("title") == "依据通道：s11, s3"
    assert action.text == "hpc-overhaul\n8 小时 · 2 人（engine-mechanic）"
    assert "备件：hpc blade set, hpc seal kit" in str(action.get_attribute("title"))
    cause, action = cause_and_action(browser, MACHINES[-1])
    assert cause.text == "无依据"
    assert action.text == "无"
    assert_schedule_drawn(browser, third)
    save_full_page(browser, artifacts / "dashboard-zh-CN.png")

    browser.find_element(By.ID, "language-toggle").click()
    wait.until(lambda d: heading(d, "machines-section") == "Machines")
    assert browser.find_element(By.ID, "language-toggle").text == "中文"

    # With no saved choice, a browser whose Accept-Language prefers Chinese gets Chinese.
    browser.execute_script("window.localStorage.clear();")
    browser.execute_cdp_cmd(
        "Network.setUserAgentOverride",
        {
            "userAgent": browser.execute_script("return navigator.userAgent;"),
            "acceptLanguage": "zh-CN,zh",
        },
    )
    browser.refresh()
    wait.until(lambda d: heading(d, "machines-section") == "设备")
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"


def test_short_demo_page_draws_latest_schedule(
    browser: WebDriver, artifacts: Path, data_dir: Path, trained_registry: Path, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    output = tmp_path / "demo"
    environment = {**os.environ, "PLANTPULSE_DASHBOARD__PORT": "0"}
    command = [
        sys.executable, "-m", "plantpulse.cli", "demo", "--dashboard",
        "--data-dir", str(data_dir), "--machines", "6", "--time-limit", "3",
        "--registry", str(trained_registry), "--output", str(output),
    ]  # fmt: skip
    log_path = tmp_path / "demo.log"
    with log_path.open("w") as log:
        demo = subprocess.Popen(
            command, env=environment, stdout=log, stderr=subprocess.STDOUT, text=True
        )
    try:
        wait_until(
            lambda: "keep running" in log_path.read_text() or demo.poll() is not None,
            600,
            "the demo did not reach its report",
        )
        text = log_path.read_text()
        assert demo.poll() is None, text[-3000:]
        url = next(
            line.split("dashboard on ", 1)[1].strip()
            for line in text.splitlines()
            if "dashboard on " in line
        )
        latest = Schedule.model_validate_json((output / "schedule.json").read_text())

        browser.get(url)
        WebDriverWait(browser, 30).until(
            lambda d: d.find_elements(
                By.CSS_SELECTOR, f'#gantt svg[data-schedule-id="{latest.schedule_id}"]'
            )
        )
        assert_schedule_drawn(browser, latest)
        rows = browser.find_elements(By.CSS_SELECTOR, "#machines tbody tr")
        assert len(rows) == 6
        plant = example_plant("cmapss")
        modes = {mode.name: component.name for component, mode in plant.failure_modes()}
        for row in rows:
            cause = row.find_element(By.CSS_SELECTOR, "td.cause")
            mode = cause.get_attribute("data-failure-mode")
            assert mode in modes
            assert cause.get_attribute("data-component") == modes[mode]
            action = row.find_element(By.CSS_SELECTOR, "td.action").get_attribute("data-action")
            assert action == next(m for _, m in plant.failure_modes() if m.name == mode).actions[0]
        save_full_page(browser, artifacts / "dashboard-demo.png")
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
    assert demo.returncode == 0, log_path.read_text()[-3000:]
