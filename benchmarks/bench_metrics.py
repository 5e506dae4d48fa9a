"""Metric helpers against the raw prometheus-client calls they wrap (target: <= 1.3x)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    met = True
    for name, (helper, raw) in cases.items():
        helper()
        raw()
        ours = per_call_seconds(helper, calls=CALLS)
        baseline = per_call_seconds(raw, calls=CALLS)
        met &= report(
            name,
            ours * 1e6,
            baseline_name="raw prometheus-client .labels(...) calls",
            baseline=baseline * 1e6,
            unit="µs/call",
            target="<= 1.3x",
        )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
