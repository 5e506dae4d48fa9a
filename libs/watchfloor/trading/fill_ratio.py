"""`trading_fill_ratio` from the orders this process completes.

The gauge is filled over submitted quantity of each strategy/symbol's last WINDOW completed
orders, as the trading exporter computes it from events; the same window size and the same bound
on tracked pairs (the least recently completed pair is forgotten and its window restarts).

The window's sums are exact, as the exporter's are: every finite float is an integer multiple of
2**-1074, so quantities are added as Python integers in those units. A float running total would
drift as orders leave the window, and could put an all-filled window a hair above 1 (which the
gauge counts as an input error); summing the window afresh costs microseconds per order.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

WINDOW = 200
MAX_PAIRS = 10_000
_EXPONENT = 1074


def _units(value: float) -> int:
    numerator, denominator = value.as_integer_ratio()
    return numerator << (_EXPONENT + 1 - denominator.bit_length())


class _Window:
    __slots__ = ("filled", "orders", "submitted")

    def __init__(self, size: int) -> None:
        self.orders: deque[tuple[int, int]] = deque(maxlen=size)
        self.filled = 0
        self.submitted = 0


class FillRatioWindows:
    """Per (strategy, symbol): the last `window` completed orders' (filled, submitted)."""

    def __init__(self, window: int = WINDOW, max_pairs: int = MAX_PAIRS) -> None:
        self._window = window
        self._max_pairs = max_pairs
        self._pairs: OrderedDict[tuple[str, str], _Window] = OrderedDict()
        self._lock = threading.Lock()

    def complete(self, pair: tuple[str, str], filled: float, submitted: float) -> float:
        """Add an order (0 <= filled <= submitted, submitted > 0, both finite); the window's
        ratio, within 0..1 (int / int is correctly rounded)."""
        added = (_units(filled), _units(submitted))
        with self._lock:
            window = self._pairs.get(pair)
            if window is None:
                if len(self._pairs) >= self._max_pairs:
                    self._pairs.popitem(last=False)
                window = self._pairs[pair] = _Window(self._window)
            else:
                self._pairs.move_to_end(pair)
            if len(window.orders) == self._window:
                left_filled, left_submitted = window.orders[0]  # append() below drops it
                window.filled -= left_filled
                window.submitted -= left_submitted
            window.orders.append(added)
            window.filled += added[0]
            window.submitted += added[1]
            return window.filled / window.submitted


FILL_RATIOS = FillRatioWindows()
