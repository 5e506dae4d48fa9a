"""Every catalog helper moves the samples it documents, in base units.

Counters and histograms are compared before and after the call, so other tests in the process
sharing the default registry (and label values) cannot skew them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

import watchfloor.metrics
from watchfloor.metrics import cardinality, pipeline, render, trading

ORDER = dict(strategy="cat-a", symbol="AAPL", venue="XNAS", side="buy", order_type="limit")


@pytest.fixture(autouse=True)
def _admit_everything() -> Iterator[None]:
    """Values other tests pushed into the guard must not fold this module's labels."""
    cardinality.reset()
    yield


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def moved(call: Callable[[], object], *samples: tuple[str, dict[str, str]]) -> list[float]:
    before = [value(name, **labels) for name, labels in samples]
    call()
    return [value(name, **labels) - b for (name, labels), b in zip(samples, before, strict=True)]


def test_order_lifecycle_and_execution_histogram():
    assert moved(
        lambda: trading.record_order(**ORDER, status="filled", duration_seconds=0.004),
        ("trading_orders_total", {**ORDER, "status": "filled"}),
        ("trading_order_execution_duration_seconds_count", ORDER),
        ("trading_order_execution_duration_seconds_bucket", {**ORDER, "le": "0.005"}),
        ("trading_order_execution_duration_seconds_bucket", {**ORDER, "le": "0.0025"}),
        ("trading_order_execution_duration_seconds_sum", ORDER),
    ) == [1, 1, 1, 0, pytest.approx(0.004)]


def test_an_order_event_without_duration_observes_nothing():
    assert moved(
        lambda: trading.record_order(**ORDER, status="submitted"),
        ("trading_orders_total", {**ORDER, "status": "submitted"}),
        ("trading_order_execution_duration_seconds_count", ORDER),
    ) == [1, 0]


def test_execution_buckets_span_sub_millisecond_to_seconds():
    bounds = trading.LATENCY_BUCKETS
    assert min(bounds) < 0.001 and max(bounds) >= 5


def test_ack_fill_quantities_and_rejections():
    def calls() -> None:
        trading.record_order_ack(strategy="cat-b", venue="XNYS", duration_seconds=0.002)
        trading.record_submitted_quantity(
            strategy="cat-b", symbol="MSFT", side="sell", quantity=300
        )
        trading.record_fill(
            strategy="cat-b", symbol="MSFT", venue="XNYS", side="sell", quantity=120
        )
        trading.record_rejection(strategy="cat-b", venue="XNYS", reason="price_band")

    qty = {"strategy": "cat-b", "symbol": "MSFT", "side": "sell"}
    assert moved(
        calls,
        ("trading_order_ack_duration_seconds_count", {"strategy": "cat-b", "venue": "XNYS"}),
        ("trading_submitted_quantity_total", qty),
        ("trading_filled_quantity_total", qty),
        ("trading_fills_total", {**qty, "venue": "XNYS"}),
        ("trading_order_rejections_total",
         {"strategy": "cat-b", "venue": "XNYS", "reason": "price_band"}),
    ) == [1, 300, 120, 1, 1]  # fmt: skip


def test_ratio_gauges():
    trading.set_fill_ratio(strategy="cat-b", symbol="MSFT", ratio=0.4)
    trading.set_drawdown(strategy="cat-d", ratio=0.07)
    trading.set_win_ratio(strategy="cat-d", ratio=0.55)
    trading.set_limit_utilisation(strategy="cat-d", rule="max_position", ratio=1.2)
    assert value("trading_fill_ratio", strategy="cat-b", symbol="MSFT") == 0.4
    assert value("trading_strategy_drawdown_ratio", strategy="cat-d") == 0.07
    assert value("trading_strategy_win_ratio", strategy="cat-d") == 0.55
    assert (
        value("trading_risk_limit_utilisation_ratio", strategy="cat-d", rule="max_position") == 1.2
    )


@pytest.mark.parametrize(
    ("side", "arrival", "fill", "expected"),
    [
        ("buy", 100.0, 100.05, 5.0),  # paid up: a cost
        ("buy", 100.0, 99.98, -2.0),  # bought cheaper: an improvement
        ("sell", 100.0, 99.95, 5.0),  # sold lower: a cost
        ("sell", 100.0, 100.01, -1.0),
    ],
)
def test_slippage_sign_by_side(side, arrival, fill, expected):
    assert trading.slippage_bps(side=side, arrival_price=arrival, fill_price=fill) == pytest.approx(
        expected
    )


