"""Issue 12 (exporters): inputs that half-applied a batch, poisoned metrics or grew memory."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.exporters.conftest import AUTH, TOKEN, event, later
from watchfloor.metrics import OVERFLOW, cardinality
from watchfloor_exporters.common.http import MAX_BATCHES_IN_FLIGHT
from watchfloor_exporters.common.ingest import SeenIds
from watchfloor_exporters.trading.app import build as build_trading


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def pair(n: int, strategy: str, quantity: float) -> list[dict[str, object]]:
    order = dict(order_id=f"{strategy}-{n}", strategy=strategy, symbol="HALF")
    return [
        event("order_submitted", **order, venue="XNAS", side="buy", quantity=quantity,
              arrival_price=10.0),
        event("order_cancelled", **order),
    ]  # fmt: skip


async def test_a_batch_that_used_to_divide_by_zero_applies_whole_and_replays_as_duplicates(
    trading,
):
    # 2**54 then 199 ones: a float running sum of the window lost the ones, and once 2**54 left
    # the window the submitted sum read 0 (ZeroDivisionError, 500, the first 403 events applied).
    quantities = [2.0**54] + [1.0] * 199 + [0.5, 0.5]
    batch = [e for n, q in enumerate(quantities) for e in pair(n, "half", q)]
    batch.append(event("market_data_latency", feed="half-feed", symbol="HALF", latency_seconds=0))
    response = await trading.post("/v1/events", json=batch, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 405, "duplicates": 0}
    assert sample("trading_fill_ratio", strategy="half", symbol="HALF") == 0.0
    replay = await trading.post("/v1/events", json=batch, headers=AUTH)
    assert replay.json() == {"accepted": 0, "duplicates": 405}


async def test_a_refused_event_rolls_back_the_events_before_it(trading):
    good = [
        event("order_submitted", order_id="rb-1", strategy="rollback", symbol="RB", venue="XNAS",
              side="buy", quantity=5, arrival_price=10.0),
        event("pnl_snapshot", strategy="rollback", currency="USD", realized=1.0, unrealized=0.0),
    ]  # fmt: skip
    # Each field is in range; their ratio is not: value / limit overflows to inf.
    bad = event("risk_violation", strategy="rollback", rule="r", severity="critical",
                value=1e18, limit=1e-300)  # fmt: skip
    response = await trading.post("/v1/events", json=[*good, bad], headers=AUTH)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "events[2].limit"
    assert "nothing from this batch was applied" in response.json()["error"]
    labels = dict(strategy="rollback", symbol="RB", venue="XNAS", side="buy", order_type="limit")
    assert sample("trading_orders_total", **labels, status="submitted") is None
    assert (
        sample("trading_strategy_pnl", strategy="rollback", currency="USD", kind="realized") is None
    )
    # The state was rolled back too: the order is unknown, so its fill is an orphan.
    fill = event("order_filled", order_id="rb-1", strategy="rollback", symbol="RB", side="buy",
                 quantity=5, price=10.0, final=True)  # fmt: skip
    orphans = sample("watchfloor_exporter_events_total", exporter="trading", type="order_filled",
                     outcome="orphan") or 0  # fmt: skip
    assert (await trading.post("/v1/events", json=[fill], headers=AUTH)).status_code == 200
    assert sample("watchfloor_exporter_events_total", exporter="trading", type="order_filled",
                  outcome="orphan") == orphans + 1  # fmt: skip
    # Nothing was remembered: the corrected batch goes through whole.
    fixed = await trading.post("/v1/events", json=[*good, {**bad, "limit": 2.0}], headers=AUTH)
    assert fixed.json() == {"accepted": 3, "duplicates": 0}


def position(**fields: object) -> dict[str, object]:
    return event("position_snapshot", currency="USD",
                 **{"strategy": "poison", "symbol": "P", "quantity": 1.0, "price": 1.0, **fields})  # fmt: skip


def risk(**fields: object) -> dict[str, object]:
    return event("risk_violation", strategy="poison", rule="r", severity="warning",
                 **{"value": 1.0, "limit": 1.0, **fields})  # fmt: skip


def pnl(**fields: object) -> dict[str, object]:
    return event("pnl_snapshot", strategy="poison", currency="USD",
                 **{"realized": 0.0, "unrealized": 0.0, **fields})  # fmt: skip


def filled(**fields: object) -> dict[str, object]:
    return event("order_filled", order_id="poison-1", strategy="poison", symbol="P", side="buy",
                 **{"quantity": 1.0, "price": 1.0, "final": True, "arrival_price": 1.0, **fields})  # fmt: skip


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([position(quantity=1e308)], "events[0].quantity"),
        ([position(quantity=-1e308)], "events[0].quantity"),
        ([position(price=1e300)], "events[0].price"),
        ([risk(value=1e308, limit=1e-308)], "events[0].value"),
        ([risk(value=1e18, limit=1e-300)], "events[0].limit"),
        ([pnl(realized=1e308)], "events[0].realized"),
        ([pnl(unrealized=-1e300)], "events[0].unrealized"),
        ([filled(price=1e18, arrival_price=1e-300)], "events[0].price"),
        ([position(quantity="100")], "events[0].quantity"),
        ([position(quantity=True)], "events[0].quantity"),
        ([filled(final="true")], "events[0].final"),
        ([filled(final=1)], "events[0].final"),
        (
            [event("broker_api_call", broker="b", endpoint="/e", status="200", duration_seconds=0)],
            "events[0].status",
        ),
        (
            [event("broker_api_call", broker="b", endpoint="/e", status=200.0, duration_seconds=0)],
            "events[0].status",
        ),
        ([position(timestamp="0001-01-01T00:00:00Z")], "events[0].timestamp"),
        ([position(timestamp=datetime.now(UTC).timestamp())], "events[0].timestamp"),
        ([position(), position(timestamp=later(-8 * 86400).isoformat())], "events[1].timestamp"),
    ],
)
async def test_values_that_would_poison_metrics_are_refused_by_field(trading, body, field):
    response = await trading.post("/v1/events", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]], response.json()


async def test_large_finite_values_keep_every_metric_finite(trading):
    big = [
        event("position_snapshot", strategy="big", symbol=f"B{n}", currency="XXB",
              quantity=sign * 1e18, price=1e18)
        for n, sign in enumerate((1, 1, -1, 1))
    ]  # fmt: skip
    big += [
        event("pnl_snapshot", strategy="big", currency="XXB", realized=1e18, unrealized=0.0,
              capital=1e18),
        event("risk_violation", strategy="big", rule="r", severity="info", value=-1e18, limit=1e-18),
        event("order_submitted", order_id="big-1", strategy="big", symbol="B0", venue="v",
              side="sell", quantity=1e18, arrival_price=1e-18),
        event("order_filled", order_id="big-1", strategy="big", symbol="B0", side="sell",
              quantity=1e18, price=1e18, final=True),
    ]  # fmt: skip
    response = await trading.post("/v1/events", json=big, headers=AUTH)
    assert response.status_code == 200, response.text
    assert sample("trading_exposure", currency="XXB", kind="gross") == 4e36
    assert sample("trading_exposure", currency="XXB", kind="net") == 2e36
    # A real 90% loss after a huge peak still shows as a drawdown (it used to read 0).
    loss = event("pnl_snapshot", strategy="big", currency="XXB", realized=-0.8e18,
                 unrealized=0.0, capital=1e18)  # fmt: skip
    assert (await trading.post("/v1/events", json=[loss], headers=AUTH)).status_code == 200
    assert sample("trading_strategy_drawdown_ratio", strategy="big") == pytest.approx(0.9)
    text = (await trading.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            assert math.isfinite(s.value), s


async def test_exposure_sums_are_exact(trading):
    # A float running sum would lose the 1 beside 1e18 for good.
    snapshots = [
        event("position_snapshot", strategy="exact", symbol=symbol, currency="XXE",
              quantity=quantity, price=1.0)
        for symbol, quantity in (("E1", 1e18), ("E2", 1.0), ("E1", 0.0))
    ]  # fmt: skip
    assert (await trading.post("/v1/events", json=snapshots, headers=AUTH)).status_code == 200
    assert sample("trading_exposure", currency="XXE", kind="net") == 1.0
    assert sample("trading_exposure", currency="XXE", kind="gross") == 1.0


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """An exporter's caps set small through its environment, and the guard's clock by hand."""
    monkeypatch.setenv("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", "3")
    monkeypatch.setenv("WATCHFLOOR_MAX_SERIES_PER_METRIC", "60")
    monkeypatch.setenv("WATCHFLOOR_SERIES_TTL_SECONDS", "60")
    now = [2_000_000.0]
    monkeypatch.setattr(cardinality, "_clock", lambda: now[0])
    cardinality.reset()
    yield now
    monkeypatch.undo()
    cardinality.reset()


async def test_a_full_label_cap_frees_up_once_values_go_idle(small_caps):
    app = build_trading(TOKEN, False, 0, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:

        async def post(symbol: str) -> None:
            body = [event("market_data_latency", feed="cap", symbol=symbol, latency_seconds=0)]
            response = await c.post("/v1/events", json=body, headers=AUTH)
            assert response.status_code == 200, response.text

        for symbol in ("C1", "C2", "C3", "C4"):
            await post(symbol)
        assert sample("trading_market_data_updates_total", feed="cap", symbol="C4") is None
        assert sample("trading_market_data_updates_total", feed="cap", symbol=OVERFLOW) == 1
        small_caps[0] += 61
        await post("C5")  # it used to be refused until the process restarted
        assert sample("trading_market_data_updates_total", feed="cap", symbol="C5") == 1
        assert sample("trading_market_data_updates_total", feed="cap", symbol="C1") is None


async def test_label_combinations_cannot_grow_the_exposition(small_caps):
    app = build_trading(TOKEN, False, 0, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        before = len((await c.get("/metrics")).text.splitlines())
        for strategy in range(3):  # every label under its cap of 3 ...
            batch = [
                event("order_submitted", order_id=f"combo-{strategy}-{symbol}",
                      strategy=f"combo-{strategy}", symbol=f"X{symbol}", venue=f"V{symbol}",
                      side=side, order_type=kind, quantity=1, arrival_price=1.0)
                for symbol in range(3) for side in ("buy", "sell")
                for kind in ("market", "limit", "stop", "twap")
            ]  # fmt: skip
            response = await c.post("/v1/events", json=batch, headers=AUTH)
            assert response.status_code == 200, response.text
        after = len((await c.get("/metrics")).text.splitlines())
    # ... 72 combinations per metric, but at most 60 series each (plus overflow series).
    assert cardinality.GUARD.series <= 60 * len(cardinality._families)
    assert trading_series("trading_orders_total") <= 60 + 8
    assert after - before < 400


def trading_series(name: str) -> int:
    base = name.removesuffix("_total")
    (family,) = (f for f in REGISTRY.collect() if f.name == base)
    return sum(
        1
        for s in family.samples
        if s.name == name and s.labels["strategy"].startswith(("combo", OVERFLOW))
    )


def test_seen_ids_are_bounded_in_count():
    seen = SeenIds(capacity=1000, max_age=3600)
    digests = [SeenIds.digest(f"{n:0128d}") for n in range(20_000)]
    for start in range(0, 20_000, 500):
        seen.add_all(digests[start : start + 500])
        assert len(seen) <= 1250
    assert all(d in seen for d in digests[-1000:])  # the last `capacity` ids are all remembered
    assert digests[0] not in seen


def test_seen_ids_are_bounded_in_age():
    now = [0.0]
    seen = SeenIds(capacity=1_000_000, max_age=80, clock=lambda: now[0])
    seen.add_all([SeenIds.digest("old")])
    for step in range(20):
        now[0] += 10
        seen.add_all([SeenIds.digest(f"tick-{step}")])
        if now[0] < 80:
            assert SeenIds.digest("old") in seen  # within max_age: a replay is recognised
    assert SeenIds.digest("old") not in seen  # forgotten by max_age + max_age/8
    assert SeenIds.digest("tick-19") in seen
    assert len(seen) <= 10


async def test_dedup_window_comes_from_the_environment(monkeypatch, trading):
    monkeypatch.setenv("WATCHFLOOR_DEDUP_WINDOW_EVENTS", "16")
    monkeypatch.setenv("WATCHFLOOR_DEDUP_WINDOW_SECONDS", "600")
    app = build_trading(TOKEN, False, 0, None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        batch = [event("market_data_latency", feed="dedup", symbol="D", latency_seconds=0)
                 for _ in range(200)]  # fmt: skip
        assert (await c.post("/v1/events", json=batch, headers=AUTH)).status_code == 200
        replay = await c.post("/v1/events", json=batch[-16:], headers=AUTH)
        assert replay.json() == {"accepted": 0, "duplicates": 16}
        forgotten = await c.post("/v1/events", json=batch[:16], headers=AUTH)
        assert forgotten.json() == {"accepted": 16, "duplicates": 0}
    monkeypatch.setenv("WATCHFLOOR_DEDUP_WINDOW_EVENTS", "lots")
    with pytest.raises(ValueError, match="WATCHFLOOR_DEDUP_WINDOW_EVENTS"):
        build_trading(TOKEN, False, 0, None)


async def test_ndjson_numbers_are_strict_too(trading):
    line = json.dumps(position(quantity="1e3"))
    response = await trading.post(
        "/v1/events", content=line, headers={**AUTH, "Content-Type": "application/x-ndjson"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "events[0].quantity"


async def test_batches_in_flight_are_bounded(trading):
    # Each batch being read holds its body; past the cap a request is refused before its body.
    release = asyncio.Event()
    body = json.dumps([position(strategy="in-flight")]).encode()

    async def slow_body() -> AsyncIterator[bytes]:
        await release.wait()
        yield body

    held = [
        asyncio.create_task(trading.post("/v1/events", content=slow_body(), headers=AUTH))
        for _ in range(MAX_BATCHES_IN_FLIGHT)
    ]
    await asyncio.sleep(0.2)
    refused = await trading.post("/v1/events", content=body, headers=AUTH)
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"
    release.set()
    statuses = [r.status_code for r in await asyncio.wait_for(asyncio.gather(*held), 10)]
    assert statuses == [200] * MAX_BATCHES_IN_FLIGHT
    assert (await trading.post("/v1/events", content=body, headers=AUTH)).status_code == 200
