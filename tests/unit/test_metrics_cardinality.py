"""The cardinality guard folds new values past the cap and counts each folded observation."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from watchfloor.metrics import OVERFLOW, cardinality, set_label_limit, trading


@pytest.fixture
def limit() -> Iterator[None]:
    """A forgetful guard for the test; afterwards the limit comes from the environment again."""
    cardinality.reset()
    yield
    cardinality.reset()


def overflow(metric: str) -> float:
    return REGISTRY.get_sample_value("watchfloor_label_overflow_total", {"metric": metric}) or 0.0


def updates(feed: str, symbol: str) -> float | None:
    return REGISTRY.get_sample_value(
        "trading_market_data_updates_total", {"feed": feed, "symbol": symbol}
    )


def test_values_past_the_cap_fold_into_overflow(limit):
    set_label_limit(3)
    before = overflow("trading_market_data_updates")
    for symbol in ("CAP1", "CAP2", "CAP3", "CAP4", "CAP5", "CAP4"):
        trading.record_market_data(feed="cap-feed", symbol=symbol, latency_seconds=0.001)
    assert updates("cap-feed", "CAP3") == 1
    assert updates("cap-feed", "CAP4") is None
    assert updates("cap-feed", OVERFLOW) == 3
    assert overflow("trading_market_data_updates") - before == 3  # once per folded observation
    assert REGISTRY.get_sample_value(
        "trading_market_data_latency_seconds_count", {"feed": "cap-feed", "symbol": OVERFLOW}
    ) == 3  # fmt: skip


def test_an_observation_folding_two_labels_counts_once(limit):
    set_label_limit(1)
    trading.record_market_data(feed="two-a", symbol="TWO1", latency_seconds=0.001)
    before = overflow("trading_market_data_updates")
    folded_before = updates(OVERFLOW, OVERFLOW) or 0.0
    trading.record_market_data(feed="two-b", symbol="TWO2", latency_seconds=0.001)
    assert updates(OVERFLOW, OVERFLOW) == folded_before + 1
    assert overflow("trading_market_data_updates") - before == 1


def test_admitted_values_keep_working_after_the_cap(limit):
    set_label_limit(3)
    for symbol in ("K1", "K2", "K3", "K4"):
        trading.set_fill_ratio(strategy="keep", symbol=symbol, ratio=0.5)
    trading.set_fill_ratio(strategy="keep", symbol="K1", ratio=0.9)
    assert (
        REGISTRY.get_sample_value("trading_fill_ratio", {"strategy": "keep", "symbol": "K1"}) == 0.9
    )
    assert (
        REGISTRY.get_sample_value("trading_fill_ratio", {"strategy": "keep", "symbol": OVERFLOW})
        == 0.5
    )


def test_the_cap_is_per_metric(limit):
    set_label_limit(1)
    trading.set_drawdown(strategy="per-metric-a", ratio=0.1)
    trading.set_win_ratio(strategy="per-metric-b", ratio=0.6)
    assert REGISTRY.get_sample_value(
        "trading_strategy_win_ratio", {"strategy": "per-metric-b"}
    ) == 0.6  # fmt: skip


def test_closed_labels_are_not_capped_but_validated(limit):
    set_label_limit(3)
    for status in ("submitted", "acked", "filled", "cancelled", "rejected"):
        trading.record_order(
            strategy="closed", symbol="AAPL", venue="v", side="buy", order_type="limit",
            status=status,
        )  # fmt: skip
    assert REGISTRY.get_sample_value(
        "trading_orders_total",
        {"strategy": "closed", "symbol": "AAPL", "venue": "v", "side": "buy",
         "order_type": "limit", "status": "rejected"},
    ) == 1  # fmt: skip
    with pytest.raises(ValueError, match=r"status must be one of 100\.\.599, got '600'"):
        trading.record_broker_call(broker="b", endpoint="/x", status=600, duration_seconds=0.1)


def test_children_are_cached():
    first = trading.FILL_RATIO.child("cache", "AAPL")
    assert trading.FILL_RATIO.child("cache", "AAPL") is first
    assert first is trading.FILL_RATIO.metric.labels("cache", "AAPL")


def test_folded_values_are_not_cached(limit):
    set_label_limit(1)
    trading.FILL_RATIO.child("nc-strategy", "NC1")
    trading.FILL_RATIO.child("nc-strategy", "NC2")
    assert ("nc-strategy", "NC1") in trading.FILL_RATIO._children
    assert ("nc-strategy", "NC2") not in trading.FILL_RATIO._children


def test_guard_is_thread_safe(limit):
    set_label_limit(100)
    before = overflow("trading_market_data_updates")
    start = threading.Barrier(8)

    def work(thread: int) -> None:
        start.wait()
        for n in range(50):
            trading.record_market_data(feed="thr-feed", symbol=f"T{thread}-{n}", latency_seconds=0)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (family,) = (
        f for f in REGISTRY.collect() if f.name == "trading_market_data_updates"
    )  # fmt: skip
    ours = [s for s in family.samples if s.labels.get("feed") == "thr-feed"]
    admitted = [s for s in ours if s.name.endswith("_total") and s.labels["symbol"] != OVERFLOW]
    assert len(admitted) == 100
    assert updates("thr-feed", OVERFLOW) == 300
    assert overflow("trading_market_data_updates") - before == 300


def test_capping_unknown_label_is_a_programming_error():
    metric = Counter("cap_test_total", "x", ["a"], registry=CollectorRegistry())
    with pytest.raises(ValueError, match="no label"):
        cardinality.Family(metric, capped=("b",))


def test_limit_is_validated():
    with pytest.raises(ValueError, match="positive"):
        set_label_limit(0)


def test_limit_from_environment_is_validated_and_read_on_reset(monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", "lots")
    with pytest.raises(ValueError, match="positive integer"):
        cardinality._limit_from_env()
    monkeypatch.setenv("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", "50")
    try:
        cardinality.reset()
        assert cardinality.GUARD.limit == 50
    finally:
        monkeypatch.undo()
        cardinality.reset()
    assert cardinality.GUARD.limit == cardinality._limit_from_env()


def test_default_limit_is_2000(monkeypatch):
    monkeypatch.delenv("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", raising=False)
    assert cardinality._limit_from_env() == 2000
