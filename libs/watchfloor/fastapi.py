"""instrument_app: RED metrics by route template, server spans, correlation ids, /metrics, /health.

The request middleware is pure ASGI rather than Starlette's BaseHTTPMiddleware, which adds a task
and a memory stream per request; it runs inside OpenTelemetry's middleware, so the server span is
current while it observes (exemplars) and while the handler logs (trace ids in logs).
"""

from __future__ import annotations

import re
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import get_current_span
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchfloor.correlation import SPAN_ATTRIBUTE, correlation_scope, new_correlation_id
from watchfloor.metrics.exemplars import current_exemplar
from watchfloor.metrics.exposition import render

UNMATCHED = "__unmatched__"
_OWN_PATHS = frozenset({"/metrics", "/health"})
_HEADER = b"x-correlation-id"
# An incoming id is adopted only if it is short and plain: it ends up in logs and headers.
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")

REQUESTS = Counter(
    "http_server_requests_total",
    "HTTP requests served, by route template (never the raw path) and status code.",
    ["service", "method", "route", "status"],
)
DURATION = Histogram(
    "http_server_request_duration_seconds",
    "Time to serve an HTTP request, by route template.",
    ["service", "method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestMiddleware:
    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.service = service
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in _OWN_PATHS:
            await self.app(scope, receive, send)
            return
        correlation_id = _incoming_correlation_id(scope)
        span = get_current_span()
        if span.is_recording():
            span.set_attribute(SPAN_ATTRIBUTE, correlation_id)
        header = (_HEADER, correlation_id.encode())
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        started = time.perf_counter()
        try:
            with correlation_scope(correlation_id):
                await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = str(getattr(route, "path_format", None) or getattr(route, "path", UNMATCHED))
            self._observe(scope["method"], template, status, elapsed)

    def _observe(self, method: str, route: str, status: int, elapsed: float) -> None:
        # Route templates and methods are few, so label children are cached per (method, route).
        key = (method, route, str(status))
        children = self._children.get(key)
        if children is None:
            children = (
                REQUESTS.labels(self.service, method, route, str(status)),
                DURATION.labels(self.service, method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed, current_exemplar())


def _incoming_correlation_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == _HEADER:
            return value.decode() if _SAFE_ID.match(value) else new_correlation_id()
    return new_correlation_id()


def instrument_app(app: FastAPI, service: str) -> None:
    """Instrument a FastAPI app once (a second call is a no-op); call before the app starts."""
    if getattr(app.state, "watchfloor_service", None) is not None:
        return
    app.state.watchfloor_service = service

    async def metrics(request: Request) -> Response:
        body, content_type = render(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
    app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestMiddleware, service=service)
    # The per-message "http send"/"http receive" child spans say nothing a trader needs and cost
    # more than the rest of the instrumentation together.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="/metrics,/health", exclude_spans=["receive", "send"]
    )
