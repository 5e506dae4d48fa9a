"""Tracing for watchfloor services: OpenTelemetry SDK, OTLP/HTTP to Jaeger, trading helpers."""

from watchfloor.tracing.setup import configure_tracing, shutdown_tracing
from watchfloor.tracing.spans import traced
from watchfloor.tracing.trading import OrderTrace, broker_call, market_data, strategy_evaluation

__all__ = [
    "OrderTrace",
    "broker_call",
    "configure_tracing",
    "market_data",
    "shutdown_tracing",
    "strategy_evaluation",
    "traced",
]
