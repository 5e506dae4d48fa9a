"""instrument_app's per-request overhead against the field's libraries doing the same job.

The gating baseline is what a team would install for the same signals: prometheus-fastapi-
instrumentator (request metrics) plus opentelemetry-instrumentation-fastapi (server spans).
Against the instrumentator alone, which only does metrics, instrument_app is also measured, for
information: OpenTelemetry's FastAPI middleware is most of its cost, and no metrics-only library
pays it.

Identical apps are driven in-process with raw ASGI calls (no sockets, no HTTP client, so the
overhead is not drowned in transport noise): bare, watchfloor, instrumentator, in paired rounds
(each round runs every app once, in shuffled order; thread CPU time per request). Overhead is the
per-request cost above the bare app: each instrumented app does the bare app's work and more, so
an overhead whose interval reaches zero is inconclusive and one below zero a failed measurement
(an earlier version printed -4.4 µs/request as a met target; see make_app). watchfloor is
measured twice: as users get it (metrics + OpenTelemetry server spans + correlation ids) and with
spans unsampled, to show what the metrics part alone costs against the instrumentator, which only
does metrics (informational: it does not decide the exit code).
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import Callable, MutableMapping, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, DEFAULT_ON
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator

from _measure import (
    Block,
    Budget,
    Figure,
    Target,
    difference,
    exit_code,
    measure,
    overhead_ratio,
    report_measurement,
)
from watchfloor.fastapi import instrument_app
from watchfloor.tracing.setup import AdjustableSampler

REQUESTS = 300  # per app and round: ~30-60 ms
BUDGET = Budget(max_rounds=300, max_seconds=90)


class CountingExporter(SpanExporter):
    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS


def make_app() -> FastAPI:
    # FastAPI's native telemetry off in every app: with a tracer provider set it would trace
    # the "bare" app (four spans a request) and the instrumentator's, but step aside for
    # instrument_app's OpenTelemetry middleware, so "bare" would do more than the app measured
    # against it. That, not noise, was the -4.4 µs/request.
    app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    return app


async def drive(app: FastAPI, count: int) -> Block:
    """Cost per request through the full ASGI stack (routing, middleware, JSON response)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/orders/o-1", "raw_path": b"/orders/o-1", "query_string": b"",
        "root_path": "", "headers": [(b"host", b"bench")], "client": ("127.0.0.1", 1),
        "server": ("bench", 80),
    }  # fmt: skip

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        return None

    cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
    for _ in range(count):
        await app(dict(scope), receive, send)
    return Block((time.thread_time_ns() - cpu) / count, (time.perf_counter_ns() - wall) / count)


SETUPS: dict[str, Callable[[FastAPI], object]] = {
    "bare": lambda app: None,
    "instrument_app": lambda app: instrument_app(app, "bench"),
    "instrumentator": lambda app: Instrumentator(registry=CollectorRegistry()).instrument(app),
    "instrument_app unsampled": lambda app: instrument_app(app, "bench-unsampled"),
    "instrumentator + otel": lambda app: (
        Instrumentator(registry=CollectorRegistry()).instrument(app),
        FastAPIInstrumentor.instrument_app(app, exclude_spans=["receive", "send"]),
    ),
}
TRACED = {"instrument_app", "instrumentator + otel"}
_THEIRS = {"instrumentator - bare": difference("instrumentator", "bare")}
_OURS = {"instrument_app - bare": difference("instrument_app", "bare")}
FIGURES = [
    Figure(
        "instrument_app overhead (metrics + spans + correlation) vs prometheus-fastapi-"
        "instrumentator + opentelemetry-instrumentation-fastapi overhead, thread CPU",
        overhead_ratio("instrument_app", "instrumentator + otel", "bare"),
        Target.parse("<= 1.0x"),
        overheads={**_OURS, "theirs - bare": difference("instrumentator + otel", "bare")},
    ),
    Figure(
        "instrument_app overhead (metrics + spans + correlation) vs "
        "prometheus-fastapi-instrumentator overhead (metrics only), thread CPU",
        overhead_ratio("instrument_app", "instrumentator", "bare"),
        Target.parse("<= 1.0x"),
        overheads={**_OURS, **_THEIRS},
        gating=False,
    ),
    Figure(
        "instrument_app overhead with spans unsampled (metrics + correlation) vs "
        "prometheus-fastapi-instrumentator overhead, thread CPU",
        overhead_ratio("instrument_app unsampled", "instrumentator", "bare"),
        Target.parse("<= 1.0x"),
        overheads={
            "instrument_app unsampled - bare": difference("instrument_app unsampled", "bare"),
            **_THEIRS,
        },
        gating=False,
    ),
]


def main() -> int:
    # The library's own swappable sampler: the SDK caches one tracer per instrumentation scope,
    # so both instrument_app arms share theirs and each arm sets the delegate before its block.
    sampler = AdjustableSampler(DEFAULT_ON)
    provider = TracerProvider(sampler=sampler)
    exporter = CountingExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    loop = asyncio.new_event_loop()
    try:
        arms, spans = {}, {}
        for name, instrument in SETUPS.items():
            app = make_app()
            instrument(app)
            arms[name] = _arm(loop, app, sampler, sampled=not name.endswith("unsampled"))
            before = exporter.spans
            arms[name]()
            spans[name] = exporter.spans - before
        if {name for name, count in spans.items() if count} != TRACED:
            raise RuntimeError(f"only {sorted(TRACED)} should record spans, got {spans}")
        result = measure(arms, FIGURES, budget=BUDGET)
    finally:
        loop.close()
    report_measurement(result, per="request")
    return exit_code(result.outcomes)


def _arm(
    loop: asyncio.AbstractEventLoop, app: FastAPI, sampler: AdjustableSampler, *, sampled: bool
) -> Callable[[], Block]:
    def run() -> Block:
        sampler.delegate = DEFAULT_ON if sampled else ALWAYS_OFF
        gc.collect()
        return loop.run_until_complete(drive(app, REQUESTS))

    return run


if __name__ == "__main__":
    sys.exit(main())
