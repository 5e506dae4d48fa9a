"""Issue 13: a metric call never raises into trading code; bad values are repaired or counted.

Counters are compared before and after each call, so other tests sharing the default registry
cannot skew them.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

import watchfloor.metrics
from watchfloor.metrics import OVERFLOW, cardinality, input_errors, pipeline, render, trading

ERRORS = "watchfloor_metric_input_errors_total"
ORDER = dict(strategy="hot", symbol="AAPL", venue="XNAS", order_type="limit", status="filled")
LIBS = Path(__file__).resolve().parents[2] / "libs"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    """A forgetful guard, the once-per-kind log armed again, and the default (lenient) mode."""
    cardinality.reset()
    input_errors.reset()
    before = input_errors.is_strict()
    input_errors.set_strict(False)
    yield
    input_errors.set_strict(before)
    cardinality.reset()


@pytest.fixture
def warnings() -> Iterator[list[logging.LogRecord]]:
    # A handler on the logger itself: a configure_logging() elsewhere may stop propagation.
    handler = _Records()
    logger = logging.getLogger("watchfloor.metrics")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def errors(metric: str, reason: str) -> float:
    return sample(ERRORS, metric=metric, reason=reason) or 0.0


def orders(side: str) -> float:
    return sample("trading_orders_total", **ORDER, side=side) or 0.0


def test_a_mis_cased_side_is_recorded_under_its_value():
    before = (orders("buy"), errors("trading_orders", "label_case"))
    watchfloor.metrics.record_order(**ORDER, side="BUY")
    watchfloor.metrics.record_order(**ORDER, side=" Sell\t")
    assert orders("buy") == before[0] + 1
    assert orders("sell") == 1
    assert errors("trading_orders", "label_case") == before[1] + 2
    assert sample("trading_orders_total", **ORDER, side="BUY") is None


def test_an_unknown_side_goes_to_overflow_counted_per_call_logged_once(warnings):
    before = (orders(OVERFLOW), errors("trading_orders", "label_unknown"))
    for side in ("long", "short", "long"):
        trading.record_order(**ORDER, side=side)
    assert orders(OVERFLOW) == before[0] + 3
    assert errors("trading_orders", "label_unknown") == before[1] + 3
    assert sample("trading_orders_total", **ORDER, side="long") is None
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "label_unknown" in message and "side must be one of" in message


def test_each_kind_of_bad_value_is_logged_once(warnings):
    trading.set_fill_ratio(strategy="hot", symbol="LOG", ratio=1.5)
    trading.set_fill_ratio(strategy="hot", symbol="LOG", ratio=2.5)
    trading.set_fill_ratio(strategy="hot", symbol="LOG", ratio=math.nan)
    trading.set_win_ratio(strategy="hot", ratio=-3)
    reasons = sorted(record.getMessage().split("(")[1].split(")")[0] for record in warnings)
    assert reasons == ["not_finite", "out_of_range", "out_of_range"]  # fill ratio twice, win once


def test_a_fill_ratio_a_hair_above_one_is_clamped_uncounted():
    ratio = (0.1 + 0.2) / 0.3
    assert ratio > 1.0  # the float arithmetic of the issue
    before = errors("trading_fill_ratio", "out_of_range")
    trading.set_fill_ratio(strategy="hot", symbol="CLAMP", ratio=ratio)
    assert sample("trading_fill_ratio", strategy="hot", symbol="CLAMP") == 1.0
    trading.set_drawdown(strategy="hot-clamp", ratio=-1e-12)
    assert sample("trading_strategy_drawdown_ratio", strategy="hot-clamp") == 0.0
    assert errors("trading_fill_ratio", "out_of_range") == before


def test_a_ratio_far_outside_or_nan_is_dropped_and_counted():
    trading.set_fill_ratio(strategy="hot", symbol="DROP", ratio=0.25)
    before = (
        errors("trading_fill_ratio", "out_of_range"),
        errors("trading_fill_ratio", "not_finite"),
        errors("trading_fill_ratio", "not_a_number"),
    )
    for bad in (1.5, -0.01, math.nan, math.inf, None, "0.5"):
        trading.set_fill_ratio(strategy="hot", symbol="DROP", ratio=bad)  # type: ignore[arg-type]
    assert sample("trading_fill_ratio", strategy="hot", symbol="DROP") == 0.25  # left as it was
    assert errors("trading_fill_ratio", "out_of_range") == before[0] + 2
    assert errors("trading_fill_ratio", "not_finite") == before[1] + 2
    assert errors("trading_fill_ratio", "not_a_number") == before[2] + 2


def test_bad_amounts_are_dropped_the_rest_of_the_call_lands():
    fill = {"strategy": "hot", "symbol": "NEG", "side": "buy"}
    before = errors("trading_filled_quantity", "out_of_range")
    trading.record_fill(**fill, venue="v", quantity=-1)
    assert sample("trading_fills_total", **fill, venue="v") == 1
    assert sample("trading_filled_quantity_total", **fill) is None
    assert errors("trading_filled_quantity", "out_of_range") == before + 1
    pipeline.record_cost(pipeline="hot", resource="api", usd=-2)
    assert sample("pipeline_cost_usd_total", pipeline="hot", resource="api") is None


def test_a_negative_duration_and_a_nan_gauge_are_dropped_and_counted():
    """A histogram without negative buckets would get a negative _sum (invalid OpenMetrics), a
    NaN P&L would turn every sum over it into NaN: both are counted, neither lands."""
    labels = {"strategy": "hot", "symbol": "NEGDUR", "venue": "v", "side": "buy",
              "order_type": "limit"}  # fmt: skip
    before = errors("trading_order_execution_duration_seconds", "out_of_range")
    trading.record_order(**{**ORDER, **labels}, duration_seconds=-1e-18)
    assert sample("trading_order_execution_duration_seconds_count", **labels) is None
    assert errors("trading_order_execution_duration_seconds", "out_of_range") == before + 1
    before = errors("trading_strategy_pnl", "not_finite")
    trading.set_pnl(strategy="hot-nan", currency="USD", realized=math.nan, unrealized=1.0)
    pnl = {"strategy": "hot-nan", "currency": "USD"}
    assert sample("trading_strategy_pnl", **pnl, kind="realized") is None
    assert sample("trading_strategy_pnl", **pnl, kind="unrealized") == 1.0
    assert errors("trading_strategy_pnl", "not_finite") == before + 1


def test_a_run_status_is_checked_once_for_both_of_its_metrics():
    job = {"pipeline": "hot", "job": "j"}
    labels = {"pipeline": "hot", "pipeline_job": "j"}
    pipeline.record_run(**job, status="SUCCESS", duration_seconds=2, finished_at=100.0)
    assert sample("pipeline_runs_total", **labels, status="success") == 1
    assert sample("pipeline_last_success_timestamp_seconds", **labels) == 100.0
    pipeline.record_run(**job, status="started", duration_seconds=2)
    assert sample("pipeline_runs_total", **labels, status="started") is None  # not a second start
    assert sample("pipeline_runs_total", **labels, status=OVERFLOW) == 1


def test_slippage_without_a_sign_or_an_arrival_is_nan_and_not_recorded():
    assert trading.slippage_bps(side="BUY", arrival_price=100, fill_price=101) == pytest.approx(100)
    assert math.isnan(trading.slippage_bps(side="hold", arrival_price=100, fill_price=101))
    assert math.isnan(trading.slippage_bps(side="buy", arrival_price=0, fill_price=101))
    trading.record_slippage(strategy="hot", symbol="NAN", side="buy", bps=math.nan)
    assert sample("trading_slippage_bps_count", strategy="hot", symbol="NAN", side="buy") is None


STRICT_ORDER = {**ORDER, "strategy": "hot-strict"}


@pytest.mark.parametrize(
    "call",
    [
        lambda: trading.record_order(**STRICT_ORDER, side="BUY"),
        lambda: trading.record_order(**STRICT_ORDER, side="long"),
        lambda: trading.set_fill_ratio(strategy="hot-strict", symbol="S", ratio=1.5),
        lambda: trading.set_fill_ratio(strategy="hot-strict", symbol="S", ratio=math.nan),
        lambda: trading.record_slippage(strategy="hot-strict", symbol="S", side="buy",
                                        bps=math.inf),
        lambda: pipeline.record_validation(dataset="hot-strict", passed=True, count=-1),
    ],
)  # fmt: skip
def test_strict_mode_raises_and_records_nothing(call: Callable[[], None]):
    def everything() -> list[tuple[str, tuple[tuple[str, str], ...], float]]:
        names = ("trading_orders_total", "trading_fill_ratio", "trading_slippage_bps_count",
                 "pipeline_validation_checks_total", ERRORS)  # fmt: skip
        return sorted(
            (sample.name, tuple(sorted(sample.labels.items())), sample.value)
            for family in REGISTRY.collect()
            for sample in family.samples
            if sample.name in names
        )

    before = everything()
    watchfloor.metrics.set_strict(True)
    with pytest.raises(ValueError):
        call()
    assert everything() == before


def test_strict_mode_from_the_environment():
    def strict(value: str) -> str:
        env = {**os.environ, "PYTHONPATH": str(LIBS), "WATCHFLOOR_METRICS_STRICT": value}
        code = "from watchfloor.metrics import input_errors; print(input_errors.is_strict())"
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert strict("1") == "True"
    assert strict("") == "False"


ANY = st.one_of(
    st.text(max_size=30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.none(),
    st.booleans(),
)
HELPERS: dict[Callable[..., Any], tuple[str, ...]] = {
    trading.record_order: (
        "strategy", "symbol", "venue", "side", "order_type", "status", "duration_seconds",
    ),
    trading.record_order_ack: ("strategy", "venue", "duration_seconds"),
    trading.record_submitted_quantity: ("strategy", "symbol", "side", "quantity"),
    trading.record_rejection: ("strategy", "venue", "reason"),
    trading.record_fill: ("strategy", "symbol", "venue", "side", "quantity"),
    trading.set_fill_ratio: ("strategy", "symbol", "ratio"),
    trading.record_slippage: ("strategy", "symbol", "side", "bps"),
    trading.slippage_bps: ("side", "arrival_price", "fill_price"),
    trading.set_pnl: ("strategy", "currency", "realized", "unrealized"),
    trading.set_drawdown: ("strategy", "ratio"),
    trading.set_win_ratio: ("strategy", "ratio"),
    trading.set_exposure: ("currency", "gross", "net"),
    trading.record_risk_violation: ("strategy", "rule", "severity"),
    trading.set_limit_utilisation: ("strategy", "rule", "ratio"),
    trading.record_market_data: ("feed", "symbol", "latency_seconds", "at"),
    trading.record_broker_call: (
        "broker", "endpoint", "status", "duration_seconds", "rate_limit_remaining",
        "rate_limit_limit", "rate_limit_reset_seconds",
    ),
    pipeline.record_run_started: ("pipeline", "job"),
    pipeline.record_run: (
        "pipeline", "job", "status", "duration_seconds", "records", "record_errors", "finished_at",
    ),
    pipeline.set_freshness: ("dataset", "seconds"),
    pipeline.track_freshness: ("dataset", "loaded_at"),
    pipeline.set_quality: ("dataset", "completeness", "consistency", "validity"),
    pipeline.record_validation: ("dataset", "passed", "count"),
    pipeline.record_api_call: ("api", "status", "rate_limit_remaining", "count"),
    pipeline.record_cost: ("pipeline", "resource", "usd"),
}  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_no_helper_raises_for_any_input(data: st.DataObject):
    helper = data.draw(st.sampled_from(list(HELPERS)))
    arguments = {name: data.draw(ANY, label=name) for name in HELPERS[helper]}
    helper(**arguments)
    render(None)  # the registry still renders, in both formats, and stays valid OpenMetrics
    body, _ = render("application/openmetrics-text; version=1.0.0")
    for _family in openmetrics_families(body.decode()):
        pass
