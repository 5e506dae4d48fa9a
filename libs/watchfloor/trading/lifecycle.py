"""OrderLifecycle: each step of an order is one call, recorded as span, metrics and log event.

A trading fact used to be written three times, once per signal: a span event (`OrderTrace`), the
catalog metrics (`watchfloor.metrics.trading`) and a log line with
`extra={"event.dataset": "watchfloor.trading"}`, each with its own copy of the order's fields.
Here the order's fields are given once, at submission, and every later step adds only what is new.

Each step runs with the order's span current and its correlation id set, wherever it is called:
histogram exemplars and the log event's `trace.id`/`span.id`/`correlation.id` point at the order.

No step raises into its caller for a bad value: the metric helpers count the values they take
(`watchfloor_metric_input_errors_total`), and a price no metric takes is counted under
`metric="trading_orders"`, the family every step updates. A bad value is left out of the span and
the log event. Strict mode (`watchfloor.metrics.set_strict`) raises ValueError instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import SupportsFloat

from opentelemetry import trace

from watchfloor.correlation import correlation_scope
from watchfloor.metrics import input_errors
from watchfloor.metrics.cardinality import OVERFLOW
from watchfloor.metrics.trading import (
    ORDER_STATUSES,
    ORDERS,
    SLIPPAGE,
    record_fill,
    record_order,
    record_order_ack,
    record_rejection,
    record_slippage,
    record_submitted_quantity,
    set_fill_ratio,
    slippage_bps,
)
from watchfloor.tracing.trading import OrderTrace
from watchfloor.trading.fill_ratio import FILL_RATIOS
from watchfloor.trading.logs import trading_logger

# The venue label of an order submitted without one, as the trading exporter records it.
UNKNOWN_VENUE = "unknown"

_log = trading_logger("orders")
_WORDS = {status: status.replace("_", " ") for status in ORDER_STATUSES}


class OrderLifecycle(OrderTrace):
    """One order, submit → ack → fill(s) | cancel | reject | expire, one call per step.

    Creating it is the submission. It is an `OrderTrace` (same span, same `context()`), so it
    replaces one where an order is traced today; only `filled` gains a default for `final`.
    `arrival_price`, when given, is the price slippage is measured against.
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
        arrival_price: float | None = None,
    ) -> None:
        limit = None if price is None else input_errors.number(ORDERS.name, price, "limit price")
        self._arrival = _arrival_price(arrival_price)
        self.order_id = order_id
        self._strategy = strategy
        self._symbol = symbol
        self._venue = UNKNOWN_VENUE if venue is None else venue
        self._side = side
        self._order_type = order_type
        self._quantity = _amount(quantity)
        self._completed = False
        # Counted before the span starts: in strict mode a bad value raises without leaving an
        # order span open. Counters take no exemplar, so the span need not be current yet.
        self._count("submitted")
        record_submitted_quantity(strategy=strategy, symbol=symbol, side=side, quantity=quantity)
        super().__init__(
            order_id,
            strategy=strategy,
            symbol=symbol,
            side=side,
            quantity=quantity,
            order_type=order_type,
            venue=venue,
            price=limit,
        )
        fields: dict[str, object] = {
            "trading.order.id": order_id,
            "trading.strategy": strategy,
            "trading.symbol": symbol,
            "trading.side": side,
            "trading.order.type": order_type,
        }
        # Numbers go to the log as floats: Elasticsearch maps a field by its first value, and a
        # field first seen as 100 (long) would truncate a later 0.5.
        optional = {
            "trading.quantity": self._quantity,
            "trading.venue": venue,
            "trading.price": limit,
            "trading.arrival_price": self._arrival,
        }
        fields.update((key, value) for key, value in optional.items() if value is not None)
        self._fields = fields
        with self._scope():
            self._log("submitted", {})

    def acked(self, venue_order_id: str | None = None) -> None:
        latency = self.elapsed()
        with self._scope():
            record_order_ack(strategy=self._strategy, venue=self._venue, duration_seconds=latency)
            self._count("acked")
            self._add_ack(latency, venue_order_id)
            fields: dict[str, object] = {"trading.ack.latency_seconds": latency}
            if venue_order_id is not None:
                # Not `trading.venue.order_id` as on the span: in a document `trading.venue` is
                # already the venue's name, and a field cannot be both a string and an object.
                fields["trading.venue_order_id"] = venue_order_id
            self._log("acked", fields)

    def filled(self, quantity: float, price: float, *, final: bool | None = None) -> None:
        """A fill; a final one ends the order. `final` defaults to whether the filled quantity
        has reached the order's."""
        amount = _amount(quantity)  # a bad one is counted by record_fill below
        with self._scope():
            fill_price, bps = self._fill_price(price)
            record_fill(
                strategy=self._strategy,
                symbol=self._symbol,
                venue=self._venue,
                side=self._side,
                quantity=quantity,
            )
            if bps is not None:
                record_slippage(
                    strategy=self._strategy, symbol=self._symbol, side=self._side, bps=bps
                )
            if final is None:
                filled = self.filled_quantity + (amount or 0.0)
                final = self._quantity is not None and filled >= self._quantity
            self._add_fill(amount, fill_price, final=final, slippage_bps=bps)
            fields: dict[str, object] = {
                "trading.fill.final": final,
                "trading.filled_quantity": self.filled_quantity,
            }
            optional = {
                "trading.fill.quantity": amount,
                "trading.fill.price": fill_price,
                "trading.fill.slippage_bps": bps,
            }
            fields.update((key, value) for key, value in optional.items() if value is not None)
            if final:
                duration = self.elapsed()
                self._count("filled", duration)
                self._complete()
                self._end("filled")
                fields["trading.execution.duration_seconds"] = duration
                self._log("filled", fields)
            else:
                self._count("partially_filled")
                self._log("partially_filled", fields)

    def cancelled(self, reason: str | None = None) -> None:
        with self._scope():
            self._count("cancelled")
            self._complete()
            super().cancelled(reason)
            fields = self._final_fields()
            if reason:
                fields["trading.cancel.reason"] = reason
            self._log("cancelled", fields)

    def rejected(self, reason: str) -> None:
        with self._scope():
            record_rejection(strategy=self._strategy, venue=self._venue, reason=reason)
            self._count("rejected")
            self._complete()
            super().rejected(reason)
            fields = self._final_fields()
            fields["trading.reject.reason"] = reason
            self._log("rejected", fields, logging.WARNING)

    def expired(self) -> None:
        with self._scope():
            self._count("expired")
            self._complete()
            super().expired()
            self._log("expired", self._final_fields())

    @contextmanager
    def _scope(self) -> Iterator[None]:
        # Strict mode's ValueError is the caller's own mistake, not the order's: it must not mark
        # the order's span as failed on its way out.
        with trace.use_span(
            self.span, end_on_exit=False, record_exception=False, set_status_on_exception=False
        ):
            if self.correlation_id is None:
                yield
            else:
                with correlation_scope(self.correlation_id):
                    yield

    def _count(self, status: str, duration_seconds: float | None = None) -> None:
        record_order(
            strategy=self._strategy,
            symbol=self._symbol,
            venue=self._venue,
            side=self._side,
            order_type=self._order_type,
            status=status,
            duration_seconds=duration_seconds,
        )

    def _fill_price(self, price: float) -> tuple[float | None, float | None]:
        """The fill price if it is a number, and the fill's slippage if it can be measured; a bad
        price is counted once, under the metric that takes it."""
        if self._arrival is None:
            return input_errors.number(ORDERS.name, price, "fill price"), None
        bps = slippage_bps(side=self._side, arrival_price=self._arrival, fill_price=price)
        return _number(price), None if math.isnan(bps) else bps

    def _complete(self) -> None:
        """Count the order once in its strategy/symbol's fill ratio, whatever ends it."""
        if self._completed:
            return
        self._completed = True
        if self._quantity is None or self._quantity <= 0:
            return  # no ratio to take: the bad quantity was counted at submission
        pair = (_text(self._strategy), _text(self._symbol))
        ratio = FILL_RATIOS.complete(
            pair, min(self.filled_quantity, self._quantity), self._quantity
        )
        set_fill_ratio(strategy=self._strategy, symbol=self._symbol, ratio=ratio)

    def _final_fields(self) -> dict[str, object]:
        return {"trading.filled_quantity": self.filled_quantity}

    def _log(self, status: str, fields: dict[str, object], level: int = logging.INFO) -> None:
        if not _log.isEnabledFor(level):
            return
        extra = {
            **self._fields,
            "event.action": f"order.{status}",
            "trading.status": status,
            **fields,
        }
        _log.log(level, "order %s %s", self.order_id, _WORDS[status], extra=extra)


def _number(value: object) -> float | None:
    """`value` as a finite float, or None; not reported: the caller has counted it elsewhere."""
    # int and float before the SupportsFloat protocol check, which costs microseconds.
    if not isinstance(value, (int, float)) and not isinstance(value, SupportsFloat):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _amount(value: object) -> float | None:
    """A quantity that can be added up: finite and not negative, else None (not reported here:
    the quantity metric it also goes to counts it)."""
    number = _number(value)
    return number if number is not None and number >= 0 else None


def _arrival_price(value: object) -> float | None:
    if value is None:
        return None
    checked = input_errors.number(SLIPPAGE.name, value, "arrival_price")
    if checked is not None and checked <= 0:
        detail = f"arrival_price must be positive, got {checked}"
        input_errors.report(SLIPPAGE.name, input_errors.OUT_OF_RANGE, detail)
        return None
    return checked


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a caller's object with a broken __str__ must not raise from here
        return OVERFLOW
