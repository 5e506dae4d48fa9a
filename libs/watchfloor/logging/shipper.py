"""The shipper thread: spool → Logstash's beats input, advancing the cursor only on ACK.

Delivery is at-least-once: a batch is resent until Logstash acknowledges it, so a crash between
ACK and cursor write resends that batch; `event.id` lets Elasticsearch drop the duplicates
(Logstash uses it as the document id).

We drive python-logstash-async's BeatsTransport ourselves instead of its worker thread: the
worker caches in SQLite (slow), drops unsent events at exit, and its TCP transport waits up to
SOCKET_CLOSE_WAIT_TIMEOUT (30 s) on close. BeatsTransport has no such wait; its connect and ACK
waits are bounded by `timeout`, and a refused connection fails at once into our backoff.
"""

from __future__ import annotations

import contextlib
import logging
import random
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from logstash_async.constants import constants as logstash_constants
from logstash_async.transport import BeatsTransport

from watchfloor.logging.spool import Spool
from watchfloor.metrics.shipping import LOG_EVENTS_SHIPPED, LOG_SHIP_FAILURES


class Transport(Protocol):
    def send(self, events: list[bytes], use_logging: bool = False) -> None: ...


def beats_transport(host: str, port: int, timeout: float, batch_size: int) -> Transport:
    # BeatsTransport splits a send into windows of this size, each awaiting its own ACK round
    # trip; the library's default of 25 caps throughput near a few thousand events/s.
    logstash_constants.QUEUED_EVENTS_BEATS_BATCH_SIZE = batch_size
    # pylogbeat reports failures through this logger when asked to (use_logging=True below),
    # otherwise it prints to stderr; the shipper reports them once itself, so silence it here
    # rather than let shipping errors become log events that are shipped in turn.
    logging.getLogger("pylogbeat").propagate = False
    transport: Transport = BeatsTransport(
        host,
        port,
        ssl_enable=False,
        ssl_verify=False,
        ssl_verify_flags=None,
        keyfile=None,
        certfile=None,
        ca_certs=None,
        timeout=timeout,
    )
    if hasattr(transport, "_batch_size"):
        # python-logstash-async 3.x reads a class attribute (10) instead of the 4.x constant.
        transport._batch_size = batch_size
    return transport


@dataclass(frozen=True)
class Endpoint:
    """One Logstash beats input."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class _Route:
    """An endpoint, its transport, and its own backoff: a failed one sits out until retry_at."""

    __slots__ = ("endpoint", "failures", "retry_at", "transport")

    def __init__(self, endpoint: Endpoint, transport: Transport) -> None:
        self.endpoint = endpoint
        self.transport = transport
        self.failures = 0
        self.retry_at = 0.0


class Shipper(threading.Thread):
    """Ships the spool batch by batch, each batch to one endpoint, the cursor moving on its ACK.

    Like Filebeat's Logstash output: without `loadbalance` it sticks to one endpoint (picked at
    random, so that many services spread out) and moves to another when that one fails; with
    `loadbalance` it sends batches to the available endpoints in turn. Either way a batch that
    was not acknowledged goes at once to another available endpoint, and a failed endpoint sits
    out a backoff (doubling from retry_initial to retry_max) before it is tried again. Batches
    stay sequential, one in flight, so the spool's single cursor still means "all before this is
    acknowledged"; balancing spreads Logstash's load, it does not add throughput.
    """

    def __init__(
        self,
        spool: Spool,
        transports: Sequence[tuple[Endpoint, Transport]],
        *,
        loadbalance: bool,
        batch_size: int,
        retry_initial: float,
        retry_max: float,
    ) -> None:
        super().__init__(name="watchfloor-log-shipper", daemon=True)
        if not transports:
            raise ValueError("the shipper needs at least one Logstash endpoint")
        self._spool = spool
        self._routes = [_Route(endpoint, transport) for endpoint, transport in transports]
        self._loadbalance = loadbalance
        self._current = random.randrange(len(self._routes))
        self._batch_size = batch_size
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self.wakeup = threading.Event()
        self._stop_requested = threading.Event()
        self.consecutive_failures = 0  # failed sends, on any endpoint, since the last ACK
        self._stalled = False  # every endpoint was in its backoff since the last ACK

    def stop(self) -> None:
        self._stop_requested.set()
        self.wakeup.set()

    def run(self) -> None:
        while not self._stop_requested.is_set():
            self.wakeup.clear()
            lines, position = self._spool.read(self._batch_size)
            if not lines:
                self.wakeup.wait(0.5)
                continue
            route = self._pick(time.monotonic())
            if route is None:
                # Every endpoint is in its backoff: wait for the first to come out of it.
                self._stalled = True
                earliest = min(r.retry_at for r in self._routes)
                self._stop_requested.wait(max(0.0, earliest - time.monotonic()))
                continue
            try:
                route.transport.send(lines, use_logging=True)
            except Exception as exc:
                self._failed(route, exc)
                continue
            self._spool.commit(position, len(lines))
            LOG_EVENTS_SHIPPED.inc(len(lines))
            self._acknowledged(route)

    def _pick(self, now: float) -> _Route | None:
        count = len(self._routes)
        # Failover keeps the current endpoint while it works; balancing moves on every batch.
        start = (self._current + 1) % count if self._loadbalance else self._current
        for step in range(count):
            index = (start + step) % count
            if self._routes[index].retry_at <= now:
                self._current = index
                return self._routes[index]
        return None

    def _acknowledged(self, route: _Route) -> None:
        if route.failures:
            if len(self._routes) > 1:
                _diagnose(
                    f"Logstash at {route.endpoint} acknowledges again after "
                    f"{route.failures} failed attempts"
                )
            route.failures = 0
        if self._stalled:
            _diagnose(
                f"delivery to Logstash at {route.endpoint} resumed after "
                f"{self.consecutive_failures} failed attempts"
            )
            self._stalled = False
        self.consecutive_failures = 0

    def _failed(self, route: _Route, exc: Exception) -> None:
        LOG_SHIP_FAILURES.inc()
        self.consecutive_failures += 1
        route.failures += 1
        if route.failures == 1:
            _diagnose(
                f"Logstash at {route.endpoint} did not acknowledge ({type(exc).__name__}: {exc}); "
                f"events stay spooled in {self._spool.directory} and are retried"
                + (" on the other endpoints" if len(self._routes) > 1 else "")
            )
        delay = min(self._retry_max, self._retry_initial * 2 ** (route.failures - 1))
        # Jitter spreads the reconnects of many services after a shared Logstash restart.
        route.retry_at = time.monotonic() + delay * random.uniform(0.5, 1.0)


def _diagnose(message: str) -> None:
    # Straight to the real stderr: logging about the log path through logging would loop.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(f"watchfloor.logging: {message}", file=sys.__stderr__, flush=True)