def test_slippage_histogram_is_signed_and_symmetric():
    bounds = trading.SLIPPAGE_BUCKETS
    assert list(bounds) == [-b for b in reversed(bounds)] and min(bounds) == -50
    labels = dict(strategy="cat-c", symbol="AAPL", side="buy")
    # prometheus-client exposes no _sum for a histogram with negative buckets (OpenMetrics
    # forbids it); quantiles and the heatmap come from the buckets.
    assert moved(
        lambda: trading.record_slippage(**labels, bps=-3.0),
        ("trading_slippage_bps_bucket", {**labels, "le": "-2.0"}),
        ("trading_slippage_bps_bucket", {**labels, "le": "-5.0"}),
        ("trading_slippage_bps_count", labels),
    ) == [1, 0, 1]


def test_pnl_and_exposure_gauges_and_risk_violations():
    trading.set_pnl(strategy="cat-d", currency="USD", realized=1250.5, unrealized=-300.0)
    trading.set_exposure(currency="EUR", gross=1_000_000, net=-250_000)
    assert (
        value("trading_strategy_pnl", strategy="cat-d", currency="USD", kind="realized") == 1250.5
    )
    assert (
        value("trading_strategy_pnl", strategy="cat-d", currency="USD", kind="unrealized") == -300
    )
    assert value("trading_exposure", currency="EUR", kind="gross") == 1_000_000
    assert value("trading_exposure", currency="EUR", kind="net") == -250_000
    assert moved(
        lambda: trading.record_risk_violation(
            strategy="cat-d", rule="max_position", severity="critical"
        ),
        ("trading_risk_violations_total",
         {"strategy": "cat-d", "rule": "max_position", "severity": "critical"}),
    ) == [1]  # fmt: skip


def test_market_data():
    labels = {"feed": "itch-e", "symbol": "AAPL"}
    assert moved(
        lambda: trading.record_market_data(**labels, latency_seconds=0.0007, at=1_700_000_000),
        ("trading_market_data_updates_total", labels),
        ("trading_market_data_latency_seconds_bucket", {**labels, "le": "0.001"}),
        ("trading_market_data_latency_seconds_bucket", {**labels, "le": "0.0005"}),
    ) == [1, 1, 0]
    assert (
        value("trading_market_data_last_update_timestamp_seconds", feed="itch-e") == 1_700_000_000
    )


def test_broker_calls():
    labels = {"broker": "ib-e", "endpoint": "/orders"}
    assert moved(
        lambda: trading.record_broker_call(
            **labels, status=429, duration_seconds=0.2,
            rate_limit_remaining=0, rate_limit_limit=50, rate_limit_reset_seconds=12,
        ),
        ("trading_broker_requests_total", {**labels, "status": "429"}),
        ("trading_broker_request_duration_seconds_count", labels),
        ("trading_broker_request_duration_seconds_sum", labels),
    ) == [1, 1, pytest.approx(0.2)]  # fmt: skip
    trading.record_broker_call(**labels, status=200, duration_seconds=0.1, rate_limit_remaining=7)
    assert value("trading_broker_rate_limit_remaining", **labels) == 7
    assert value("trading_broker_rate_limit_limit", **labels) == 50  # kept when not given
    assert value("trading_broker_rate_limit_reset_seconds", **labels) == 12


def test_pipeline_runs():
    # The helpers take the job as `job=`; the series label it `pipeline_job` (Prometheus owns `job`).
    job = {"pipeline": "eod-e", "job": "load"}
    labels = {"pipeline": "eod-e", "pipeline_job": "load"}

    def run() -> None:
        pipeline.record_run_started(**job)
        pipeline.record_run(
            **job, status="success", duration_seconds=42, records=1000, record_errors=3,
            finished_at=1_700_000_100,
        )  # fmt: skip

    assert moved(
        run,
        ("pipeline_runs_total", {**labels, "status": "started"}),
        ("pipeline_runs_total", {**labels, "status": "success"}),
        ("pipeline_run_duration_seconds_sum", {**labels, "status": "success"}),
        ("pipeline_records_processed_total", labels),
        ("pipeline_record_errors_total", labels),
    ) == [1, 1, 42, 1000, 3]
    assert value("pipeline_last_success_timestamp_seconds", **labels) == 1_700_000_100


def test_a_failed_run_leaves_the_last_success_alone():
    job = {"pipeline": "eod-f", "job": "load"}
    labels = {"pipeline": "eod-f", "pipeline_job": "load"}
    pipeline.record_run(**job, status="success", duration_seconds=1, finished_at=100)
    assert moved(
        lambda: pipeline.record_run(**job, status="failure", duration_seconds=5, finished_at=200),
        ("pipeline_runs_total", {**labels, "status": "failure"}),
    ) == [1]
    assert value("pipeline_last_success_timestamp_seconds", **labels) == 100


