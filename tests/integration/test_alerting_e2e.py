"""Alerts end to end: Prometheus → Alertmanager → alert hub → WebSocket / browser (local mode),
and the hub against a real Alertmanager 0.28.1 behind basic auth: acknowledge, reconcile, HA."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import bcrypt
import httpx
import pytest
from websockets.sync.client import connect

from tests.binaries import pinned_binary
from tests.integration.conftest import TOKEN, LocalStack, free_port
from tests.processes import stop

pytestmark = pytest.mark.integration
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
HUB_TOKEN = "hub-e2e-token"
AM_USER, AM_PASSWORD = "watchfloor", "am-e2e-password"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def _wait_until(check, timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, OSError):
            result = check()
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(f"{what} within {timeout} s")


@dataclass
class Alertmanager:
    url: str
    auth: tuple[str, str]

    def post_alert(self, labels: dict[str, str], *, ends_in: float = 3600) -> None:
        now = datetime.now(UTC)
        alert = {"labels": labels, "annotations": {"summary": "e2e"},
                 "startsAt": (now - timedelta(seconds=120)).isoformat(),
                 "endsAt": (now + timedelta(seconds=ends_in)).isoformat()}  # fmt: skip
        response = httpx.post(f"{self.url}/api/v2/alerts", json=[alert], auth=self.auth)
        assert response.status_code == 200, response.text

    def silences(self) -> list[dict]:
        response = httpx.get(f"{self.url}/api/v2/silences", auth=self.auth)
        assert response.status_code == 200, response.text
        return list(response.json())


@contextlib.contextmanager
def alertmanager(workdir: Path, hub_port: int) -> Iterator[Alertmanager]:
    """Alertmanager 0.28.1 requiring basic auth (--web.config.file with a bcrypt hash), sending
    every alert to the hub at once."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    hashed = bcrypt.hashpw(AM_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    (workdir / "web.yml").write_text(f'basic_auth_users:\n  {AM_USER}: "{hashed}"\n')
    (workdir / "alertmanager.yml").write_text(
        "route: {receiver: hub, group_by: [alertname, strategy], group_wait: 0s,"
        " group_interval: 1s, repeat_interval: 1h}\n"
        "receivers:\n"
        "  - name: hub\n"
        "    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{hub_port}/alertmanager/webhook\n"
        "        send_resolved: true\n"
        f"        http_config: {{authorization: {{credentials: {HUB_TOKEN}}}}}\n"
    )
    log = open(workdir / "alertmanager.log", "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [pinned_binary("alertmanager"), f"--config.file={workdir / 'alertmanager.yml'}",
         f"--storage.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         f"--web.config.file={workdir / 'web.yml'}", "--cluster.listen-address="],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    running = Alertmanager(f"http://127.0.0.1:{port}", (AM_USER, AM_PASSWORD))
    try:
        _wait_until(
            lambda: httpx.get(f"{running.url}/-/ready", auth=running.auth).status_code == 200,
            30, "Alertmanager ready",
        )  # fmt: skip
        yield running
    finally:
        stop(process)
        log.close()


@dataclass
class Hub:
    url: str
    process: subprocess.Popen
    database: Path
    log: Path

    @property
    def ws(self) -> str:
        return self.url.replace("http", "ws", 1) + "/ws"

    def rss_mib(self, field: str = "VmRSS") -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
        raise AssertionError(field)

    def problems(self) -> list[str]:
        """Lines of the hub's log that say something failed inside it (an exception logged)."""
        text = self.log.read_text(errors="replace")
        return [line for line in text.splitlines()
                if "stack_trace" in line or "Traceback" in line or "Exception in ASGI" in line]  # fmt: skip


@contextlib.contextmanager
def hub(
    workdir: Path,
    *args: str,
    port: int | None = None,
    alertmanagers: tuple[str, ...] = (),
    credentials: tuple[str, str] | None = (AM_USER, AM_PASSWORD),
    pythonpath: str | None = None,
) -> Iterator[Hub]:
    """`python -m watchfloor_alerthub` on loopback, with a clean environment (no developer's .env,
    no WATCHFLOOR_* of the shell). `pythonpath` runs another copy of the hub (a before/after check)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
    env.update(WATCHFLOOR_ALERTHUB_TOKEN=HUB_TOKEN, XDG_STATE_HOME=str(workdir / "state"),
               WATCHFLOOR_LOG_STREAM="stderr")  # fmt: skip
    if credentials:
        env.update(WATCHFLOOR_ALERTMANAGER_USERNAME=credentials[0],
                   WATCHFLOOR_ALERTMANAGER_PASSWORD=credentials[1])  # fmt: skip
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    database = workdir / "hub.sqlite"
    command = [sys.executable, "-m", "watchfloor_alerthub", "--host", "127.0.0.1",
               "--port", str(port), "--database", str(database), *args]  # fmt: skip
    for url in alertmanagers or ("http://127.0.0.1:9",):
        command += ["--alertmanager-url", url]
    log_path = workdir / "hub.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    running = Hub(f"http://127.0.0.1:{port}", process, database, log_path)
    try:
        _wait_until(
            lambda: process.poll() is None
            and httpx.get(f"{running.url}/health").status_code == 200,
            30, f"the hub answering /health (log: {log_path})",
        )  # fmt: skip
        yield running
    finally:
        stop(process)
        log.close()


HUB_AUTH = {"Authorization": f"Bearer {HUB_TOKEN}"}


def webhook(*alerts: dict) -> dict:
    return {"version": "4", "status": "firing", "receiver": "hub", "groupKey": "{}",
            "alerts": list(alerts)}  # fmt: skip


def hub_alert(fingerprint: str, status: str = "firing", **annotations: str) -> dict:
    return {"status": status, "fingerprint": fingerprint,
            "labels": {"alertname": "HubE2E", "severity": "critical", "id": fingerprint},
            "annotations": {"summary": f"alert {fingerprint}", **annotations},
            "startsAt": datetime.now(UTC).isoformat(), "endsAt": "0001-01-01T00:00:00Z"}  # fmt: skip


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
    headers = {"Authorization": f"Bearer {_hub_token(local_stack)}"}
    with connect(f"{hub}/ws", additional_headers=headers) as socket:
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
    headers = {"Authorization": f"Bearer {_hub_token(local_stack)}"}
    with connect(f"{hub}/ws", additional_headers=headers) as socket:
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
            executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
        )
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
    silences = local_stack.get("alertmanager", "/api/v2/silences").json()
    active = [s for s in silences if s["status"]["state"] == "active"
              and {"name": "strategy", "value": "e2e-browser", "isRegex": False, "isEqual": True} in s["matchers"]]  # fmt: skip
    assert active, silences
    assert active[0]["createdBy"] == "alert hub page"


def _hub_alerts(running: Hub, status: str = "all") -> list[dict]:
    response = httpx.get(f"{running.url}/api/alerts?status={status}", headers=HUB_AUTH)
    assert response.status_code == 200, response.text
    return list(response.json()["alerts"])


def _one(running: Hub, strategy: str) -> dict | None:
    found = [a for a in _hub_alerts(running) if a["labels"].get("strategy") == strategy]
    return found[0] if found else None


def _acknowledge(running: Hub, fingerprint: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{running.url}/api/alerts/{fingerprint}/acknowledge", json=body, headers=HUB_AUTH
    )


def test_an_acknowledged_alert_follows_alertmanager_until_it_resolves(tmp_path):
    """Alertmanager sends no "resolved" for a silenced alert: the hub used to show it firing
    forever. Now it reconciles with Alertmanager's API, through basic auth on every call."""
    hub_port = free_port()
    with (
        alertmanager(tmp_path / "am", hub_port) as am,
        hub(tmp_path / "hub", "--reconcile-seconds", "1", "--alertmanager-warmup-seconds", "0",
            port=hub_port, alertmanagers=(am.url,)) as running,
    ):  # fmt: skip
        assert httpx.get(f"{am.url}/api/v2/alerts").status_code == 401  # auth is required
        labels = {"alertname": "HubReconcile", "severity": "critical", "strategy": "e2e-rec"}
        am.post_alert(labels)
        fingerprint = _wait_until(lambda: _one(running, "e2e-rec"), 30, "the alert at the hub")[
            "fingerprint"
        ]
        first = _acknowledge(running, fingerprint, by="e2e", hours=1)
        assert first.status_code == 200 and first.json()["created"], first.text
        again = _acknowledge(running, fingerprint, by="e2e twice")  # a double click
        assert again.status_code == 200 and not again.json()["created"]
        assert again.json()["silenceID"] == first.json()["silenceID"]
        active = [s for s in am.silences() if s["status"]["state"] == "active"]
        assert [s["createdBy"] for s in active] == ["e2e"]

        # The silence expired in Alertmanager: the hub asks for attention again.
        expired = httpx.delete(f"{am.url}/api/v2/silence/{first.json()['silenceID']}", auth=am.auth)
        assert expired.status_code == 200, expired.text
        _wait_until(
            lambda: _one(running, "e2e-rec")["silenceId"] is None, 15, "the acknowledgement gone"
        )
        assert _acknowledge(running, fingerprint, by="e2e").json()["created"]

        am.post_alert(labels, ends_in=-30)  # resolved in Alertmanager, silenced: not notified
        resolved = _wait_until(
            lambda: _one(running, "e2e-rec")["status"] == "resolved" and _one(running, "e2e-rec"),
            20, "the hub seeing the resolution",
        )  # fmt: skip
        assert resolved["fingerprint"] == fingerprint
        assert not running.problems(), running.problems()


def test_a_wrong_alertmanager_password_is_reported_not_hidden(tmp_path):
    hub_port = free_port()
    with (
        alertmanager(tmp_path / "am", hub_port) as am,
        hub(tmp_path / "hub", port=hub_port, alertmanagers=(am.url,),
            credentials=(AM_USER, "not-the-password")) as running,
    ):  # fmt: skip
        posted = httpx.post(
            f"{running.url}/alertmanager/webhook", json=webhook(hub_alert("abc1")),
            headers=HUB_AUTH,
        )  # fmt: skip
        assert posted.status_code == 200
        response = _acknowledge(running, "abc1")
        assert response.status_code == 502
        assert "401" in response.json()["error"]
        assert "WATCHFLOOR_ALERTMANAGER_PASSWORD" in response.json()["error"]
        assert am.silences() == []


def test_several_alertmanagers_one_alert_one_silence(tmp_path):
    """HA: each Alertmanager delivers the alert, the hub stores it once, silences it once, and
    resolves it only when no Alertmanager holds it any more."""
    hub_port = free_port()
    with (
        alertmanager(tmp_path / "am1", hub_port) as first,
        alertmanager(tmp_path / "am2", hub_port) as second,
        hub(tmp_path / "hub", "--reconcile-seconds", "1", "--alertmanager-warmup-seconds", "0",
            port=hub_port, alertmanagers=("http://127.0.0.1:9", first.url, second.url)) as running,
    ):  # fmt: skip
        labels = {"alertname": "HubHA", "severity": "critical", "strategy": "e2e-ha"}
        first.post_alert(labels)
        second.post_alert(labels)
        fingerprint = _wait_until(lambda: _one(running, "e2e-ha"), 30, "the alert")["fingerprint"]
        time.sleep(2)  # both have delivered by now (group_wait 0s, group_interval 1s)
        assert [a["fingerprint"] for a in _hub_alerts(running)] == [fingerprint]
        response = _acknowledge(running, fingerprint, by="e2e-ha")
        assert response.status_code == 200, response.text  # the unreachable first one skipped
        assert len(first.silences()) + len(second.silences()) == 1
        first.post_alert(labels, ends_in=-30)
        time.sleep(3)  # three reconciliations: the second Alertmanager still has it firing
        assert _one(running, "e2e-ha")["status"] == "firing"
        second.post_alert(labels, ends_in=-30)
        _wait_until(lambda: _one(running, "e2e-ha")["status"] == "resolved", 20, "the resolution")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_page_says_why_an_acknowledgement_failed_and_links_only_safe_runbooks(tmp_path):
    from playwright.sync_api import sync_playwright

    runbooks = {
        "aa01": "javascript:alert(document.domain)",
        "aa02": "https://runbooks.example.com/HubE2E",
        "aa03": "docs/runbooks/Watchdog.md",
        "aa04": " JaVaScRiPt:alert(1)",
        "aa05": "data:text/html,<script>alert(1)</script>",
        "aa06": "vbscript:msgbox(1)",
    }
    expected = {"aa01": None, "aa02": runbooks["aa02"], "aa03": runbooks["aa03"], "aa04": None,
                "aa05": None, "aa06": None}  # fmt: skip
    # No Alertmanager answers: acknowledging fails, and the page must say so.
    with hub(tmp_path / "hub", credentials=None) as running:
        alerts = [hub_alert(fp, runbook_url=url) for fp, url in runbooks.items()]
        posted = httpx.post(
            f"{running.url}/alertmanager/webhook", json=webhook(*alerts), headers=HUB_AUTH
        )
        assert posted.status_code == 200
        ARTIFACTS.mkdir(exist_ok=True)
        page_errors: list[str] = []
        dialogs: list[str] = []
        sockets: list[str] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS
            )
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.on("pageerror", lambda error: page_errors.append(str(error)))
                page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
                page.on("websocket", lambda socket: sockets.append(socket.url))
                page.goto(f"{running.url}/#token={HUB_TOKEN}")
                page.locator("article.alert").nth(len(runbooks) - 1).wait_for(timeout=30_000)
                links = page.evaluate(
                    """() => Object.fromEntries([...document.querySelectorAll("article.alert")]
                         .map(card => [card.dataset.fingerprint,
                                       card.querySelector("a")?.getAttribute("href") ?? null]))"""
                )
                assert links == expected
                card = page.locator('article[data-fingerprint="aa02"]')
                card.get_by_role("button", name="acknowledge").click()
                problem = card.get_by_role("alert")
                problem.wait_for(timeout=20_000)
                assert "Could not acknowledge" in problem.inner_text()
                assert "unreachable" in problem.inner_text()
                assert card.get_by_role("button", name="acknowledge").is_enabled()  # retry
                assert page.locator("#connection").inner_text() == "live"
                assert "token" not in page.url  # the fragment is dropped from the address bar
                page.screenshot(path=str(ARTIFACTS / "alerthub-ack-failed.png"), full_page=True)
            finally:
                browser.close()
        assert page_errors == [] and dialogs == []
        assert sockets and not any("token" in url for url in sockets), sockets
