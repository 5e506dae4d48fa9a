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
    return transport


class Shipper(threading.Thread):
    def __init__(
        self,
        spool: Spool,
        transport: Transport,
        *,
        target: str,
        batch_size: int,
        retry_initial: float,
        retry_max: float,
    ) -> None:
        super().__init__(name="watchfloor-log-shipper", daemon=True)
        self._spool = spool
        self._transport = transport
        self._target = target
        self._batch_size = batch_size
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self.wakeup = threading.Event()
        self._stop_requested = threading.Event()
        self.consecutive_failures = 0

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
            try:
                self._transport.send(lines, use_logging=True)
            except Exception as exc:
                self._failed(exc)
                continue
            self._spool.commit(position, len(lines))
            LOG_EVENTS_SHIPPED.inc(len(lines))
            if self.consecutive_failures:
                _diagnose(
                    f"delivery to Logstash at {self._target} resumed after "
                    f"{self.consecutive_failures} failed attempts"
                )
                self.consecutive_failures = 0

    def _failed(self, exc: Exception) -> None:
        LOG_SHIP_FAILURES.inc()
        self.consecutive_failures += 1
        if self.consecutive_failures == 1:
            _diagnose(
                f"Logstash at {self._target} did not acknowledge ({type(exc).__name__}: {exc}); "
                f"events stay spooled in {self._spool.directory} and are retried"
            )
        delay = min(self._retry_max, self._retry_initial * 2 ** (self.consecutive_failures - 1))
        # Jitter spreads the reconnects of many services after a shared Logstash restart.
        self._stop_requested.wait(delay * random.uniform(0.5, 1.0))


def _diagnose(message: str) -> None:
    # Straight to the real stderr: logging about the log path through logging would loop.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        print(f"watchfloor.logging: {message}", file=sys.__stderr__, flush=True)
