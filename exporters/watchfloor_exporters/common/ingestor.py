"""One ingest path for every route and the simulator: parse, validate, budget, dedup, apply."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from watchfloor_exporters.common.ingest import (
    DEFAULT_MAX_EVENTS,
    BatchValidator,
    LabelBudget,
    SeenIds,
    limit_from_env,
    parse_body,
)
from watchfloor_exporters.common.metrics import EVENTS


class Applied(Protocol):
    id: str
    type: str


class Ingestor:
    """Shared by an exporter's routes: one id memory and one label budget per exporter."""

    def __init__(
        self,
        exporter: str,
        apply: Callable[[Any], str],
        label_values: Callable[[list[Any]], Iterable[tuple[str, str, str]]],
    ) -> None:
        self.exporter = exporter
        self._apply = apply
        self._label_values = label_values
        self.max_events = limit_from_env("WATCHFLOOR_MAX_EVENTS_PER_BATCH", DEFAULT_MAX_EVENTS)
        self._seen = SeenIds(limit_from_env("WATCHFLOOR_DEDUP_WINDOW_EVENTS", 1_000_000))
        self._budget = LabelBudget(limit_from_env("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", 2000))

    def route(self, event_type: Any) -> Callable[[bytes, str | None], dict[str, Any]]:
        """An ingest function for a route accepting `event_type` (a discriminated union)."""
        validator: BatchValidator[Any] = BatchValidator(event_type, self.max_events)

        def ingest(body: bytes, content_type: str | None) -> dict[str, Any]:
            events = validator.validate(parse_body(body, content_type))
            fresh = list(self._fresh(events))
            self._budget.check(self._label_values(fresh))
            for event in fresh:
                self._apply(event)
                self._seen.add(event.id)
            duplicates = len(events) - len(fresh)
            return {"accepted": len(fresh), "duplicates": duplicates}

        return ingest

    def _fresh(self, events: list[Applied]) -> Iterator[Applied]:
        batch_ids: set[str] = set()
        for event in events:
            if event.id in self._seen or event.id in batch_ids:
                EVENTS.labels(self.exporter, event.type, "duplicate").inc()
                continue
            batch_ids.add(event.id)
            yield event
