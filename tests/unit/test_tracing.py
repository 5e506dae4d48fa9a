"""traced, the trading span helpers, and the provider configuration."""

from __future__ import annotations

import asyncio
import logging

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from watchfloor.correlation import correlation_scope
from watchfloor.tracing import (
    OrderTrace,
    broker_call,
    market_data,
    strategy_evaluation,
    traced,
)
from watchfloor.tracing.setup import (
    AdjustableSampler,
    build_provider,
    build_resource,
    ratio_sampler,
    resolve_endpoint,
)


def test_context_manager_attributes_correlation_and_nesting(spans):
    with correlation_scope("corr-7"), traced("outer", desk="equities"), traced("inner"):
        pass
    inner, outer = spans.get_finished_spans()
    assert outer.name == "outer" and inner.name == "inner"
    assert outer.attributes["desk"] == "equities"
    assert outer.attributes["correlation.id"] == "corr-7"
    assert inner.parent.span_id == outer.context.span_id


def test_no_correlation_attribute_outside_a_scope(spans):
    with traced("plain"):
        pass
    (span,) = spans.get_finished_spans()
    assert "correlation.id" not in span.attributes


def test_decorator_sync(spans):
    @traced("compute", kind="sync")
    def compute(x: int) -> int:
        return x * 2

    assert compute(21) == 42
    assert compute.__name__ == "compute"
    (span,) = spans.get_finished_spans()
    assert span.name == "compute" and span.attributes["kind"] == "sync"


async def test_decorator_async_spans_the_awaited_body(spans):
    @traced("fetch")
    async def fetch() -> str:
        await asyncio.sleep(0.05)
        with traced("child"):
            pass
        return "done"

    coroutine = fetch()
    assert spans.get_finished_spans() == ()  # creating the coroutine starts nothing
    assert await coroutine == "done"
    child, parent = spans.get_finished_spans()
    assert child.parent.span_id == parent.context.span_id
    assert (parent.end_time - parent.start_time) >= 0.05e9


async def test_async_context_manager(spans):
    async with traced("async-block"):
        await asyncio.sleep(0)
    assert [s.name for s in spans.get_finished_spans()] == ["async-block"]


def test_exception_is_recorded_and_reraised(spans):
    with pytest.raises(ZeroDivisionError), traced("risky"):
        _ = 1 / 0
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.events[0].name == "exception"
    assert span.events[0].attributes["exception.type"] == "ZeroDivisionError"


def test_order_lifecycle(spans, ecs_lines):
    with correlation_scope("order-corr"):
        order = OrderTrace(
            "o-1",
            strategy="momo",
            symbol="AAPL",
            side="buy",
            quantity=100,
            venue="XNAS",
            price=187.2,
        )
    with order.context():
        logging.getLogger("oms").info("submitted")
    order.acked("V-9")
    order.filled(40, 187.21, final=False)
    assert spans.get_finished_spans() == ()  # still open after a partial fill
    order.filled(60, 187.22, final=True)
    (span,) = spans.get_finished_spans()
    assert span.name == "order"
    assert span.attributes["trading.order.id"] == "o-1"
    assert span.attributes["trading.symbol"] == "AAPL"
    assert span.attributes["trading.filled_quantity"] == 100
    assert span.attributes["correlation.id"] == "order-corr"
    assert [e.name for e in span.events] == ["order.acked", "order.filled", "order.filled"]
    (log,) = ecs_lines()
    assert log["trace"]["id"] == format(span.context.trace_id, "032x")


def test_rejected_order_is_an_error(spans):
    OrderTrace("o-2", strategy="momo", symbol="AAPL", side="sell", quantity=5).rejected(
        "price_band"
    )
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["trading.reject.reason"] == "price_band"


def test_cancelled_order(spans):
    OrderTrace("o-3", strategy="momo", symbol="AAPL", side="sell", quantity=5).cancelled("user")
    (span,) = spans.get_finished_spans()
    assert span.attributes["trading.status"] == "cancelled"


def test_strategy_market_data_and_broker_spans(spans):
    with strategy_evaluation("momo", signal="long"), market_data("itch", "AAPL"):
        pass
    with broker_call("ib", "/orders") as call:
        call.response(429, rate_limit_remaining=0)
    md, strategy, broker = spans.get_finished_spans()
    assert strategy.attributes["trading.strategy"] == "momo"
    assert md.attributes == {"trading.feed": "itch", "trading.symbol": "AAPL"}
    assert broker.attributes["http.response.status_code"] == 429
    assert broker.status.status_code is StatusCode.ERROR


def test_endpoint_resolution(monkeypatch):
    for name in ("WATCHFLOOR_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    assert resolve_endpoint(None) is None  # the exporter reads OTEL_EXPORTER_OTLP_* itself
    assert resolve_endpoint("http://jaeger:4318") == "http://jaeger:4318/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/")
    assert resolve_endpoint(None) is None
    monkeypatch.setenv("WATCHFLOOR_OTLP_ENDPOINT", "http://wf:4318")
    assert resolve_endpoint(None) == "http://wf:4318/v1/traces"
    assert resolve_endpoint("https://explicit:1/v1/traces") == "https://explicit:1/v1/traces"
    with pytest.raises(ValueError, match="http"):
        resolve_endpoint("jaeger:4318")


def test_a_ratio_outside_0_1_is_refused():
    with pytest.raises(ValueError, match=r"within 0\.\.1"):
        ratio_sampler(1.5)


def test_sampler_ratio_zero_exports_nothing_and_can_change():
    exporter = InMemorySpanExporter()
    sampler = AdjustableSampler(ratio_sampler(0.0))
    provider, _ = build_provider(build_resource("svc", "test", None), sampler, None)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    for _ in range(50):
        with tracer.start_as_current_span("dropped"):
            pass
    assert exporter.get_finished_spans() == ()
    sampler.set_ratio(1.0)
    with tracer.start_as_current_span("kept"):
        pass
    assert [s.name for s in exporter.get_finished_spans()] == ["kept"]
    provider.shutdown()


def test_parent_based_sampling_keeps_sampled_parents():
    exporter = InMemorySpanExporter()
    sampler = AdjustableSampler(ratio_sampler(1.0))
    provider, _ = build_provider(build_resource("svc", "test", None), sampler, None)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("root"):
        sampler.set_ratio(0.0)  # new traces dropped; children of a sampled parent kept
        with tracer.start_as_current_span("child"):
            pass
    assert {s.name for s in exporter.get_finished_spans()} == {"root", "child"}
    resource = exporter.get_finished_spans()[0].resource.attributes
    assert resource["service.name"] == "svc"
    assert resource["deployment.environment.name"] == "test"
    provider.shutdown()
