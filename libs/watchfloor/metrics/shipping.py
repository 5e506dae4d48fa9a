"""Metrics of the log shipper in `watchfloor.logging` (meta-monitoring: is the log path healthy?).

Gauges are read at scrape time from the live pipeline, so the logging hot path touches no metric.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge

LOG_EVENTS_ACCEPTED = Counter(
    "watchfloor_log_events_accepted_total",
    "Log events the background writer turned into documents (after the caller's enqueue).",
)
LOG_EVENTS_SHIPPED = Counter(
    "watchfloor_log_events_shipped_total",
    "Log events Logstash acknowledged over the Beats protocol.",
)
LOG_EVENTS_DROPPED = Counter(
    "watchfloor_log_events_dropped_total",
    "Log events lost on purpose. reason: queue_full (in-memory queue at its cap), spool_full "
    "(oldest spooled events removed to stay under the spool cap), spool_corrupt (a torn line "
    "left by a crash).",
    ["reason"],
)
LOG_SHIP_FAILURES = Counter(
    "watchfloor_log_ship_failures_total",
    "Batches Logstash did not acknowledge (refused, timed out, connection lost); retried.",
)
LOG_EVENTS_QUEUED = Gauge(
    "watchfloor_log_events_queued",
    "Log events accepted but not yet acknowledged by Logstash (memory queue plus spool).",
)
LOG_SPOOL_BYTES = Gauge(
    "watchfloor_log_spool_bytes",
    "Bytes of the on-disk spool (unacknowledged events and not yet deleted segments).",
)

for _reason in ("queue_full", "spool_full", "spool_corrupt"):
    LOG_EVENTS_DROPPED.labels(_reason)


def observe_pipeline(queued: Callable[[], float], spool_bytes: Callable[[], float]) -> None:
    """Point the gauges at the running pipeline (each configure_logging replaces the last)."""
    LOG_EVENTS_QUEUED.set_function(queued)
    LOG_SPOOL_BYTES.set_function(spool_bytes)
