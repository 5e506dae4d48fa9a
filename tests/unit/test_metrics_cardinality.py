"""The cardinality guard folds new values past the cap and counts each folded observation."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter

from watchfloor.metrics import (
    OVERFLOW,
    cardinality,
    render,
    set_label_limit,
    trading,
)


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
    unknown = {"metric": "trading_broker_requests", "reason": "label_unknown"}
    before = REGISTRY.get_sample_value("watchfloor_metric_input_errors_total", unknown) or 0.0
    trading.record_broker_call(broker="b", endpoint="/x", status=600, duration_seconds=0.1)
    assert REGISTRY.get_sample_value(
        "trading_broker_requests_total", {"broker": "b", "endpoint": "/x", "status": OVERFLOW}
    ) == 1  # fmt: skip
    assert REGISTRY.get_sample_value("watchfloor_metric_input_errors_total", unknown) == before + 1


def test_series_are_cached_and_touched():
    trading.set_fill_ratio(strategy="cache", symbol="AAPL", ratio=0.5)
    series = trading.FILL_RATIO._series[("cache", "AAPL")]
    assert series.child is trading.FILL_RATIO.metric.labels("cache", "AAPL")
    before = series.touched
    trading.set_fill_ratio(strategy="cache", symbol="AAPL", ratio=0.6)
    assert trading.FILL_RATIO._series[("cache", "AAPL")] is series
    assert series.touched >= before


def test_folded_values_are_not_tracked(limit):
    set_label_limit(1)
    trading.set_fill_ratio(strategy="nc-strategy", symbol="NC1", ratio=0.1)
    trading.set_fill_ratio(strategy="nc-strategy", symbol="NC2", ratio=0.2)
    assert ("nc-strategy", "NC1") in trading.FILL_RATIO._series
    assert ("nc-strategy", "NC2") not in trading.FILL_RATIO._series


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
    with pytest.raises(ValueError, match="WATCHFLOOR_LABEL_CARDINALITY_LIMIT"):
        cardinality.configure_from_env()
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


# -- series caps and expiry (issue 12: the guard bounded label values, not series) ----------------


@pytest.fixture
def caps(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Set caps through the environment, as a service would; everything is re-read afterwards."""

    def apply(**variables: str) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(f"WATCHFLOOR_{name.upper()}", value)
        cardinality.reset()

    yield apply
    monkeypatch.undo()
    cardinality.reset()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The guard's clock, moved by hand: `clock[0] += seconds`."""
    now = [1_000_000.0]
    monkeypatch.setattr(cardinality, "_clock", lambda: now[0])
    return now


def fill_ratio_samples() -> list[Any]:
    (family,) = (f for f in REGISTRY.collect() if f.name == "trading_fill_ratio")
    return list(family.samples)


def fill_ratio_series(strategy: str) -> dict[str, float]:
    return {
        s.labels["symbol"]: s.value
        for s in fill_ratio_samples()
        if s.labels["strategy"] == strategy
    }


def test_label_combinations_are_bounded_per_metric(caps):
    # Each label stays under its cap (20 strategies, 20 symbols), the combinations do not.
    caps(label_cardinality_limit="50", max_series_per_metric="30")
    before = overflow("trading_fill_ratio")
    for strategy in range(20):
        for symbol in range(20):
            trading.set_fill_ratio(strategy=f"combo-{strategy}", symbol=f"S{symbol}", ratio=0.5)
    assert len([s for s in fill_ratio_samples() if s.labels["strategy"].startswith("combo-")]) == 30
    assert overflow("trading_fill_ratio") - before == 400 - 30
    assert REGISTRY.get_sample_value(
        "trading_fill_ratio", {"strategy": OVERFLOW, "symbol": OVERFLOW}
    ) == 0.5  # fmt: skip


def test_histogram_series_count_every_exposition_line(caps):
    caps(max_series_per_metric="40")
    for symbol in range(5):
        trading.record_market_data(feed="weights", symbol=f"W{symbol}", latency_seconds=0.001)
    weight = len(trading.MARKET_DATA_BUCKETS) + 1 + 2  # buckets, +Inf, _count, _sum
    assert trading.MARKET_DATA_LATENCY.weight == weight == 15
    assert trading.MARKET_DATA_LATENCY.series_count() == 2 * weight  # a third would pass 40
    assert trading.MARKET_DATA_UPDATES.series_count() == 5


def test_series_are_bounded_in_total(caps):
    caps(max_series="12")
    for n in range(10):
        trading.set_drawdown(strategy=f"total-a{n}", ratio=0.1)
        trading.set_win_ratio(strategy=f"total-b{n}", ratio=0.6)
    assert cardinality.GUARD.series == 12
    assert trading.DRAWDOWN.series_count() + trading.WIN_RATIO.series_count() == 12
    assert REGISTRY.get_sample_value("trading_strategy_win_ratio", {"strategy": OVERFLOW}) == 0.6


