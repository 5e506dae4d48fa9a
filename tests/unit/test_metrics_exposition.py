"""watchfloor's exposition says exactly what prometheus-client's would (minus _created)."""

from __future__ import annotations

import re

from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families

from watchfloor.metrics import render


def _samples(text: str) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
    return {
        (s.name, tuple(sorted(s.labels.items())), s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if not s.name.endswith("_created")
    }


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    counter = Counter(
        "x_orders_total", "Orders.\nSecond line \\ with backslash.", ["venue"], registry=registry
    )
    counter.labels('X"NAS\\n').inc(3)
    counter.labels("plain").inc()
    Counter("x_plain", "Unlabelled counter.", registry=registry).inc(2)
    gauge = Gauge("x_ratio", "A ratio.", ["strategy"], registry=registry)
    gauge.labels("momo").set(0.25)
    Gauge("x_live", "Computed at scrape.", registry=registry).set_function(lambda: 42.0)
    histogram = Histogram(
        "x_latency_seconds", "Latency.", ["venue"], buckets=(0.1, 1), registry=registry
    )
    histogram.labels("a").observe(0.05)
    histogram.labels("a").observe(5)
    signed = Histogram("x_slip_bps", "Signed.", buckets=(-1, 0, 1), registry=registry)
    signed.observe(-0.5)
    return registry


def test_text_format_has_the_same_samples_as_prometheus_client():
    registry = _registry()
    ours, content_type = render("text/plain", registry)
    assert content_type.startswith("text/plain")
    assert _samples(ours.decode()) == _samples(generate_latest(registry).decode())


def test_openmetrics_format_with_exemplars_matches_prometheus_client():
    registry = _registry()
    histogram = Histogram("x_traced_seconds", "Traced.", buckets=(1,), registry=registry)
    with TracerProvider().get_tracer("t").start_as_current_span("s"):
        histogram.observe(0.5, {"trace_id": "abc", "span_id": "def"})
    ours, content_type = render("application/openmetrics-text; version=1.0.0", registry)
    theirs = generate_openmetrics(registry).decode()
    assert content_type.startswith("application/openmetrics-text")
    assert ours.decode().endswith("# EOF\n")
    # prometheus-client writes a _count beside negative buckets, which its own parser refuses
    # (no _sum may go with negative buckets, and no _count without a _sum); ours leaves it out.
    assert _normalised(ours.decode()) == _normalised(theirs) - {"x_slip_bps_count 1.0"}
    assert '# {span_id="def",trace_id="abc"} 0.5' in ours.decode()


def test_signed_histograms_are_valid_openmetrics():
    registry = _registry()
    ours, _ = render("application/openmetrics-text; version=1.0.0", registry)
    families = {f.name: f for f in openmetrics_families(ours.decode())}  # raises when invalid
    signed = {s.name for s in families["x_slip_bps"].samples}
    assert signed == {"x_slip_bps_bucket"}
    assert {s.name for s in families["x_latency_seconds"].samples} == {
        "x_latency_seconds_bucket", "x_latency_seconds_count", "x_latency_seconds_sum"
    }  # fmt: skip
    text, _ = render("text/plain", registry)
    assert [s.value for f in text_string_to_metric_families(text.decode()) if f.name == "x_slip_bps"
            for s in f.samples if s.name == "x_slip_bps_count"] == [1.0]  # fmt: skip


def _normalised(text: str) -> set[str]:
    """Lines without _created series, with each series' labels in sorted order."""
    lines = set()
    for line in text.splitlines():
        if "_created" in line:
            continue
        match = re.match(r"^([^{ ]+)\{([^}]*)\}(.*)$", line)
        if match:
            labels = ",".join(sorted(match.group(2).split(",")))
            lines.add(f"{match.group(1)}{{{labels}}}{match.group(3)}")
        else:
            lines.add(line)
    return lines


def test_default_registry_renders_and_parses():
    body, _ = render(None)
    assert list(text_string_to_metric_families(body.decode()))
