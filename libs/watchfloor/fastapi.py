"""instrument_app: RED metrics by route template, server spans, correlation ids, /metrics, /health.

The request middleware is pure ASGI rather than Starlette's BaseHTTPMiddleware, which adds a task
and a memory stream per request; it runs inside OpenTelemetry's middleware, so the server span is
current while it observes (exemplars) and while the handler logs (trace ids in logs).

Every label value comes from a closed set, whatever a client sends: the method is one of
`METHODS` or `_OTHER` (HTTP parsers accept any token as a method), the route is a template of
the app or `__unmatched__`, the status is the app's own. No label names the service: the scrape
target does (`labels: {service: ...}` in Prometheus' target file), and a metric label of the same
name would be renamed `exported_service` by Prometheus. /metrics is `watchfloor.metrics.asgi_app`,
bounded for an unauthenticated endpoint (watchfloor.metrics.serving).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Final

from opentelemetry.trace import get_current_span
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

try:
    from fastapi import FastAPI
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
    from starlette.routing import Route
    from starlette.types import ASGIApp, Message, Receive, Scope, Send
except ModuleNotFoundError as missing:  # the library installed without its `fastapi` extra
    raise ModuleNotFoundError(
        f"watchfloor.fastapi needs {missing.name}, which comes with the fastapi extra: "
        "pip install 'watchfloor[fastapi]'",
        name=missing.name,
    ) from missing

from watchfloor.correlation import SPAN_ATTRIBUTE, correlation_scope, new_correlation_id
from watchfloor.logging.config import reclaim_framework_loggers
from watchfloor.logging.handler import mark_logged
from watchfloor.metrics.exemplars import current_exemplar
from watchfloor.metrics.serving import asgi_app

UNMATCHED = "__unmatched__"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# OpenTelemetry's HTTP semantic conventions name every other method `_OTHER` the same way.
OTHER_METHOD = "_OTHER"
DEFAULT_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Neither measured nor traced: scrapes and probes would outnumber the traffic they watch.
DEFAULT_EXCLUDED_PATHS: Final = ("/metrics", "/health", "/healthz")
_OWN_PATHS: Final = frozenset({"/metrics", "/health"})  # excluded whatever the caller says
_HEADER = b"x-correlation-id"
# Where CorrelationHeader leaves the id for RequestMiddleware (ASGI scopes carry extension keys).
_SCOPE_KEY = "watchfloor.correlation_id"
# An incoming id is adopted only if it is short and plain: it ends up in logs and headers.
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
_logger = logging.getLogger("watchfloor.fastapi")


@dataclass(frozen=True)
class RequestMetrics:
    """The two request metrics of one registry, and the buckets they were made with."""

    requests: Counter
    duration: Histogram
    buckets: tuple[float, ...]


# One pair per registry: prometheus-client refuses a second metric of the same name in one.
_metrics_by_registry: weakref.WeakKeyDictionary[CollectorRegistry, RequestMetrics] = (
    weakref.WeakKeyDictionary()
)
_metrics_lock = threading.Lock()


def _request_metrics(registry: CollectorRegistry, buckets: tuple[float, ...]) -> RequestMetrics:
    """The registry's request metrics, made on first use; ValueError if they exist with other
    buckets (every app instrumented on one registry shares them)."""
    with _metrics_lock:
        existing = _metrics_by_registry.get(registry)
        if existing is not None:
            if existing.buckets != buckets:
                raise ValueError(
                    f"http_server_request_duration_seconds already has buckets "
                    f"{existing.buckets} in this registry, not {buckets}: every app instrumented "
                    "on one registry uses the same buckets (or pass registry=)"
                )
            return existing
        made = RequestMetrics(
            Counter(
                "http_server_requests_total",
                "HTTP requests served, by route template (never the raw path) and status code.",
                ["method", "route", "status"],
                registry=registry,
            ),
            Histogram(
                "http_server_request_duration_seconds",
                "Time to serve an HTTP request, by route template.",
                ["method", "route"],
                buckets=buckets,
                registry=registry,
            ),
            buckets,
        )
        _metrics_by_registry[registry] = made
        return made


class RequestMiddleware:
    def __init__(self, app: ASGIApp, metrics: RequestMetrics, excluded: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.excluded = excluded
        self._children: dict[tuple[str, str, str], tuple[Any, Any]] = {}
        self._reclaimed = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._reclaimed:
            # The app's first call (lifespan startup or first request) comes after the server
            # applied its logging config, whichever of it and configure_logging ran first.
            self._reclaimed = True
            reclaim_framework_loggers()
        if scope["type"] != "http" or scope["path"] in self.excluded:
            await self.app(scope, receive, send)
            return
        span = get_current_span()
        if span.is_recording():
            # CorrelationHeader, outside this middleware, made the request's id current.
            span.set_attribute(SPAN_ATTRIBUTE, scope[_SCOPE_KEY])
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_observed)
        except Exception as exc:
            # Logged here, where the correlation id and server span are current; the server's
            # own traceback record of it is then dropped (see mark_logged).
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
                self.metrics.requests.labels(method, route, str(status)),
                self.metrics.duration.labels(method, route),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed, current_exemplar())


class CorrelationHeader:
    """Outermost: picks the request's correlation id, makes it current and puts it on every
    response, also the 500 that Starlette's error middleware sends for an unhandled exception from
    outside the app's middleware stack, so a client can quote the id of the request that failed."""

    def __init__(self, app: ASGIApp, excluded: frozenset[str]) -> None:
        self.app = app
        self.excluded = excluded

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded:
            await self.app(scope, receive, send)
            return
        correlation_id = _incoming_correlation_id(scope)
        scope[_SCOPE_KEY] = correlation_id
        header = (_HEADER, correlation_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        # Around the whole stack, so the server's access line of that 500 carries the id too.
        with correlation_scope(correlation_id):
            await self.app(scope, receive, send_with_id)


def _incoming_correlation_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == _HEADER:
            return value.decode() if _SAFE_ID.match(value) else new_correlation_id()
    return new_correlation_id()


def instrument_app(
    app: FastAPI,
    service: str,
    *,
    excluded_paths: Iterable[str] = DEFAULT_EXCLUDED_PATHS,
    buckets: Iterable[float] = DEFAULT_BUCKETS,
    registry: CollectorRegistry | None = None,
) -> None:
    """Instrument a FastAPI app once (a second call is a no-op); call before the app starts.

    service: the name `/health` answers with; metrics carry no service label (the scrape target's
    `service` label names it). excluded_paths: exact request paths neither measured nor traced
    (/metrics and /health are excluded in any case). buckets: upper bounds in seconds of the request
    duration histogram, strictly increasing (+Inf is added); every app on one registry shares
    them. registry: where the request metrics go and what /metrics serves (prometheus-client's
    default one if None; in multi-process mode /metrics sums every worker). Bad arguments raise
    ValueError here, before the app is changed.
    """
    if getattr(app.state, "watchfloor_service", None) is not None:
        return
    excluded = _excluded_paths(excluded_paths)
    bounds = _buckets(buckets)
    metrics_app = asgi_app(registry)
    metrics = _request_metrics(REGISTRY if registry is None else registry, bounds)
    app.state.watchfloor_service = service

    async def health() -> dict[str, str]:
        return {"status": "ok", "service": service}

    app.router.routes.append(
        Route("/metrics", metrics_app, methods=["GET"], include_in_schema=False)
    )
    app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)
    app.add_middleware(RequestMiddleware, metrics=metrics, excluded=excluded)
    # The per-message "http send"/"http receive" child spans say nothing a trader needs and cost
    # more than the rest of the instrumentation together.
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls=_otel_excluded_urls(excluded), exclude_spans=["receive", "send"]
    )
    # Outside the whole stack (error middleware and OpenTelemetry's included), as Starlette
    # builds it on the first call; add_middleware would put it inside the error middleware.
    build = app.build_middleware_stack

    def build_with_ids() -> ASGIApp:
        return CorrelationHeader(build(), excluded)

    app.build_middleware_stack = build_with_ids  # type: ignore[method-assign]


