"""Metric helpers against the raw prometheus-client calls they wrap (target: <= 1.3x).

Without a span the helpers' exemplar check is part of their cost; with a sampled span the raw
baseline builds the same exemplar by hand, so both sides do the same work.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import get_current_span

from _common import per_call_seconds, report
from watchfloor.metrics import pipeline, trading

CALLS = 100_000


def main() -> int:
    execution = trading.ORDER_EXECUTION.metric
    orders = trading.ORDERS.metric
    cases = {
        "trading.record_order (counter + histogram)": (
            lambda: trading.record_order(
                strategy="momo", symbol="AAPL", venue="XNAS", side="buy", order_type="limit",
                status="filled", duration_seconds=0.003,
            ),
            lambda: (
                orders.labels("momo", "AAPL", "XNAS", "buy", "limit", "filled").inc(),
                execution.labels("momo", "AAPL", "XNAS", "buy", "limit").observe(0.003),
            ),
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
            lambda: (
                pipeline.API_REQUESTS.metric.labels("vendor", "200").inc(),
                pipeline.API_RATE_LIMIT_REMAINING.metric.labels("vendor").set(10),
            ),
        ),
    }  # fmt: skip
    met = all(_compare(name, helper, raw) for name, (helper, raw) in cases.items())
    with TracerProvider().get_tracer("bench").start_as_current_span("fill"):
        met &= _compare(
            "trading.record_slippage in a sampled span (histogram + exemplar)",
            lambda: trading.record_slippage(strategy="momo", symbol="AAPL", side="buy", bps=1.2),
            lambda: trading.SLIPPAGE.metric.labels("momo", "AAPL", "buy").observe(1.2, _exemplar()),
        )
    return 0 if met else 1


def _exemplar() -> dict[str, str]:
    context = get_current_span().get_span_context()
    return {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def _compare(name: str, helper: Callable[[], object], raw: Callable[[], object]) -> bool:
    helper()  # the first call fills the helper's cache; the hot path is what is measured
    raw()
    ours = per_call_seconds(helper, calls=CALLS)
    baseline = per_call_seconds(raw, calls=CALLS)
    return report(
        name,
        ours * 1e6,
        baseline_name="raw prometheus-client .labels(...) calls",
        baseline=baseline * 1e6,
        unit="µs/call",
        target="<= 1.3x",
    )


if __name__ == "__main__":
    sys.exit(main())
