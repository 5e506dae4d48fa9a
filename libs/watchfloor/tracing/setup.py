"""configure_tracing / shutdown_tracing: the OpenTelemetry SDK, wired for Jaeger over OTLP/HTTP.

OpenTelemetry lets a process set its global tracer provider once, and tracers handed out keep
their provider's sampler and resource. So the first call installs the provider; later calls swap
the exporter (endpoint) and the sampler behind stable objects, which every tracer sees.

The standard OTEL_* variables are read by the SDK itself (sampler, resource, exporter endpoint,
headers, timeout and compression, batch processor, OTEL_SDK_DISABLED); watchfloor only passes
what was given explicitly, so explicit arguments win and everything else is the SDK's.
"""

from __future__ import annotations

import atexit
import os
import threading
import warnings
from collections.abc import Mapping, Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.environment_variables import (
    OTEL_SDK_DISABLED,
    OTEL_TRACES_SAMPLER,
    OTEL_TRACES_SAMPLER_ARG,
)
from opentelemetry.sdk.resources import (
    DEPLOYMENT_ENVIRONMENT,
    SERVICE_NAME,
    SERVICE_VERSION,
    OTELResourceDetector,
    Resource,
)
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import sampling as sdk_sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import (
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace import Link, SpanKind
from opentelemetry.util.types import Attributes

from watchfloor.correlation import SPAN_ATTRIBUTE, get_correlation_id

DEPLOYMENT_ENVIRONMENT_NAME = "deployment.environment.name"
DEFAULT_ENVIRONMENT = "development"
# The values of OTEL_TRACES_SAMPLER the Python SDK implements (the spec's list less the
# jaeger_remote and xray ones); named here so that a typo is an error, not a silent default.
KNOWN_SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)


class AdjustableSampler(Sampler):
    """A sampler that a later configure_tracing call can replace after tracers exist."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def set_ratio(self, ratio: float) -> None:
        self.delegate = ratio_sampler(ratio)

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
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"watchfloor({self.delegate.get_description()})"


class CorrelationSpanProcessor(SpanProcessor):
    """Puts the current correlation id on every span the provider starts, whoever starts it
    (instrumentations, plain OpenTelemetry tracers); an id set explicitly is kept."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        correlation_id = get_correlation_id()
        if correlation_id is not None and SPAN_ATTRIBUTE not in (span.attributes or {}):
            span.set_attribute(SPAN_ATTRIBUTE, correlation_id)


_lock = threading.Lock()
_provider: TracerProvider | None = None
_sampler: AdjustableSampler | None = None
_processor: BatchSpanProcessor | None = None
_resource_key: tuple[object, ...] | None = None


def resolve_endpoint(endpoint: str | None) -> str | None:
    """The explicit endpoint, else WATCHFLOOR_OTLP_ENDPOINT; None leaves it to the exporter,
    which reads OTEL_EXPORTER_OTLP_TRACES_ENDPOINT / OTEL_EXPORTER_OTLP_ENDPOINT (default
    http://localhost:4318/v1/traces).

    A base URL (http://jaeger:4318) gets the OTLP traces path appended, as the OTel spec does for
    OTEL_EXPORTER_OTLP_ENDPOINT.
    """
    base = endpoint or os.environ.get("WATCHFLOOR_OTLP_ENDPOINT")
    if not base:
        return None
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"the OTLP endpoint must be an http(s) URL, got {base!r}")
    return base if base.rstrip("/").endswith("/v1/traces") else base.rstrip("/") + "/v1/traces"


