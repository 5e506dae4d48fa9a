"""The writer thread: records in, JSON lines out to the stream and the spool."""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from watchfloor.logging.audit import AuditChain
from watchfloor.logging.ecs import ATTR_AUDIT, EcsDocumentBuilder, iso_timestamp
from watchfloor.logging.spool import Spool
from watchfloor.metrics.log_events import LogEventTally
from watchfloor.metrics.shipping import LOG_EVENTS_ACCEPTED

STOP = object()
_MAX_BATCH = 2000
# The writer wakes at least this often, so a batch reaches the spool within the flush window
# (documented as the events a kill -9 can lose).
FLUSH_INTERVAL_SECONDS = 0.05


class Writer(threading.Thread):
    def __init__(
        self,
        records: queue.SimpleQueue[object],
        builder: EcsDocumentBuilder,
        stream: TextIO | None,
        spool: Spool | None,
        audit_chain: AuditChain,
        on_spooled: Callable[[], None],
    ) -> None:
        super().__init__(name="watchfloor-log-writer", daemon=True)
        self._records = records
        self._builder = builder
        self._stream = stream
        self._spool = spool
        self._audit = audit_chain
        self._on_spooled = on_spooled
        # Unique per pipeline start without a syscall per event: random prefix + counter.
        self._id_prefix = uuid.uuid4().hex[:16]
        self._sequence = 0
        self._pid = os.getpid()
        self._tally = LogEventTally()

    def run(self) -> None:
        records = self._records
        running = True
        while running:
            try:
                first = records.get(timeout=FLUSH_INTERVAL_SECONDS)
            except queue.Empty:
                continue
            batch = [first]
            while len(batch) < _MAX_BATCH:
                try:
                    batch.append(records.get_nowait())
                except queue.Empty:
                    break
            if batch[-1] is STOP or STOP in batch:
                running = False
                batch = [item for item in batch if item is not STOP]
            if batch:
                self._write(batch)

    def _write(self, batch: list[Any]) -> None:
        lines = [self._serialise(record) for record in batch]
        LOG_EVENTS_ACCEPTED.inc(len(lines))
        self._tally.flush()
        if self._stream is not None:
            try:
                self._stream.write(b"\n".join(lines).decode() + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                pass  # a closed or broken stream must not stop shipping
        if self._spool is not None:
            self._spool.append(lines)
            self._audit.save()
            self._on_spooled()
        else:
            self._audit.save()

    def _serialise(self, record: logging.LogRecord) -> bytes:
        self._sequence += 1
        event_id = f"{self._id_prefix}{self._sequence:012x}"
        try:
            document = self._builder.build(record, event_id, self._sequence)
            if getattr(record, ATTR_AUDIT, None) is not None:
                line = self._audit.seal(document)
            else:
                line = orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS)
        except Exception as exc:
            document = {
                "@timestamp": iso_timestamp(record.created),
                "log.level": record.levelname.lower(),
                "message": self._builder.mask_text(str(record.msg)[:10_000]),
                "event": {"id": event_id, "dataset": "watchfloor.errors", "kind": "event"},
                "error": {"type": type(exc).__name__, "message": f"unformattable: {exc}"},
                "process": {"pid": self._pid},
            }
            line = orjson.dumps(document)
        self._tally.add(record.levelno, document)
        return line
