"""Fuzz and flood the real exporter processes on loopback: no 5xx, bounded memory, valid /metrics.

Both exporters run as `python -m watchfloor_exporters.<name>` with their default caps, an open-file
limit of 1024 (a common container default, which 1 100 half-open connections used to exhaust) and
a 2 s request deadline so held connections are seen closing within the test. Every count and wait
is bounded; the processes (and Prometheus) are stopped whatever happens.

Bounds asserted (README "Exporter limits"): peak RSS of a flooded exporter under RSS_BOUND_MIB,
well below the 256 MiB Compose limit; at most WATCHFLOOR_MAX_SERIES (30 000) series in /metrics;
/health answering within HEALTH_SECONDS while more half-open connections are held than the cap.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from tests.binaries import pinned_binary
from tests.integration.conftest import free_port
from tests.processes import stop
from tests.unit.exporters.test_fuzz import PIPELINE_ROUTES, TRADING_TYPES, bodies
from tests.unit.exporters.test_metrics_formats import promtool_check
from watchfloor.fastapi import METHODS, OTHER_METHOD
from watchfloor.metrics import OVERFLOW

pytestmark = pytest.mark.integration

TOKEN = "flood-test-token"
RSS_BOUND_MIB = 200
COMPOSE_LIMIT_MIB = 256
MAX_SERIES = 30_000
SERVER_OPEN_FILES = 1024
REQUEST_DEADLINE = 2
MAX_CONNECTIONS = 256
HEALTH_SECONDS = 2.0
OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


@dataclass
class Exporter:
    name: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self, field: str) -> int:
        """A /proc/PID/status figure in KiB (VmRSS now, VmHWM the peak)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {field} for {self.name}")


