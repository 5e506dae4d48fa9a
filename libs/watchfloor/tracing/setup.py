"""configure_tracing / shutdown_tracing: the OpenTelemetry SDK, wired for Jaeger over OTLP/HTTP.

OpenTelemetry lets a process set its global tracer provider once, and tracers handed out keep
their provider's sampler and resource. So the first call installs the provider; later calls swap
the exporter (endpoint) and the sampling ratio behind stable objects, which every tracer sees.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

import watchfloor

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"


class AdjustableSampler(Sampler):
    """ParentBased(TraceIdRatioBased(ratio)) whose ratio can change after tracers exist."""

    def __init__(self, ratio: float) -> None:
        self._delegate: Sampler = ParentBased(TraceIdRatioBased(ratio))
        self.ratio = ratio

    def set_ratio(self, ratio: float) -> None:
        self._delegate = ParentBased(TraceIdRatioBased(ratio))
        self.ratio = ratio

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        return self._delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"watchfloor({self._delegate.get_description()})"


_lock = threading.Lock()
_provider: TracerProvider | None = None
_sampler: AdjustableSampler | None = None
_processor: BatchSpanProcessor | None = None
_resource_key: tuple[str, str] | None = None


def resolve_endpoint(endpoint: str | None) -> str:
    """Explicit endpoint, else WATCHFLOOR_OTLP_ENDPOINT, else the OTEL_* variables, else local.

    A base URL (http://jaeger:4318) gets the OTLP traces path appended, as the OTel spec does for
    OTEL_EXPORTER_OTLP_ENDPOINT; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is used as given.
    """
    env = os.environ
    base = endpoint or env.get("WATCHFLOOR_OTLP_ENDPOINT")
    if not base and env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
    base = base or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not base:
        return DEFAULT_ENDPOINT
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"the OTLP endpoint must be an http(s) URL, got {base!r}")
    return base if base.rstrip("/").endswith("/v1/traces") else base.rstrip("/") + "/v1/traces"


def resolve_ratio(sample_ratio: float) -> float:
    """The explicit ratio, or OTEL_TRACES_SAMPLER_ARG when the argument was left at 1.0."""
    ratio = sample_ratio
    raw = os.environ.get("OTEL_TRACES_SAMPLER_ARG")
    if sample_ratio == 1.0 and raw:
        try:
            ratio = float(raw)
        except ValueError:
            raise ValueError(f"OTEL_TRACES_SAMPLER_ARG must be a number, got {raw!r}") from None
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"sample_ratio must be within 0..1, got {ratio}")
    return ratio


def build_provider(
    service: str, environment: str, sampler: Sampler, exporter: SpanExporter
) -> tuple[TracerProvider, BatchSpanProcessor]:
    """A TracerProvider with watchfloor's resource and a batch processor (not made global)."""
    resource = Resource.create(
        {
            "service.name": service,
            "service.version": os.environ.get("WATCHFLOOR_SERVICE_VERSION", watchfloor.__version__),
            "deployment.environment.name": environment,
            "deployment.environment": environment,
        }
    )
    provider = TracerProvider(resource=resource, sampler=sampler)
    processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider, processor


def configure_tracing(
    service: str,
    *,
    endpoint: str | None = None,
    sample_ratio: float = 1.0,
    environment: str | None = None,
) -> None:
    """Export this process's spans over OTLP/HTTP (Jaeger v2 listens on :4318).

    Sampling is parent-based: a request that arrives sampled stays sampled; new traces are kept
    with probability `sample_ratio`. Standard OTEL_* variables are honoured (explicit arguments
    win), as are WATCHFLOOR_OTLP_ENDPOINT and WATCHFLOOR_ENVIRONMENT.
    """
    global _provider, _sampler, _processor, _resource_key  # noqa: PLW0603 - process-wide, once
    if not service or not service.strip():
        raise ValueError("configure_tracing needs a service name, e.g. 'order-router'")
    url = resolve_endpoint(endpoint)
    ratio = resolve_ratio(sample_ratio)
    env_name = environment or os.environ.get("WATCHFLOOR_ENVIRONMENT", "development")
    exporter = OTLPSpanExporter(endpoint=url)
    with _lock:
        if _provider is None or _sampler is None:
            _sampler = AdjustableSampler(ratio)
            _provider, _processor = build_provider(service, env_name, _sampler, exporter)
            trace.set_tracer_provider(_provider)
            if trace.get_tracer_provider() is not _provider:
                warnings.warn(
                    "another tracer provider was already installed; watchfloor's spans go to "
                    "it, not to the configured OTLP endpoint",
                    stacklevel=2,
                )
            _resource_key = (service, env_name)
            atexit.register(shutdown_tracing)
            return
        if _resource_key != (service, env_name):
            warnings.warn(
                "service and environment are fixed by the first configure_tracing call "
                f"({_resource_key}); only the endpoint and sample ratio were changed",
                stacklevel=2,
            )
        _sampler.set_ratio(ratio)
        old = _processor
        _processor = BatchSpanProcessor(exporter)
        _provider.add_span_processor(_processor)
        if old is not None:
            old.shutdown()  # type: ignore[no-untyped-call]  # flushes to the old endpoint


def shutdown_tracing(timeout: float = 10.0) -> None:
    """Flush spans still in the batch processor (the provider stays installed)."""
    with _lock:
        if _processor is not None:
            _processor.force_flush(int(timeout * 1000))
