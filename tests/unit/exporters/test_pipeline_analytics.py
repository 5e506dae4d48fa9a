"""The pipeline exporter's derived figures: durations, last success, freshness, quality, APIs."""

from __future__ import annotations

import time

import pytest
from prometheus_client import REGISTRY

from tests.unit.exporters.conftest import AUTH, event, later


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def post(client, path, events):
    response = await client.post(path, json=events, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


async def test_run_duration_from_its_start_and_last_success(pipeline):
    start = later(-120)
    end = later(-30)
    await post(pipeline, "/v1/runs", [
        event("run_started", start, run_id="r-1", pipeline="pa-eod", job="load"),
        event("run_finished", end, run_id="r-1", pipeline="pa-eod", job="load", status="success",
              records=1000, errors=2, cost_usd=0.5, datasets=["pa-prices"],
              data_timestamp=later(-600).isoformat()),
    ])  # fmt: skip
    labels = dict(pipeline="pa-eod", pipeline_job="load")  # the event's `job`
    assert sample("pipeline_run_duration_seconds_sum", **labels, status="success") == pytest.approx(
        90
    )
    assert sample("pipeline_last_success_timestamp_seconds", **labels) == pytest.approx(
        end.timestamp()
    )
    assert sample("pipeline_records_processed_total", **labels) == 1000
    assert sample("pipeline_record_errors_total", **labels) == 2
    assert sample("pipeline_cost_usd_total", pipeline="pa-eod", resource="compute") == 0.5
    # freshness: now - the newest data loaded, computed at scrape time, so it keeps growing
    first = sample("pipeline_data_freshness_seconds", dataset="pa-prices")
    assert first == pytest.approx(600, abs=5)
    time.sleep(0.2)
    assert sample("pipeline_data_freshness_seconds", dataset="pa-prices") > first


async def test_failed_run_does_not_refresh_freshness(pipeline):
    await post(pipeline, "/v1/runs", [
        event("run_finished", later(-50), run_id="ok", pipeline="pa-f", job="j", status="success",
              duration_seconds=5, datasets=["pa-fresh"]),
        event("run_finished", run_id="bad", pipeline="pa-f", job="j", status="failure",
              duration_seconds=5, datasets=["pa-fresh"]),
    ])  # fmt: skip
    assert sample("pipeline_data_freshness_seconds", dataset="pa-fresh") == pytest.approx(50, abs=5)
    assert sample("pipeline_runs_total", pipeline="pa-f", pipeline_job="j", status="failure") == 1


async def test_quality_and_validation(pipeline):
    await post(pipeline, "/v1/quality", [
        event("quality_check", dataset="pa-q", completeness=0.75, consistency=0.92,
              validations_passed=95, validations_failed=5),
    ])  # fmt: skip
    assert sample("pipeline_data_quality_score", dataset="pa-q", dimension="completeness") == 0.75
    assert sample("pipeline_validation_checks_total", dataset="pa-q", result="fail") == 5
    empty = await pipeline.post(
        "/v1/quality", json=[event("quality_check", dataset="pa-q")], headers=AUTH
    )
    assert empty.status_code == 422
    assert "at least one score" in empty.text


async def test_api_usage_and_route_types(pipeline):
    await post(pipeline, "/v1/api-usage", [
        event("api_usage", api="pa-vendor", status=200, count=40, rate_limit_remaining=10),
        event("api_usage", api="pa-vendor", status=429, count=3, rate_limit_remaining=0),
    ])  # fmt: skip
    assert sample("pipeline_external_api_requests_total", api="pa-vendor", status="429") == 3
    assert sample("pipeline_external_api_rate_limit_remaining", api="pa-vendor") == 0
    wrong_route = await pipeline.post(
        "/v1/runs", json=[event("api_usage", api="x", status=200)], headers=AUTH
    )
    assert wrong_route.status_code == 422
    assert wrong_route.json()["errors"][0]["field"] == "events[0].type"
