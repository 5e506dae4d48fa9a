"""Histograms carry the sampled span's trace id as an exemplar, visible in OpenMetrics."""

from __future__ import annotations

import re

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from watchfloor.metrics import render, trading

# prometheus-client's own OpenMetrics parser rejects histograms without _sum, which its exposition
# writes for signed histograms; Prometheus accepts them. So exemplars are read off the lines.
_EXEMPLAR = re.compile(r"^(\S+)\{([^}]*)\} \S+ # \{([^}]*)\}")


def _exemplars(metric: str, strategy: str) -> list[dict[str, str]]:
    body, content_type = render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    found = []
    for line in body.decode().splitlines():
        match = _EXEMPLAR.match(line)
        if match and match.group(1) == metric and f'strategy="{strategy}"' in match.group(2):
            pairs = (pair.split("=", 1) for pair in match.group(3).split(","))
            found.append({key: value.strip('"') for key, value in pairs})
    return found


def test_exemplar_when_a_sampled_span_is_active():
    tracer = TracerProvider().get_tracer("tests")
    with tracer.start_as_current_span("fill") as span:
        trading.record_slippage(strategy="ex-1", symbol="AAPL", side="buy", bps=1.5)
        context = span.get_span_context()
    (exemplar,) = _exemplars("trading_slippage_bps_bucket", "ex-1")
    assert exemplar == {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def test_no_exemplar_without_a_span_or_when_unsampled():
    trading.record_slippage(strategy="ex-2", symbol="AAPL", side="buy", bps=1.5)
    with TracerProvider(sampler=ALWAYS_OFF).get_tracer("tests").start_as_current_span("x"):
        trading.record_slippage(strategy="ex-3", symbol="AAPL", side="buy", bps=1.5)
    assert _exemplars("trading_slippage_bps_bucket", "ex-2") == []
    assert _exemplars("trading_slippage_bps_bucket", "ex-3") == []


def test_text_format_when_openmetrics_is_not_asked():
    body, content_type = render("text/plain")
    assert content_type.startswith("text/plain") and b"# EOF" not in body
