"""Issue 13, tracing by the standard: OTEL_* variables, explicit arguments winning over them,
the correlation id on every span, and broker_call as a propagating CLIENT span."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
import requests
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

import watchfloor
from watchfloor.correlation import correlation_scope
from watchfloor.tracing import broker_call
from watchfloor.tracing.setup import (
    AdjustableSampler,
    build_provider,
    build_resource,
    resolve_sampler,
)


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests ignore the developer's OTEL_* / WATCHFLOOR_* settings."""
    for name in list(os.environ):
        if name.startswith(("OTEL_", "WATCHFLOOR_")):
            monkeypatch.delenv(name)


def _provider(sample_ratio: float | None = None) -> tuple[TracerProvider, InMemorySpanExporter]:
    """What configure_tracing builds (sampler, resource, processors), exporting to memory."""
    exporter = InMemorySpanExporter()
    sampler = AdjustableSampler(resolve_sampler(sample_ratio))
    provider, _ = build_provider(build_resource("svc", None, None), sampler, None)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def _roots_and_child_of_unsampled(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("plain")
    for _ in range(20):
        with tracer.start_as_current_span("root"):
            pass
    unsampled = NonRecordingSpan(
        SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(TraceFlags.DEFAULT))
    )
    with trace.use_span(unsampled), tracer.start_as_current_span("child-of-unsampled"):
        pass


@pytest.mark.parametrize(
    ("sampler", "arg", "kept"),
    [
        ("always_off", None, set()),
        ("ALWAYS_ON", None, {"root", "child-of-unsampled"}),
        ("parentbased_always_on", None, {"root"}),
        ("parentbased_always_off", None, set()),
        ("traceidratio", "0", set()),
        ("traceidratio", "1", {"root", "child-of-unsampled"}),
        ("parentbased_traceidratio", "1", {"root"}),
        ("parentbased_traceidratio", "0", set()),
    ],
)
def test_otel_traces_sampler_is_honoured(monkeypatch, sampler, arg, kept):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    if arg is not None:
        monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    provider, exporter = _provider()
    _roots_and_child_of_unsampled(provider)
    assert {span.name for span in exporter.get_finished_spans()} == kept
    provider.shutdown()


def test_no_sampler_variable_keeps_everything_parent_based():
    provider, exporter = _provider()
    _roots_and_child_of_unsampled(provider)
    assert {span.name for span in exporter.get_finished_spans()} == {"root"}
    assert len(exporter.get_finished_spans()) == 20
    provider.shutdown()


@pytest.mark.parametrize(("sampler", "arg"), [("always_off", ""), ("traceidratio", "0")])
def test_an_explicit_sample_ratio_wins_over_the_variables(monkeypatch, sampler, arg):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    provider, exporter = _provider(sample_ratio=1.0)
    _roots_and_child_of_unsampled(provider)
    assert {span.name for span in exporter.get_finished_spans()} == {"root"}
    provider.shutdown()


@pytest.mark.parametrize(
    ("sampler", "arg", "message"),
    [
        ("always_of", "", "OTEL_TRACES_SAMPLER must be one of always_on, always_off"),
        ("traceidratio", "half", "OTEL_TRACES_SAMPLER_ARG must be a number, got 'half'"),
        ("parentbased_traceidratio", "2", r"OTEL_TRACES_SAMPLER_ARG must be within 0\.\.1"),
    ],
)
def test_a_bad_sampler_variable_is_refused_with_the_reason(monkeypatch, sampler, arg, message):
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", sampler)
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", arg)
    with pytest.raises(ValueError, match=message):
        resolve_sampler(None)


def test_service_version_is_the_services_not_the_librarys(monkeypatch):
    assert "service.version" not in build_resource("svc", None, None).attributes
    assert build_resource("svc", None, "4.5.6").attributes["service.version"] == "4.5.6"
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.version=2.3.1,team=execution")
    attributes = build_resource("svc", None, None).attributes
    assert attributes["service.version"] == "2.3.1"
    assert attributes["team"] == "execution"
    assert build_resource("svc", None, "4.5.6").attributes["service.version"] == "4.5.6"
    assert watchfloor.__version__ != "2.3.1"