@pytest.fixture(scope="module")
def exporters() -> Iterator[dict[str, Exporter]]:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("WATCHFLOOR_")
    }  # a developer's settings do not leak in
    env |= {
        "WATCHFLOOR_INGEST_TOKEN": TOKEN,
        "WATCHFLOOR_LOG_STREAM": "none",
        "WATCHFLOOR_REQUEST_TIMEOUT_SECONDS": str(REQUEST_DEADLINE),
    }
    running: dict[str, Exporter] = {}
    try:
        for name in ("trading", "pipeline"):
            port = free_port()
            process = subprocess.Popen(
                [sys.executable, "-m", f"watchfloor_exporters.{name}", "--host", "127.0.0.1",
                 "--port", str(port)],
                env=env,
            )  # fmt: skip
            running[name] = Exporter(name, port, process)
            limit = (SERVER_OPEN_FILES, SERVER_OPEN_FILES)
            resource.prlimit(process.pid, resource.RLIMIT_NOFILE, limit)
        for exporter in running.values():
            deadline = time.monotonic() + 30
            while True:
                assert exporter.process.poll() is None, f"{exporter.name} exited"
                try:
                    if httpx.get(f"{exporter.url}/ready", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"{exporter.name} did not become ready"
                time.sleep(0.2)
        yield running
    finally:
        for exporter in running.values():
            stop(exporter.process)


AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTENT_TYPES = st.sampled_from(["application/json", "application/x-ndjson", "text/plain"])


@pytest.mark.parametrize("name", ["trading", "pipeline"])
def test_fuzzed_batches_never_get_a_5xx(exporters, name):
    exporter = exporters[name]
    routes = {"/v1/events": TRADING_TYPES} if name == "trading" else PIPELINE_ROUTES
    statuses: list[int] = []
    with httpx.Client(base_url=exporter.url, timeout=10) as client:

        @settings(max_examples=120, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(st.sampled_from(sorted(routes)).flatmap(
            lambda path: st.tuples(st.just(path), bodies(routes[path]), CONTENT_TYPES)))  # fmt: skip
        def post(case: tuple[str, bytes, str]) -> None:
            path, body, content_type = case
            response = client.post(path, content=body,
                                   headers={**AUTH, "Content-Type": content_type})  # fmt: skip
            statuses.append(response.status_code)
            assert response.status_code < 500, (path, body[:300], response.text[:300])

        post()
        assert client.get("/health").json()["status"] == "ok"
    assert statuses and not [s for s in statuses if s >= 500]


def _raw_exchange(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while len(received) < 65536 and (chunk := sock.recv(4096)):
                received += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return received


def test_malformed_http_never_gets_a_5xx(exporters):
    rng = random.Random(12)
    pieces = [b"GET", b"POST", b"M000001", b"/v1/events", b"/metrics", b"/%ff", b" ", b"\r\n",
              b"HTTP/1.1", b"HTTP/9.9", b"Host: x", b"Content-Length: 5", b"Content-Length: -1",
              b"Transfer-Encoding: chunked", b"Authorization: bearer " + TOKEN.encode(), b"\x00",
              b"\xff\xfe", b"[{}]", b"0\r\n\r\n", b"Expect: 100-continue"]  # fmt: skip
    for exporter in exporters.values():
        for _ in range(150):
            payload = b"".join(rng.choice(pieces) for _ in range(rng.randint(1, 14)))
            answer = _raw_exchange(exporter.port, payload + b"\r\n\r\n")
            status_line = answer.split(b"\r\n", 1)[0]
            assert not status_line.startswith(b"HTTP/1.1 5"), (payload, answer[:200])
        assert httpx.get(f"{exporter.url}/health", timeout=5).status_code == 200


def _method_labels(text: str) -> set[str]:
    return {
        sample.labels["method"]
        for family in text_string_to_metric_families(text)
        if family.name == "http_server_requests"
        for sample in family.samples
    }


def test_a_method_flood_adds_no_series(exporters):
    exporter = exporters["trading"]
    before = len(httpx.get(f"{exporter.url}/metrics").text.splitlines())
    requests = b"".join(
        f"M{n:06d} /x HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode() for n in range(400)
    )
    for _ in range(5):  # 2 000 requests, each with a method never seen before
        answer = _raw_exchange(exporter.port, requests)
        assert answer.count(b"HTTP/1.1 404") >= 1
    text = httpx.get(f"{exporter.url}/metrics").text
    assert _method_labels(text) <= METHODS | {OTHER_METHOD}
    assert len(text.splitlines()) - before < 100


def _events(kind: str, count: int, start: int) -> list[dict[str, Any]]:
    """`count` events each with a label combination never sent before."""
    now = datetime.now(UTC).isoformat()
    events = []
    for n in range(start, start + count):
        strategy, symbol = f"flood-s{n % 300}", f"F{n // 300}"
        base = {"id": f"flood-{kind}-{n}", "timestamp": now}
        fields: dict[str, Any] = {
            "order_submitted": dict(order_id=f"o-{n}", strategy=strategy, symbol=symbol,
                                    venue=f"V{n % 50}", side="buy", quantity=1, arrival_price=10.0),
            "order_filled": dict(order_id=f"o-{n}", strategy=strategy, symbol=symbol,
                                 side="sell", quantity=1, price=10.1, final=True,
                                 arrival_price=10.0),
            "market_data_latency": dict(feed=f"feed{n % 40}", symbol=f"{symbol}-{strategy}",
                                        latency_seconds=0.001),
            "position_snapshot": dict(strategy=strategy, symbol=symbol, currency="USD",
                                      quantity=5, price=1.0),
            "risk_violation": dict(strategy=strategy, rule=f"rule{n}", severity="info", value=1,
                                   limit=2),
            "broker_api_call": dict(broker=strategy, endpoint=f"/e/{symbol}", status=200,
                                    duration_seconds=0.01),
            "run_finished": dict(run_id=f"r-{n}", pipeline=f"p{n % 300}", job=f"j{n // 300}",
                                 status="success", duration_seconds=1, datasets=[f"d{n}"]),
            "quality_check": dict(dataset=f"q{n}", completeness=0.9),
            "api_usage": dict(api=f"api{n}", status=200),
        }[kind]  # fmt: skip
        events.append({**base, "type": kind, **fields})
    return events


FLOODS = {
    "trading": [("/v1/events", kind) for kind in
                ("order_submitted", "order_filled", "market_data_latency", "position_snapshot",
                 "risk_violation", "broker_api_call")],
    "pipeline": [("/v1/runs", "run_finished"), ("/v1/quality", "quality_check"),
                 ("/v1/api-usage", "api_usage")],
}  # fmt: skip


async def _flood(exporter: Exporter, per_kind: int) -> list[int]:
    batches = [
        (path, json.dumps(_events(kind, 2500, start)).encode())
        for path, kind in FLOODS[exporter.name]
        for start in range(0, per_kind, 2500)
    ]
    statuses: list[int] = []
    async with httpx.AsyncClient(base_url=exporter.url, timeout=60, headers=AUTH) as client:

        async def scrape_while_flooding() -> None:
            while len(statuses) < len(batches):
                response = await client.get("/metrics", headers={"Accept": OPENMETRICS})
                assert response.status_code in {200, 429}
                await asyncio.sleep(0.5)

        scraper = asyncio.create_task(scrape_while_flooding())
        for path, body in batches:
            response = await client.post(path, content=body)
            statuses.append(response.status_code)
        await scraper
    return statuses


@pytest.mark.parametrize(("name", "per_kind"), [("trading", 12_500), ("pipeline", 20_000)])
def test_a_label_combination_flood_keeps_memory_and_metrics_bounded(exporters, name, per_kind):
    exporter = exporters[name]
    idle_kib = exporter.status("VmRSS")
    statuses = asyncio.run(_flood(exporter, per_kind))
    assert set(statuses) == {200}, statuses  # folded into __overflow__, never refused or 5xx
    with httpx.Client(base_url=exporter.url, timeout=30) as client:
        text = client.get("/metrics").text
        openmetrics = client.get("/metrics", headers={"Accept": OPENMETRICS}).text
    peak_mib = exporter.status("VmHWM") / 1024
    print(f"{name}: idle {idle_kib / 1024:.0f} MiB, peak {peak_mib:.0f} MiB after the flood")
    assert peak_mib < RSS_BOUND_MIB < COMPOSE_LIMIT_MIB
    samples = [s for f in openmetrics_families(openmetrics) for s in f.samples]  # validates
    catalog = [s for s in samples if s.name.startswith(("trading_", "pipeline_"))]
    admitted = [s for s in catalog if OVERFLOW not in s.labels.values()]
    assert MAX_SERIES / 2 < len(admitted) <= MAX_SERIES
    assert len(catalog) - len(admitted) < 3000  # overflow series: one per closed-label combination
    promtool_check(text)


def _open_files_for_clients(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def test_health_answers_while_half_open_connections_are_held(exporters):
    exporter = exporters["trading"]
    wanted = 1_100
    count = min(wanted, _open_files_for_clients(wanted + 200) - 200)
    assert count > 2 * MAX_CONNECTIONS, "the test process cannot open enough sockets"
    held: list[socket.socket] = []
    try:
        for _ in range(count):
            try:
                sock = socket.create_connection(("127.0.0.1", exporter.port), timeout=5)
                sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n")
            except OSError:
                continue  # refused or reset while the server sheds connections: still held load
            held.append(sock)
        for _ in range(5):
            started = time.monotonic()
            response = httpx.get(f"{exporter.url}/health", timeout=HEALTH_SECONDS)
            assert response.json()["status"] == "ok"
            assert time.monotonic() - started < HEALTH_SECONDS
        # The survivors of the cap are closed by the request deadline.
        time.sleep(REQUEST_DEADLINE + 1.5)
        still_open = 0
        for sock in held:
            sock.settimeout(0.01)
            try:
                if sock.recv(1) == b"":
                    continue
            except TimeoutError:
                still_open += 1
            except OSError:
                continue
        assert still_open == 0
    finally:
        for sock in held:
            sock.close()
    assert exporter.process.poll() is None
    assert httpx.get(f"{exporter.url}/health", timeout=HEALTH_SECONDS).status_code == 200


def test_prometheus_scrapes_both_exporters(exporters, tmp_path: Path):
    """A real Prometheus 3.5 (OpenMetrics negotiated first) takes both expositions whole."""
    port = free_port()
    targets = "\n".join(
        f"  - job_name: {e.name}\n    static_configs: [{{targets: ['127.0.0.1:{e.port}']}}]"
        for e in exporters.values()
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(
        f"global: {{scrape_interval: 1s, scrape_timeout: 1s}}\nscrape_configs:\n{targets}\n"
    )
    process = subprocess.Popen(
        [pinned_binary("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        api = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 45
        healthy: dict[str, Any] = {}
        while time.monotonic() < deadline:
            try:
                active = httpx.get(f"{api}/targets", timeout=5).json()["data"]["activeTargets"]
            except (httpx.TransportError, ValueError, KeyError):
                active = []
            healthy = {t["labels"]["job"]: t for t in active if t["health"] == "up"}
            if len(healthy) == len(exporters):
                break
            time.sleep(0.5)
        assert set(healthy) == set(exporters), active
        # A target reports up before its scrape's own series are committed: ask until they are.
        for name in exporters:
            result: list[Any] = []
            while not result and time.monotonic() < deadline + 15:
                query = {"query": f'scrape_samples_scraped{{job="{name}"}}'}
                result = httpx.get(f"{api}/query", params=query).json()["data"]["result"]
                if not result:
                    time.sleep(0.5)
            assert result, f"no scrape_samples_scraped for {name}"
            # Whole: as many samples as the exposition has now (the earlier tests grew it).
            page = httpx.get(f"{exporters[name].url}/metrics", timeout=10).text
            lines = sum(1 for line in page.split("\n") if line and not line.startswith("#"))
            assert float(result[0]["value"][1]) >= 0.9 * lines, (name, lines)
    finally:
        stop(process)


def test_no_exporter_ever_answered_a_5xx(exporters):
    """The exporters' own count of ingest responses by status, over everything above."""
    for exporter in exporters.values():
        text = httpx.get(f"{exporter.url}/metrics", timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name in {"watchfloor_exporter_batches_total",
                                   "http_server_requests_total"}:  # fmt: skip
                    assert not sample.labels["status"].startswith("5"), sample
        assert exporter.process.poll() is None
