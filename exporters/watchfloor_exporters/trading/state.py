"""The trading exporter's analytics: what it derives from events, kept in memory.

Derived here: submit→ack and submit→fill latency, fill ratio over each strategy/symbol's last
completed orders, signed slippage against the arrival price, P&L, drawdown from peak equity, win
ratio (share of positive realized-P&L changes), gross/net exposure per currency, broker quota.

Every change goes through the batch's journal, so a refused batch leaves no trace. Running totals
(fill-ratio windows, exposure) are exact integer sums (`exact`): they never drift, and a total
beyond the float range refuses the event that would cause it, naming the field.

Memory is bounded: at most `max_open_orders` open orders (the oldest is counted `expired` to make
room) and `max_tracked` fill-ratio windows, positions and strategies each (the least recently
updated is forgotten: its window restarts, its position leaves the exposure until its next
snapshot, its peak restarts from the next P&L snapshot).

On restart: counters start again from zero (Prometheus' rate() handles resets); open orders,
peaks and win/loss tallies are forgotten, so gauges are recomputed from the next snapshots, and
fills of orders submitted before the restart count as orphans for latency but still count as fills.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from watchfloor.metrics import trading as m
from watchfloor_exporters.common.exact import to_float, units
from watchfloor_exporters.common.journal import Journal, Rejected
from watchfloor_exporters.common.metrics import count_event
from watchfloor_exporters.trading import events as ev

EXPORTER = "trading"
UNKNOWN = "unknown"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(slots=True)
class OpenOrder:
    strategy: str
    symbol: str
    venue: str
    side: str
    order_type: str
    quantity: float
    submitted_at: int  # unix microseconds (exact, unlike a float of seconds)
    arrival_price: float
    filled: float = 0.0


class FillWindow:
    """The last `size` completed orders' (filled, submitted) quantities and their exact sums."""

    __slots__ = ("_filled", "_next", "_size", "_submitted", "filled_units", "submitted_units")

    def __init__(self, size: int) -> None:
        self._size = size
        self._filled = array("d")
        self._submitted = array("d")
        self._next = 0  # the slot the next completion overwrites, once the window is full
        self.filled_units = 0
        self.submitted_units = 0

    def push(self, filled: float, submitted: float, journal: Journal) -> float:
        """Add a completed order; returns filled / submitted over the window (0..1)."""
        saved = (self._next, self.filled_units, self.submitted_units)
        if len(self._filled) < self._size:
            self._filled.append(filled)
            self._submitted.append(submitted)
            journal.undo(self._drop_last)
        else:
            slot = self._next
            old = (self._filled[slot], self._submitted[slot])
            self.filled_units -= units(old[0])
            self.submitted_units -= units(old[1])
            self._filled[slot], self._submitted[slot] = filled, submitted
            self._next = (slot + 1) % self._size
            journal.undo(lambda: self._put_back(slot, old))
        self.filled_units += units(filled)
        self.submitted_units += units(submitted)
        journal.undo(lambda: self._restore(saved))
        # Quantities are positive, so the submitted sum is too; int / int is correctly rounded.
        return self.filled_units / self.submitted_units

    def _drop_last(self) -> None:
        self._filled.pop()
        self._submitted.pop()

    def _put_back(self, slot: int, old: tuple[float, float]) -> None:
        self._filled[slot], self._submitted[slot] = old

    def _restore(self, saved: tuple[int, int, int]) -> None:
        self._next, self.filled_units, self.submitted_units = saved


@dataclass(frozen=True, slots=True)
class StrategyRecord:
    peak: float
    last_realized: float
    wins: int
    losses: int


