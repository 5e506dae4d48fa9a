"""Spans for the trading domain, with `trading.*` attributes.

An order lives longer than any call: it is submitted in one place and acknowledged and filled
later, often on another thread. `OrderTrace` keeps one span per order open across those events
(ack and fills become span events, the span ends on the final fill, cancel or reject), and
`order.context()` makes it current wherever the order is handled, so logs there carry its ids.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, MutableMapping
from contextlib import AbstractContextManager, contextmanager

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from watchfloor.correlation import HEADER, SPAN_ATTRIBUTE, get_correlation_id
from watchfloor.tracing.spans import TRACER, start_span


class OrderTrace:
    """One order's lifecycle as a span: submit → ack → fill(s) | cancel | reject."""

    def __init__(
        self,
        order_id: str,
        *,
        strategy: str,
        symbol: str,
        side: str,
        quantity: float,
        order_type: str = "limit",
        venue: str | None = None,
        price: float | None = None,
    ) -> None:
        attributes: dict[str, AttributeValue] = {
            "trading.order.id": order_id,
            "trading.strategy": strategy,
            "trading.symbol": symbol,
            "trading.side": side,
            "trading.quantity": quantity,
            "trading.order.type": order_type,
        }
        if venue is not None:
            attributes["trading.venue"] = venue
        if price is not None:
            attributes["trading.price"] = price
        correlation_id = get_correlation_id()
        if correlation_id is not None:
            attributes[SPAN_ATTRIBUTE] = correlation_id
        self.span: Span = TRACER.start_span("order", attributes=attributes)
        self._submitted = time.monotonic()
        self.filled_quantity = 0.0

    def context(self) -> AbstractContextManager[Span]:
        """Make the order's span current (logs and child spans attach to it); does not end it."""
        return trace.use_span(self.span, end_on_exit=False)

    def acked(self, venue_order_id: str | None = None) -> None:
        attributes: dict[str, AttributeValue] = {
            "trading.ack.latency_seconds": time.monotonic() - self._submitted
        }
        if venue_order_id is not None:
            attributes["trading.venue.order_id"] = venue_order_id
        self.span.add_event("order.acked", attributes)

    def filled(self, quantity: float, price: float, *, final: bool) -> None:
        self.filled_quantity += quantity
        self.span.add_event(
            "order.filled",
            {"trading.fill.quantity": quantity, "trading.fill.price": price, "final": final},
        )
        if final:
            self.span.set_attribute("trading.filled_quantity", self.filled_quantity)
            self.span.set_attribute("trading.status", "filled")
            self.span.end()

    def cancelled(self, reason: str | None = None) -> None:
        self.span.set_attribute("trading.status", "cancelled")
        if reason:
            self.span.set_attribute("trading.cancel.reason", reason)
        self.span.end()

    def rejected(self, reason: str) -> None:
        self.span.set_attribute("trading.status", "rejected")
        self.span.set_attribute("trading.reject.reason", reason)
        self.span.set_status(Status(StatusCode.ERROR, f"rejected: {reason}"))
        self.span.end()


def strategy_evaluation(
    strategy: str, **attributes: AttributeValue
) -> AbstractContextManager[Span]:
    """A span around one evaluation of a strategy's signal."""
    return start_span("strategy.evaluate", {"trading.strategy": strategy, **attributes})


def market_data(feed: str, symbol: str) -> AbstractContextManager[Span]:
    """A span around the processing of one market-data update."""
    return start_span("market_data.process", {"trading.feed": feed, "trading.symbol": symbol})


class BrokerCall:
    """The open span of a broker API call; send `headers` with the request (they carry the
    trace context and the correlation id) and say how it answered with `response()`."""

    def __init__(self, span: Span, headers: MutableMapping[str, str]) -> None:
        self.span = span
        self.headers = headers

    def response(self, status: int, *, rate_limit_remaining: float | None = None) -> None:
        self.span.set_attribute("http.response.status_code", status)
        if rate_limit_remaining is not None:
            self.span.set_attribute("trading.broker.rate_limit_remaining", rate_limit_remaining)
        if status >= 500 or status == 429:
            self.span.set_status(Status(StatusCode.ERROR, f"broker answered {status}"))


@contextmanager
def broker_call(
    broker: str,
    endpoint: str,
    method: str = "POST",
    *,
    headers: MutableMapping[str, str] | None = None,
) -> Iterator[BrokerCall]:
    """A CLIENT span around one broker API request.

    `call.headers` (the `headers` given, filled in place, or a new dict) gets `traceparent`
    (and `tracestate`/`baggage` when set) from the configured propagator, pointing at this span,
    and `X-Correlation-ID` when a correlation id is current; pass them to httpx or requests.
    """
    attributes: dict[str, AttributeValue] = {
        "trading.broker": broker,
        "trading.broker.endpoint": endpoint,
        "http.request.method": method,
    }
    correlation_id = get_correlation_id()
    if correlation_id is not None:
        attributes[SPAN_ATTRIBUTE] = correlation_id
    carrier: MutableMapping[str, str] = {} if headers is None else headers
    with TRACER.start_as_current_span(
        "broker.call", kind=SpanKind.CLIENT, attributes=attributes
    ) as span:
        propagate.inject(carrier)
        if correlation_id is not None:
            carrier[HEADER] = correlation_id
        yield BrokerCall(span, carrier)
