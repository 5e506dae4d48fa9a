"""The caller-side handler: capture the context a record needs, enqueue it, return.

Everything else (message formatting, masking, JSON, disk, network) happens on the writer thread.
What must be read here is what lives in the caller's context: the correlation id and the active
span. Ids are stored as ints and formatted later.
"""

from __future__ import annotations

import contextlib
import logging
import queue

from opentelemetry.trace import get_current_span

from watchfloor.correlation import get_correlation_id
from watchfloor.logging.ecs import ATTR_CORRELATION, ATTR_TRACE
from watchfloor.metrics.shipping import LOG_EVENTS_DROPPED

_queue_full = LOG_EVENTS_DROPPED.labels("queue_full")
# Set on an exception instrument_app has logged with its request's context, so the server's own
# "Exception in ASGI application" record of the same exception is not a second event.
_LOGGED_MARK = "_watchfloor_logged"
_FRAMEWORK_PREFIXES = ("uvicorn", "gunicorn")


def capture_context(record: logging.LogRecord) -> None:
    """Store the caller's correlation id and active span ids on the record."""
    correlation_id = get_correlation_id()
    if correlation_id is not None:
        setattr(record, ATTR_CORRELATION, correlation_id)
    context = get_current_span().get_span_context()
    if context.is_valid:
        setattr(record, ATTR_TRACE, (context.trace_id, context.span_id))


def mark_logged(exc: BaseException) -> None:
    # An exception type with __slots__ is logged twice rather than not at all.
    with contextlib.suppress(AttributeError):
        setattr(exc, _LOGGED_MARK, True)


def _already_logged(record: logging.LogRecord) -> bool:
    if not record.exc_info or not record.name.startswith(_FRAMEWORK_PREFIXES):
        return False
    return getattr(record.exc_info[1], _LOGGED_MARK, False) is True


class EnqueueHandler(logging.Handler):
    """Puts records on a bounded queue; never blocks and never raises into the caller."""

    def __init__(self, records: queue.SimpleQueue[object], capacity: int) -> None:
        super().__init__()
        self._records = records
        self._capacity = capacity

    def handle(self, record: logging.LogRecord) -> bool:
        # logging.Handler.handle takes a per-handler lock around emit(); a SimpleQueue put is
        # already thread-safe, so skip the lock and its contention between trading threads.
        if _already_logged(record):
            return False
        accepted = self.filter(record)
        if accepted:
            if isinstance(accepted, logging.LogRecord):
                record = accepted
            self.emit(record)
        return bool(accepted)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            capture_context(record)
            if self._records.qsize() >= self._capacity:
                _queue_full.inc()
                return
            self._records.put(record)
        except Exception:
            self.handleError(record)
