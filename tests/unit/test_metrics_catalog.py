"""Every catalog helper moves the samples it documents, in base units."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from watchfloor.metrics import pipeline, render, trading


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_order_lifecycle_and_execution_histogram():
    labels = dict(strategy="cat-a", symbol="AAPL", venue="XNAS", side="buy", order_type="limit")
    before = value("trading_orders_total", **labels, status="filled")
    count_before = value("trading_order_execution_duration_seconds_count", **labels)
    trading.record_order(**labels, status="filled", duration_seconds=0.004)
    assert value("trading_orders_total", **labels, status="filled") == before + 1
    assert value("trading_order_execution_duration_seconds_count", **labels) == count_before + 1
    assert value("trading_order_execution_duration_seconds_bucket", **labels, le="0.005") >= 1


def test_ack_fill_quantities_ratio_and_rejections():
    trading.record_order_ack(strategy="cat-b", venue="XNYS", duration_seconds=0.002)
    trading.record_submitted_quantity(strategy="cat-b", symbol="MSFT", side="sell", quantity=300)
    trading.record_fill(strategy="cat-b", symbol="MSFT", venue="XNYS", side="sell", quantity=120)
    trading.set_fill_ratio(strategy="cat-b", symbol="MSFT", ratio=0.4)
    trading.record_rejection(strategy="cat-b", venue="XNYS", reason="price_band")
    assert value("trading_order_ack_duration_seconds_count", strategy="cat-b", venue="XNYS") == 1
    assert (
        value("trading_submitted_quantity_total", strategy="cat-b", symbol="MSFT", side="sell")
        == 300
    )
    assert (
        value("trading_filled_quantity_total", strategy="cat-b", symbol="MSFT", side="sell") == 120
    )
    assert (
        value("trading_fills_total", strategy="cat-b", symbol="MSFT", venue="XNYS", side="sell")
        == 1
    )
    assert value("trading_fill_ratio", strategy="cat-b", symbol="MSFT") == 0.4
    assert (
        value("trading_order_rejections_total", strategy="cat-b", venue="XNYS", reason="price_band")
        == 1
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


def test_slippage_histogram_is_signed():
    trading.record_slippage(strategy="cat-c", symbol="AAPL", side="buy", bps=-3.0)
    labels = dict(strategy="cat-c", symbol="AAPL", side="buy")
    assert value("trading_slippage_bps_bucket", **labels, le="-2.0") == 1
    assert value("trading_slippage_bps_bucket", **labels, le="-5.0") == 0
    # prometheus-client exposes no _sum for a histogram with negative buckets (OpenMetrics
    # forbids it); quantiles and the heatmap come from the buckets.
    assert value("trading_slippage_bps_count", **labels) == 1


def test_pnl_risk_exposure_gauges():
    trading.set_pnl(strategy="cat-d", currency="USD", realized=1250.5, unrealized=-300.0)
    trading.set_drawdown(strategy="cat-d", ratio=0.07)
    trading.set_win_ratio(strategy="cat-d", ratio=0.55)
    trading.set_exposure(currency="EUR", gross=1_000_000, net=-250_000)
    trading.record_risk_violation(strategy="cat-d", rule="max_position", severity="critical")
    trading.set_limit_utilisation(strategy="cat-d", rule="max_position", ratio=1.2)
    assert (
        value("trading_strategy_pnl", strategy="cat-d", currency="USD", kind="realized") == 1250.5
    )
    assert (
        value("trading_strategy_pnl", strategy="cat-d", currency="USD", kind="unrealized") == -300
    )
    assert value("trading_strategy_drawdown_ratio", strategy="cat-d") == 0.07
    assert value("trading_strategy_win_ratio", strategy="cat-d") == 0.55
    assert value("trading_exposure", currency="EUR", kind="net") == -250_000
    assert (
        value(
            "trading_risk_violations_total",
            strategy="cat-d",
            rule="max_position",
            severity="critical",
        )
        == 1
    )
    assert (
        value("trading_risk_limit_utilisation_ratio", strategy="cat-d", rule="max_position") == 1.2
    )


def test_market_data_and_broker_calls():
    trading.record_market_data(
        feed="itch-e", symbol="AAPL", latency_seconds=0.0007, at=1_700_000_000
    )
    assert value("trading_market_data_updates_total", feed="itch-e", symbol="AAPL") == 1
    assert (
        value("trading_market_data_last_update_timestamp_seconds", feed="itch-e") == 1_700_000_000
    )
    trading.record_broker_call(
        broker="ib-e", endpoint="/orders", status=429, duration_seconds=0.2,
        rate_limit_remaining=0, rate_limit_limit=50, rate_limit_reset_seconds=12,
    )  # fmt: skip
    assert (
        value("trading_broker_requests_total", broker="ib-e", endpoint="/orders", status="429") == 1
    )
    assert value("trading_broker_rate_limit_limit", broker="ib-e", endpoint="/orders") == 50
    assert value("trading_broker_rate_limit_reset_seconds", broker="ib-e", endpoint="/orders") == 12


def test_pipeline_run_quality_api_cost():
    pipeline.record_run_started(pipeline="eod-e", job="load")
    pipeline.record_run(
        pipeline="eod-e", job="load", status="success", duration_seconds=42,
        records=1000, record_errors=3, finished_at=1_700_000_100,
    )  # fmt: skip
    pipeline.set_freshness(dataset="prices-e", seconds=90)
    pipeline.set_quality(dataset="prices-e", completeness=0.97, validity=0.99)
    pipeline.record_validation(dataset="prices-e", passed=False)
    pipeline.record_api_call(api="vendor-e", status=429, rate_limit_remaining=3)
    pipeline.record_cost(pipeline="eod-e", resource="compute", usd=1.25)
    assert value("pipeline_runs_total", pipeline="eod-e", job="load", status="started") == 1
    assert value("pipeline_runs_total", pipeline="eod-e", job="load", status="success") == 1
    assert (
        value("pipeline_run_duration_seconds_sum", pipeline="eod-e", job="load", status="success")
        == 42
    )
    assert (
        value("pipeline_last_success_timestamp_seconds", pipeline="eod-e", job="load")
        == 1_700_000_100
    )
    assert value("pipeline_records_processed_total", pipeline="eod-e", job="load") == 1000
    assert value("pipeline_record_errors_total", pipeline="eod-e", job="load") == 3
    assert value("pipeline_data_freshness_seconds", dataset="prices-e") == 90
    assert (
        value("pipeline_data_quality_score", dataset="prices-e", dimension="completeness") == 0.97
    )
    assert value("pipeline_validation_checks_total", dataset="prices-e", result="fail") == 1
    assert value("pipeline_external_api_requests_total", api="vendor-e", status="429") == 1
    assert value("pipeline_external_api_rate_limit_remaining", api="vendor-e") == 3
    assert value("pipeline_cost_usd_total", pipeline="eod-e", resource="compute") == 1.25


@pytest.mark.parametrize(
    "call",
    [
        lambda: trading.record_fill(strategy="s", symbol="X", venue="v", side="long", quantity=1),
        lambda: trading.record_order(
            strategy="s", symbol="X", venue="v", side="buy", order_type="limit", status="lost"
        ),
        lambda: trading.record_risk_violation(strategy="s", rule="r", severity="urgent"),
        lambda: pipeline.set_quality(dataset="d", completeness=1.5),
        lambda: pipeline.record_run(pipeline="p", job="j", status="ok", duration_seconds=1),
        lambda: pipeline.record_cost(pipeline="p", resource="r", usd=-1),
        lambda: trading.slippage_bps(side="buy", arrival_price=0, fill_price=1),
    ],
)
def test_bad_values_raise_value_error_with_the_reason(call):
    with pytest.raises(ValueError, match="must"):
        call()


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
