"""The pipeline exporter's event types: /v1/runs, /v1/quality, /v1/api-usage."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict, model_validator

from watchfloor_exporters.common.events import (
    Count,
    DataTimestamp,
    Event,
    HttpStatus,
    Name,
    NonNegative,
    Ratio,
)
from watchfloor_exporters.common.ingest import register_tags

# The event field stays `job` (the API); the metrics label it `pipeline_job`, since Prometheus sets
# `job` to the scrape job on every series it scrapes.
JobName = Annotated[Name, Field(description="recorded as the pipeline_job label")]


class RunStarted(Event):
    type: Literal["run_started"]
    run_id: Name
    pipeline: Name
    job: JobName


class RunFinished(Event):
    type: Literal["run_finished"]
    run_id: Name
    pipeline: Name
    job: JobName
    status: Literal["success", "failure", "cancelled"]
    records: Count = 0
    errors: Count = 0
    duration_seconds: Annotated[NonNegative, Field(le=7 * 86400)] | None = Field(
        default=None, description="default: since its run_started event"
    )
    cost_usd: Annotated[NonNegative, Field(le=10**7)] | None = None
    cost_resource: Name = "compute"
    datasets: Annotated[list[Name], Field(max_length=100)] = Field(
        default_factory=list, description="datasets this run loaded (freshness)"
    )
    data_timestamp: DataTimestamp | None = Field(
        default=None, description="time of the newest data loaded; default: the event's time"
    )


class QualityCheck(Event):
    type: Literal["quality_check"]
    dataset: Name
    completeness: Ratio | None = None
    consistency: Ratio | None = None
    validity: Ratio | None = None
    validations_passed: Count = 0
    validations_failed: Count = 0

    @model_validator(mode="after")
    def has_a_measure(self) -> QualityCheck:
        scores = (self.completeness, self.consistency, self.validity)
        if all(s is None for s in scores) and not (
            self.validations_passed or self.validations_failed
        ):
            raise ValueError("needs at least one score or validation count")
        return self


class ApiUsage(Event):
    type: Literal["api_usage"]
    api: Name
    status: HttpStatus
    count: Annotated[int, Strict(), Field(ge=1, le=10**6)] = 1
    rate_limit_remaining: NonNegative | None = None


RunEvent = Annotated[RunStarted | RunFinished, Field(discriminator="type")]
QualityEvent = Annotated[QualityCheck, Field(discriminator="type")]
ApiUsageEvent = Annotated[ApiUsage, Field(discriminator="type")]

register_tags(["run_started", "run_finished", "quality_check", "api_usage"])
