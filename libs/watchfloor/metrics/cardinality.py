"""Cardinality guard: a cap on distinct values per label per metric.

Unbounded labels (symbol, strategy, dataset, endpoint, ...) are capped; past the cap a new value is
recorded as `__overflow__` and `watchfloor_label_overflow_total{metric}` rises once per folded
observation (however many of its labels were folded). The check runs only when a label child is not
cached yet, so the hot path of the helpers stays one dict lookup; folded values are never cached,
which keeps memory bounded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

from prometheus_client import Counter
from prometheus_client.metrics import MetricWrapperBase

OVERFLOW = "__overflow__"
DEFAULT_LIMIT = 2000
HTTP_STATUSES = frozenset(str(code) for code in range(100, 600))

LABEL_OVERFLOW = Counter(
    "watchfloor_label_overflow_total",
    "Observations whose label value was folded into __overflow__ because the metric already had "
    "as many distinct values for that label as the cardinality cap allows.",
    ["metric"],
)

M = TypeVar("M", bound=MetricWrapperBase)


def _limit_from_env() -> int:
    raw = os.environ.get("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", "")
    if not raw:
        return DEFAULT_LIMIT
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"WATCHFLOOR_LABEL_CARDINALITY_LIMIT must be a positive integer: {raw!r}")
    return int(raw)


class _Guard:
    def __init__(self) -> None:
        self.limit = _limit_from_env()
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str], set[str]] = {}

    def admits(self, metric: str, label: str, value: str) -> bool:
        """Whether `value` may be recorded as itself (seen before, or still under the cap)."""
        with self._lock:
            seen = self._seen.setdefault((metric, label), set())
            if value in seen:
                return True
            if len(seen) < self.limit:
                seen.add(value)
                return True
        return False

    def reset(self) -> None:
        with self._lock:
            self._seen.clear()
            self.limit = _limit_from_env()


GUARD = _Guard()
_families: list[Family[Any]] = []


class Family(Generic[M]):
    """A labelled metric with cached children, capped labels and closed label sets.

    Both checks run only when a child is first resolved: a value is validated once, then cached.
    """

    def __init__(
        self,
        metric: M,
        capped: tuple[str, ...] = (),
        closed: dict[str, frozenset[str]] | None = None,
    ) -> None:
        self.metric = metric
        self.name: str = metric._name
        self._labels: tuple[str, ...] = tuple(metric._labelnames)
        self._closed = {
            self._labels.index(label): allowed for label, allowed in (closed or {}).items()
        }
        unknown = (set(capped) | set(closed or {})) - set(self._labels)
        if unknown:
            raise ValueError(f"{self.name} has no label(s) {sorted(unknown)} to cap")
        self._capped = tuple(i for i, name in enumerate(self._labels) if name in capped)
        self._children: dict[tuple[Hashable, ...], M] = {}
        self._lock = threading.Lock()
        _families.append(self)

    def child(self, *values: Hashable) -> M:
        found = self._children.get(values)
        if found is not None:
            return found
        return self._resolve(values)

    def _resolve(self, values: tuple[Hashable, ...]) -> M:
        if len(values) != len(self._labels):
            raise ValueError(f"{self.name} takes labels {self._labels}, got {len(values)} values")
        text = [str(value) for value in values]
        for index, allowed in self._closed.items():
            if text[index] not in allowed:
                raise ValueError(
                    f"{self.name}: {self._labels[index]} must be one of {_describe(allowed)}, "
                    f"got {text[index]!r}"
                )
        folded = False
        for index in self._capped:
            if not GUARD.admits(self.name, self._labels[index], text[index]):
                text[index] = OVERFLOW
                folded = True
        child: M = self.metric.labels(*text)
        if folded:
            LABEL_OVERFLOW.labels(self.name).inc()
        else:
            with self._lock:
                self._children[values] = child
        return child


def _describe(allowed: frozenset[str]) -> str:
    values = sorted(allowed)
    if len(values) <= 12:
        return str(values)
    # A long set (HTTP_STATUSES) reads better as its span than as a list.
    return f"{values[0]}..{values[-1]}"


def set_label_limit(limit: int) -> None:
    """Change the cap (distinct values per label per metric) for values not seen yet."""
    if limit < 1:
        raise ValueError(f"the label cardinality limit must be positive, got {limit}")
    GUARD.limit = limit


def reset() -> None:
    """Forget every admitted value and cached child and re-read the limit from the environment.

    For tests; a process normally never needs it. Series already in the registry stay.
    """
    GUARD.reset()
    for family in _families:
        with family._lock:
            family._children.clear()