def test_rendered_exposition_stays_bounded_under_a_combination_flood(caps):
    caps(max_series="3000")
    for strategy in range(60):
        for symbol in range(60):
            trading.record_order(
                strategy=f"flood-{strategy}", symbol=f"F{symbol}", venue="XNAS", side="buy",
                order_type="limit", status="submitted",
            )  # fmt: skip
    body, _ = render(None)
    ours = [line for line in body.decode().splitlines() if 'strategy="flood-' in line]
    assert 0 < len(ours) <= 3000


def test_idle_series_expire_and_free_the_caps(caps, clock):
    caps(label_cardinality_limit="2", series_ttl_seconds="60")
    trading.set_fill_ratio(strategy="ttl", symbol="OLD1", ratio=0.1)
    trading.set_fill_ratio(strategy="ttl", symbol="OLD2", ratio=0.2)
    trading.set_fill_ratio(strategy="ttl", symbol="NEW", ratio=0.3)  # symbol cap full: folded
    assert set(fill_ratio_series("ttl")) == {"OLD1", "OLD2", OVERFLOW}
    clock[0] += 30
    trading.set_fill_ratio(strategy="ttl", symbol="OLD2", ratio=0.25)  # still in use
    clock[0] += 45  # OLD1 idle 75 s, OLD2 45 s
    render(None)  # a scrape runs the expiry
    assert fill_ratio_series("ttl") == {"OLD2": 0.25}
    trading.set_fill_ratio(strategy="ttl", symbol="NEW", ratio=0.3)  # a value's place freed up
    assert fill_ratio_series("ttl") == {"OLD2": 0.25, "NEW": 0.3}


def test_expiry_frees_series_caps_too(caps, clock):
    caps(max_series="3", series_ttl_seconds="10")
    for n in range(3):
        trading.set_drawdown(strategy=f"exp-{n}", ratio=0.1)
    trading.set_drawdown(strategy="exp-late", ratio=0.2)
    assert (
        REGISTRY.get_sample_value("trading_strategy_drawdown_ratio", {"strategy": "exp-late"})
        is None
    )
    clock[0] += 11
    trading.set_drawdown(strategy="exp-late", ratio=0.2)  # a new series runs the expiry first
    assert (
        REGISTRY.get_sample_value("trading_strategy_drawdown_ratio", {"strategy": "exp-late"})
        == 0.2
    )
    assert (
        REGISTRY.get_sample_value("trading_strategy_drawdown_ratio", {"strategy": "exp-0"}) is None
    )
    assert cardinality.GUARD.series == 1


def test_last_activity_timestamps_stay_while_there_is_room(caps, clock):
    # Alerts fire on time() - last_update growing: expiring the series would silence them.
    caps(max_series="100", series_ttl_seconds="10")
    trading.record_market_data(feed="quiet-feed", symbol="Q", latency_seconds=0.001, at=5.0)
    clock[0] += 3600
    render(None)
    last_update = "trading_market_data_last_update_timestamp_seconds"
    assert REGISTRY.get_sample_value(last_update, {"feed": "quiet-feed"}) == 5.0
    assert updates("quiet-feed", "Q") is None  # the counter beside it did expire
    for n in range(95):  # crowd the total past 90% of its cap
        trading.set_drawdown(strategy=f"crowd-{n}", ratio=0.1)
    clock[0] += 1
    render(None)
    assert REGISTRY.get_sample_value(last_update, {"feed": "quiet-feed"}) is None


def test_non_finite_amounts_are_dropped_and_counted():
    def errors(metric: str) -> float:
        labels = {"metric": metric, "reason": "not_finite"}
        return REGISTRY.get_sample_value("watchfloor_metric_input_errors_total", labels) or 0.0

    before = (errors("trading_slippage_bps"), errors("trading_submitted_quantity"))
    for amount in (float("nan"), float("inf")):
        trading.record_slippage(strategy="nan", symbol="X", side="buy", bps=amount)
        trading.record_submitted_quantity(strategy="nan", symbol="X", side="buy", quantity=amount)
    labels = {"strategy": "nan", "symbol": "X", "side": "buy"}
    assert REGISTRY.get_sample_value("trading_slippage_bps_count", labels) is None
    assert REGISTRY.get_sample_value("trading_submitted_quantity_total", labels) is None
    assert errors("trading_slippage_bps") == before[0] + 2
    assert errors("trading_submitted_quantity") == before[1] + 2


def test_non_finite_amounts_raise_in_strict_mode(strict):
    for amount in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite"):
            trading.record_slippage(strategy="nan", symbol="X", side="buy", bps=amount)
        with pytest.raises(ValueError, match="finite"):
            trading.record_submitted_quantity(
                strategy="nan", symbol="X", side="buy", quantity=amount
            )


def test_series_settings_from_the_environment_are_validated(monkeypatch):
    for name, value in (("WATCHFLOOR_MAX_SERIES", "0"), ("WATCHFLOOR_MAX_SERIES_PER_METRIC", "x"),
                        ("WATCHFLOOR_SERIES_TTL_SECONDS", "inf")):  # fmt: skip
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=name):
            cardinality.configure_from_env()
        monkeypatch.delenv(name)
    cardinality.configure_from_env()
    assert (cardinality.GUARD.max_series, cardinality.GUARD.max_series_per_metric) == (
        30_000,
        10_000,
    )
    assert cardinality.GUARD.ttl == 3600
