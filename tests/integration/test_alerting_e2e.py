"""Alerts end to end in local mode: Prometheus → Alertmanager → alert hub → WebSocket / browser."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.conftest import TOKEN, LocalStack

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _hub_token(stack: LocalStack) -> str:
    secrets = (stack.state / "secrets.env").read_text().splitlines()
    return next(
        line.split("=", 1)[1] for line in secrets if line.startswith("WATCHFLOOR_ALERTHUB_TOKEN=")
    )


def _wait_for_alert(socket, name: str, timeout: float, **labels: str) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
        found = (
            message.get("alerts", [])
            if message["type"] == "snapshot"
            else [message.get("alert") or {}]
        )
        for alert in found:
            alert_labels = alert.get("labels", {})
            if (alert_labels.get("alertname") == name and alert.get("status") == "firing"
                    and all(alert_labels.get(k) == v for k, v in labels.items())):  # fmt: skip
                return alert
    raise AssertionError(f"{name} did not reach the WebSocket within {timeout} s")


def test_watchdog_reaches_a_websocket_client(local_stack: LocalStack):
    hub = local_stack.url("alert-hub").replace("http", "ws")
    started = time.monotonic()
    with connect(f"{hub}/ws?token={_hub_token(local_stack)}") as socket:
        alert = _wait_for_alert(socket, "Watchdog", timeout=60)
    print(f"Watchdog at the WebSocket {time.monotonic() - started:.1f} s after connecting")
    assert alert["labels"]["severity"] == "info"
    assert alert["annotations"]["runbook_url"] == "docs/runbooks/Watchdog.md"


def _inject_risk_violations(stack: LocalStack, strategy: str, count: int) -> None:
    now = datetime.now(UTC).isoformat()
    events = [
        {"type": "risk_violation", "id": f"{strategy}-{time.time_ns()}-{n}", "timestamp": now,
         "strategy": strategy, "rule": "max_position", "severity": "critical",
         "value": 2_000_000, "limit": 1_000_000}
        for n in range(count)
    ]  # fmt: skip
    response = httpx.post(f"{stack.url('trading-exporter')}/v1/events", json=events,
                          headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert response.status_code == 200, response.text


def _breach(stack: LocalStack, strategy: str) -> float:
    """Make TradingRiskViolationSpike fire for `strategy`; returns when the breach was sent."""
    _inject_risk_violations(
        stack, strategy, 1
    )  # the series must exist before increase() sees a rise
    deadline = time.monotonic() + 30
    while not stack.query(f'trading_risk_violations_total{{strategy="{strategy}"}}'):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    sent = time.monotonic()
    _inject_risk_violations(stack, strategy, 6)
    return sent


def test_a_real_breach_reaches_the_hub(local_stack: LocalStack):
    hub = local_stack.url("alert-hub").replace("http", "ws")
    with connect(f"{hub}/ws?token={_hub_token(local_stack)}") as socket:
        socket.recv(timeout=10)  # the snapshot
        sent = _breach(local_stack, "e2e-breach")
        alert = _wait_for_alert(
            socket, "TradingRiskViolationSpike", timeout=60, strategy="e2e-breach"
        )
        latency = time.monotonic() - sent
    print(f"breach → alert hub WebSocket: {latency:.2f} s (1 s scrape/evaluation, 1 s group_wait)")
    assert alert["labels"]["severity"] == "critical"
    assert latency < 30


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium not installed (.ci/run installs it)"
)
def test_browser_shows_the_alert_and_acknowledges_it(local_stack: LocalStack):
    from playwright.sync_api import sync_playwright

    _breach(local_stack, "e2e-browser")
    token = _hub_token(local_stack)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(f"{local_stack.url('alert-hub')}/#token={token}")
        card = page.locator('article[data-severity="critical"]', has_text="e2e-browser")
        card.wait_for(timeout=60_000)
        assert "TradingRiskViolationSpike" in card.inner_text()
        page.wait_for_selector("#heartbeat.ok", timeout=60_000)  # the Watchdog is fresh: no banner
        assert not page.locator("#banner").is_visible()
        page.screenshot(path=str(ARTIFACTS / "alerthub-firing.png"), full_page=True)
        card.get_by_role("button", name="acknowledge").click()
        page.locator("article.acknowledged", has_text="e2e-browser").wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "alerthub-acknowledged.png"), full_page=True)
        browser.close()
    silences = httpx.get(f"{local_stack.url('alertmanager')}/api/v2/silences").json()
    active = [s for s in silences if s["status"]["state"] == "active"
              and {"name": "strategy", "value": "e2e-browser", "isRegex": False, "isEqual": True} in s["matchers"]]  # fmt: skip
    assert active, silences
    assert active[0]["createdBy"] == "alert hub page"
