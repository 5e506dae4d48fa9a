"""The exporters' own metrics: what they accepted, skipped and refused."""

from __future__ import annotations

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
