"""The exporters' own metrics: what they accepted, skipped and refused."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

EVENTS = Counter(
    "watchfloor_exporter_events_total",
    "Events by outcome: applied, duplicate (an id seen before: replay), orphan (refers to an "
    "order the exporter does not know, e.g. submitted before a restart; counted where possible).",
    ["exporter", "type", "outcome"],
)
BATCHES = Counter(
    "watchfloor_exporter_batches_total",
    "Ingest requests by HTTP status code.",
    ["exporter", "status"],
)


_event_counters: dict[tuple[str, str, str], Any] = {}


def count_event(exporter: str, event_type: str, outcome: str) -> None:
    """EVENTS.labels(...).inc(), the child cached: types and outcomes are closed sets."""
    key = (exporter, event_type, outcome)
    child = _event_counters.get(key)
    if child is None:
        child = _event_counters[key] = EVENTS.labels(*key)
    child.inc()
