"""The pipeline exporter's analytics: runs, freshness from the last successful load, quality,
external API usage and cost.

Freshness is computed at scrape time (now minus the newest data of the dataset's last successful
load), so it keeps growing when loads stop. On restart: counters restart from zero; freshness is
unknown until the dataset's next successful load, and open runs are forgotten (their finish still
counts, with the duration the event carries).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from watchfloor.metrics import pipeline as m
from watchfloor_exporters.common.metrics import EVENTS
from watchfloor_exporters.pipeline import events as ev

EXPORTER = "pipeline"


class PipelineState:
    def __init__(self, max_open_runs: int = 100_000) -> None:
        self._open: dict[str, datetime] = {}
        self._max_open = max_open_runs
        self._loaded: dict[str, float] = {}

    @staticmethod
    def label_values(events: list[Any]) -> Iterator[tuple[str, str, str]]:
        for index, event in enumerate(events):
            for field in ("pipeline", "job", "dataset", "api", "cost_resource"):
                value = getattr(event, field, None)
                if value is not None:
                    yield field, value, f"events[{index}].{field}"
            for position, dataset in enumerate(getattr(event, "datasets", ())):
                yield "dataset", dataset, f"events[{index}].datasets[{position}]"

    def apply(self, event: Any) -> str:
        handler = getattr(self, f"_on_{event.type}")
        outcome: str = handler(event) or "applied"
        EVENTS.labels(EXPORTER, event.type, outcome).inc()
        return outcome

    def _on_run_started(self, event: ev.RunStarted) -> None:
        if len(self._open) >= self._max_open:
            self._open.pop(next(iter(self._open)))
        self._open[event.run_id] = event.timestamp
        m.record_run_started(pipeline=event.pipeline, job=event.job)

    def _on_run_finished(self, event: ev.RunFinished) -> str | None:
        started = self._open.pop(event.run_id, None)
        duration = event.duration_seconds
        if duration is None:
            duration = max(0.0, (event.timestamp - started).total_seconds()) if started else 0.0
        m.record_run(
            pipeline=event.pipeline, job=event.job, status=event.status,
            duration_seconds=duration, records=event.records, record_errors=event.errors,
            finished_at=event.timestamp.timestamp(),
        )  # fmt: skip
        if event.cost_usd:
            m.record_cost(pipeline=event.pipeline, resource=event.cost_resource, usd=event.cost_usd)
        if event.status == "success":
            newest = (event.data_timestamp or event.timestamp).timestamp()
            for dataset in event.datasets:
                self._set_loaded(dataset, newest)
        return None if started is not None or event.duration_seconds is not None else "orphan"

    def _set_loaded(self, dataset: str, newest: float) -> None:
        first = dataset not in self._loaded
        self._loaded[dataset] = max(newest, self._loaded.get(dataset, newest))
        if first:
            loaded = self._loaded
            m.FRESHNESS.child(dataset).set_function(lambda: time.time() - loaded[dataset])

    def _on_quality_check(self, event: ev.QualityCheck) -> None:
        m.set_quality(
            dataset=event.dataset, completeness=event.completeness,
            consistency=event.consistency, validity=event.validity,
        )  # fmt: skip
        if event.validations_passed:
            m.record_validation(dataset=event.dataset, passed=True, count=event.validations_passed)
        if event.validations_failed:
            m.record_validation(dataset=event.dataset, passed=False, count=event.validations_failed)

    def _on_api_usage(self, event: ev.ApiUsage) -> None:
        m.record_api_call(
            api=event.api, status=event.status, count=event.count,
            rate_limit_remaining=event.rate_limit_remaining,
        )  # fmt: skip
