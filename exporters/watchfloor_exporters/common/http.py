"""The exporters' HTTP surface: bearer-token ingest routes with capped bodies, /ready, errors.

At most MAX_BATCHES_IN_FLIGHT ingest requests are read or applied at once (each holds a body of
up to WATCHFLOOR_MAX_BODY_BYTES, and one thread applies them in turn); past that a request gets
429 with Retry-After before its body is read, so memory stays bounded whatever clients send.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchfloor.fastapi import instrument_app
from watchfloor.metrics import cardinality
from watchfloor_exporters.common.ingest import DEFAULT_MAX_BODY_BYTES, BatchError, limit_from_env
from watchfloor_exporters.common.ingestor import Ingestor
from watchfloor_exporters.common.metrics import BATCHES
from watchfloor_exporters.common.simulation import Step, post_forever

log = logging.getLogger(__name__)

Ingest = Callable[[bytes, str | None], dict[str, Any]]
MAX_BATCHES_IN_FLIGHT = 8


async def read_capped(request: Request, cap: int) -> bytes:
    """The request body, refusing (413) past `cap` bytes without reading it all into memory."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BatchError(413, f"body of {declared} bytes is over the {cap}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise BatchError(413, f"body is over the {cap}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def create_app(
    *,
    exporter: str,
    title: str,
    token: str,
    max_body_bytes: int,
    routes: dict[str, Ingest],
    description: str,
    background: Callable[[], Coroutine[Any, Any, None]] | None = None,
) -> FastAPI:
    """The app; `background` (the simulator) runs as a task for the app's lifetime.

    Batches are applied on one worker thread, in arrival order: applying 500 events inline would
    hold the event loop for the whole batch, and every /metrics scrape arriving meanwhile would
    wait for it.
    """
    applier = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{exporter}-ingest")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(background()) if background is not None else None
        app.state.ready = True
        yield
        app.state.ready = False
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(title=title, description=description, version="1.0", lifespan=lifespan)
    app.state.ready = False
    expected = token.encode()
    in_flight = 0

    @app.exception_handler(BatchError)
    async def batch_error(request: Request, exc: BatchError) -> JSONResponse:
        BATCHES.labels(exporter, str(exc.status)).inc()
        headers = {401: {"WWW-Authenticate": "Bearer"}, 429: {"Retry-After": "1"}}.get(exc.status)
        return JSONResponse(exc.body(), status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            {"error": str(exc.detail), "errors": []},
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    def authorise(request: Request) -> None:
        # RFC 9110: the scheme is case-insensitive ("bearer" works as "Bearer" does).
        scheme, _, credentials = request.headers.get("authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer":
            raise BatchError(401, "missing 'Authorization: Bearer <WATCHFLOOR_INGEST_TOKEN>'")
        if not hmac.compare_digest(credentials.strip().encode(), expected):
            raise BatchError(403, "the bearer token does not match WATCHFLOOR_INGEST_TOKEN")

    def ingest_route(ingest: Ingest) -> Callable[[Request], Awaitable[JSONResponse]]:
        async def handle(request: Request) -> JSONResponse:
            nonlocal in_flight
            authorise(request)
            if in_flight >= MAX_BATCHES_IN_FLIGHT:
                raise BatchError(
                    429, f"{MAX_BATCHES_IN_FLIGHT} batches are being applied; retry shortly"
                )
            in_flight += 1
            try:
                body = await read_capped(request, max_body_bytes)
                # The request's context goes along: correlation id in logs, span for exemplars.
                apply = functools.partial(
                    contextvars.copy_context().run,
                    ingest,
                    body,
                    request.headers.get("content-type"),
                )
                result = await asyncio.get_running_loop().run_in_executor(applier, apply)
            finally:
                in_flight -= 1
            BATCHES.labels(exporter, "200").inc()
            return JSONResponse(result)

        return handle

    for path, ingest in routes.items():
        app.add_api_route(
            path,
            ingest_route(ingest),
            methods=["POST"],
            summary=f"Ingest a batch of events (JSON array or NDJSON) into {exporter} metrics",
            responses={
                200: {"description": "applied; duplicates (replayed ids) were skipped"},
                400: {"description": "malformed JSON"},
                401: {"description": "no bearer token"},
                403: {"description": "wrong bearer token"},
                413: {"description": "body or batch too large"},
                422: {"description": "invalid event; the error names the field"},
                429: {"description": "too many batches in flight; retry after a second"},
            },
        )

    @app.get("/ready")
    async def ready() -> JSONResponse:
        if not app.state.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready", "exporter": exporter})

    instrument_app(app, f"{exporter}-exporter")
    return app


def exporter_app(
    *,
    exporter: str,
    title: str,
    description: str,
    token: str,
    ingestor: Ingestor,
    routes: dict[str, Any],
    step: Step | None,
    port: int,
) -> FastAPI:
    """An exporter: one ingest route per event type, and the simulator posting to them if on."""
    cardinality.configure_from_env()
    background = None
    if step is not None:
        background = functools.partial(
            post_forever,
            base_url=f"http://127.0.0.1:{port}",
            token=token,
            step=step,
            max_events=ingestor.max_events,
        )
    return create_app(
        exporter=exporter,
        title=title,
        description=description,
        token=token,
        max_body_bytes=limit_from_env("WATCHFLOOR_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        routes={path: ingestor.route(event_type) for path, event_type in routes.items()},
        background=background,
    )