def _excluded_paths(paths: Iterable[str]) -> frozenset[str]:
    if isinstance(paths, str):
        raise ValueError(f"excluded_paths is a collection of paths, not one string: {paths!r}")
    found = set(_OWN_PATHS)
    for path in paths:
        # Commas separate OpenTelemetry's excluded_urls, so a path cannot hold one.
        if not isinstance(path, str) or not path.startswith("/") or "," in path:
            raise ValueError(f"an excluded path starts with / and has no comma, not {path!r}")
        found.add(path)
    return frozenset(found)


def _otel_excluded_urls(paths: frozenset[str]) -> str:
    # OpenTelemetry searches each regex anywhere in scheme://host/path, hence the anchors: alone,
    # "/health" would also exclude "/v1/health-checks/{id}".
    return ",".join(f"^[a-z]+://[^/]*{re.escape(path)}$" for path in sorted(paths))


def _buckets(buckets: Iterable[float]) -> tuple[float, ...]:
    if isinstance(buckets, str | bytes):
        raise ValueError(f"buckets are numbers of seconds, not {buckets!r}")
    try:
        bounds = tuple(float(bound) for bound in buckets)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"buckets are numbers of seconds, not {buckets!r}") from exc
    if bounds and bounds[-1] == math.inf:
        bounds = bounds[:-1]
    if (
        not bounds
        or not all(math.isfinite(bound) and bound > 0 for bound in bounds)
        or any(lower >= upper for lower, upper in pairwise(bounds))
    ):
        raise ValueError(
            f"buckets are positive, finite, strictly increasing seconds, not {buckets!r}"
        )
    return bounds
