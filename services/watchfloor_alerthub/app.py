"""The alert hub's HTTP and WebSocket surface."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, Request, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchfloor.fastapi import instrument_app
from watchfloor_alerthub.broadcast import Broadcaster
from watchfloor_alerthub.models import WebhookPayload
from watchfloor_alerthub.store import AlertStore

MAX_BODY_BYTES = 4 * 1024 * 1024
RUNBOOK_NAME = re.compile(r"[A-Za-z0-9]+\.md")


class HubError(Exception):
    def __init__(self, status: int, message: str, errors: list[dict[str, str]] | None = None):
        super().__init__(message)
        self.status, self.message, self.errors = status, message, errors or []


class Acknowledge(BaseModel):
    by: str = Field(default="alert hub", min_length=1, max_length=100)
    hours: float = Field(default=2.0, gt=0, le=24 * 7)
    comment: str = Field(default="Acknowledged in the watchfloor alert hub", max_length=1000)


def create_app(  # noqa: PLR0915 - one closure per route, sharing the store and broadcaster
    *,
    token: str,
    database: Path,
    alertmanager_url: str,
    watchdog_stale_seconds: float = 120.0,
    runbooks: Path | None = None,
) -> FastAPI:
    store = AlertStore(database)

    def snapshot() -> dict[str, Any]:
        return {"type": "snapshot", "alerts": store.alerts(), "watchdog": watchdog()}

    def watchdog() -> dict[str, Any]:
        seen = store.watchdog_seen()
        return {
            "lastSeen": seen,
            "staleAfterSeconds": watchdog_stale_seconds,
            "stale": seen is None or time.time() - seen > watchdog_stale_seconds,
        }

    broadcaster = Broadcaster(snapshot)

    async def heartbeat() -> None:
        # The page learns that the Watchdog went stale even when nothing else arrives.
        while True:
            await asyncio.sleep(min(10.0, watchdog_stale_seconds / 4))
            broadcaster.publish({"type": "watchdog", "watchdog": watchdog()})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(heartbeat())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()

    app = FastAPI(title="watchfloor alert hub", version="1.0", lifespan=lifespan)
    app.state.store = store
    expected = f"Bearer {token}".encode()

    def authorise(header: str | None) -> None:
        if not header:
            raise HubError(401, "missing 'Authorization: Bearer <WATCHFLOOR_ALERTHUB_TOKEN>'")
        if not hmac.compare_digest(header.encode(), expected):
            raise HubError(403, "the bearer token does not match WATCHFLOOR_ALERTHUB_TOKEN")

    @app.exception_handler(HubError)
    async def hub_error(request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse({"error": exc.message, "errors": exc.errors}, status_code=exc.status)

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
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            raise HubError(413, f"body is over the {MAX_BODY_BYTES}-byte limit")
        try:
            payload = WebhookPayload.model_validate_json(body)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(map(str, e["loc"])) or "body", "message": e["msg"]}
                for e in exc.errors()[:20]
            ]
            raise HubError(422, "not an Alertmanager webhook (version 4) payload", errors) from None
        for alert in store.apply(payload.alerts):
            broadcaster.publish({"type": "alert", "alert": alert})
        broadcaster.publish({"type": "watchdog", "watchdog": watchdog()})
        return JSONResponse({"received": len(payload.alerts)})

    @app.get("/api/alerts")
    async def alerts(request: Request, status: str = "firing") -> JSONResponse:
        authorise(request.headers.get("authorization"))
        if status not in {"firing", "all"}:
            raise HubError(422, "status must be 'firing' or 'all'")
        return JSONResponse(
            {"alerts": store.alerts(include_resolved=status == "all"), "watchdog": watchdog()}
        )

    @app.post("/api/alerts/{fingerprint}/acknowledge")
    async def acknowledge(fingerprint: str, request: Request, ack: Acknowledge) -> JSONResponse:
        authorise(request.headers.get("authorization"))
        alert = store.get(fingerprint)
        if alert is None:
            raise HubError(404, f"no alert with fingerprint {fingerprint!r}")
        now = datetime.now(UTC)
        silence = {
            "matchers": [
                {"name": k, "value": v, "isRegex": False, "isEqual": True}
                for k, v in sorted(alert["labels"].items())
            ],
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(hours=ack.hours)).isoformat(),
            "createdBy": ack.by,
            "comment": ack.comment,
        }
        try:
            async with httpx.AsyncClient(timeout=10) as client:
                response = await client.post(f"{alertmanager_url}/api/v2/silences", json=silence)
        except httpx.HTTPError as exc:
            raise HubError(
                502, f"Alertmanager at {alertmanager_url} is unreachable: {exc}"
            ) from None
        if response.status_code != 200:
            raise HubError(502, f"Alertmanager refused the silence: {response.text[:300]}")
        silence_id = str(response.json().get("silenceID", ""))
        updated = store.acknowledge(fingerprint, silence_id, ack.by)
        broadcaster.publish({"type": "acknowledged", "alert": updated})
        return JSONResponse({"silenceID": silence_id, "alert": updated})

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        token_given = socket.query_params.get("token", "")
        if not hmac.compare_digest(f"Bearer {token_given}".encode(), expected):
            await socket.close(
                code=4401, reason="token required: /ws?token=<WATCHFLOOR_ALERTHUB_TOKEN>"
            )
            return
        await socket.accept()
        client = broadcaster.connect()
        try:
            while True:
                message = await client.queue.get()
                await socket.send_json(message)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            broadcaster.disconnect(client)

    @app.get("/docs/runbooks/{name}", include_in_schema=False)
    async def runbook(name: str) -> PlainTextResponse:
        # Alerts carry repo-relative runbook paths; the page links them here.
        if runbooks is None or not RUNBOOK_NAME.fullmatch(name) or not (runbooks / name).is_file():
            raise HubError(404, f"no runbook {name!r}")
        return PlainTextResponse((runbooks / name).read_text(), media_type="text/markdown")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        html = resources.files("watchfloor_alerthub").joinpath("page.html").read_text()
        return HTMLResponse(html)

    instrument_app(app, "alert-hub")
    return app
