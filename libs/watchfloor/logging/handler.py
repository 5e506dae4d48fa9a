"""The caller-side handler: capture the context a record needs, enqueue it, return.

Everything else (message formatting, masking, JSON, disk, network) happens on the writer thread.
What must be read here is what lives in the caller's context: the correlation id and the active
span. Ids are stored as ints and formatted later.
"""

from __future__ import annotations

import logging
import queue

from opentelemetry.trace import get_current_span

from watchfloor.correlation import get_correlation_id
from watchfloor.logging.ecs import ATTR_CORRELATION, ATTR_TRACE
from watchfloor.metrics.shipping import LOG_EVENTS_DROPPED

_queue_full = LOG_EVENTS_DROPPED.labels("queue_full")


class EnqueueHandler(logging.Handler):
    """Puts records on a bounded queue; never blocks and never raises into the caller."""

    def __init__(self, records: queue.SimpleQueue[object], capacity: int) -> None:
        super().__init__()
        self._records = records
        self._capacity = capacity

    def handle(self, record: logging.LogRecord) -> bool:
        # logging.Handler.handle takes a per-handler lock around emit(); a SimpleQueue put is
        # already thread-safe, so skip the lock and its contention between trading threads.
        accepted = self.filter(record)
        if accepted:
            if isinstance(accepted, logging.LogRecord):
                record = accepted
            self.emit(record)
        return bool(accepted)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            correlation_id = get_correlation_id()
            if correlation_id is not None:
                setattr(record, ATTR_CORRELATION, correlation_id)
            context = get_current_span().get_span_context()
            if context.is_valid:
                setattr(record, ATTR_TRACE, (context.trace_id, context.span_id))
            if self._records.qsize() >= self._capacity:
                _queue_full.inc()
                return
            self._records.put(record)
        except Exception:
            self.handleError(record)