def ratio_sampler(ratio: float) -> Sampler:
    """ParentBased(TraceIdRatioBased(ratio)): sampled parents stay sampled."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"sample_ratio must be within 0..1, got {ratio}")
    return ParentBased(TraceIdRatioBased(ratio))


def resolve_sampler(sample_ratio: float | None) -> Sampler:
    """The explicit ratio, else the sampler OTEL_TRACES_SAMPLER(_ARG) names, as the SDK builds it.

    The SDK logs a warning and falls back to its default on a value it does not know; here such
    a value is refused with the reason, like any other bad configuration.
    """
    if sample_ratio is not None:
        return ratio_sampler(sample_ratio)
    name = os.environ.get(OTEL_TRACES_SAMPLER, "").strip().lower()
    if name and name not in KNOWN_SAMPLERS:
        raise ValueError(
            f"{OTEL_TRACES_SAMPLER} must be one of {', '.join(KNOWN_SAMPLERS)}, got {name!r}"
        )
    raw = os.environ.get(OTEL_TRACES_SAMPLER_ARG, "").strip()
    if name.endswith("traceidratio") and raw:
        try:
            ratio = float(raw)
        except ValueError:
            raise ValueError(f"{OTEL_TRACES_SAMPLER_ARG} must be a number, got {raw!r}") from None
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"{OTEL_TRACES_SAMPLER_ARG} must be within 0..1, got {ratio}")
    # The SDK's own reader of the two variables (what TracerProvider() uses when given no
    # sampler); private, hence the tight opentelemetry-sdk range in pyproject.toml.
    return sdk_sampling._get_from_env_or_default()


def build_resource(
    service: str | None, environment: str | None, service_version: str | None
) -> Resource:
    """Explicit values (and WATCHFLOOR_* variables) over OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES over the defaults; Resource.create reads the OTEL_* ones."""
    detected = OTELResourceDetector().detect().attributes
    name = service or detected.get(SERVICE_NAME)
    if not name or not str(name).strip():
        raise ValueError(
            "configure_tracing needs a service name, e.g. 'order-router' "
            "(or OTEL_SERVICE_NAME / service.name in OTEL_RESOURCE_ATTRIBUTES)"
        )
    explicit: dict[str, str] = {SERVICE_NAME: str(name)}
    version = service_version or os.environ.get("WATCHFLOOR_SERVICE_VERSION")
    if version:
        explicit[SERVICE_VERSION] = version
    env_name = (
        environment
        or os.environ.get("WATCHFLOOR_ENVIRONMENT")
        or detected.get(DEPLOYMENT_ENVIRONMENT_NAME)
        or detected.get(DEPLOYMENT_ENVIRONMENT)
        or DEFAULT_ENVIRONMENT
    )
    # Both names: deployment.environment.name is current, older dashboards query the other.
    explicit[DEPLOYMENT_ENVIRONMENT_NAME] = str(env_name)
    explicit[DEPLOYMENT_ENVIRONMENT] = str(env_name)
    return Resource.create(explicit)


def build_provider(
    resource: Resource, sampler: Sampler, exporter: SpanExporter | None
) -> tuple[TracerProvider, BatchSpanProcessor | None]:
    """A TracerProvider with the correlation processor and a batch processor (not made global).

    The batch processor reads OTEL_BSP_*; a provider disabled by OTEL_SDK_DISABLED hands out
    no-op tracers, so it gets no exporter at all.
    """
    provider = TracerProvider(resource=resource, sampler=sampler)
    provider.add_span_processor(CorrelationSpanProcessor())
    if exporter is None:
        return provider, None
    processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    return provider, processor


def sdk_disabled() -> bool:
    return os.environ.get(OTEL_SDK_DISABLED, "").strip().lower() == "true"


def configure_tracing(
    service: str | None = None,
    *,
    endpoint: str | None = None,
    sample_ratio: float | None = None,
    environment: str | None = None,
    service_version: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> None:
    """Export this process's spans over OTLP/HTTP (Jaeger v2 listens on :4318).

    `sample_ratio` gives parent-based ratio sampling (a request that arrives sampled stays
    sampled); without it OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG decide (default: keep
    all). `headers` and `timeout` go to the exporter, over OTEL_EXPORTER_OTLP_*HEADERS/TIMEOUT.
    Explicit arguments win over every variable; see docs/tracing.md for the table.
    """
    global _provider, _sampler, _processor, _resource_key  # noqa: PLW0603 - process-wide, once
    if service is not None and not service.strip():
        raise ValueError("configure_tracing needs a service name, e.g. 'order-router'")
    url = resolve_endpoint(endpoint)
    sampler = resolve_sampler(sample_ratio)
    resource = build_resource(service, environment, service_version)
    exporter = (
        None if sdk_disabled() else OTLPSpanExporter(endpoint=url, headers=headers, timeout=timeout)
    )
    key = tuple(sorted((k, str(v)) for k, v in resource.attributes.items()))
    with _lock:
        if _provider is None or _sampler is None:
            _sampler = AdjustableSampler(sampler)
            _provider, _processor = build_provider(resource, _sampler, exporter)
            trace.set_tracer_provider(_provider)
            if trace.get_tracer_provider() is not _provider:
                warnings.warn(
                    "another tracer provider was already installed; watchfloor's spans go to "
                    "it, not to the configured OTLP endpoint",
                    stacklevel=2,
                )
            _resource_key = key
            atexit.register(shutdown_tracing)
            return
        if _resource_key != key:
            warnings.warn(
                "the resource (service, version, environment) is fixed by the first "
                "configure_tracing call; only the exporter and the sampler were changed",
                stacklevel=2,
            )
        _sampler.delegate = sampler
        if exporter is None:
            return
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
