"""The trading exporter's derived figures, checked against hand-computed values."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from tests.unit.exporters.conftest import AUTH, event, later


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def post(client, events):
    response = await client.post("/v1/events", json=events, headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def submitted(order_id: str, strategy: str, side: str = "buy", qty: float = 100, **kw):
    return event("order_submitted", order_id=order_id, strategy=strategy, symbol="AAPL",
                 venue="XNAS", side=side, quantity=qty, arrival_price=100.0, **kw)  # fmt: skip


async def test_fill_ratio_with_partial_fills_and_cancel(trading):
    s = "fr-strategy"
    t0 = later(-10)
    await post(trading, [
        submitted("fr-1", s, qty=100, at=t0),
        event("order_filled", later(0.2, t0), order_id="fr-1", strategy=s, symbol="AAPL",
              side="buy", quantity=40, price=100.0, final=False),
        event("order_filled", later(0.5, t0), order_id="fr-1", strategy=s, symbol="AAPL",
              side="buy", quantity=60, price=100.0, final=True),
        submitted("fr-2", s, qty=300, at=t0),
        event("order_filled", later(0.3, t0), order_id="fr-2", strategy=s, symbol="AAPL",
              side="buy", quantity=100, price=100.0, final=False),
        event("order_cancelled", later(1, t0), order_id="fr-2", strategy=s, symbol="AAPL"),
    ])  # fmt: skip
    # (100 + 100) filled of (100 + 300) submitted
    assert sample("trading_fill_ratio", strategy=s, symbol="AAPL") == pytest.approx(0.5)
    labels = dict(strategy=s, symbol="AAPL", venue="XNAS", side="buy", order_type="limit")
    assert sample("trading_orders_total", **labels, status="partially_filled") == 2
    assert sample("trading_orders_total", **labels, status="cancelled") == 1
    assert sample("trading_order_execution_duration_seconds_sum", **labels) == pytest.approx(0.5)


async def test_ack_latency_and_rejection(trading):
    s = "ack-strategy"
    t0 = later(-5)
    await post(trading, [
        submitted("ack-1", s, at=t0),
        event("order_acked", later(0.003, t0), order_id="ack-1", strategy=s, symbol="AAPL"),
        submitted("rej-1", s, at=t0),
        event("order_rejected", later(0.001, t0), order_id="rej-1", strategy=s, symbol="AAPL",
              reason="price_band"),
    ])  # fmt: skip
    assert sample(
        "trading_order_ack_duration_seconds_sum", strategy=s, venue="XNAS"
    ) == pytest.approx(0.003)
    assert (
        sample("trading_order_rejections_total", strategy=s, venue="XNAS", reason="price_band") == 1
    )
    assert sample("trading_fill_ratio", strategy=s, symbol="AAPL") == 0.0


@pytest.mark.parametrize(("side", "price", "bucket", "expected"), [
    ("buy", 100.05, "5.0", 1),    # +5 bps: bought above arrival, a cost
    ("buy", 100.05, "2.0", 0),
    ("sell", 100.05, "-2.0", 1),  # -5 bps: sold above arrival, an improvement
    ("sell", 100.05, "-10.0", 0),
])  # fmt: skip
async def test_slippage_sign_by_side(trading, side, price, bucket, expected):
    s = f"slip-{side}-{bucket}"
    await post(trading, [
        submitted("slip-1", s, side=side),
        event("order_filled", order_id="slip-1", strategy=s, symbol="AAPL", side=side,
              quantity=100, price=price, final=True),
    ])  # fmt: skip
    assert (
        sample("trading_slippage_bps_bucket", strategy=s, symbol="AAPL", side=side, le=bucket)
        == expected
    )


async def test_drawdown_from_peak_and_win_ratio(trading):
    s = "dd-strategy"

    def pnl(realized: float, unrealized: float) -> dict:
        return event("pnl_snapshot", strategy=s, currency="USD", realized=realized,
                     unrealized=unrealized, capital=1000.0)  # fmt: skip

    # equity = 1000 + realized + unrealized: 1000 → 1200 (peak) → 900 → 1100
    await post(trading, [pnl(0, 0), pnl(100, 100), pnl(50, -150)])
    assert sample("trading_strategy_drawdown_ratio", strategy=s) == pytest.approx(0.25)  # 300/1200
    await post(trading, [pnl(80, 20)])
    assert sample("trading_strategy_drawdown_ratio", strategy=s) == pytest.approx(100 / 1200)
    # realized: 0 → 100 (win) → 50 (loss) → 80 (win)
    assert sample("trading_strategy_win_ratio", strategy=s) == pytest.approx(2 / 3)
    assert sample("trading_strategy_pnl", strategy=s, currency="USD", kind="unrealized") == 20


async def test_exposure_gross_and_net_per_currency(trading):
    def position(strategy: str, symbol: str, qty: float, price: float) -> dict:
        return event("position_snapshot", strategy=strategy, symbol=symbol, currency="JPY",
                     quantity=qty, price=price)  # fmt: skip

    await post(trading, [position("x1", "7203", 100, 10.0), position("x2", "6758", -50, 20.0)])
    assert sample("trading_exposure", currency="JPY", kind="gross") == 2000
    assert sample("trading_exposure", currency="JPY", kind="net") == 0
    await post(trading, [position("x1", "7203", 300, 10.0)])  # a snapshot replaces, not adds
    assert sample("trading_exposure", currency="JPY", kind="net") == 2000


async def test_replaying_a_batch_does_not_double_count(trading):
    s = "replay-strategy"
    batch = [submitted("rp-1", s), event("order_filled", order_id="rp-1", strategy=s,
             symbol="AAPL", side="buy", quantity=100, price=100.0, final=True)]  # fmt: skip
    assert await post(trading, batch) == {"accepted": 2, "duplicates": 0}
    assert await post(trading, batch) == {"accepted": 0, "duplicates": 2}
    assert await post(trading, [batch[0], batch[0]]) == {"accepted": 0, "duplicates": 2}
    assert sample("trading_fills_total", strategy=s, symbol="AAPL", venue="XNAS", side="buy") == 1


async def test_orphan_fill_still_counts_the_fill(trading):
    s = "orphan-strategy"
    await post(trading, [event("order_filled", order_id="never-seen", strategy=s, symbol="AAPL",
                               side="sell", quantity=10, price=1.0, final=True,
                               arrival_price=1.0)])  # fmt: skip
    assert (
        sample("trading_fills_total", strategy=s, symbol="AAPL", venue="unknown", side="sell") == 1
    )
    assert sample("watchfloor_exporter_events_total", exporter="trading", type="order_filled",
                  outcome="orphan") >= 1  # fmt: skip


async def test_market_data_risk_and_broker(trading):
    await post(trading, [
        event("market_data_latency", feed="md-feed", symbol="AAPL", latency_seconds=0.0004),
        event("risk_violation", strategy="risk-s", rule="max_position", severity="critical",
              value=1_500_000, limit=1_000_000),
        event("broker_api_call", broker="pb-test", endpoint="/v2/orders", status=429,
              duration_seconds=0.05, rate_limit_remaining=0, rate_limit_limit=600,
              rate_limit_reset_seconds=12.5),
    ])  # fmt: skip
    assert sample("trading_market_data_updates_total", feed="md-feed", symbol="AAPL") == 1
    assert (
        sample("trading_risk_limit_utilisation_ratio", strategy="risk-s", rule="max_position")
        == 1.5
    )
    assert (
        sample("trading_broker_rate_limit_reset_seconds", broker="pb-test", endpoint="/v2/orders")
        == 12.5
    )


async def test_ndjson_is_accepted(trading):
    lines = "\n".join(__import__("json").dumps(e) for e in [
        event("market_data_latency", feed="nd-feed", symbol="MSFT", latency_seconds=0.001),
        event("market_data_latency", feed="nd-feed", symbol="MSFT", latency_seconds=0.002),
    ])  # fmt: skip
    response = await trading.post(
        "/v1/events", content=lines, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert response.json() == {"accepted": 2, "duplicates": 0}
