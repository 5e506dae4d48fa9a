"""One ingest path for every route and the simulator: parse, validate, dedup, apply all or nothing.

A batch is applied through a `Journal`: if any event is refused (or fails), the state is rolled
back, no metric moves and no id is remembered, so the same batch can be sent again once fixed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from watchfloor_exporters.common.ingest import (
    DEFAULT_MAX_EVENTS,
    BatchError,
    BatchValidator,
    SeenIds,
    limit_from_env,
    parse_body,
)
from watchfloor_exporters.common.journal import Journal, Rejected
from watchfloor_exporters.common.metrics import count_event

DEFAULT_DEDUP_EVENTS = 100_000
DEFAULT_DEDUP_SECONDS = 3600


class Applied(Protocol):
    id: str
    type: str


class Ingestor:
    """Shared by an exporter's routes: one id memory per exporter."""

    def __init__(self, exporter: str, apply: Callable[[Any, Journal], None]) -> None:
        self.exporter = exporter
        self._apply = apply
        self.max_events = limit_from_env("WATCHFLOOR_MAX_EVENTS_PER_BATCH", DEFAULT_MAX_EVENTS)
        self._seen = SeenIds(
            limit_from_env("WATCHFLOOR_DEDUP_WINDOW_EVENTS", DEFAULT_DEDUP_EVENTS),
            limit_from_env("WATCHFLOOR_DEDUP_WINDOW_SECONDS", DEFAULT_DEDUP_SECONDS),
        )

    def route(self, event_type: Any) -> Callable[[bytes, str | None], dict[str, Any]]:
        """An ingest function for a route accepting `event_type` (a discriminated union)."""
        validator: BatchValidator[Any] = BatchValidator(event_type, self.max_events)

        def ingest(body: bytes, content_type: str | None) -> dict[str, Any]:
            events = validator.validate(parse_body(body, content_type))
            fresh, duplicates = self._fresh(events)
            self._apply_all(fresh)
            self._seen.add_all(digest for _, _, digest in fresh)
            for event in duplicates:
                count_event(self.exporter, event.type, "duplicate")
            return {"accepted": len(fresh), "duplicates": len(duplicates)}

        return ingest

    def _apply_all(self, fresh: list[tuple[int, Applied, bytes]]) -> None:
        journal = Journal()
        try:
            for position, event, _ in fresh:
                try:
                    self._apply(event, journal)
                except Rejected as exc:
                    raise BatchError(
                        422,
                        "an event would make a metric non-finite; nothing from this batch was "
                        "applied",
                        [{"field": f"events[{position}].{exc.field}", "message": exc.message}],
                    ) from None
                except (ArithmeticError, ValueError) as exc:
                    raise BatchError(
                        422,
                        "an event could not be applied; nothing from this batch was applied",
                        [{"field": f"events[{position}]", "message": str(exc)}],
                    ) from None
        except BaseException:
            journal.rollback()
            raise
        journal.commit()

    def _fresh(
        self, events: list[Applied]
    ) -> tuple[list[tuple[int, Applied, bytes]], list[Applied]]:
        fresh: list[tuple[int, Applied, bytes]] = []
        duplicates: list[Applied] = []
        batch: set[bytes] = set()
        for position, event in enumerate(events):
            digest = SeenIds.digest(event.id)
            if digest in batch or digest in self._seen:
                duplicates.append(event)
            else:
                batch.add(digest)
                fresh.append((position, event, digest))
        return fresh, duplicates
