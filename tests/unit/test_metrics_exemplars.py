"""Histograms carry the sampled span's trace id as an exemplar, visible in OpenMetrics.

Spans come from a local TracerProvider: start_as_current_span sets the current span in the
context whatever the process-wide provider is, which OpenTelemetry lets a process set only once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.samples import Sample

from watchfloor.metrics import render, trading
from watchfloor.metrics.exemplars import current_exemplar

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
# prometheus-client's OpenMetrics parser rejects a histogram with _count but no _sum, which both
# its exposition and ours write for signed histograms (Prometheus accepts them); so those families
# are parsed as lines, and the rest with the parser.
_EXEMPLAR = re.compile(r"^(\S+)\{([^}]*)\} \S+ # \{([^}]*)\}")


def _openmetrics_samples(family: str, strategy: str) -> list[Sample]:
    body, content_type = render(OPENMETRICS)
    assert content_type.startswith("application/openmetrics-text")
    text = body.decode()
    assert text.endswith("# EOF\n")
    blocks = re.split(r"(?m)^(?=# HELP )", text.removesuffix("# EOF\n"))
    unsigned = "".join(block for block in blocks if 'le="-' not in block)
    (found,) = (f for f in parse_om(unsigned + "# EOF\n") if f.name == family)
    return [s for s in found.samples if s.labels.get("strategy") == strategy]


def _signed_exemplars(metric: str, strategy: str) -> list[dict[str, str]]:
    body, _ = render(OPENMETRICS)
    found = []
    for line in body.decode().splitlines():
        match = _EXEMPLAR.match(line)
        if match and match.group(1) == metric and f'strategy="{strategy}"' in match.group(2):
            pairs = (pair.split("=", 1) for pair in match.group(3).split(","))
            found.append({key: value.strip('"') for key, value in pairs})
    return found


@contextmanager
def _no_span() -> Iterator[None]:
    """An empty context, whatever another test may have left attached."""
    token = otel_context.attach(otel_context.Context())
    try:
        yield
    finally:
        otel_context.detach(token)


def _order(strategy: str) -> None:
    trading.record_order(
        strategy=strategy, symbol="AAPL", venue="XNAS", side="buy", order_type="limit",
        status="filled", duration_seconds=0.003,
    )  # fmt: skip


def test_exemplar_in_openmetrics_when_a_sampled_span_is_active():
    with TracerProvider().get_tracer("tests").start_as_current_span("order") as span:
        _order("ex-om-1")
        context = span.get_span_context()
    samples = _openmetrics_samples("trading_order_execution_duration_seconds", "ex-om-1")
    (carrying,) = [s for s in samples if s.exemplar is not None]
    assert carrying.name.endswith("_bucket") and carrying.labels["le"] == "0.005"
    assert carrying.exemplar.value == 0.003
    assert carrying.exemplar.labels == {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }
    assert re.fullmatch(r"[0-9a-f]{32}", carrying.exemplar.labels["trace_id"])
    assert re.fullmatch(r"[0-9a-f]{16}", carrying.exemplar.labels["span_id"])


def test_exemplar_on_a_signed_histogram():
    with TracerProvider().get_tracer("tests").start_as_current_span("fill") as span:
        trading.record_slippage(strategy="ex-1", symbol="AAPL", side="buy", bps=1.5)
        context = span.get_span_context()
    (exemplar,) = _signed_exemplars("trading_slippage_bps_bucket", "ex-1")
    assert exemplar == {
        "trace_id": format(context.trace_id, "032x"),
        "span_id": format(context.span_id, "016x"),
    }


def test_no_exemplar_without_a_span_or_when_unsampled():
    with _no_span():
        _order("ex-om-2")
    with TracerProvider(sampler=ALWAYS_OFF).get_tracer("tests").start_as_current_span("x") as span:
        assert span.get_span_context().is_valid and not span.is_recording()
        assert current_exemplar() is None
        _order("ex-om-3")
    for strategy in ("ex-om-2", "ex-om-3"):
        samples = _openmetrics_samples("trading_order_execution_duration_seconds", strategy)
        assert samples, strategy
        assert all(s.exemplar is None for s in samples), strategy


def test_no_exemplar_outside_any_span():
    with _no_span():
        assert trace.get_current_span() is trace.INVALID_SPAN
        assert current_exemplar() is None


def test_text_format_when_openmetrics_is_not_asked():
    with TracerProvider().get_tracer("tests").start_as_current_span("order"):
        _order("ex-text")
    body, content_type = render("text/plain")
    assert content_type.startswith("text/plain") and b"# EOF" not in body
    lines = [line for line in body.decode().splitlines() if 'strategy="ex-text"' in line]
    assert lines and not any("trace_id" in line for line in lines)
