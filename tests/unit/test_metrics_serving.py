"""/metrics for any service: the ASGI, WSGI and standalone examples of docs/examples run for real
(in-process over ASGI, wsgiref and a subprocess on 127.0.0.1), and what the three entry points
promise beyond them: one exposition, valid OpenMetrics, errors answered rather than raised."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

import httpx
import pytest
from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from watchfloor.metrics import asgi_app, exposition, start_metrics_server, wsgi_app

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def example(name: str) -> ModuleType:
    """A docs/examples module, imported once per session (its metrics are on the default
    registry, which refuses a second copy)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == (labels or {}):
                return float(sample.value)
    return None


def signed_registry() -> CollectorRegistry:
    # The catalog's trading_slippage_bps shape: prometheus-client's own generator writes it as
    # OpenMetrics its own parser refuses (a _count without a _sum).
    registry = CollectorRegistry()
    Histogram("x_slip_bps", "Signed.", buckets=(-1, 0, 1), registry=registry).observe(0.5)
    return registry


def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def test_asgi_example_serves_its_counter_on_a_route():
    module = example("asgi_service")
    async with asgi_client(module.app) as http:
        before = value(
            (await http.get("/metrics")).text, "example_quotes_total", {"symbol": "AAPL"}
        )
        assert (await http.get("/quotes/AAPL")).status_code == 200
        assert (await http.get("/quotes/AAPL")).status_code == 200
        assert (await http.get("/quotes/NOPE")).status_code == 404
        response = await http.get("/metrics")
    assert response.status_code == 200  # no redirect to /metrics/
    assert response.headers["content-type"].startswith("text/plain")
    after = value(response.text, "example_quotes_total", {"symbol": "AAPL"})
    assert after == (before or 0) + 2
    assert value(response.text, "example_quotes_total", {"symbol": "NOPE"}) is None


async def test_asgi_app_speaks_openmetrics_and_answers_other_methods():
    app = asgi_app(signed_registry())
    async with asgi_client(app) as http:
        om = await http.get("/", headers={"Accept": OPENMETRICS})
        head = await http.head("/")
        post = await http.post("/")
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    (family,) = openmetrics_families(om.text)  # prometheus-client's strict parser accepts it
    assert family.name == "x_slip_bps"
    assert head.status_code == 200
    assert head.content == b""
    assert post.status_code == 405
    assert post.headers["allow"] == "GET, HEAD"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def metrics_log() -> Iterator[list[logging.LogRecord]]:
    handler = _Records()
    logger = logging.getLogger("watchfloor.metrics")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


async def test_asgi_app_answers_500_when_rendering_fails(monkeypatch, metrics_log):
    def broken(accept: str | None, registry: CollectorRegistry) -> tuple[bytes, str]:
        raise RuntimeError("collector broke")

    monkeypatch.setattr(exposition, "render", broken)
    app = asgi_app(CollectorRegistry())
    async with asgi_client(app) as http:
        assert (await http.get("/metrics")).status_code == 500
        assert app._busy == 0  # its scrape slot was given back
    (record,) = metrics_log
    assert record.exc_info is not None and str(record.exc_info[1]) == "collector broke"


async def test_asgi_app_runs_as_a_servers_whole_app():
    sent: list[dict[str, Any]] = []
    incoming = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(incoming)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi_app(CollectorRegistry())({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


@pytest.fixture
def wsgi_server() -> Iterator[tuple[WSGIServer, str]]:
    module = example("wsgi_service")
    server = make_server("127.0.0.1", 0, module.app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_wsgi_example_serves_its_counter_beside_the_app(wsgi_server):
    _, url = wsgi_server
    before = value(httpx.get(f"{url}/metrics").text, "example_orders_accepted_total") or 0
    for _ in range(3):
        assert httpx.post(f"{url}/orders").status_code == 202
    response = httpx.get(f"{url}/metrics", headers={"Accept": OPENMETRICS})
    assert response.headers["content-type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(response.text)}
    (sample,) = families["example_orders_accepted"].samples
    assert sample.value == before + 3
    assert httpx.get(f"{url}/elsewhere").status_code == 404


def test_wsgi_app_answers_500_when_rendering_fails(monkeypatch, metrics_log):
    def broken(accept: str | None, registry: CollectorRegistry) -> tuple[bytes, str]:
        raise RuntimeError("collector broke")

    statuses: list[str] = []
    monkeypatch.setattr(exposition, "render", broken)
    body = wsgi_app(CollectorRegistry())(
        {"REQUEST_METHOD": "GET"}, lambda status, headers, exc_info=None: statuses.append(status)
    )
    assert statuses == ["500 Internal Server Error"]
    assert b"failed" in b"".join(body)
    assert [r.getMessage() for r in metrics_log] == ["rendering /metrics failed"]


def test_every_entry_point_gives_the_same_exposition():
    registry = signed_registry()
    statuses: list[str] = []
    wsgi_body = b"".join(
        wsgi_app(registry)(
            {"REQUEST_METHOD": "GET", "HTTP_ACCEPT": OPENMETRICS},
            lambda status, headers, exc_info=None: statuses.append(status),
        )
    )
    server = start_metrics_server(0, registry=registry)
    try:
        served = httpx.get(server.url, headers={"Accept": OPENMETRICS}).content
    finally:
        server.close()
    assert statuses == ["200 OK"]
    assert wsgi_body == served == exposition.render(OPENMETRICS, registry)[0]


def test_standalone_server_binds_loopback_and_frees_its_port():
    registry = signed_registry()
    server = start_metrics_server(0, registry=registry)
    try:
        assert server.host == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}/metrics"
        response = httpx.get(server.url)
        assert response.status_code == 200
        assert value(response.text, "x_slip_bps_bucket", {"le": "1.0"}) == 1
        with pytest.raises(OSError, match=rf"cannot serve /metrics on 127.0.0.1:{server.port}"):
            start_metrics_server(server.port)
    finally:
        server.close()
    start_metrics_server(server.port).close()  # the port is free again


@pytest.mark.parametrize("port", [-1, 65536, "9100", 1.5, True])
def test_standalone_server_refuses_a_bad_port(port):
    with pytest.raises(ValueError, match="port must be an int"):
        start_metrics_server(port)


def test_standalone_example_runs_and_serves_its_jobs():
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLES / "standalone_worker.py"), "0", "2000"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the example prints its URL before the first job
        assert line.startswith("metrics on http://127.0.0.1:"), line
        url = line.split()[-1]
        jobs = None
        for _ in range(200):  # the worker finishes a job every 50 ms
            jobs = value(httpx.get(url, timeout=5).text, "example_jobs_processed_total")
            if jobs is not None and jobs >= 3:
                break
            time.sleep(0.05)
        assert jobs is not None and jobs >= 3
        text = httpx.get(url, timeout=5).text
        assert value(text, "example_job_duration_seconds_count") >= jobs
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
