"""instrument_app on a real FastAPI app, driven in-process over ASGI; each test on its own
registry, since no label tells one app's requests from another's."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

import watchfloor.fastapi as fastapi_module
from watchfloor.correlation import get_correlation_id
from watchfloor.fastapi import instrument_app
from watchfloor.metrics import exposition, serving


def make_app(service: str, registry: CollectorRegistry, **options: Any) -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str | None]:
        logging.getLogger("api").info("lookup", extra={"order_id": order_id})
        return {"order_id": order_id, "correlation": get_correlation_id()}

    @app.get("/fail")
    async def fail() -> None:
        raise RuntimeError("boom")

    @app.get("/missing")
    async def missing() -> None:
        raise HTTPException(404, "no such order")

    instrument_app(app, service, registry=registry, **options)
    return app


def client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


def requests(registry: CollectorRegistry, route: str, status: str, method: str = "GET") -> float:
    labels = {"method": method, "route": route, "status": status}
    return registry.get_sample_value("http_server_requests_total", labels) or 0.0


async def test_metrics_use_route_templates_not_raw_paths(spans):
    registry = CollectorRegistry()
    app = make_app("svc-routes", registry)
    async with client(app) as http:
        for order in ("o-1", "o-2", "o-3"):
            assert (await http.get(f"/orders/{order}")).status_code == 200
        assert (await http.get("/no/such/path")).status_code == 404
        assert (await http.get("/fail")).status_code == 500
        assert (await http.get("/missing")).status_code == 404
    assert requests(registry, "/orders/{order_id}", "200") == 3
    assert requests(registry, "__unmatched__", "404") == 1
    assert requests(registry, "/fail", "500") == 1
    assert requests(registry, "/missing", "404") == 1
    raw = next(s for s in registry.collect() if s.name == "http_server_requests").samples
    assert not any("o-1" in sample.labels.get("route", "") for sample in raw)
    server_spans = [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert {s.name for s in server_spans} >= {"GET /orders/{order_id}", "GET /fail"}


async def test_correlation_id_in_and_out(spans, ecs_lines):
    app = make_app("svc-corr", CollectorRegistry())
    async with client(app) as http:
        given = await http.get("/orders/o-9", headers={"X-Correlation-ID": "abc-123"})
        generated = await http.get("/orders/o-9")
        hostile = await http.get("/orders/o-9", headers={"X-Correlation-ID": "x\r\ninjected: 1"})
    assert given.headers["x-correlation-id"] == "abc-123"
    assert given.json()["correlation"] == "abc-123"
    assert len(generated.headers["x-correlation-id"]) == 32
    assert generated.json()["correlation"] == generated.headers["x-correlation-id"]
    assert hostile.headers["x-correlation-id"] != "x\r\ninjected: 1"
    assert len(hostile.headers["x-correlation-id"]) == 32
    first_log = next(doc for doc in ecs_lines() if doc["log"]["logger"] == "api")
    assert first_log["correlation"]["id"] == "abc-123"
    assert len(first_log["trace"]["id"]) == 32  # the server span was current in the handler
    server = next(s for s in spans.get_finished_spans() if s.kind.name == "SERVER")
    assert server.attributes["correlation.id"] == "abc-123"


async def test_metrics_endpoint_openmetrics_with_exemplars(spans):
    app = make_app("svc-exemplar", CollectorRegistry())
    async with client(app) as http:
        await http.get("/orders/o-1")
        text = await http.get("/metrics")
        open_metrics = await http.get(
            "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert text.headers["content-type"].startswith("text/plain")
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    lines = [
        line
        for line in open_metrics.text.splitlines()
        if line.startswith("http_server_request_duration_seconds_bucket")
        and 'route="/orders/{order_id}"' in line
        and "trace_id=" in line
    ]
    assert lines, "no exemplar on the request duration histogram"
    assert 'route="/metrics"' not in text.text  # own endpoints are not measured


async def test_health_and_idempotent_instrumentation(spans):
    registry = CollectorRegistry()
    app = make_app("svc-health", registry)
    instrument_app(app, "svc-health", registry=registry)  # a second call changes nothing
    middleware = [m for m in app.user_middleware if m.cls.__name__ == "RequestMiddleware"]
    assert len(middleware) == 1
    async with client(app) as http:
        response = await http.get("/health")
        await http.get("/orders/x")
    assert response.json() == {"status": "ok", "service": "svc-health"}
    assert requests(registry, "/orders/{order_id}", "200") == 1


@pytest.mark.parametrize("path", ["/metrics", "/health"])
async def test_own_endpoints_make_no_spans(spans, path):
    app = make_app(f"svc-own-{path.strip('/')}", CollectorRegistry())
    async with client(app) as http:
        await http.get(path)
    assert [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"] == []


async def test_method_label_is_a_closed_set(spans):
    # A raw HTTP request may carry any token as its method; each used to mint series.
    registry = CollectorRegistry()
    app = make_app("svc-methods", registry)
    async with client(app) as http:
        for n in range(40):
            await http.request(f"M{n:06d}", "/x")
        assert (await http.request("DELETE", "/orders/o-1")).status_code == 405
    (family,) = (f for f in registry.collect() if f.name == "http_server_requests")
    assert {s.labels["method"] for s in family.samples} == {"_OTHER", "DELETE"}
    assert requests(registry, "__unmatched__", "404", method="_OTHER") == 40
    assert {"GET", "POST", "HEAD", "OPTIONS"} <= fastapi_module.METHODS


async def test_scrapes_are_bounded_and_a_stalled_scraper_is_cut_off(monkeypatch, spans):
    # A scraper that stops reading: its sends never complete. Each such scrape holds its own
    # exposition, so only a few may be in flight, and each gives up in time.
    app = make_app("svc-scrapes", CollectorRegistry())
    monkeypatch.setattr(
        exposition, "render", lambda accept, registry: (b"x" * 300_000, "text/plain")
    )
    monkeypatch.setattr(serving, "SCRAPE_SEND_SECONDS", 0.5)
    started: list[int] = []

    async def stalled_send(message):
        if message["type"] == "http.response.start":
            started.append(message["status"])
        elif message["type"] == "http.response.body":
            await asyncio.sleep(3600)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "method": "GET", "path": "/metrics", "raw_path": b"/metrics",
             "root_path": "", "query_string": b"", "headers": [], "http_version": "1.1",
             "scheme": "http", "server": ("test", 80), "client": ("test", 1)}  # fmt: skip
    stalled = [asyncio.create_task(app(scope, receive, stalled_send)) for _ in range(4)]
    await asyncio.sleep(0.1)
    async with client(app) as http:
        refused = await http.get("/metrics")
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        await asyncio.wait_for(asyncio.gather(*stalled), 5)  # cut off after 0.5 s
        assert started == [200] * 4
        assert (await http.get("/metrics")).status_code == 200  # their places were given back


def _families(text: str) -> dict[str, Any]:
    return {family.name: family for family in text_string_to_metric_families(text)}


async def test_no_request_series_carries_a_service_label(spans):
    # Prometheus would rename it exported_service beside the target's own `service` label.
    app = make_app("svc-nolabel", CollectorRegistry())
    async with client(app) as http:
        await http.get("/orders/o-1")
        text = (await http.get("/metrics")).text
    families = _families(text)
    samples = [
        sample
        for name in ("http_server_requests", "http_server_request_duration_seconds")
        for sample in families[name].samples
    ]
    assert samples
    assert all("service" not in sample.labels for sample in samples)
    assert {tuple(sorted(s.labels)) for s in families["http_server_requests"].samples} == {
        ("method", "route", "status")
    }


async def test_excluded_paths_are_neither_measured_nor_traced(spans):
    registry = CollectorRegistry()
    app = make_app("svc-excluded", registry, excluded_paths=["/orders/skip"])
    async with client(app) as http:
        for path in ("/orders/skip", "/orders/skip-not", "/metrics", "/health"):
            await http.get(path)
    assert requests(registry, "/orders/{order_id}", "200") == 1  # /orders/skip-not only
    # Anchored: excluding /orders/skip spares /orders/skip-not, which it is a prefix of.
    server = [s.name for s in spans.get_finished_spans() if s.kind.name == "SERVER"]
    assert server == ["GET /orders/{order_id}"]


async def test_default_exclusions_cover_a_healthz_probe(spans):
    registry = CollectorRegistry()
    app = make_app("svc-healthz", registry)

    @app.get("/healthz")
    async def healthz() -> str:
        return "ok"

    async with client(app) as http:
        assert (await http.get("/healthz")).status_code == 200
        await http.get("/orders/o-1")
    assert requests(registry, "/healthz", "200") == 0
    assert requests(registry, "/orders/{order_id}", "200") == 1
    assert [s.name for s in spans.get_finished_spans() if s.kind.name == "SERVER"] == [
        "GET /orders/{order_id}"
    ]


async def test_buckets_option_sets_the_histogram_bounds(spans):
    registry = CollectorRegistry()
    app = make_app("svc-buckets", registry, buckets=[0.05, 0.5, 5])
    async with client(app) as http:
        await http.get("/orders/o-1")
        text = (await http.get("/metrics")).text
    bounds = {
        sample.labels["le"]
        for sample in _families(text)["http_server_request_duration_seconds"].samples
        if sample.name.endswith("_bucket")
    }
    assert bounds == {"0.05", "0.5", "5.0", "+Inf"}
    assert (
        registry.get_sample_value(
            "http_server_request_duration_seconds_bucket",
            {"method": "GET", "route": "/orders/{order_id}", "le": "5.0"},
        )
        == 1
    )


def test_apps_on_one_registry_share_buckets_or_are_refused():
    registry = CollectorRegistry()
    make_app("svc-a", registry, buckets=(0.1, 1))
    make_app("svc-b", registry, buckets=(0.1, 1.0, float("inf")))  # the same bounds
    other = FastAPI()
    with pytest.raises(ValueError, match="already has buckets"):
        instrument_app(other, "svc-c", registry=registry, buckets=(0.2, 2))
    assert not [m for m in other.user_middleware if m.cls.__name__ == "RequestMiddleware"]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("buckets", []),
        ("buckets", [1, 0.5]),
        ("buckets", [0.5, 0.5]),
        ("buckets", [0, 1]),
        ("buckets", [0.1, float("nan")]),
        ("buckets", "0.1,1"),
        ("buckets", [0.1, "slow"]),
        ("excluded_paths", "/healthz"),
        ("excluded_paths", ["healthz"]),
        ("excluded_paths", ["/a,/b"]),
        ("excluded_paths", [None]),
    ],
)
def test_bad_options_raise_before_the_app_is_changed(option, value):
    app = FastAPI()
    routes = len(app.routes)
    with pytest.raises(ValueError, match=r"bucket|path"):
        instrument_app(app, "svc-bad", registry=CollectorRegistry(), **{option: value})
    assert len(app.routes) == routes
    assert getattr(app.state, "watchfloor_service", None) is None
