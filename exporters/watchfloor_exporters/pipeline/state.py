"""The pipeline exporter's analytics: runs, freshness from the last successful load, quality,
external API usage and cost.

Freshness is computed at scrape time (now minus the newest data of the dataset's last successful
load), so it keeps growing when loads stop. Every change goes through the batch's journal, so a
refused batch leaves no trace. Memory is bounded: at most `max_open_runs` open runs (the oldest
is forgotten to make room) and `max_tracked` datasets' newest load times (the least recently
loaded is forgotten; its freshness then follows its next load alone).

On restart: counters restart from zero; freshness is unknown until the dataset's next successful
load, and open runs are forgotten (their finish still counts, with the duration the event carries).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from watchfloor.metrics import pipeline as m
from watchfloor_exporters.common.journal import Journal
from watchfloor_exporters.common.metrics import count_event
from watchfloor_exporters.pipeline import events as ev

EXPORTER = "pipeline"


class PipelineState:
    def __init__(self, max_open_runs: int = 50_000, max_tracked: int = 10_000) -> None:
        self._open: dict[str, float] = {}  # run id -> unix time it started
        self._max_open = max_open_runs
        self._max_tracked = max_tracked
        self._loaded: OrderedDict[str, float] = OrderedDict()

    def apply(self, event: Any, journal: Journal) -> None:
        handler = getattr(self, f"_on_{event.type}")
        outcome: str = handler(event, journal) or "applied"
        journal.later(count_event, EXPORTER, event.type, outcome)

    def _on_run_started(self, event: ev.RunStarted, journal: Journal) -> None:
        if event.run_id not in self._open and len(self._open) >= self._max_open:
            journal.pop(self._open, next(iter(self._open)))
        journal.put(self._open, event.run_id, event.timestamp.timestamp())
        journal.later(m.record_run_started, pipeline=event.pipeline, job=event.job)

    def _on_run_finished(self, event: ev.RunFinished, journal: Journal) -> str | None:
        started = journal.pop(self._open, event.run_id) if event.run_id in self._open else None
        finished_at = event.timestamp.timestamp()
        duration = event.duration_seconds
        if duration is None:
            duration = max(0.0, finished_at - started) if started is not None else 0.0
        journal.later(
            m.record_run, pipeline=event.pipeline, job=event.job, status=event.status,
            duration_seconds=duration, records=event.records, record_errors=event.errors,
            finished_at=finished_at,
        )  # fmt: skip
        if event.cost_usd:
            journal.later(
                m.record_cost, pipeline=event.pipeline, resource=event.cost_resource,
                usd=event.cost_usd,
            )  # fmt: skip
        if event.status == "success":
            newest = (event.data_timestamp or event.timestamp).timestamp()
            for dataset in event.datasets:
                self._set_loaded(dataset, newest, journal)
        return None if started is not None or event.duration_seconds is not None else "orphan"

    def _set_loaded(self, dataset: str, newest: float, journal: Journal) -> None:
        previous = self._loaded.get(dataset)
        if previous is None:
            if len(self._loaded) >= self._max_tracked:
                journal.pop(self._loaded, next(iter(self._loaded)))
        else:
            journal.pop(self._loaded, dataset)  # put back last: the most recently loaded
            newest = max(newest, previous)
        journal.put(self._loaded, dataset, newest)
        journal.later(m.track_freshness, dataset=dataset, loaded_at=newest)

    def _on_quality_check(self, event: ev.QualityCheck, journal: Journal) -> None:
        journal.later(
            m.set_quality, dataset=event.dataset, completeness=event.completeness,
            consistency=event.consistency, validity=event.validity,
        )  # fmt: skip
        if event.validations_passed:
            journal.later(
                m.record_validation, dataset=event.dataset, passed=True,
                count=event.validations_passed,
            )  # fmt: skip
        if event.validations_failed:
            journal.later(
                m.record_validation, dataset=event.dataset, passed=False,
                count=event.validations_failed,
            )  # fmt: skip

    def _on_api_usage(self, event: ev.ApiUsage, journal: Journal) -> None:
        journal.later(
            m.record_api_call, api=event.api, status=event.status, count=event.count,
            rate_limit_remaining=event.rate_limit_remaining,
        )  # fmt: skip