def test_service_name_and_environment_from_the_variables_unless_given(monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "from-env")
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment.name=prod")
    attributes = build_resource(None, None, None).attributes
    assert attributes["service.name"] == "from-env"
    assert attributes["deployment.environment.name"] == "prod"
    assert attributes["deployment.environment"] == "prod"
    attributes = build_resource("explicit", "staging", None).attributes
    assert attributes["service.name"] == "explicit"
    assert attributes["deployment.environment.name"] == "staging"
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES")
    assert build_resource(None, None, None).attributes["deployment.environment.name"] == (
        "development"
    )


def test_no_service_name_anywhere_is_refused():
    with pytest.raises(ValueError, match=r"needs a service name.*OTEL_SERVICE_NAME"):
        build_resource(None, None, None)


def test_otel_sdk_disabled_hands_out_no_op_tracers(monkeypatch):
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    provider, exporter = _provider()
    with provider.get_tracer("plain").start_as_current_span("nothing") as span:
        assert not span.is_recording()
    assert exporter.get_finished_spans() == ()
    provider.shutdown()


def test_a_plain_opentelemetry_span_carries_the_correlation_id():
    provider, exporter = _provider()
    tracer = provider.get_tracer("not-watchfloor")
    with correlation_scope("corr-plain"), tracer.start_as_current_span("plain"):
        pass
    with (
        correlation_scope("corr-scope"),
        tracer.start_as_current_span("explicit", attributes={"correlation.id": "kept"}),
    ):
        pass
    with tracer.start_as_current_span("outside"):
        pass
    by_name = {span.name: span.attributes for span in exporter.get_finished_spans()}
    assert by_name["plain"]["correlation.id"] == "corr-plain"
    assert by_name["explicit"]["correlation.id"] == "kept"
    assert "correlation.id" not in by_name["outside"]
    provider.shutdown()


def test_broker_call_is_a_client_span_filling_the_headers(spans):
    headers = {"Authorization": "Bearer t"}
    with correlation_scope("corr-broker"), broker_call("ib", "/orders", headers=headers) as call:
        assert call.headers is headers
        call.response(201)
    (span,) = spans.get_finished_spans()
    assert span.kind is SpanKind.CLIENT
    assert span.attributes["correlation.id"] == "corr-broker"
    trace_id, span_id = format(span.context.trace_id, "032x"), format(span.context.span_id, "016x")
    version, sent_trace, sent_parent, flags = headers["traceparent"].split("-")
    assert (version, sent_trace, sent_parent) == ("00", trace_id, span_id)
    assert int(flags, 16) & 0x01  # sampled
    assert headers["X-Correlation-ID"] == "corr-broker"
    assert headers["Authorization"] == "Bearer t"


def test_broker_call_without_a_scope_sends_no_correlation_header(spans):
    with broker_call("ib", "/orders", method="GET") as call:
        pass
    assert "traceparent" in call.headers
    assert "X-Correlation-ID" not in call.headers


class _Recorder(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RecordingHandler)
        self.seen: list[dict[str, str]] = []


class _RecordingHandler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_POST(self) -> None:
        self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def broker() -> Iterator[_Recorder]:
    server = _Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_broker_headers_reach_the_broker_with_httpx_and_requests(spans, broker):
    url = f"http://127.0.0.1:{broker.server_address[1]}/orders"
    with correlation_scope("corr-wire"):
        with broker_call("alpaca", "/orders") as call:
            call.response(httpx.post(url, headers=call.headers, timeout=5).status_code)
        with broker_call("alpaca", "/orders") as call:
            call.response(requests.post(url, headers=call.headers, timeout=5).status_code)
    sent = spans.get_finished_spans()
    assert len(sent) == 2 and len(broker.seen) == 2
    for span, received in zip(sent, broker.seen, strict=True):
        assert received["x-correlation-id"] == "corr-wire"
        assert received["traceparent"].split("-")[1:3] == [
            format(span.context.trace_id, "032x"),
            format(span.context.span_id, "016x"),
        ]
        assert span.attributes["http.response.status_code"] == 201
