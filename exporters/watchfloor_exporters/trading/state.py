"""The trading exporter's analytics: what it derives from events, kept in memory.

Derived here: submit→ack and submit→fill latency, fill ratio over each strategy/symbol's last
completed orders, signed slippage against the arrival price, P&L, drawdown from peak equity, win
ratio (share of positive realized-P&L changes), gross/net exposure per currency, broker quota.

On restart: counters start again from zero (Prometheus' rate() handles resets); open orders,
peaks and win/loss tallies are forgotten, so gauges are recomputed from the next snapshots, and
fills of orders submitted before the restart count as orphans for latency but still count as fills.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from watchfloor.metrics import trading as m
from watchfloor_exporters.common.metrics import EVENTS
from watchfloor_exporters.trading import events as ev

EXPORTER = "trading"
UNKNOWN = "unknown"


@dataclass
class OpenOrder:
    strategy: str
    symbol: str
    venue: str
    side: str
    order_type: str
    quantity: float
    submitted_at: datetime
    arrival_price: float
    filled: float = 0.0


_LABEL_FIELDS = ("strategy", "symbol", "venue", "reason", "feed", "rule", "broker", "endpoint",
                 "currency")  # fmt: skip


@functools.cache
def _label_fields(event_type: type) -> tuple[str, ...]:
    """The label-bound fields an event type has (looked up once per type, not per event)."""
    return tuple(f for f in _LABEL_FIELDS if f in event_type.model_fields)  # type: ignore[attr-defined]


class TradingState:
    def __init__(
        self,
        *,
        fill_ratio_window: int = 200,
        max_open_orders: int = 100_000,
        default_capital: float = 1_000_000.0,
    ) -> None:
        self.orders: dict[str, OpenOrder] = {}
        self.max_open_orders = max_open_orders
        self.default_capital = default_capital
        # Per strategy/symbol: the last completed orders' (filled, submitted) and running sums.
        self._completed: dict[tuple[str, str], tuple[deque[tuple[float, float]], list[float]]] = {}
        self._window = fill_ratio_window
        self._positions: dict[tuple[str, str], tuple[str, float, float]] = {}
        self._peak: dict[str, float] = {}
        self._last_realized: dict[str, float] = {}
        self._wins: dict[str, int] = {}
        self._losses: dict[str, int] = {}

    # -- label values a batch would add (checked against the cardinality budget first) ----------

    @staticmethod
    def label_values(events: list[ev.TradingEvent]) -> Iterator[tuple[str, str, str]]:
        for index, event in enumerate(events):
            for field in _label_fields(type(event)):
                value = getattr(event, field)
                if value is not None:
                    yield field, value, f"events[{index}].{field}"

    # -- applying ---------------------------------------------------------------------------------

    def apply(self, event: ev.TradingEvent) -> str:
        """Apply one validated event; returns the outcome (applied or orphan)."""
        handler = getattr(self, f"_on_{event.type}")
        outcome: str = handler(event) or "applied"
        EVENTS.labels(EXPORTER, event.type, outcome).inc()
        return outcome

    def _on_order_submitted(self, event: ev.OrderSubmitted) -> None:
        if len(self.orders) >= self.max_open_orders and event.order_id not in self.orders:
            oldest_id = next(iter(self.orders))
            self._complete(oldest_id, "expired")
        self.orders[event.order_id] = OpenOrder(
            event.strategy, event.symbol, event.venue, event.side, event.order_type,
            event.quantity, event.timestamp, event.arrival_price,
        )  # fmt: skip
        m.record_order(
            strategy=event.strategy, symbol=event.symbol, venue=event.venue, side=event.side,
            order_type=event.order_type, status="submitted",
        )  # fmt: skip
        m.record_submitted_quantity(
            strategy=event.strategy, symbol=event.symbol, side=event.side, quantity=event.quantity
        )

    def _on_order_acked(self, event: ev.OrderAcked) -> str | None:
        order = self.orders.get(event.order_id)
        if order is None:
            return "orphan"
        venue = event.venue or order.venue
        latency = max(0.0, (event.timestamp - order.submitted_at).total_seconds())
        m.record_order_ack(strategy=order.strategy, venue=venue, duration_seconds=latency)
        self._count(order, "acked")
        return None

    def _on_order_filled(self, event: ev.OrderFilled) -> str | None:
        order = self.orders.get(event.order_id)
        venue = event.venue or (order.venue if order else UNKNOWN)
        m.record_fill(
            strategy=event.strategy, symbol=event.symbol, venue=venue, side=event.side,
            quantity=event.quantity,
        )  # fmt: skip
        arrival = event.arrival_price or (order.arrival_price if order else None)
        if arrival is not None:
            bps = m.slippage_bps(side=event.side, arrival_price=arrival, fill_price=event.price)
            m.record_slippage(
                strategy=event.strategy, symbol=event.symbol, side=event.side, bps=bps
            )
        if order is None:
            return "orphan"
        order.filled += event.quantity
        if event.final or order.filled >= order.quantity:
            duration = max(0.0, (event.timestamp - order.submitted_at).total_seconds())
            self._complete(event.order_id, "filled", duration)
        else:
            self._count(order, "partially_filled")
        return None

    def _on_order_cancelled(self, event: ev.OrderCancelled) -> str | None:
        if event.order_id not in self.orders:
            return "orphan"
        self._complete(event.order_id, "cancelled")
        return None

    def _on_order_rejected(self, event: ev.OrderRejected) -> str | None:
        order = self.orders.get(event.order_id)
        venue = event.venue or (order.venue if order else UNKNOWN)
        m.record_rejection(strategy=event.strategy, venue=venue, reason=event.reason)
        if order is None:
            return "orphan"
        self._complete(event.order_id, "rejected")
        return None

    def _on_position_snapshot(self, event: ev.PositionSnapshot) -> None:
        self._positions[(event.strategy, event.symbol)] = (
            event.currency, event.quantity, event.price,
        )  # fmt: skip
        values = [
            q * p for currency, q, p in self._positions.values() if currency == event.currency
        ]
        m.set_exposure(currency=event.currency, gross=sum(abs(v) for v in values), net=sum(values))

    def _on_pnl_snapshot(self, event: ev.PnlSnapshot) -> None:
        strategy = event.strategy
        m.set_pnl(
            strategy=strategy, currency=event.currency, realized=event.realized,
            unrealized=event.unrealized,
        )  # fmt: skip
        equity = (event.capital or self.default_capital) + event.realized + event.unrealized
        peak = max(self._peak.get(strategy, equity), equity)
        self._peak[strategy] = peak
        drawdown = (peak - equity) / peak if peak > 0 else 1.0
        m.set_drawdown(strategy=strategy, ratio=min(1.0, max(0.0, drawdown)))
        previous = self._last_realized.get(strategy)
        self._last_realized[strategy] = event.realized
        if previous is not None and event.realized != previous:
            tally = self._wins if event.realized > previous else self._losses
            tally[strategy] = tally.get(strategy, 0) + 1
            wins, losses = self._wins.get(strategy, 0), self._losses.get(strategy, 0)
            m.set_win_ratio(strategy=strategy, ratio=wins / (wins + losses))

    def _on_market_data_latency(self, event: ev.MarketDataLatency) -> None:
        m.record_market_data(
            feed=event.feed, symbol=event.symbol, latency_seconds=event.latency_seconds,
            at=event.timestamp.timestamp(),
        )  # fmt: skip

    def _on_risk_violation(self, event: ev.RiskViolation) -> None:
        m.record_risk_violation(strategy=event.strategy, rule=event.rule, severity=event.severity)
        m.set_limit_utilisation(
            strategy=event.strategy, rule=event.rule, ratio=abs(event.value / event.limit)
        )

    def _on_broker_api_call(self, event: ev.BrokerApiCall) -> None:
        m.record_broker_call(
            broker=event.broker, endpoint=event.endpoint, status=event.status,
            duration_seconds=event.duration_seconds,
            rate_limit_remaining=event.rate_limit_remaining,
            rate_limit_limit=event.rate_limit_limit,
            rate_limit_reset_seconds=event.rate_limit_reset_seconds,
        )  # fmt: skip

    # -- helpers ----------------------------------------------------------------------------------

    def _count(self, order: OpenOrder, status: str, duration: float | None = None) -> None:
        m.record_order(
            strategy=order.strategy, symbol=order.symbol, venue=order.venue, side=order.side,
            order_type=order.order_type, status=status, duration_seconds=duration,
        )  # fmt: skip

    def _complete(self, order_id: str, status: str, duration: float | None = None) -> None:
        order = self.orders.pop(order_id)
        self._count(order, status, duration)
        window, sums = self._completed.setdefault(
            (order.strategy, order.symbol), (deque(), [0.0, 0.0])
        )
        if len(window) == self._window:
            old_filled, old_submitted = window.popleft()
            sums[0] -= old_filled
            sums[1] -= old_submitted
        filled = min(order.filled, order.quantity)
        window.append((filled, order.quantity))
        sums[0] += filled
        sums[1] += order.quantity
        ratio = min(1.0, max(0.0, sums[0] / sums[1]))
        m.set_fill_ratio(strategy=order.strategy, symbol=order.symbol, ratio=ratio)
