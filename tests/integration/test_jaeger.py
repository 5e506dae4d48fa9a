"""The real Jaeger binary (the release Compose pins) with local mode's config: spans from the
library's tracing and FastAPI instrumentation come back through Jaeger's query APIs, and Jaeger's
own metrics endpoint counts them.

The spans are made in subprocesses: configure_tracing installs the process-wide tracer provider.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.binaries import pinned_binary
from tests.integration.conftest import free_port
from tests.processes import stop
from watchfloor_stack.localmode.jaeger_config import (
    DEFAULT_PORTS,
    health_url,
    render_jaeger,
)

pytestmark = pytest.mark.integration

T = TypeVar("T")


@dataclass
class Jaeger:
    ports: dict[str, int]
    log: Path

    def url(self, key: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[key]}{path}"

    @property
    def otlp_http(self) -> str:
        return self.url("jaeger-otlp-http", "/v1/traces")


@pytest.fixture(scope="module")
def jaeger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jaeger]:
    binary = pinned_binary("jaeger")
    state = tmp_path_factory.mktemp("jaeger")
    ports = {name: free_port() for name in DEFAULT_PORTS}
    config = render_jaeger(state, ports)
    log = state / "jaeger.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [binary, "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=state,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"jaeger exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(health_url(ports), timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jaeger not healthy within 60 s:\n{log.read_text()[-4000:]}")
            time.sleep(0.25)
        yield Jaeger(ports, log)
    finally:
        stop(process)


def eventually(what: str, probe: Callable[[], T | None], timeout: float = 30) -> T:
    """probe() until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            result = probe()
        except (httpx.TransportError, KeyError, ValueError) as exc:
            last, result = exc, None
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"{what}: not within {timeout} s (last: {last!r})")


def run_python(script: str, *args: str) -> None:
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        check=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def legacy_spans(jaeger: Jaeger, service: str) -> list[dict[str, Any]]:
    """Spans of `service` from the /api/traces API the UI and Grafana use, tags as a dict."""
    response = httpx.get(jaeger.url("jaeger", "/api/traces"), params={"service": service})
    response.raise_for_status()
    spans = []
    for found in response.json()["data"] or []:
        processes = found["processes"]
        for span in found["spans"]:
            spans.append(
                {
                    **span,
                    "tags": {tag["key"]: tag["value"] for tag in span["tags"]},
                    "service": processes[span["processID"]]["serviceName"],
                }
            )
    return spans


TRADING = """
    import sys
    from watchfloor.correlation import correlation_scope
    from watchfloor.tracing import (
        OrderTrace, broker_call, configure_tracing, shutdown_tracing, strategy_evaluation,
    )
    configure_tracing(sys.argv[2], endpoint=sys.argv[1], environment="it")
    with correlation_scope("corr-jaeger-1"), strategy_evaluation("momo", signal=0.7):
        order = OrderTrace(
            "o-42", strategy="momo", symbol="AAPL", side="buy", quantity=10.0, venue="XNAS"
        )
        with order.context(), broker_call("alpaca", "/v2/orders") as call:
            call.response(201, rate_limit_remaining=199)
        order.acked("v-1")
        order.filled(10.0, 187.5, final=True)
    shutdown_tracing()
"""


def test_trading_spans_are_found_with_their_attributes(jaeger: Jaeger) -> None:
    service = f"it-trading-{uuid.uuid4().hex[:8]}"
    run_python(TRADING, jaeger.otlp_http, service)

    def all_three() -> list[dict[str, Any]] | None:
        found = legacy_spans(jaeger, service)
        return found if len(found) == 3 else None

    spans = eventually("three spans in /api/traces", all_three)
    by_name = {span["operationName"]: span for span in spans}
    assert set(by_name) == {"strategy.evaluate", "order", "broker.call"}
    assert {span["traceID"] for span in spans} == {spans[0]["traceID"]}  # one trace
    order = by_name["order"]["tags"]
    assert order["correlation.id"] == "corr-jaeger-1"
    assert order["trading.order.id"] == "o-42"
    assert order["trading.symbol"] == "AAPL"
    assert order["trading.venue"] == "XNAS"
    assert order["trading.status"] == "filled"
    assert order["trading.filled_quantity"] == 10.0
    events = {
        field["value"] for log in by_name["order"]["logs"] for field in log["fields"]
        if field["key"] == "event"
    }  # fmt: skip
    assert events == {"order.acked", "order.filled"}
    broker = by_name["broker.call"]
    assert broker["tags"]["trading.broker"] == "alpaca"
    assert broker["tags"]["http.response.status_code"] == 201
    assert broker["tags"]["span.kind"] == "client"
    assert broker["references"][0]["spanID"] == by_name["order"]["spanID"]
    assert by_name["strategy.evaluate"]["tags"]["trading.strategy"] == "momo"

    # The same trace through the v3 (OTLP JSON) API.
    params = {
        "query.service_name": service,
        "query.start_time_min": "2000-01-01T00:00:00Z",
        "query.start_time_max": "2100-01-01T00:00:00Z",
        "query.num_traces": "10",
    }
    response = httpx.get(jaeger.url("jaeger", "/api/v3/traces"), params=params)
    assert response.status_code == 200, response.text
    resource_spans = response.json()["result"]["resourceSpans"]
    resource = {a["key"]: a["value"] for a in resource_spans[0]["resource"]["attributes"]}
    assert resource["service.name"] == {"stringValue": service}
    assert resource["deployment.environment.name"] == {"stringValue": "it"}
    v3 = {
        span["name"]: {a["key"]: a["value"] for a in span["attributes"]}
        for resource in resource_spans
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    }
    assert v3["order"]["correlation.id"] == {"stringValue": "corr-jaeger-1"}
    assert v3["order"]["trading.side"] == {"stringValue": "buy"}


