"""A seedable simulated trading day: strategies, symbols, a session with open and close bursts,
partial fills, rejects, cancels, slippage, market-data latency, broker quotas, P&L with drawdowns.

The session is compressed (default 30 minutes open, 2 closed) so a dev box sees a whole day's
shape quickly; activity is U-shaped through the session, with random bursts.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

STRATEGIES = ("momentum", "mean_reversion", "stat_arb", "market_making")
SYMBOLS = {"AAPL": 187.0, "MSFT": 415.0, "NVDA": 121.0, "AMZN": 182.0, "GOOGL": 171.0,
           "TSLA": 245.0, "JPM": 205.0, "SPY": 560.0}  # fmt: skip
VENUES = ("XNAS", "XNYS", "ARCX", "BATS")
FEEDS = ("itch", "pitch")
REJECT_REASONS = ("price_band", "insufficient_margin", "venue_halted", "risk_limit")
RISK_RULES = ("max_position", "max_order_value", "daily_loss", "concentration")


@dataclass
class _Strategy:
    realized: float = 0.0
    unrealized: float = 0.0
    trend: float = 0.0
    positions: dict[str, float] = field(default_factory=dict)


class TradingSimulator:
    def __init__(
        self,
        seed: int | None = None,
        *,
        orders_per_second: float = 12.0,
        session_seconds: float = 1800.0,
        closed_seconds: float = 120.0,
    ) -> None:
        self.rng = random.Random(seed)
        self.prefix = f"sim-{seed if seed is not None else self.rng.getrandbits(32)}"
        self.orders_per_second = orders_per_second
        self.session = session_seconds
        self.closed = closed_seconds
        self.elapsed = 0.0
        self.counter = 0
        self.prices = dict(SYMBOLS)
        self.strategies = {name: _Strategy() for name in STRATEGIES}
        self.quota_used = 0
        self.quota_window_start = 0.0
        self.burst_until = 0.0
        self._since_snapshot = 0.0

    def _id(self) -> str:
        self.counter += 1
        return f"{self.prefix}-{self.counter}"

    def session_open(self) -> bool:
        return self.elapsed % (self.session + self.closed) < self.session

    def step(self, now: datetime, dt: float) -> list[dict[str, Any]]:
        """Events for the last `dt` seconds, timestamped around `now`."""
        self.elapsed += dt
        events: list[dict[str, Any]] = []
        for symbol in self.prices:
            self.prices[symbol] *= math.exp(self.rng.gauss(0, 0.0004 * math.sqrt(max(dt, 1e-3))))
        events += self._market_data(now, dt)
        if self.session_open():
            events += self._orders(now, dt)
        self._since_snapshot += dt
        if self._since_snapshot >= 1.0:
            self._since_snapshot = 0.0
            events += self._snapshots(now)
        return events

    def _intensity(self) -> float:
        position = (self.elapsed % (self.session + self.closed)) / self.session
        u_shape = 0.4 + 1.6 * (2 * position - 1) ** 2  # busy at open and close, calm at noon
        if self.elapsed < self.burst_until:
            u_shape *= 4
        elif self.rng.random() < 0.002:
            self.burst_until = self.elapsed + self.rng.uniform(2, 8)
        return u_shape

    def _poisson(self, mean: float) -> int:
        # Knuth's method; the means here are small.
        limit, count, product = math.exp(-mean), 0, self.rng.random()
        while product > limit:
            count += 1
            product *= self.rng.random()
        return count

    def _market_data(self, now: datetime, dt: float) -> list[dict[str, Any]]:
        events = []
        for symbol in self.prices:
            for _ in range(self._poisson(3 * dt)):
                latency = self.rng.lognormvariate(math.log(0.0004), 0.5)
                if self.rng.random() < 0.005:
                    latency = self.rng.uniform(0.02, 0.15)  # a slow consumer or a feed hiccup
                events.append({
                    "type": "market_data_latency", "id": self._id(), "timestamp": now.isoformat(),
                    "feed": self.rng.choice(FEEDS), "symbol": symbol, "latency_seconds": latency,
                })  # fmt: skip
        return events

    def _orders(self, now: datetime, dt: float) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for _ in range(self._poisson(self.orders_per_second * self._intensity() * dt)):
            events += self._order(now)
        return events

    def _order(self, now: datetime) -> list[dict[str, Any]]:
        rng = self.rng
        strategy = rng.choice(STRATEGIES)
        symbol = rng.choice(tuple(self.prices))
        venue = rng.choice(VENUES)
        side = rng.choice(("buy", "sell"))
        quantity = float(rng.choice((100, 200, 300, 500, 1000)))
        arrival = round(self.prices[symbol], 2)
        order_id = f"{self.prefix}-o{self.counter + 1}"
        base = {"order_id": order_id, "strategy": strategy, "symbol": symbol}
        at = now - timedelta(milliseconds=rng.uniform(20, 80))
        events: list[dict[str, Any]] = [{
            **base, "type": "order_submitted", "id": self._id(), "timestamp": at.isoformat(),
            "venue": venue, "side": side, "order_type": rng.choice(("limit", "limit", "market")),
            "quantity": quantity, "arrival_price": arrival,
        }]  # fmt: skip
        events.append(self._broker_call(at))
        at += timedelta(seconds=rng.lognormvariate(math.log(0.0015), 0.6))
        if rng.random() < 0.03:
            events.append({**base, "type": "order_rejected", "id": self._id(),
                           "timestamp": at.isoformat(), "venue": venue,
                           "reason": rng.choice(REJECT_REASONS)})  # fmt: skip
            return events
        events.append({**base, "type": "order_acked", "id": self._id(), "timestamp": at.isoformat(),
                       "venue": venue})  # fmt: skip
        cancel = rng.random() < 0.06
        parts = rng.choice((1, 1, 1, 2, 3))
        remaining = quantity
        for index in range(parts):
            at += timedelta(seconds=rng.lognormvariate(math.log(0.004), 0.8))
            last = index == parts - 1
            qty = remaining if last and not cancel else math.floor(remaining / 2) or remaining
            remaining -= qty
            slip = rng.gauss(0.8, 2.5) + (rng.uniform(10, 40) if rng.random() < 0.02 else 0)
            direction = 1 if side == "buy" else -1
            price = round(arrival * (1 + direction * slip / 10_000), 4)
            final = last and not cancel
            events.append({**base, "type": "order_filled", "id": self._id(),
                           "timestamp": at.isoformat(), "venue": venue, "side": side,
                           "quantity": qty, "price": price, "final": final})  # fmt: skip
            position = self.strategies[strategy].positions
            position[symbol] = position.get(symbol, 0.0) + direction * qty
            if cancel or remaining <= 0:
                break
        if cancel:
            events.append({**base, "type": "order_cancelled", "id": self._id(),
                           "timestamp": at.isoformat(), "reason": "user"})  # fmt: skip
        return events

    def _broker_call(self, at: datetime) -> dict[str, Any]:
        limit, window = 600, 60.0
        if self.elapsed - self.quota_window_start >= window:
            self.quota_window_start, self.quota_used = self.elapsed, 0
        self.quota_used += 1
        remaining = max(0, limit - self.quota_used)
        status = 429 if remaining == 0 else (503 if self.rng.random() < 0.003 else 200)
        return {
            "type": "broker_api_call", "id": self._id(), "timestamp": at.isoformat(),
            "broker": "prime-broker", "endpoint": "/v2/orders", "status": status,
            "duration_seconds": self.rng.lognormvariate(math.log(0.03), 0.5),
            "rate_limit_remaining": remaining, "rate_limit_limit": limit,
            "rate_limit_reset_seconds": max(0.0, window - (self.elapsed - self.quota_window_start)),
        }  # fmt: skip

    def _snapshots(self, now: datetime) -> list[dict[str, Any]]:
        rng = self.rng
        events: list[dict[str, Any]] = []
        stamp = now.isoformat()
        for name, strategy in self.strategies.items():
            if rng.random() < 0.01:  # regime change: some strategies go through drawdowns
                strategy.trend = rng.gauss(0, 400)
            strategy.unrealized += rng.gauss(strategy.trend, 1500)
            if rng.random() < 0.2:
                booked = strategy.unrealized * rng.uniform(0.2, 0.6)
                strategy.realized += booked
                strategy.unrealized -= booked
            events.append({"type": "pnl_snapshot", "id": self._id(), "timestamp": stamp,
                           "strategy": name, "currency": "USD", "realized": strategy.realized,
                           "unrealized": strategy.unrealized, "capital": 5_000_000})  # fmt: skip
            for symbol, quantity in strategy.positions.items():
                events.append({"type": "position_snapshot", "id": self._id(), "timestamp": stamp,
                               "strategy": name, "symbol": symbol, "currency": "USD",
                               "quantity": quantity, "price": self.prices[symbol]})  # fmt: skip
            if rng.random() < 0.05:
                limit = 1_000_000.0
                value = limit * rng.uniform(0.9, 1.4)
                events.append({"type": "risk_violation", "id": self._id(), "timestamp": stamp,
                               "strategy": name, "rule": rng.choice(RISK_RULES),
                               "severity": "critical" if value > 1.2 * limit else "warning",
                               "value": value, "limit": limit})  # fmt: skip
        return events