class TradingState:
    def __init__(
        self,
        *,
        fill_ratio_window: int = 200,
        max_open_orders: int = 50_000,
        max_tracked: int = 10_000,
        default_capital: float = 1_000_000.0,
    ) -> None:
        self.orders: dict[str, OpenOrder] = {}
        self.max_open_orders = max_open_orders
        self.max_tracked = max_tracked
        self.default_capital = default_capital
        self._window = fill_ratio_window
        self._windows: OrderedDict[tuple[str, str], FillWindow] = OrderedDict()
        # (strategy, symbol) -> (currency, quantity * price); per currency: exact (gross, net).
        self._positions: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._exposure: dict[str, tuple[int, int]] = {}
        self._strategies: OrderedDict[str, StrategyRecord] = OrderedDict()

    # -- applying ---------------------------------------------------------------------------------

    def apply(self, event: ev.TradingEvent, journal: Journal) -> None:
        """Apply one validated event within `journal`; Rejected names a field it refuses."""
        handler = getattr(self, f"_on_{event.type}")
        outcome: str = handler(event, journal) or "applied"
        journal.later(count_event, EXPORTER, event.type, outcome)

    def _on_order_submitted(self, event: ev.OrderSubmitted, journal: Journal) -> None:
        if event.order_id not in self.orders and len(self.orders) >= self.max_open_orders:
            self._complete(next(iter(self.orders)), "expired", journal)
        # Interned: thousands of open orders share a few strategy, symbol and venue names.
        order = OpenOrder(
            sys.intern(event.strategy), sys.intern(event.symbol), sys.intern(event.venue),
            event.side, event.order_type, event.quantity, _micros(event.timestamp),
            event.arrival_price,
        )  # fmt: skip
        journal.put(self.orders, event.order_id, order)
        journal.later(
            m.record_order, strategy=event.strategy, symbol=event.symbol, venue=event.venue,
            side=event.side, order_type=event.order_type, status="submitted",
        )  # fmt: skip
        journal.later(
            m.record_submitted_quantity, strategy=event.strategy, symbol=event.symbol,
            side=event.side, quantity=event.quantity,
        )  # fmt: skip

    def _on_order_acked(self, event: ev.OrderAcked, journal: Journal) -> str | None:
        order = self.orders.get(event.order_id)
        if order is None:
            return "orphan"
        latency = max(0, _micros(event.timestamp) - order.submitted_at) / 1e6
        journal.later(
            m.record_order_ack, strategy=order.strategy, venue=event.venue or order.venue,
            duration_seconds=latency,
        )  # fmt: skip
        self._count(order, "acked", journal)
        return None

    def _on_order_filled(self, event: ev.OrderFilled, journal: Journal) -> str | None:
        order = self.orders.get(event.order_id)
        venue = event.venue or (order.venue if order else UNKNOWN)
        journal.later(
            m.record_fill, strategy=event.strategy, symbol=event.symbol, venue=venue,
            side=event.side, quantity=event.quantity,
        )  # fmt: skip
        arrival = event.arrival_price or (order.arrival_price if order else None)
        if arrival is not None:
            bps = m.slippage_bps(side=event.side, arrival_price=arrival, fill_price=event.price)
            _finite(bps, "price", "slippage against the arrival price")
            journal.later(
                m.record_slippage, strategy=event.strategy, symbol=event.symbol,
                side=event.side, bps=bps,
            )  # fmt: skip
        if order is None:
            return "orphan"
        previous = order.filled
        order.filled = previous + event.quantity
        journal.undo(lambda: setattr(order, "filled", previous))
        if event.final or order.filled >= order.quantity:
            duration = max(0, _micros(event.timestamp) - order.submitted_at) / 1e6
            self._complete(event.order_id, "filled", journal, duration)
        else:
            self._count(order, "partially_filled", journal)
        return None

    def _on_order_cancelled(self, event: ev.OrderCancelled, journal: Journal) -> str | None:
        if event.order_id not in self.orders:
            return "orphan"
        self._complete(event.order_id, "cancelled", journal)
        return None

    def _on_order_rejected(self, event: ev.OrderRejected, journal: Journal) -> str | None:
        order = self.orders.get(event.order_id)
        venue = event.venue or (order.venue if order else UNKNOWN)
        journal.later(m.record_rejection, strategy=event.strategy, venue=venue, reason=event.reason)
        if order is None:
            return "orphan"
        self._complete(event.order_id, "rejected", journal)
        return None

    def _on_position_snapshot(self, event: ev.PositionSnapshot, journal: Journal) -> None:
        key = (event.strategy, event.symbol)
        value = event.quantity * event.price  # |q|, p <= 1e18: finite
        changes: dict[str, tuple[int, int]] = {}
        old = self._positions.get(key)
        if old is not None:
            self._shift(changes, old[0], old[1], -1)
            journal.pop(self._positions, key)
        elif len(self._positions) >= self.max_tracked:
            evicted = next(iter(self._positions))
            currency, evicted_value = journal.pop(self._positions, evicted)
            self._shift(changes, currency, evicted_value, -1)
        if value != 0:
            journal.put(self._positions, key, (sys.intern(event.currency), value))
            self._shift(changes, event.currency, value, +1)
        for currency, (gross, net) in changes.items():
            try:
                as_floats = (to_float(gross), to_float(net))
            except OverflowError:
                raise Rejected(
                    "quantity", f"the {currency} exposure would exceed the float range"
                ) from None
            journal.put(self._exposure, currency, (gross, net))
            journal.later(m.set_exposure, currency=currency, gross=as_floats[0], net=as_floats[1])

    def _shift(
        self, changes: dict[str, tuple[int, int]], currency: str, value: float, sign: int
    ) -> None:
        gross, net = changes.get(currency) or self._exposure.get(currency, (0, 0))
        amount = units(value)
        changes[currency] = (gross + sign * abs(amount), net + sign * amount)

    def _on_pnl_snapshot(self, event: ev.PnlSnapshot, journal: Journal) -> None:
        strategy = event.strategy
        equity = (event.capital or self.default_capital) + event.realized + event.unrealized
        _finite(equity, "realized", "capital + realized + unrealized")
        record = self._strategies.get(strategy)
        if record is None:
            if len(self._strategies) >= self.max_tracked:
                journal.pop(self._strategies, next(iter(self._strategies)))
            record = StrategyRecord(equity, event.realized, 0, 0)
            previous = None
        else:
            self._strategies.move_to_end(strategy)
            previous = record.last_realized
        peak = max(record.peak, equity)
        # A peak at or below zero has nothing left to lose: fully drawn down.
        drawdown = min(1.0, (peak - equity) / peak) if peak > 0 else 1.0
        wins, losses = record.wins, record.losses
        if previous is not None and event.realized != previous:
            wins, losses = (wins + 1, losses) if event.realized > previous else (wins, losses + 1)
            journal.later(m.set_win_ratio, strategy=strategy, ratio=wins / (wins + losses))
        journal.put(self._strategies, strategy, StrategyRecord(peak, event.realized, wins, losses))
        journal.later(
            m.set_pnl, strategy=strategy, currency=event.currency, realized=event.realized,
            unrealized=event.unrealized,
        )  # fmt: skip
        journal.later(m.set_drawdown, strategy=strategy, ratio=drawdown)

    def _on_market_data_latency(self, event: ev.MarketDataLatency, journal: Journal) -> None:
        journal.later(
            m.record_market_data, feed=event.feed, symbol=event.symbol,
            latency_seconds=event.latency_seconds, at=event.timestamp.timestamp(),
        )  # fmt: skip

    def _on_risk_violation(self, event: ev.RiskViolation, journal: Journal) -> None:
        ratio = abs(event.value / event.limit)
        _finite(ratio, "limit", "value / limit")
        journal.later(
            m.record_risk_violation, strategy=event.strategy, rule=event.rule,
            severity=event.severity,
        )  # fmt: skip
        journal.later(
            m.set_limit_utilisation, strategy=event.strategy, rule=event.rule, ratio=ratio
        )

    def _on_broker_api_call(self, event: ev.BrokerApiCall, journal: Journal) -> None:
        journal.later(
            m.record_broker_call, broker=event.broker, endpoint=event.endpoint,
            status=event.status, duration_seconds=event.duration_seconds,
            rate_limit_remaining=event.rate_limit_remaining,
            rate_limit_limit=event.rate_limit_limit,
            rate_limit_reset_seconds=event.rate_limit_reset_seconds,
        )  # fmt: skip

    # -- helpers ----------------------------------------------------------------------------------

    def _count(
        self, order: OpenOrder, status: str, journal: Journal, duration: float | None = None
    ) -> None:
        journal.later(
            m.record_order, strategy=order.strategy, symbol=order.symbol, venue=order.venue,
            side=order.side, order_type=order.order_type, status=status,
            duration_seconds=duration,
        )  # fmt: skip

    def _complete(
        self, order_id: str, status: str, journal: Journal, duration: float | None = None
    ) -> None:
        order = journal.pop(self.orders, order_id)
        self._count(order, status, journal, duration)
        key = (order.strategy, order.symbol)
        window = self._windows.get(key)
        if window is None:
            if len(self._windows) >= self.max_tracked:
                journal.pop(self._windows, next(iter(self._windows)))
            window = FillWindow(self._window)
            journal.put(self._windows, key, window)
        else:
            self._windows.move_to_end(key)
        ratio = window.push(min(order.filled, order.quantity), order.quantity, journal)
        journal.later(m.set_fill_ratio, strategy=order.strategy, symbol=order.symbol, ratio=ratio)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _finite(value: float, field: str, what: str) -> None:
    if not math.isfinite(value):
        raise Rejected(field, f"{what} is not a finite number ({value})")
