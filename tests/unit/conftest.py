"""Unit-test fixtures: one in-memory span exporter behind the process's global tracer provider.

OpenTelemetry allows one global provider per process, so it is installed once per session;
configure_tracing's own global path is tested in a subprocess (tests/integration).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from watchfloor.metrics import input_errors

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="session")
def _global_provider() -> InMemorySpanExporter:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider, "another global tracer provider was set first"
    return _EXPORTER


@pytest.fixture
def spans(_global_provider: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    _global_provider.clear()
    yield _global_provider
    _global_provider.clear()


@pytest.fixture
def strict() -> Iterator[None]:
    """Metric helpers raise on bad values for the test's duration (the library's strict mode)."""
    before = input_errors.is_strict()
    input_errors.set_strict(True)
    yield
    input_errors.set_strict(before)