FASTAPI = """
    import asyncio, sys
    import httpx
    from fastapi import FastAPI
    from watchfloor.fastapi import instrument_app
    from watchfloor.tracing import configure_tracing, shutdown_tracing

    configure_tracing(sys.argv[2], endpoint=sys.argv[1], environment="it")
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    instrument_app(app, sys.argv[2])

    async def main() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as http:
            response = await http.get("/orders/o-7", headers={"x-correlation-id": "corr-http-7"})
            assert response.status_code == 200
            assert response.headers["x-correlation-id"] == "corr-http-7"

    asyncio.run(main())
    shutdown_tracing()
"""


def test_a_fastapi_request_is_a_server_span_in_jaeger(jaeger: Jaeger) -> None:
    service = f"it-api-{uuid.uuid4().hex[:8]}"
    run_python(FASTAPI, jaeger.otlp_http, service)

    spans = eventually("the server span", lambda: legacy_spans(jaeger, service))
    servers = [span for span in spans if span["tags"].get("span.kind") == "server"]
    assert len(servers) == 1, json.dumps(spans, indent=1)[:3000]
    server = servers[0]
    assert server["service"] == service
    assert server["operationName"] == "GET /orders/{order_id}"
    tags = server["tags"]
    assert tags["correlation.id"] == "corr-http-7"
    assert tags["http.route"] == "/orders/{order_id}"
    assert tags.get("http.request.method", tags.get("http.method")) == "GET"
    assert tags.get("http.response.status_code", tags.get("http.status_code")) == 200


PLAIN_OTEL = """
    import sys
    from opentelemetry import trace
    from watchfloor.correlation import correlation_scope
    from watchfloor.tracing import configure_tracing, shutdown_tracing
    configure_tracing(sys.argv[2], endpoint=sys.argv[1], environment="it")
    with correlation_scope("corr-plain-otel"):
        with trace.get_tracer("not-watchfloor").start_as_current_span("plain.otel"):
            pass
    shutdown_tracing()
"""


def test_a_span_from_a_plain_opentelemetry_tracer_carries_the_correlation_id(
    jaeger: Jaeger,
) -> None:
    service = f"it-plain-{uuid.uuid4().hex[:8]}"
    run_python(PLAIN_OTEL, jaeger.otlp_http, service)
    (span,) = eventually("the plain span", lambda: legacy_spans(jaeger, service))
    assert span["operationName"] == "plain.otel"
    assert span["tags"]["correlation.id"] == "corr-plain-otel"
    assert span["tags"]["otel.scope.name"] == "not-watchfloor"


ONE_SPAN = """
    import sys
    from watchfloor.tracing import configure_tracing, shutdown_tracing, traced
    configure_tracing(sys.argv[2], endpoint=sys.argv[1], environment="it")
    with traced("metrics.probe"):
        pass
    shutdown_tracing()
"""


def _counters(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(counters: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
           **labels: str) -> float:  # fmt: skip
    return sum(
        value
        for (sample, sample_labels), value in counters.items()
        if sample == name and set(labels.items()) <= sample_labels
    )


def test_jaegers_own_metrics_count_the_received_spans(jaeger: Jaeger) -> None:
    service = f"it-metrics-{uuid.uuid4().hex[:8]}"
    run_python(ONE_SPAN, jaeger.otlp_http, service)
    eventually("the span in /api/traces", lambda: legacy_spans(jaeger, service))

    def scrape() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        response = httpx.get(jaeger.url("jaeger-metrics", "/metrics"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        counters = _counters(response.text)
        accepted = _value(
            counters, "otelcol_receiver_accepted_spans_total", receiver="otlp", transport="http"
        )
        sent = _value(
            counters, "otelcol_exporter_sent_spans_total", exporter="jaeger_storage_exporter"
        )
        return counters if accepted >= 1 and sent >= 1 else None

    counters = eventually("otelcol_* span counters", scrape)
    refused = _value(counters, "otelcol_receiver_refused_spans_total", receiver="otlp")
    failed = _value(counters, "otelcol_exporter_send_failed_spans_total")
    assert refused == 0
    assert failed == 0
    assert _value(counters, "otelcol_process_uptime_seconds_total") > 0
