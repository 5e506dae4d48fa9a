"""Local mode in HA (`watchfloor-local up --ha`) on the pinned binaries: a Prometheus pair writing
to VictoriaMetrics, three peered Alertmanagers and the hub. One Prometheus and the Alertmanager
first in line are killed with SIGKILL: alerts still reach the hub once each, the stored series
have no gap and no sample twice, and `up --ha` brings both back."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.binaries import pinned_binary
from tests.integration.conftest import TOKEN, LocalStack, free_port, local_env
from tests.integration.test_dashboard_queries import _queries, _substitute
from watchfloor_stack.compose import webauth
from watchfloor_stack.localmode.components import ALERTMANAGERS, DEFAULT_PORTS, HA_PORTS, REPLICAS
from watchfloor_stack.localmode.config import render_prometheus
from watchfloor_stack.localmode.processes import ProcessTable

pytestmark = pytest.mark.integration

INTERVAL = 1.0  # seconds: scrape, evaluation and VictoriaMetrics' deduplication window
UP_ARGS = ("up", "--ha", "--scrape-interval", "1s", "--evaluation-interval", "1s",
           "--group-wait", "1s")  # fmt: skip
COMPONENTS = {"jaeger", "victoriametrics", *REPLICAS, "pushgateway", "node-exporter",
              "trading-exporter", "pipeline-exporter", *ALERTMANAGERS, "alert-hub"}  # fmt: skip
# Every job's targets: both replicas, three Alertmanagers, VictoriaMetrics and the rest.
TARGETS = 12
SERIES = 'up{job="trading-exporter"}'

T = TypeVar("T")


def _wait(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.25) -> T:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        try:
            result = check()
        except (AssertionError, httpx.HTTPError, OSError, KeyError, ValueError) as exc:
            result, last_error = None, f" (last error: {exc!r})"
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"{what} within {timeout:.0f} s{last_error}")


class HA:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.table = ProcessTable(stack.state)
        secrets = dict(
            line.split("=", 1) for line in (stack.state / "secrets.env").read_text().splitlines()
        )
        self.hub_token = secrets["WATCHFLOOR_ALERTHUB_TOKEN"]

    def _auth(self, component: str) -> tuple[str, str]:
        # Replicas share their first's password; VictoriaMetrics takes Prometheus'.
        base = component.split("-", maxsplit=1)[0].replace("victoriametrics", "prometheus")
        return webauth.USERNAME, self.stack.env[webauth.PASSWORDS[base]]

    def get(self, component: str, path: str, **params: Any) -> httpx.Response:
        response = httpx.get(
            f"{self.stack.url(component)}{path}",
            params=params,
            auth=self._auth(component),
            timeout=10,
        )
        assert response.status_code == 200, f"{component} {path}: {response.text}"
        return response

    def query(self, replica: str, promql: str) -> list[dict[str, Any]]:
        return list(self.get(replica, "/api/v1/query", query=promql).json()["data"]["result"])

    def metric(self, component: str, name: str) -> float:
        """The sum of a metric's series on a component's own /metrics page."""
        text = self.get(component, "/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith((name + "{", name + " "))
        )

    def hub_alerts(self, alertname: str, **labels: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{self.stack.url('alert-hub')}/api/alerts",
            params={"status": "all"},
            headers={"Authorization": f"Bearer {self.hub_token}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return [
            alert
            for alert in response.json()["alerts"]
            if alert["labels"].get("alertname") == alertname
            and all(alert["labels"].get(k) == v for k, v in labels.items())
        ]

    def watchdog_seen(self) -> float:
        response = httpx.get(
            f"{self.stack.url('alert-hub')}/api/alerts",
            headers={"Authorization": f"Bearer {self.hub_token}"},
            timeout=10,
        )
        return float(response.json()["watchdog"]["lastSeen"] or 0)

    def am_alerts(self, alertmanager: str, alertname: str, **labels: str) -> list[dict[str, Any]]:
        matchers = [
            f'{name}="{value}"' for name, value in {"alertname": alertname, **labels}.items()
        ]
        found = self.get(alertmanager, "/api/v2/alerts", filter=matchers)
        return list(found.json())

    def kill(self, name: str) -> None:
        running = self.table.running(name)
        assert running is not None, f"{name} is not running"
        os.kill(running.pid, signal.SIGKILL)
        _wait(lambda: self.table.running(name) is None, 10, f"{name} gone after SIGKILL")

    def export(self, series: str, start: float, end: float) -> list[dict[str, Any]]:
        """VictoriaMetrics' raw samples of `series` (deduplicated as stored and as read)."""
        text = self.get(
            "victoriametrics", "/api/v1/export", **{"match[]": series}, start=start, end=end
        ).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def breach(self, replica: str, strategy: str) -> float:
        """Make TradingRiskViolationSpike fire for `strategy`; returns when the breach was sent."""
        self._risk_violations(strategy, 1)  # increase() needs the series before the rise
        _wait(
            lambda: self.query(replica, f'trading_risk_violations_total{{strategy="{strategy}"}}'),
            30,
            f"{replica} scraping the first risk violation of {strategy}",
        )
        sent = time.monotonic()
        self._risk_violations(strategy, 6)
        return sent

    def _risk_violations(self, strategy: str, count: int) -> None:
        events = [
            {"type": "risk_violation", "id": f"{strategy}-{time.time_ns()}-{n}",
             "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "strategy": strategy, "rule": "max_position", "severity": "critical",
             "value": 2_000_000, "limit": 1_000_000}
            for n in range(count)
        ]  # fmt: skip
        response = httpx.post(
            f"{self.stack.url('trading-exporter')}/v1/events",
            json=events,
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert response.status_code == 200, response.text

    def first_in_line(self) -> str:
        """The Alertmanager that notifies first (peer position 0)."""
        positions = {am: self.metric(am, "alertmanager_peer_position") for am in ALERTMANAGERS}
        return min(positions, key=lambda am: positions[am])

    def peers(self, alertmanager: str) -> int:
        status = self.get(alertmanager, "/api/v2/status").json()["cluster"]
        return len(status.get("peers") or []) if status["status"] == "ready" else 0


@pytest.fixture(scope="module")
def ha(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HA]:
    state = tmp_path_factory.mktemp("local-ha")
    ports = {name: free_port() for name in (*DEFAULT_PORTS, *HA_PORTS)}
    stack = LocalStack(state, local_env(state, ports), ports, TOKEN)
    try:
        started = stack.cli(*UP_ARGS)
        assert started.returncode == 0, (
            f"HA local mode did not come up:\n{started.stdout}{started.stderr}"
        )
        running = HA(stack)
        for replica in REPLICAS:
            _wait(
                lambda replica=replica: len(running.query(replica, "up == 1")) >= TARGETS,
                60,
                f"{replica} scraping all {TARGETS} targets",
            )
        yield running
    finally:
        stopped = stack.cli("down")
        assert stopped.returncode == 0, stopped.stderr
        assert not list((state / "run").glob("*.pid")), "local-down left pid files behind"


def test_the_ha_rendering_passes_promtool(tmp_path: Path) -> None:
    ports = {name: 10_000 + i for i, name in enumerate((*DEFAULT_PORTS, *HA_PORTS))}
    render_prometheus(tmp_path, ports, scrape_interval="1s", evaluation_interval="1s")
    for replica, label in REPLICAS.items():
        path = tmp_path / replica / "prometheus.yml"
        result = subprocess.run([pinned_binary("promtool"), "check", "config", str(path)],
                                capture_output=True, text=True, check=False)  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"replica: {label}" in path.read_text()


def test_every_component_is_up_and_the_alertmanagers_are_peered(ha: HA) -> None:
    assert set(ha.table.names()) == COMPONENTS
    status = ha.stack.cli("status")
    assert status.returncode == 0, status.stdout
    assert status.stdout.count(" healthy ") == len(COMPONENTS), status.stdout
    for alertmanager in ALERTMANAGERS:
        _wait(lambda am=alertmanager: ha.peers(am) == 3, 60, f"{alertmanager} seeing 3 peers")


def test_the_pair_alerts_once_and_both_write_to_the_store(ha: HA) -> None:
    for replica in REPLICAS:
        _wait(
            lambda replica=replica: ha.metric(replica, "prometheus_remote_storage_samples_total"),
            60,
            f"{replica} writing samples to VictoriaMetrics",
        )
        assert ha.metric(replica, "prometheus_remote_storage_samples_failed_total") == 0
    # Each Alertmanager holds the pair's two Watchdogs as one alert: no `replica` label.
    for alertmanager in ALERTMANAGERS:
        watchdogs = _wait(
            lambda am=alertmanager: ha.am_alerts(am, "Watchdog"), 60, f"Watchdog in {alertmanager}"
        )
        assert len(watchdogs) == 1, watchdogs
        assert "replica" not in watchdogs[0]["labels"]
    hub = _wait(lambda: ha.hub_alerts("Watchdog"), 90, "the Watchdog at the hub")
    assert len(hub) == 1 and "replica" not in hub[0]["labels"], hub


def test_killing_a_prometheus_and_an_alertmanager_loses_nothing(ha: HA) -> None:
    _wait(lambda: ha.hub_alerts("Watchdog"), 90, "the Watchdog at the hub before the kill")
    victim = ha.first_in_line()
    before = time.time()
    time.sleep(10 * INTERVAL)  # both replicas writing: the window's first part
    killed_at = time.time()
    ha.kill("prometheus")
    ha.kill(victim)
    survivors = [am for am in ALERTMANAGERS if am != victim]

    sent = ha.breach("prometheus-b", "ha-breach")
    breach = _wait(
        lambda: ha.hub_alerts("TradingRiskViolationSpike", strategy="ha-breach"),
        120,
        "the breach at the hub with one Prometheus and one Alertmanager killed",
        every=0.1,
    )
    print(f"breach → hub after the kill: {time.monotonic() - sent:.1f} s (victim {victim})")
    _wait(
        lambda: ha.watchdog_seen() > killed_at,
        150,
        "a Watchdog delivered after the kill",
    )
    time.sleep(2 * INTERVAL)  # any second delivery of the same alert lands by now
    breach = ha.hub_alerts("TradingRiskViolationSpike", strategy="ha-breach")
    watchdogs = ha.hub_alerts("Watchdog")
    assert len(breach) == 1 and len(watchdogs) == 1, (breach, watchdogs)
    assert "replica" not in breach[0]["labels"]
    for alertmanager in survivors:
        # The simulators breach too (strategy momentum...): only the injected one counts.
        found = ha.am_alerts(alertmanager, "TradingRiskViolationSpike", strategy="ha-breach")
        assert len(found) == 1, found
    delivered = sum(ha.metric(am, "alertmanager_notifications_total") for am in survivors)
    print(f"notifications sent by the surviving Alertmanagers: {delivered:.0f}")

    end = max(time.time(), killed_at + 20 * INTERVAL)
    time.sleep(max(0.0, end - time.time()))

    def window() -> list[dict[str, Any]] | None:
        found = ha.export(SERIES, before, end)
        last = max((t for series in found for t in series["timestamps"]), default=0)
        return found if last >= (end - 2 * INTERVAL) * 1000 else None

    series = _wait(window, 60, f"VictoriaMetrics holding {SERIES} up to the window's end")
    assert len(series) == 1, [s["metric"] for s in series]  # the pair's samples: one series
    assert "replica" not in series[0]["metric"]
    stamps = series[0]["timestamps"]
    gaps = [(b - a) / 1000 for a, b in itertools.pairwise(stamps)]
    print(f"{len(stamps)} samples over {(end - before):.0f} s, largest gap {max(gaps):.2f} s")
    assert max(gaps) <= 2.5 * INTERVAL, f"a gap of {max(gaps):.2f} s in {SERIES} across the kill"
    windows = [int(stamp // (INTERVAL * 1000)) for stamp in stamps]
    assert len(windows) == len(set(windows)), "two samples in one deduplication window"
    assert stamps == sorted(set(stamps))
    # The duplicates did arrive (both replicas wrote the same series) and were dropped.
    assert ha.metric("victoriametrics", "vm_deduplicated_samples_total") > 0

    restarted_at = time.time()
    again = ha.stack.cli(*UP_ARGS)
    assert again.returncode == 0, again.stdout + again.stderr
    assert set(ha.table.names()) == COMPONENTS
    _wait(
        lambda: (
            ha.metric(
                "prometheus", "prometheus_remote_storage_queue_highest_sent_timestamp_seconds"
            )
            > restarted_at + 2 * INTERVAL
        ),
        60,
        "the restarted prometheus writing fresh samples to VictoriaMetrics",
    )
    assert ha.metric("prometheus", "prometheus_remote_storage_samples_failed_total") == 0
    _wait(
        lambda: len(ha.query("prometheus", "up == 1")) >= TARGETS,
        60,
        "the restarted prometheus scraping every target",
    )
    _wait(lambda: ha.peers(victim) == 3, 60, f"the restarted {victim} rejoining the cluster")


def test_an_acknowledgement_silences_once_on_every_alertmanager(ha: HA) -> None:
    ha.breach("prometheus", "ha-silence")
    alert = _wait(
        lambda: ha.hub_alerts("TradingRiskViolationSpike", strategy="ha-silence"),
        120,
        "the second breach at the hub",
    )[0]
    response = httpx.post(
        f"{ha.stack.url('alert-hub')}/api/alerts/{alert['fingerprint']}/acknowledge",
        json={"by": "ha-test", "hours": 1},
        headers={"Authorization": f"Bearer {ha.hub_token}"},
        timeout=30,
    )
    assert response.status_code == 200 and response.json()["created"], response.text
    silence = response.json()["silenceID"]

    def everywhere() -> bool:
        held = [
            [s["id"] for s in ha.get(am, "/api/v2/silences").json() if s["createdBy"] == "ha-test"]
            for am in ALERTMANAGERS
        ]
        return all(ids == [silence] for ids in held)

    _wait(everywhere, 30, "the one silence gossiped to all three Alertmanagers")


def test_every_dashboard_query_runs_on_victoriametrics(ha: HA) -> None:
    """Grafana's VictoriaMetrics datasource runs the dashboards unchanged: each query is valid
    MetricsQL and, where the replica has data for it, so does the store (what both wrote). The
    store shows samples -search.latencyOffset (30 s) after they arrive, hence the wait."""
    pending = [(d, t, _substitute(q)) for d, t, q in _queries()]
    deadline = time.monotonic() + 120
    while True:
        still = []
        for dashboard, title, promql in pending:
            stored = ha.get("victoriametrics", "/api/v1/query", query=promql).json()
            assert stored["status"] == "success", f"{dashboard} / {title}: {stored}"
            if not stored["data"]["result"] and ha.query("prometheus-b", promql):
                still.append((dashboard, title, promql))
        pending = still
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert not pending, "data in Prometheus, none in VictoriaMetrics:\n" + "\n".join(
        f"{d} / {t}: {q}" for d, t, q in pending
    )
