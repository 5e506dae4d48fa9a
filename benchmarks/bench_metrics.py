"""Metric helpers against the raw prometheus-client calls they wrap (target: <= 1.3x).

Without a span the helpers' exemplar check is part of their cost; with a sampled span the raw
baseline builds the same exemplar by hand, so both sides do the same work. No overhead above the
raw calls is required to be resolved: a helper reuses the label child it cached, where the raw
call resolves it with `.labels(...)` every time, so the helper may well be the cheaper.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import get_current_span

from _measure import (
    Budget,
    Figure,
    Outcome,
    Target,
    exit_code,
    measure,
    ratio,
    report_measurement,
    timed,
)
from watchfloor.metrics import pipeline, trading

CALLS = 10_000  # per arm and round: ~10-30 ms, long against the clocks' resolution
BUDGET = Budget(max_rounds=300, max_seconds=20)


def main() -> int:
    execution = trading.ORDER_EXECUTION.metric
    orders = trading.ORDERS.metric

    def raw_order() -> None:
        orders.labels("momo", "AAPL", "XNAS", "buy", "limit", "filled").inc()
        execution.labels("momo", "AAPL", "XNAS", "buy", "limit").observe(0.003)

    def raw_api_call() -> None:
        pipeline.API_REQUESTS.metric.labels("vendor", "200").inc()
        pipeline.API_RATE_LIMIT_REMAINING.metric.labels("vendor").set(10)

    cases = {
        "trading.record_order (counter + histogram)": (
            lambda: trading.record_order(
                strategy="momo", symbol="AAPL", venue="XNAS", side="buy", order_type="limit",
                status="filled", duration_seconds=0.003,
            ),
            raw_order,
        ),
        "trading.record_slippage (histogram)": (
            lambda: trading.record_slippage(strategy="momo", symbol="AAPL", side="buy", bps=1.2),
            lambda: trading.SLIPPAGE.metric.labels("momo", "AAPL", "buy").observe(1.2),
        ),
        "trading.set_fill_ratio (gauge)": (
            lambda: trading.set_fill_ratio(strategy="momo", symbol="AAPL", ratio=0.8),
            lambda: trading.FILL_RATIO.metric.labels("momo", "AAPL").set(0.8),
        ),
        "pipeline.record_api_call (counter + gauge)": (
            lambda: pipeline.record_api_call(api="vendor", status=200, rate_limit_remaining=10),
            raw_api_call,
        ),
    }  # fmt: skip
    outcomes = [o for name, (helper, raw) in cases.items() for o in _compare(name, helper, raw)]
    with TracerProvider().get_tracer("bench").start_as_current_span("fill"):
        outcomes += _compare(
            "trading.record_slippage in a sampled span (histogram + exemplar)",
            lambda: trading.record_slippage(strategy="momo", symbol="AAPL", side="buy", bps=1.2),
            lambda: trading.SLIPPAGE.metric.labels("momo", "AAPL", "buy").observe(1.2, _exemplar()),
        )
    return exit_code(outcomes)


def _exemplar() -> dict[str, str]:
    context = get_current_span().get_span_context()
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def _compare(name: str, helper: Callable[[], object], raw: Callable[[], object]) -> list[Outcome]:
    """The helper's cost per call as a ratio to the raw calls'; measure's warm-up fills the
    helper's cache, so the hot path is what is measured."""
    figure = Figure(
        f"{name} vs raw prometheus-client .labels(...) calls, thread CPU",
        ratio("helper", "raw"),
        Target.parse("<= 1.3x"),
    )
    result = measure(
        {"helper": timed(helper, CALLS), "raw": timed(raw, CALLS)}, [figure], budget=BUDGET
    )
    report_measurement(result, per="call")
    return result.outcomes


if __name__ == "__main__":
    sys.exit(main())
