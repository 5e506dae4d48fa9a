"""Serving an exporter: uvicorn with the connection bounds it lacks for an untrusted network.

uvicorn 0.54 (the locked version) closes a keep-alive connection idle after a response
(`timeout_keep_alive`) and refuses an oversized header block (`h11_max_incomplete_event_size`),
but it has no deadline for receiving a request: a connection that sends nothing, or one header
line every few seconds, or a body a byte at a time, is held forever (every byte re-arms the
keep-alive timer), and nothing bounds how many such connections are open. `limit_concurrency`
does not help: it answers 503 only once a whole request has arrived, and it counts the held
connections, so /health would get the 503. Its HTTP/1.1 protocol (h11; httptools is not installed)
is therefore extended here with:

- a request deadline: a request, headers and body, must arrive whole within
  WATCHFLOOR_REQUEST_TIMEOUT_SECONDS (default 10) of the connection opening or of the previous
  response, or the connection is closed;
- a stalled-reader cut-off: a response whose unsent bytes have not moved between two checks
  (one request deadline apart) is aborted; a client that stops reading would otherwise hold the
  connection and its buffer for good (closing waits for the buffer to drain);
- a connection cap: at most WATCHFLOOR_MAX_CONNECTIONS (default 256) are open; a connection past
  it closes the one that has waited longest for its request (a half-open one), or, when every
  connection is busy with a response, is closed itself. A client that sends its request at once
  (a scraper, a health check, a real ingest client) is never the one waiting longest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import resource
import time

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

DEFAULT_REQUEST_TIMEOUT_SECONDS = 10.0
DEFAULT_MAX_CONNECTIONS = 256
KEEP_ALIVE_SECONDS = 5
MAX_HEADER_BYTES = 16 * 1024
SHUTDOWN_SECONDS = 5  # then open connections are dropped: a stop never hangs on a client
# Connections accepted per wake-up as well as the listen queue: bounds the file descriptors one
# burst of connects takes before the cap closes the surplus.
BACKLOG = 128


class BoundedH11Protocol(H11Protocol):
    request_timeout = DEFAULT_REQUEST_TIMEOUT_SECONDS
    max_connections = DEFAULT_MAX_CONNECTIONS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._waiting_since = time.monotonic()
        self._unsent = 0
        self._arm()
        self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._waiting_since = time.monotonic()
        self._arm()

    def awaiting_request(self) -> bool:
        """Still waiting for the current request's headers or the rest of its body."""
        return self.cycle is None or self.cycle.response_complete or self.cycle.more_body

    def _arm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self.loop.call_later(self.request_timeout, self._check)

    def _check(self) -> None:
        unsent = self.transport.get_write_buffer_size()
        if unsent and unsent == self._unsent:
            self.transport.abort()
            return
        self._unsent = unsent
        if self.awaiting_request() and not self.transport.is_closing():
            self.transport.close()
        self._arm()  # a long response, or a close still flushing: look again later

    def _make_room(self) -> None:
        open_ = [
            c
            for c in self.connections
            if isinstance(c, BoundedH11Protocol) and not c.transport.is_closing()
        ]
        if len(open_) <= self.max_connections:
            return
        waiting = [c for c in open_ if c is not self and c.awaiting_request()]
        victim = min(waiting, key=lambda c: c._waiting_since, default=self)
        victim.transport.close()


def _seconds_from_env(name: str, default: float) -> float:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value < 86400:
        raise ValueError(f"{name} must be a number of seconds (0 < s < 86400), got {raw!r}")
    return value


def _count_from_env(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
        raise ValueError(f"{name} must be an integer from 1 to 100000, got {raw!r}")
    return int(raw)


def protocol_from_env() -> type[BoundedH11Protocol]:
    """The protocol class with this process's deadline and cap; ValueError on a bad setting."""

    class Configured(BoundedH11Protocol):
        request_timeout = _seconds_from_env(
            "WATCHFLOOR_REQUEST_TIMEOUT_SECONDS", DEFAULT_REQUEST_TIMEOUT_SECONDS
        )
        max_connections = _count_from_env("WATCHFLOOR_MAX_CONNECTIONS", DEFAULT_MAX_CONNECTIONS)

    return Configured


def _reserve_file_descriptors(needed: int) -> None:
    # The cap closes surplus connections, but each must be accepted first: with a soft limit of
    # 1024 (common in containers) and a listen queue full of connects, accept() would fail.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < needed:
        log.warning(
            "open-file limit below what the connection cap needs",
            extra={"limit": target, "needed": needed},
        )


def server_config(
    app: FastAPI, *, host: str, port: int, protocol: type[BoundedH11Protocol]
) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol,
        backlog=BACKLOG,
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        log_config=None,
        access_log=False,
    )


def serve(app: FastAPI, *, host: str, port: int, protocol: type[BoundedH11Protocol]) -> None:
    _reserve_file_descriptors(protocol.max_connections + BACKLOG + 128)
    uvicorn.Server(server_config(app, host=host, port=port, protocol=protocol)).run()