def test_pipeline_data_quality_api_and_cost():
    def calls() -> None:
        pipeline.set_freshness(dataset="prices-e", seconds=90)
        pipeline.set_quality(dataset="prices-e", completeness=0.97, validity=0.99)
        pipeline.record_validation(dataset="prices-e", passed=False)
        pipeline.record_validation(dataset="prices-e", passed=True, count=4)
        pipeline.record_api_call(api="vendor-e", status=429, rate_limit_remaining=3)
        pipeline.record_cost(pipeline="eod-e", resource="compute", usd=1.25)

    assert moved(
        calls,
        ("pipeline_validation_checks_total", {"dataset": "prices-e", "result": "fail"}),
        ("pipeline_validation_checks_total", {"dataset": "prices-e", "result": "pass"}),
        ("pipeline_external_api_requests_total", {"api": "vendor-e", "status": "429"}),
        ("pipeline_cost_usd_total", {"pipeline": "eod-e", "resource": "compute"}),
    ) == [1, 4, 1, 1.25]
    assert value("pipeline_data_freshness_seconds", dataset="prices-e") == 90
    assert (
        value("pipeline_data_quality_score", dataset="prices-e", dimension="completeness") == 0.97
    )
    assert value("pipeline_data_quality_score", dataset="prices-e", dimension="validity") == 0.99
    assert (
        REGISTRY.get_sample_value(
            "pipeline_data_quality_score", {"dataset": "prices-e", "dimension": "consistency"}
        )
        is None
    )  # not given, not set
    assert value("pipeline_external_api_rate_limit_remaining", api="vendor-e") == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: trading.record_fill(strategy="s", symbol="X", venue="v", side="long", quantity=1),
         "side must be one of"),
        (lambda: trading.record_order(**{**ORDER, "order_type": "fok"}, status="filled"),
         "order_type must be one of"),
        (lambda: trading.record_order(**ORDER, status="lost"), "status must be one of"),
        (lambda: trading.record_risk_violation(strategy="s", rule="r", severity="urgent"),
         "severity must be one of"),
        (lambda: trading.record_broker_call(broker="b", endpoint="/x", status=99,
                                            duration_seconds=1),
         r"status must be one of 100\.\.599"),
        (lambda: trading.set_fill_ratio(strategy="s", symbol="X", ratio=1.1),
         "fill ratio must be within 0..1"),
        (lambda: trading.set_drawdown(strategy="s", ratio=-0.1), "drawdown ratio must be"),
        (lambda: trading.set_win_ratio(strategy="s", ratio=math.nan), "win ratio must be"),
        (lambda: trading.slippage_bps(side="buy", arrival_price=0, fill_price=1),
         "arrival_price must be positive"),
        (lambda: pipeline.set_quality(dataset="d", completeness=1.5), "completeness score must"),
        (lambda: pipeline.record_run(pipeline="p", job="j", status="ok", duration_seconds=1),
         "status must be one of"),
        (lambda: pipeline.record_api_call(api="a", status=1000), "status must be one of"),
        (lambda: pipeline.record_cost(pipeline="p", resource="r", usd=-1),
         "cost must not be negative"),
    ],
)  # fmt: skip
def test_bad_values_raise_value_error_with_the_reason_in_strict_mode(strict, call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_rejected_calls_leave_no_partial_update_in_strict_mode(strict):
    with pytest.raises(ValueError, match="status must be one of"):
        pipeline.record_run(pipeline="partial", job="j", status="started", duration_seconds=1)
    assert value("pipeline_runs_total", pipeline="partial", pipeline_job="j", status="started") == 0
    fill = {"strategy": "partial", "symbol": "X", "side": "buy"}
    with pytest.raises(ValueError, match="non-negative"):
        trading.record_fill(**fill, venue="v", quantity=-1)
    assert value("trading_fills_total", **fill, venue="v") == 0


def test_helpers_are_re_exported_from_the_package():
    assert watchfloor.metrics.record_order is trading.record_order
    assert watchfloor.metrics.record_run is pipeline.record_run
    for name in watchfloor.metrics.__all__:
        assert hasattr(watchfloor.metrics, name), name


def test_names_use_base_units_and_exposition_parses():
    body, content_type = render(None)
    assert content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    ours = [name for name in families if name.startswith(("trading_", "pipeline_", "watchfloor_"))]
    assert len(ours) >= 30
    for name in ours:
        family = families[name]
        if family.type == "counter":
            assert not name.endswith("_total")  # the parser strips it: the sample carries it
        if family.type == "histogram":
            assert name.endswith(("_seconds", "_bps")), name
        if family.type == "gauge" and "_ratio" in name:
            assert name.endswith("_ratio"), name
