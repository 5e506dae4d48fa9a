"""`traced` against raw `tracer.start_as_current_span`, both on an SDK provider."""

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

from _common import per_call_seconds, report
from watchfloor.tracing import traced

CALLS = 20_000


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

    baseline = per_call_seconds(raw, calls=CALLS)
    met = report(
        "traced(...) as context manager",
        per_call_seconds(context_manager, calls=CALLS) * 1e6,
        baseline_name="tracer.start_as_current_span",
        baseline=baseline * 1e6,
        unit="µs/span",
        target="<= 1.3x",
    )
    met &= report(
        "@traced(...) decorator",
        per_call_seconds(decorated, calls=CALLS) * 1e6,
        baseline_name="tracer.start_as_current_span",
        baseline=baseline * 1e6,
        unit="µs/span",
        target="<= 1.3x",
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
