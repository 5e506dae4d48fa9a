"""The live feed's door: who may open /ws, and the life of one connection.

A browser sends `Origin`; only the hub's own (or WATCHFLOOR_ALERTHUB_ALLOWED_ORIGINS) may connect,
so another site an operator has open cannot read the alerts with the operator's browser. The token
never travels in the URL (proxies log URLs): a program sends `Authorization: Bearer <token>` with
the handshake, a page sends {"type": "auth", "token": "<token>"} as its first message.

Close codes: 4400 the protocol was not followed, 4401 wrong or missing token (do not retry),
1013 the hub is full or the client stopped reading (retry later), 1008 a message after auth.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import orjson
from fastapi import WebSocket
from fastapi.responses import JSONResponse
from prometheus_client import Counter

from watchfloor_alerthub.broadcast import Broadcaster, Client
from watchfloor_alerthub.limits import (
    AUTH_TIMEOUT_SECONDS,
    MAX_INCOMING_MESSAGE_BYTES,
    MAX_PENDING_CLIENTS,
)

REJECTED = Counter(
    "watchfloor_alerthub_websocket_rejected_total",
    "WebSocket connections refused or closed by the hub, by reason.",
    ["reason"],
)
for _reason in ("origin", "token", "busy", "full", "protocol", "not_reading"):
    REJECTED.labels(_reason)
_LOG = logging.getLogger("watchfloor.alerthub.websocket")
_AUTH_SHAPE = '{"type": "auth", "token": "<WATCHFLOOR_ALERTHUB_TOKEN>"}'


class Gate:
    def __init__(self, token: str, allowed_origins: Sequence[str], broadcaster: Broadcaster):
        self._expected = token.encode()
        self._origins = {origin.rstrip("/").lower() for origin in allowed_origins}
        self._broadcaster = broadcaster
        self._pending = 0

    async def serve(self, socket: WebSocket) -> None:
        origin = socket.headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, socket.headers.get("host")):
            await _deny(socket, 403, "origin", f"origin {origin[:100]!r} may not open the feed")
            return
        header = socket.headers.get("authorization")
        if header is not None and not self._token_matches(header.removeprefix("Bearer ")):
            await _deny(socket, 403, "token", "the bearer token does not match")
            return
        if self._pending >= MAX_PENDING_CLIENTS:
            await _deny(socket, 429, "busy", "too many connections authenticating; retry")
            return
        self._pending += 1
        try:
            await socket.accept()
            if "token" in socket.query_params:
                # Refused even when right: a token in a URL ends up in proxies' logs.
                await _close(socket, 4400, "protocol", "no token in the URL: send " + _AUTH_SHAPE)
                return
            if header is None and not await self._authenticated(socket):
                return
        finally:
            self._pending -= 1
        client = self._broadcaster.connect()
        if client is None:
            limit = self._broadcaster.max_clients
            await _close(socket, 1013, "full", f"the hub serves {limit} clients; retry later")
            return
        try:
            await self._stream(socket, client)
        finally:
            self._broadcaster.disconnect(client)

    async def _stream(self, socket: WebSocket, client: Client) -> None:
        pump = asyncio.create_task(self._broadcaster.pump(client, socket.send_text))
        reader = asyncio.create_task(socket.receive())
        try:
            await asyncio.wait({pump, reader}, return_when=asyncio.FIRST_COMPLETED)
            if reader.done():
                message = None if reader.exception() else reader.result()
                if message is not None and message["type"] != "websocket.disconnect":
                    pump.cancel()
                    await _close(socket, 1008, "protocol", "the feed takes no messages")
                return
            if isinstance(pump.exception(), TimeoutError):
                REJECTED.labels("not_reading").inc()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1):
                        await socket.close(1013, "not reading: reconnect")
                # Its slot stays taken until the connection is really gone: a client that stops
                # reading keeps unsent bytes in its transport, and they count against the bound.
                with contextlib.suppress(Exception):
                    await reader
        finally:
            for task in (pump, reader):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def _authenticated(self, socket: WebSocket) -> bool:
        try:
            async with asyncio.timeout(AUTH_TIMEOUT_SECONDS):
                message = await socket.receive()
        except TimeoutError:
            await _close(socket, 4400, "protocol", "no auth message: send " + _AUTH_SHAPE)
            return False
        if message["type"] == "websocket.disconnect":
            return False
        token = _auth_token(message.get("text"))
        if token is None:
            await _close(socket, 4400, "protocol", "the first message must be " + _AUTH_SHAPE)
            return False
        if not self._token_matches(token):
            await _close(socket, 4401, "token", "the token does not match")
            return False
        return True

    def _token_matches(self, given: str) -> bool:
        return hmac.compare_digest(given.encode(errors="replace"), self._expected)

    def _origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self._origins:
            return True
        parts = urlsplit(origin)
        return (
            parts.scheme in {"http", "https"}
            and host is not None
            and parts.netloc == host.lower()
            and not parts.path
        )


def _auth_token(text: object) -> str | None:
    if not isinstance(text, str) or len(text) > MAX_INCOMING_MESSAGE_BYTES:
        return None
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict) or message.get("type") != "auth":
        return None
    token = message.get("token")
    return token if isinstance(token, str) else None


async def _deny(socket: WebSocket, status: int, reason: str, message: str) -> None:
    """Refuse the handshake with an HTTP answer saying why."""
    REJECTED.labels(reason).inc()
    await socket.send_denial_response(JSONResponse({"error": message}, status_code=status))


async def _close(socket: WebSocket, code: int, reason: str, message: str) -> None:
    REJECTED.labels(reason).inc()
    _LOG.info("closing a WebSocket: %s", message)
    with contextlib.suppress(Exception):
        await socket.close(code, message[:120])  # a close reason is at most 123 bytes
