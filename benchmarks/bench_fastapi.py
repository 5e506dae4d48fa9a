"""instrument_app's per-request overhead against prometheus-fastapi-instrumentator's.

Three identical apps are driven in-process with raw ASGI calls (no sockets, no HTTP client, so the
overhead is not drowned in transport noise): bare, watchfloor, instrumentator. Overhead is the
per-request time above the bare app. watchfloor is measured twice: as users get it (metrics +
OpenTelemetry server spans + correlation ids) and with tracing off (a non-recording provider), to
show what the metrics part alone costs against the instrumentator, which only does metrics.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from _common import report
from watchfloor.fastapi import instrument_app

REQUESTS = 3_000
ROUNDS = 7


class DiscardingExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def make_app() -> FastAPI:
    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    return app


async def drive(app: FastAPI, count: int) -> float:
    """Seconds per request through the full ASGI stack (routing, middleware, JSON response)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/orders/o-1", "raw_path": b"/orders/o-1", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }  # fmt: skip

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        return None

    for _ in range(200):  # warm up: builds the middleware stack, caches children
        await app(dict(scope), receive, send)
    started = time.perf_counter()
    for _ in range(count):
        await app(dict(scope), receive, send)
    return (time.perf_counter() - started) / count


def overhead(app: FastAPI, bare: FastAPI) -> float:
    """Median over rounds of (app - bare) per request, each round measuring both back to back,
    so drift of the machine's speed between rounds cancels out."""
    differences = []
    for _ in range(ROUNDS):
        differences.append(asyncio.run(drive(app, REQUESTS)) - asyncio.run(drive(bare, REQUESTS)))
    return sorted(differences)[ROUNDS // 2]


def main() -> int:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    trace.set_tracer_provider(provider)

    bare = make_app()
    ours = make_app()
    instrument_app(ours, "bench")
    theirs = make_app()
    Instrumentator(registry=CollectorRegistry()).instrument(theirs)
    ours_s, theirs_s = overhead(ours, bare), overhead(theirs, bare)

    provider._sampler = ALWAYS_OFF  # tracing off for the metrics-only figure
    metrics_only = make_app()
    instrument_app(metrics_only, "bench-metrics-only")
    ours_untraced = overhead(metrics_only, bare)

    print(f"  bare app: {asyncio.run(drive(bare, REQUESTS)) * 1e6:.1f} µs/request")
    met = report(
        "instrument_app overhead (metrics + spans + correlation)",
        ours_s * 1e6,
        baseline_name="prometheus-fastapi-instrumentator overhead (metrics only)",
        baseline=theirs_s * 1e6,
        unit="µs/request",
        target="<= 1.0x",
    )
    report(
        "instrument_app overhead with spans unsampled (metrics + correlation)",
        ours_untraced * 1e6,
        baseline_name="prometheus-fastapi-instrumentator overhead (metrics only)",
        baseline=theirs_s * 1e6,
        unit="µs/request",
        target="<= 1.0x",
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
