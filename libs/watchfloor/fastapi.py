"""instrument_app: RED metrics by route template, server spans, correlation ids, /metrics, /health.

The request middleware is pure ASGI rather than Starlette's BaseHTTPMiddleware, which adds a task
and a memory stream per request; it runs inside OpenTelemetry's middleware, so the server span is
current while it observes (exemplars) and while the handler logs (trace ids in logs).

Every label value comes from a closed set, whatever a client sends: the method is one of
`METHODS` or `_OTHER` (HTTP parsers accept any token as a method), the route is a template of
the app or `__unmatched__`, the status is the app's own. /metrics is unauthenticated, so it is
bounded too: a few scrapes at a time, and a scraper that stops reading is cut off rather than
pinning a copy of the exposition in memory.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any

from fastapi import FastAPI, Request, Response
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.trace import get_current_span
from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchfloor.correlation import SPAN_ATTRIBUTE, correlation_scope, new_correlation_id
from watchfloor.logging.config import reclaim_framework_loggers
from watchfloor.logging.handler import mark_logged
from watchfloor.metrics.exemplars import current_exemplar
from watchfloor.metrics.exposition import render

UNMATCHED = "__unmatched__"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# OpenTelemetry's HTTP semantic conventions name every other method `_OTHER` the same way.
OTHER_METHOD = "_OTHER"
MAX_CONCURRENT_SCRAPES = 4
SCRAPE_SEND_SECONDS = 10.0
_CHUNK = 64 * 1024
_OWN_PATHS = frozenset({"/metrics", "/health"})
_HEADER = b"x-correlation-id"
# An incoming id is adopted only if it is short and plain: it ends up in logs and headers.
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_logger = logging.getLogger("watchfloor.fastapi")

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
        self._reclaimed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._reclaimed:
            # The app's first call (lifespan startup or first request) comes after the server
            # applied its logging config, whichever of it and configure_logging ran first.
            self._reclaimed = True
            reclaim_framework_loggers()
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
                try:
                    await self.app(scope, receive, send_with_id)
                except Exception as exc:
                    # Logged here, where the correlation id and server span are current; the
                    # server's own traceback record of it is then dropped (see mark_logged).
                    _logger.exception(
                        "unhandled exception in request",
                        extra={"http.request.method": scope["method"], "url.path": scope["path"]},
                    )
                    mark_logged(exc)
                    raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = str(getattr(route, "path_format", None) or getattr(route, "path", UNMATCHED))
            method = scope["method"] if scope["method"] in METHODS else OTHER_METHOD
            self._observe(method, template, status, elapsed)

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


class _ScrapeSlots:
    """How many /metrics responses are being rendered or sent; each holds its own exposition."""

    def __init__(self) -> None:
        self.busy = 0

    def take(self) -> bool:
        if self.busy >= MAX_CONCURRENT_SCRAPES:
            return False
        self.busy += 1
        return True

    def give_back(self) -> None:
        self.busy -= 1


class _Exposition(Response):
    """The body in chunks, all of it sent within SCRAPE_SEND_SECONDS; frees its slot when done.

    Starlette writes a body in one send, which the transport buffers whole when the client does
    not read; chunked, uvicorn's flow control makes each send wait, so the deadline can cut a
    stalled scraper off.
    """

    def __init__(self, body: bytes, media_type: str, slots: _ScrapeSlots) -> None:
        super().__init__(body, media_type=media_type)
        self._slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            body = memoryview(self.body)
            async with asyncio.timeout(SCRAPE_SEND_SECONDS):
                for start in range(0, len(body), _CHUNK):
                    chunk = bytes(body[start : start + _CHUNK])
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
        except TimeoutError:
            return  # the server closes a connection whose response was left incomplete
        finally:
            self._slots.give_back()


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

    slots = _ScrapeSlots()

    async def metrics(request: Request) -> Response:
        if not slots.take():
            return Response(
                f"more than {MAX_CONCURRENT_SCRAPES} scrapes at once; retry\n",
                status_code=429,
                headers={"Retry-After": "1"},
                media_type="text/plain",
            )
        try:
            # On the event loop, so renders take turns (each needs about twice its body in
            # memory) and do not compete with it for the GIL; a capped exposition renders in
            # well under a second.
            body, content_type = render(request.headers.get("accept"))
        except BaseException:
            slots.give_back()
            raise
        return _Exposition(body, content_type, slots)

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
