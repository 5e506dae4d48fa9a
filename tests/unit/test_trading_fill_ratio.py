"""The fill-ratio windows OrderLifecycle feeds trading_fill_ratio from."""

from __future__ import annotations

from watchfloor.trading.fill_ratio import FillRatioWindows


def test_ratio_over_the_last_orders_only():
    windows = FillRatioWindows(window=3)
    pair = ("momo", "AAPL")
    assert windows.complete(pair, 0.0, 100.0) == 0.0
    assert windows.complete(pair, 50.0, 100.0) == 0.25
    assert windows.complete(pair, 100.0, 100.0) == 0.5
    assert windows.complete(pair, 100.0, 100.0) == 250 / 300  # the unfilled first order left
    assert windows.complete(("momo", "MSFT"), 1.0, 4.0) == 0.25  # pairs are separate


def test_sums_do_not_drift_as_orders_leave():
    windows = FillRatioWindows(window=2)
    pair = ("drift", "X")
    windows.complete(pair, 2.0**54, 2.0**54)
    windows.complete(pair, 1.0, 4.0)  # a float total of 2**54 + 1 loses the 1
    # 2**54 leaves the window: float running totals would read 1/8 here.
    assert windows.complete(pair, 1.0, 4.0) == 0.25


def test_all_filled_is_exactly_one():
    windows = FillRatioWindows(window=50)
    pair = ("full", "X")
    ratios = [windows.complete(pair, q, q) for q in (0.1, 0.2, 0.3, 1e-300, 1e300, 7.0) * 20]
    assert set(ratios) == {1.0}


def test_the_least_recent_pair_is_forgotten():
    windows = FillRatioWindows(window=10, max_pairs=2)
    windows.complete(("a", "X"), 0.0, 1.0)
    windows.complete(("b", "X"), 1.0, 1.0)
    windows.complete(("a", "X"), 1.0, 1.0)  # "a" used last: "b" is the least recent
    windows.complete(("c", "X"), 1.0, 1.0)
    assert windows.complete(("a", "X"), 1.0, 1.0) == 2 / 3  # kept its window
    assert windows.complete(("b", "X"), 0.0, 1.0) == 0.0  # restarted
