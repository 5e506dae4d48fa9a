"""The cardinality guard folds new values past the cap and counts each folded observation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from watchfloor.metrics import OVERFLOW, cardinality, trading


@pytest.fixture
def limit_three() -> Iterator[None]:
    previous = cardinality.GUARD.limit
    cardinality.reset()
    cardinality.set_label_limit(3)
    yield
    cardinality.set_label_limit(previous)
    cardinality.reset()


def overflow(metric: str) -> float:
    return REGISTRY.get_sample_value("watchfloor_label_overflow_total", {"metric": metric}) or 0.0


def test_values_past_the_cap_fold_into_overflow(limit_three):
    before = overflow("trading_market_data_updates")
    for symbol in ("CAP1", "CAP2", "CAP3", "CAP4", "CAP5", "CAP4"):
        trading.record_market_data(feed="cap-feed", symbol=symbol, latency_seconds=0.001)
    sample = REGISTRY.get_sample_value
    assert sample("trading_market_data_updates_total", {"feed": "cap-feed", "symbol": "CAP3"}) == 1
    assert (
        sample("trading_market_data_updates_total", {"feed": "cap-feed", "symbol": "CAP4"}) is None
    )
    assert (
        sample("trading_market_data_updates_total", {"feed": "cap-feed", "symbol": OVERFLOW}) == 3
    )
    assert overflow("trading_market_data_updates") - before == 3  # once per folded observation


def test_admitted_values_keep_working_after_the_cap(limit_three):
    for symbol in ("K1", "K2", "K3", "K4"):
        trading.set_fill_ratio(strategy="keep", symbol=symbol, ratio=0.5)
    trading.set_fill_ratio(strategy="keep", symbol="K1", ratio=0.9)
    assert (
        REGISTRY.get_sample_value("trading_fill_ratio", {"strategy": "keep", "symbol": "K1"}) == 0.9
    )


def test_closed_labels_are_not_capped_but_validated(limit_three):
    for status in ("submitted", "acked", "filled", "cancelled", "rejected"):
        trading.record_order(
            strategy="closed",
            symbol="AAPL",
            venue="v",
            side="buy",
            order_type="limit",
            status=status,
        )
    assert REGISTRY.get_sample_value(
        "trading_orders_total",
        {"strategy": "closed", "symbol": "AAPL", "venue": "v", "side": "buy",
         "order_type": "limit", "status": "rejected"},
    ) == 1  # fmt: skip


def test_children_are_cached():
    first = trading.FILL_RATIO.child("cache", "AAPL")
    assert trading.FILL_RATIO.child("cache", "AAPL") is first


def test_capping_unknown_label_is_a_programming_error():
    from prometheus_client import CollectorRegistry, Counter

    metric = Counter("cap_test_total", "x", ["a"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="no label"):
        cardinality.Family(metric, capped=("b",))


def test_limit_from_environment_is_validated(monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", "lots")
    with pytest.raises(ValueError, match="positive integer"):
        cardinality._limit_from_env()
    monkeypatch.setenv("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", "50")
    assert cardinality._limit_from_env() == 50
