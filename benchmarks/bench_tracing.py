"""`traced` against raw `tracer.start_as_current_span`, both on an SDK provider.

`traced` opens its span with the same call (through the library's module-level tracer), so it does
the raw call's work and more: its overhead above the raw call must come out resolved above zero.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)

from _measure import (
    Budget,
    Figure,
    Target,
    difference,
    exit_code,
    measure,
    ratio,
    report_measurement,
    timed,
)
from watchfloor.tracing import traced

CALLS = 2_000  # per arm and round: ~20-40 ms
BUDGET = Budget(max_rounds=300, max_seconds=40)


class DiscardingExporter(SpanExporter):
    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def main() -> int:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(DiscardingExporter()))
    trace.set_tracer_provider(provider)
    raw_tracer = trace.get_tracer("bench")

    def raw() -> None:
        with raw_tracer.start_as_current_span("order.submit", attributes={"symbol": "AAPL"}):
            pass

    def context_manager() -> None:
        with traced("order.submit", symbol="AAPL"):
            pass

    @traced("order.submit", symbol="AAPL")
    def decorated() -> None:
        pass

    arms = {
        "raw": timed(raw, CALLS),
        "context manager": timed(context_manager, CALLS),
        "decorator": timed(decorated, CALLS),
    }
    figures = [
        Figure(
            f"traced(...) as {arm} vs tracer.start_as_current_span, thread CPU",
            ratio(arm, "raw"),
            Target.parse("<= 1.3x"),
            overheads={f"{arm} - raw": difference(arm, "raw")},
        )
        for arm in ("context manager", "decorator")
    ]
    result = measure(arms, figures, budget=BUDGET)
    report_measurement(result, per="span")
    return exit_code(result.outcomes)


if __name__ == "__main__":
    sys.exit(main())
