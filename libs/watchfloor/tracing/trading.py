"""Spans for the trading domain, with `trading.*` attributes.

An order lives longer than any call: it is submitted in one place and acknowledged and filled
later, often on another thread. `OrderTrace` keeps one span per order open across those events
(ack and fills become span events, the span ends on the final fill, cancel, reject or expiry),
and `order.context()` makes it current wherever the order is handled, so logs there carry its
ids.
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
    """One order's lifecycle as a span: submit → ack → fill(s) | cancel | reject | expire.

    Spans only; `watchfloor.trading.OrderLifecycle` is the same object that also records the
    catalog metrics and a trading log event at each step.
    """

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
        # Kept so the order's later steps, often on another thread, can name the same operation.
        self.correlation_id = get_correlation_id()
        if self.correlation_id is not None:
            attributes[SPAN_ATTRIBUTE] = self.correlation_id
        self.span: Span = TRACER.start_span("order", attributes=attributes)
        self._submitted = time.monotonic()
        self.filled_quantity = 0.0

    def context(self) -> AbstractContextManager[Span]:
        """Make the order's span current (logs and child spans attach to it); does not end it."""
        return trace.use_span(self.span, end_on_exit=False)

    def elapsed(self) -> float:
        """Seconds since the order was submitted (this object was created)."""
        return time.monotonic() - self._submitted

    def acked(self, venue_order_id: str | None = None) -> None:
        self._add_ack(self.elapsed(), venue_order_id)

    def filled(self, quantity: float, price: float, *, final: bool) -> None:
        self._add_fill(quantity, price, final=final)
        if final:
            self._end("filled")

    def cancelled(self, reason: str | None = None) -> None:
        self._end("cancelled", "trading.cancel.reason", reason or None)

    def rejected(self, reason: str) -> None:
        self.span.set_status(Status(StatusCode.ERROR, f"rejected: {reason}"))
        self._end("rejected", "trading.reject.reason", reason)

    def expired(self) -> None:
        self._end("expired")

    def _add_ack(self, latency_seconds: float, venue_order_id: str | None) -> None:
        attributes: dict[str, AttributeValue] = {"trading.ack.latency_seconds": latency_seconds}
        if venue_order_id is not None:
            attributes["trading.venue.order_id"] = venue_order_id
        self.span.add_event("order.acked", attributes)

    def _add_fill(
        self,
        quantity: float | None,
        price: float | None,
        *,
        final: bool,
        slippage_bps: float | None = None,
    ) -> None:
        """The `order.filled` event; a None value (one a caller got wrong) is left out."""
        attributes: dict[str, AttributeValue] = {}
        if quantity is not None:
            self.filled_quantity += quantity
            attributes["trading.fill.quantity"] = quantity
        if price is not None:
            attributes["trading.fill.price"] = price
        attributes["final"] = final
        if slippage_bps is not None:
            attributes["trading.fill.slippage_bps"] = slippage_bps
        self.span.add_event("order.filled", attributes)

    def _end(self, status: str, reason_key: str | None = None, reason: str | None = None) -> None:
        self.span.set_attribute("trading.filled_quantity", self.filled_quantity)
        self.span.set_attribute("trading.status", status)
        if reason_key is not None and reason is not None:
            self.span.set_attribute(reason_key, reason)
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
