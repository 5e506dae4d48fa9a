"""The alert hub's HTTP and WebSocket surface."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import logging
import re
import time
from collections import Counter as Tally
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import orjson
from fastapi import FastAPI, Request, Response, WebSocket
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, StreamingResponse
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchfloor.fastapi import instrument_app
from watchfloor_alerthub.alertmanager import AlertmanagerError, Alertmanagers, SilenceRefused
from watchfloor_alerthub.bodies import read_body
from watchfloor_alerthub.broadcast import Broadcaster
from watchfloor_alerthub.errors import HubError
from watchfloor_alerthub.limits import (
    DEFAULT_ALERTMANAGER_WARMUP_SECONDS,
    DEFAULT_MAX_ALERTS,
    DEFAULT_MAX_CLIENTS,
    DEFAULT_RECONCILE_SECONDS,
    DEFAULT_RESOLVED_RETENTION_SECONDS,
    MAX_ACK_BODY_BYTES,
    MAX_BODY_BYTES,
    QUEUE_MESSAGES,
    WEBHOOK_CONCURRENCY,
)
from watchfloor_alerthub.models import FINGERPRINT_PATTERN, Acknowledge, WebhookPayload
from watchfloor_alerthub.store import AlertStore, Changes
from watchfloor_alerthub.view import AlertView
from watchfloor_alerthub.websocket import Gate

RUNBOOK_NAME = re.compile(r"[A-Za-z0-9]+\.md")
FINGERPRINT = re.compile(FINGERPRINT_PATTERN)
_LOG = logging.getLogger("watchfloor.alerthub")
_Model = TypeVar("_Model", bound=BaseModel)

STORED = Gauge("watchfloor_alerthub_stored_alerts", "Alerts in the hub's database.")
STORED_BYTES = Gauge(
    "watchfloor_alerthub_stored_bytes", "Labels, annotations and URLs stored, against the bound."
)
REFUSED = Counter(
    "watchfloor_alerthub_alerts_refused_total",
    "New firing alerts refused because the hub held its maximum (WATCHFLOOR_ALERTHUB_MAX_ALERTS).",
)
RECONCILIATIONS = Counter(
    "watchfloor_alerthub_reconciliations_total",
    "Rounds of agreeing with Alertmanager's alerts, by result.",
    ["result"],
)
for _result in ("ok", "failed"):
    RECONCILIATIONS.labels(_result)


def create_app(  # noqa: PLR0915 - one closure per route, sharing the store and broadcaster
    *,
    token: str,
    database: Path,
    alertmanager_url: str | Sequence[str],
    alertmanager_credentials: tuple[str, str] | None = None,
    watchdog_stale_seconds: float = 120.0,
    runbooks: Path | None = None,
    max_alerts: int = DEFAULT_MAX_ALERTS,
    max_clients: int = DEFAULT_MAX_CLIENTS,
    reconcile_seconds: float = DEFAULT_RECONCILE_SECONDS,
    resolved_retention_seconds: float = DEFAULT_RESOLVED_RETENTION_SECONDS,
    alertmanager_warmup_seconds: float = DEFAULT_ALERTMANAGER_WARMUP_SECONDS,
    allowed_origins: Sequence[str] = (),
) -> FastAPI:
    """The hub. `alertmanager_url` may list several Alertmanagers (an HA cluster)."""
    urls = [alertmanager_url] if isinstance(alertmanager_url, str) else list(alertmanager_url)
    store = AlertStore(
        database, max_alerts=max_alerts, resolved_retention_seconds=resolved_retention_seconds
    )
    view = AlertView(store.load())
    alertmanagers = Alertmanagers(urls, alertmanager_credentials)

    def watchdog() -> dict[str, Any]:
        seen = store.watchdog_seen
        return {
            "lastSeen": seen,
            "staleAfterSeconds": watchdog_stale_seconds,
            "stale": seen is None or time.time() - seen > watchdog_stale_seconds,
        }

    def watchdog_message() -> str:
        return orjson.dumps({"type": "watchdog", "watchdog": watchdog()}).decode()

    broadcaster = Broadcaster(view, watchdog_message, max_clients)
    gate = Gate(token, allowed_origins, broadcaster)

    def publish(changes: Changes, kind: str = "alert") -> None:
        view.update(changes)
        STORED.set(store.count)
        STORED_BYTES.set(store.stored_bytes)
        if len(changes.stored) > QUEUE_MESSAGES:
            broadcaster.resync_all()
        elif changes.stored:
            broadcaster.publish(
                [f'{{"type":"{kind}","alert":{alert.text}}}' for alert in changes.stored]
            )

    async def heartbeat() -> None:
        # The page learns that the Watchdog went stale even when nothing else arrives.
        while True:
            await asyncio.sleep(min(10.0, watchdog_stale_seconds / 4))
            broadcaster.publish([watchdog_message()])

    async def reconcile() -> None:
        """Agree with Alertmanager, then drop what is past retention, every reconcile_seconds."""
        while True:
            started = time.time()
            try:
                firing = await alertmanagers.firing(alertmanager_warmup_seconds)
                publish(
                    await store.run(
                        store.reconcile, firing.alerts, firing.creators, started, time.time()
                    )
                )
                RECONCILIATIONS.labels("ok").inc()
            except AlertmanagerError as exc:
                RECONCILIATIONS.labels("failed").inc()
                _LOG.warning("cannot reconcile with Alertmanager: %s", exc)
            except Exception:  # the next round tries again; a dead task would never
                RECONCILIATIONS.labels("failed").inc()
                _LOG.exception("reconciling with Alertmanager failed")
            try:
                publish(await store.run(store.prune, time.time()))
            except Exception:
                _LOG.exception("pruning resolved alerts failed")
            await asyncio.sleep(reconcile_seconds)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        STORED.set(store.count)
        tasks = [asyncio.create_task(heartbeat()), asyncio.create_task(reconcile())]
        yield
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await alertmanagers.aclose()
        store.close()

    app = FastAPI(title="watchfloor alert hub", version="1.0", lifespan=lifespan)
    app.state.store = store
    expected = f"Bearer {token}".encode()
    webhook_slots = asyncio.Semaphore(WEBHOOK_CONCURRENCY)
    acknowledging: Tally[str] = Tally()
    ack_locks: dict[str, asyncio.Lock] = {}

    def authorise(header: str | None) -> None:
        if not header:
            raise HubError(401, "missing 'Authorization: Bearer <WATCHFLOOR_ALERTHUB_TOKEN>'")
        if not hmac.compare_digest(header.encode(errors="replace"), expected):
            raise HubError(403, "the bearer token does not match WATCHFLOOR_ALERTHUB_TOKEN")

    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.message, "errors": exc.errors},
            status_code=exc.status,
            headers=exc.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def request_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(map(str, e["loc"])), "message": e["msg"]} for e in exc.errors()
        ]
        return JSONResponse({"error": "invalid request", "errors": errors}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail), "errors": []}, status_code=exc.status_code)

    @app.post("/alertmanager/webhook")
    async def webhook(request: Request) -> JSONResponse:
        authorise(request.headers.get("authorization"))
        async with webhook_slots:
            body = await read_body(request, MAX_BODY_BYTES)
            payload = _parse(WebhookPayload, body, "not an Alertmanager webhook (version 4)")
            changes = await store.run(store.apply, payload.alerts, time.time())
        publish(changes)
        broadcaster.publish([watchdog_message()])
        received = len(payload.alerts)
        if changes.refused:
            REFUSED.inc(changes.refused)
            raise HubError(
                429,
                f"the hub holds its maximum ({store.max_alerts} alerts,"
                f" {store.max_bytes} bytes): {changes.refused} new firing alerts of {received}"
                " were refused, the rest stored; they are taken once alerts resolve",
                headers={"Retry-After": "60"},
            )
        return JSONResponse({"received": received})

    @app.get("/api/alerts")
    async def alerts(request: Request, status: str = "firing") -> StreamingResponse:
        authorise(request.headers.get("authorization"))
        if status not in {"firing", "all"}:
            raise HubError(
                422,
                "status must be 'firing' or 'all'",
                [{"field": "query.status", "message": "must be 'firing' or 'all'"}],
            )

        async def body() -> AsyncIterator[str]:
            # Part by part from the shared view: a slow reader holds one part, not a copy.
            yield '{"alerts":['
            cursor: str | None = ""
            separator = ""
            while cursor is not None:
                part, cursor = view.chunk_after(cursor, firing_only=status == "firing")
                if part:
                    yield separator + part
                    separator = ","
            yield '],"watchdog":' + orjson.dumps(watchdog()).decode() + "}"

        return StreamingResponse(body(), media_type="application/json")

    @app.post("/api/alerts/{fingerprint}/acknowledge")
    async def acknowledge(fingerprint: str, request: Request) -> Response:
        authorise(request.headers.get("authorization"))
        if not FINGERPRINT.fullmatch(fingerprint):
            raise HubError(
                422,
                "invalid request",
                [{"field": "path.fingerprint", "message": "must be 1 to 64 hexadecimal digits"}],
            )
        fingerprint = fingerprint.lower()
        ack = _parse(
            Acknowledge,
            await read_body(request, MAX_ACK_BODY_BYTES) or b"{}",
            "invalid acknowledgement",
            ("body",),  # named as FastAPI named them when it parsed this body
        )
        # One acknowledgement of an alert at a time, so a double click makes one silence.
        acknowledging[fingerprint] += 1
        lock = ack_locks.setdefault(fingerprint, asyncio.Lock())
        try:
            async with lock:
                return await silence(fingerprint, ack)
        finally:
            acknowledging[fingerprint] -= 1
            if not acknowledging[fingerprint]:
                del acknowledging[fingerprint], ack_locks[fingerprint]

    async def silence(fingerprint: str, ack: Acknowledge) -> Response:
        target = await store.run(store.target, fingerprint)
        if target is None:
            raise HubError(404, f"no alert with fingerprint {fingerprint!r}")
        if not target.firing:
            raise HubError(409, f"alert {fingerprint} is resolved: there is nothing to silence")
        if target.silence_id and await alertmanagers.silence_in_force(target.silence_id):
            current = view.get(fingerprint)
            return _ack_response(target.silence_id, current.text if current else "null", False)
        # An empty label value is the label's absence to Alertmanager, and a silence must have a
        # matcher that does not match the empty string.
        matchers = [
            {"name": k, "value": v, "isRegex": False, "isEqual": True}
            for k, v in sorted(target.labels.items())
            if v
        ]
        if not matchers:
            raise HubError(422, f"alert {fingerprint} has no label to silence it by")
        now = datetime.now(UTC)
        try:
            silence_id = await alertmanagers.create_silence(
                {
                    "matchers": matchers,
                    "startsAt": now.isoformat(),
                    "endsAt": (now + timedelta(hours=ack.hours)).isoformat(),
                    "createdBy": ack.by,
                    "comment": ack.comment,
                }
            )
        except SilenceRefused as exc:
            raise HubError(422, str(exc)) from None
        except AlertmanagerError as exc:
            raise HubError(502, str(exc)) from None
        updated = await store.run(store.acknowledge, fingerprint, silence_id, ack.by, time.time())
        if updated is None:  # resolved and pruned while Alertmanager answered
            raise HubError(404, f"alert {fingerprint} went away while it was being silenced")
        publish(Changes(stored=[updated]), kind="acknowledged")
        return _ack_response(silence_id, updated.text, True)

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        await gate.serve(socket)

    @app.get("/docs/runbooks/{name}", include_in_schema=False)
    async def runbook(name: str) -> PlainTextResponse:
        # Alerts carry repo-relative runbook paths; the page links them here.
        if runbooks is None or not RUNBOOK_NAME.fullmatch(name) or not (runbooks / name).is_file():
            raise HubError(404, f"no runbook {name!r}")
        return PlainTextResponse(
            (runbooks / name).read_text(),
            media_type="text/markdown",
            headers={"X-Content-Type-Options": "nosniff"},
        )

    html = resources.files("watchfloor_alerthub").joinpath("page.html").read_text()
    page_headers = _page_headers(html)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(html, headers=page_headers)

    instrument_app(app, "alert-hub")
    return app


def _parse(model: type[_Model], body: bytes, what: str, prefix: tuple[str, ...] = ()) -> _Model:
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(map(str, (*prefix, *e["loc"]))) or "body", "message": e["msg"]}
            for e in exc.errors()[:20]
        ]
        raise HubError(422, what, errors) from None


def _ack_response(silence_id: str, alert: str, created: bool) -> Response:
    body = {"silenceID": silence_id, "created": created, "alert": orjson.Fragment(alert)}
    return Response(orjson.dumps(body), media_type="application/json")


def _page_headers(html: str) -> dict[str, str]:
    """A Content-Security-Policy that runs the page's own script and nothing else: no injected
    script, no `javascript:` link, no framing by another site."""
    script = html.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    policy = (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline';"
        " connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none';"
        " frame-ancestors 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
