"""Log events by level and dataset: what log-based alerts (ServiceErrorLogBurst,
ServiceCriticalLogEvents) read, without querying Elasticsearch.

Counted on the writer thread as each record becomes its ECS document, so the caller's hot path
pays nothing, the labels are the document's own `log.level` and `event.dataset`, and the total
equals `watchfloor_log_events_accepted_total` (a record dropped at a full queue is counted in
`watchfloor_log_events_dropped_total` instead). The writer adds a batch at a time: one counter
update per (level, dataset) per batch, not per event.

Both labels are closed sets. level folds the record's number: a custom level counts under the
standard one at or below it (NOTICE=25 as info, TRACE=5 as debug, anything above CRITICAL as
critical). A dataset outside DATASETS is recorded as `__overflow__`. Every combination exists
from import, at zero, so the first error of a process is an increase a rule can see.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from prometheus_client import Counter

from watchfloor.metrics.cardinality import OVERFLOW

LEVELS: Final = ("debug", "info", "warning", "error", "critical")
# The datasets watchfloor.logging.ecs routes documents to (its DATASETS; a unit test keeps the two
# equal). Not imported from there: watchfloor.logging imports this module.
DATASETS: Final = frozenset(
    {"watchfloor.logs", "watchfloor.errors", "watchfloor.trading", "watchfloor.audit"}
)

LOG_EVENTS = Counter(
    "watchfloor_log_events",
    "Log events written by the library's logging, by level (debug, info, warning, error, "
    "critical; custom levels folded down) and event.dataset (__overflow__ outside the known set).",
    ["level", "dataset"],
)

_CHILDREN: Final = {
    (level, dataset): LOG_EVENTS.labels(level, dataset)
    for level in LEVELS
    for dataset in (*sorted(DATASETS), OVERFLOW)
}


def level_label(levelno: int) -> str:
    """The standard level at or below `levelno`, lower-case."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    if levelno >= logging.INFO:
        return "info"
    return "debug"


def dataset_label(dataset: str) -> str:
    """`dataset` if it is one of DATASETS, else `__overflow__`."""
    return dataset if dataset in DATASETS else OVERFLOW


class LogEventTally:
    """The documents of one writer batch, added to LOG_EVENTS by `flush`. Neither method raises:
    an odd document must not stop the writer thread, and with it the logging."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[tuple[int, str], int] = {}

    def add(self, levelno: int, document: Mapping[str, Any]) -> None:
        """One event of `levelno`, under the `event.dataset` of its ECS `document`."""
        event = document.get("event")
        dataset = event.get("dataset") if isinstance(event, dict) else None
        key = (levelno, dataset if isinstance(dataset, str) else OVERFLOW)
        self._counts[key] = self._counts.get(key, 0) + 1

    def flush(self) -> None:
        counts, self._counts = self._counts, {}
        for (levelno, dataset), count in counts.items():
            _CHILDREN[level_label(levelno), dataset_label(dataset)].inc(count)
