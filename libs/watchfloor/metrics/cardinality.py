"""Cardinality guard: bounded label values and series, per metric and in total; idle series expire.

A series here is one line of the exposition: a counter or gauge child is one, a histogram child is
one per bucket plus `_count` and `_sum`. Three caps apply when an update would create a series:

- per label per metric: at most `label_limit` distinct values among the metric's live series
  (WATCHFLOOR_LABEL_CARDINALITY_LIMIT, default 2000); a value past it is recorded as
  `__overflow__`;
- per metric: at most `max_series_per_metric` series (WATCHFLOOR_MAX_SERIES_PER_METRIC, 10 000);
- in total, over every family: at most `max_series` (WATCHFLOOR_MAX_SERIES, 30 000).

Past a series cap the update goes to the metric's overflow series (every capped label
`__overflow__`, closed labels kept, so at most one per combination of closed values); either way
`watchfloor_label_overflow_total{metric}` rises once per folded update.

A series not updated for `ttl` seconds (WATCHFLOOR_SERIES_TTL_SECONDS, default 3600) is removed,
freeing its place under every cap; removal runs at most every ttl/10 (between 0.25 s and 60 s),
when a series is created or the registry is rendered. Families of last-activity timestamps
(`keep_idle`) are the exception: their staleness is what alerts watch, so their idle series are
removed only when their metric or the total is above 90% of its cap.

Updates go through the family (`inc`, `set`, `observe`, `set_function`) under one lock, which the
removal also takes: an update can never land on a series that was just removed. The label checks
run only when a series is new; an existing one costs two dict lookups and a clock read.

No update raises into its caller (`input_errors`): a closed label's value outside its set is
folded (case, whitespace) or recorded as `__overflow__`, a NaN, infinite, negative (counter) or
non-numeric amount is dropped, each counted in `watchfloor_metric_input_errors_total`; strict
mode (WATCHFLOOR_METRICS_STRICT=1, `set_strict(True)`) raises ValueError instead.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from prometheus_client import Counter, Histogram
from prometheus_client.metrics import MetricWrapperBase

from watchfloor.metrics import input_errors

OVERFLOW = "__overflow__"
DEFAULT_LIMIT = 2000
DEFAULT_MAX_SERIES_PER_METRIC = 10_000
DEFAULT_MAX_SERIES = 30_000
DEFAULT_TTL_SECONDS = 3600.0
HTTP_STATUSES = frozenset(str(code) for code in range(100, 600))
_PRESSURE = 0.9

LABEL_OVERFLOW = Counter(
    "watchfloor_label_overflow_total",
    "Updates recorded under __overflow__ label values because the metric had reached a cap: "
    "distinct values of a label, series of the metric, or series in total.",
    ["metric"],
)

M = TypeVar("M", bound=MetricWrapperBase)
_clock = time.monotonic  # tests move time forward through it


def _positive_from_env(name: str, default: float, kind: type[int] | type[float] = int) -> Any:
    raw = os.environ.get(name, "")
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not (value > 0 and math.isfinite(value)):
        what = "integer" if kind is int else "number"
        raise ValueError(f"{name} must be a positive {what}: {raw!r}")
    return value


def _limit_from_env() -> int:
    return int(_positive_from_env("WATCHFLOOR_LABEL_CARDINALITY_LIMIT", DEFAULT_LIMIT))


def _caps_from_env() -> tuple[int, int, int, float]:
    return (
        _limit_from_env(),
        int(_positive_from_env("WATCHFLOOR_MAX_SERIES_PER_METRIC", DEFAULT_MAX_SERIES_PER_METRIC)),
        int(_positive_from_env("WATCHFLOOR_MAX_SERIES", DEFAULT_MAX_SERIES)),
        float(_positive_from_env("WATCHFLOOR_SERIES_TTL_SECONDS", DEFAULT_TTL_SECONDS, float)),
    )


class _Guard:
    """The caps, the series count over every family, and when idle series were last removed."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.series = 0
        self.next_expiry = 0.0
        try:
            caps = _caps_from_env()
        except ValueError:  # configure_from_env() reports it when a service starts
            caps = (
                DEFAULT_LIMIT,
                DEFAULT_MAX_SERIES_PER_METRIC,
                DEFAULT_MAX_SERIES,
                DEFAULT_TTL_SECONDS,
            )
        self.set_caps(caps)

    def set_caps(self, caps: tuple[int, int, int, float]) -> None:
        self.limit, self.max_series_per_metric, self.max_series, self.ttl = caps

    def expire(self, now: float) -> None:
        """Remove idle series if the last pass is old enough. Called with `lock` held."""
        if now < self.next_expiry:
            return
        self.next_expiry = now + min(max(self.ttl / 10, 0.25), 60.0)
        cutoff = now - self.ttl
        crowded = self.series > _PRESSURE * self.max_series
        for family in _families:
            family._expire(cutoff, crowded)


GUARD = _Guard()
_families: list[Family[Any]] = []


class _Series:
    __slots__ = ("child", "touched")

    def __init__(self, child: Any, touched: float) -> None:
        self.child = child
        self.touched = touched


class Family(Generic[M]):
    """A labelled metric whose series are admitted under the caps and expire when idle.

    `capped` labels take values from requests (bounded by the caps); a `closed` label's value is
    case/whitespace-folded into its allowed set, else recorded as `__overflow__`, and bad amounts
    are dropped: both reported through `input_errors` (which raises instead in strict mode).
    """

    def __init__(
        self,
        metric: M,
        capped: tuple[str, ...] = (),
        closed: dict[str, frozenset[str]] | None = None,
        *,
        keep_idle: bool = False,
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
        self.keep_idle = keep_idle
        # Exposition lines per series: buckets (with +Inf), _count and _sum for a histogram.
        self.weight = len(metric._upper_bounds) + 2 if isinstance(metric, Histogram) else 1
        # A histogram without negative buckets measures a magnitude (a duration, a size): a
        # negative observation is a caller's bug, and would make _sum negative, which OpenMetrics
        # parsers refuse ("Counter-like samples cannot be negative").
        self._non_negative = isinstance(metric, Histogram) and metric._upper_bounds[0] >= 0
        self._series: dict[tuple[str, ...], _Series] = {}
        # Per capped label: value -> how many live series use it.
        self._values: dict[int, dict[str, int]] = {i: {} for i in self._capped}
        _families.append(self)

    # -- updates ---------------------------------------------------------------------------------

    # Bad values are reported before the lock is taken: the first one is logged, and a log
    # handler must not run under the lock every update takes.

    def inc(self, values: tuple[object, ...], amount: object = 1.0) -> None:
        checked = self._not_negative(input_errors.number(self.name, amount), "the amount")
        key = self._key(values)
        if checked is None:
            return
        with GUARD.lock:
            self._child(key).inc(checked)

    def set(self, values: tuple[object, ...], value: object) -> None:
        checked = input_errors.gauge_value(self.name, value)
        key = self._key(values)
        if checked is None:
            return
        with GUARD.lock:
            self._child(key).set(checked)

    def observe(
        self, values: tuple[object, ...], amount: object, exemplar: dict[str, str] | None = None
    ) -> None:
        checked = input_errors.number(self.name, amount)
        if self._non_negative:
            checked = self._not_negative(checked, "the observation")
        key = self._key(values)
        if checked is None:
            return
        with GUARD.lock:
            self._child(key).observe(checked, exemplar)

    def _not_negative(self, checked: float | None, what: str) -> float | None:
        if checked is not None and checked < 0:
            detail = f"{self.name}: {what} must be non-negative, got {checked}"
            input_errors.report(self.name, input_errors.OUT_OF_RANGE, detail)
            return None
        return checked

    def set_function(self, values: tuple[object, ...], function: Callable[[], float]) -> None:
        key = self._key(values)
        with GUARD.lock:
            self._child(key).set_function(function)

    def series_count(self) -> int:
        """Exposition lines of the series admitted under the caps (overflow series not counted)."""
        return len(self._series) * self.weight

    # -- admission and expiry (GUARD.lock held) ---------------------------------------------------

    def _key(self, values: tuple[object, ...]) -> tuple[str, ...]:
        """The series key: `values` if cached, else as text with closed labels checked.

        Called without the lock (it may log); the update then takes it to find the series.
        """
        try:
            if values in self._series:  # a dict read needs no lock
                return values  # type: ignore[return-value]  # only text keys are cached
        except TypeError:  # an unhashable value: made text below
            pass
        if len(values) != len(self._labels):
            raise ValueError(f"{self.name} takes labels {self._labels}, got {len(values)} values")
        text = [value if isinstance(value, str) else _text(value) for value in values]
        for index, allowed in self._closed.items():
            text[index] = closed_value(self.name, self._labels[index], text[index], allowed)
        return tuple(text)

    def _child(self, values: tuple[str, ...]) -> Any:
        now = _clock()
        found = self._series.get(values)
        if found is not None:
            found.touched = now
            return found.child
        return self._admit(values, now)

    def _admit(self, values: tuple[str, ...], now: float) -> Any:
        text = list(values)
        GUARD.expire(now)
        folded = False
        for index in self._capped:
            known = self._values[index]
            if text[index] not in known and len(known) >= GUARD.limit:
                text[index] = OVERFLOW
                folded = True
        key = tuple(text)
        found = self._series.get(key)
        if found is not None:
            found.touched = now
        elif self._room():
            found = _Series(self.metric.labels(*key), now)
            self._series[key] = found
            GUARD.series += self.weight
            for index in self._capped:
                if key[index] != OVERFLOW:
                    known = self._values[index]
                    known[key[index]] = known.get(key[index], 0) + 1
        if found is None or folded:
            LABEL_OVERFLOW.labels(self.name).inc()
        if found is None:
            # Past a series cap: the overflow series, not tracked (its closed labels bound it).
            for index in self._capped:
                text[index] = OVERFLOW
            return self.metric.labels(*text)
        return found.child

    def _room(self) -> bool:
        return (
            self.series_count() + self.weight <= GUARD.max_series_per_metric
            and GUARD.series + self.weight <= GUARD.max_series
        )

    def _expire(self, cutoff: float, crowded: bool) -> None:
        if self.keep_idle and not (
            crowded or self.series_count() > _PRESSURE * GUARD.max_series_per_metric
        ):
            return
        idle = [key for key, series in self._series.items() if series.touched < cutoff]
        for key in idle:
            self._remove(key)

    def _remove(self, key: tuple[str, ...]) -> None:
        del self._series[key]
        self.metric.remove(*key)
        GUARD.series -= self.weight
        for index in self._capped:
            if key[index] == OVERFLOW:
                continue
            known = self._values[index]
            known[key[index]] -= 1
            if not known[key[index]]:
                del known[key[index]]


def closed_value(metric: str, label: str, value: str, allowed: frozenset[str]) -> str:
    """`value` if allowed, else folded (case, whitespace) if that is, else OVERFLOW; reported."""
    if value in allowed or value == OVERFLOW:
        return value
    folded = value.strip().lower()
    shown = value if len(value) <= 100 else value[:100] + "..."
    problem = f"{metric}: {label} must be one of {_describe(allowed)}, got {shown!r}"
    if folded in allowed:
        input_errors.report(metric, input_errors.LABEL_CASE, f"{problem} (recorded as {folded!r})")
        return folded
    input_errors.report(metric, input_errors.LABEL_UNKNOWN, problem)
    return OVERFLOW


def _text(value: object) -> str:
    try:
        return str(value)
    except Exception:  # a caller's object with a broken __str__: one value for all of them
        return OVERFLOW


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


def configure_from_env() -> None:
    """Read the caps from the environment (ValueError naming the variable if one is invalid)."""
    caps = _caps_from_env()
    with GUARD.lock:
        GUARD.set_caps(caps)
        GUARD.next_expiry = 0.0


def expire_idle() -> None:
    """Remove series idle past the TTL now, if the last pass is old enough (render calls it)."""
    with GUARD.lock:
        GUARD.expire(_clock())


def reset() -> None:
    """Forget every tracked series and re-read the caps from the environment.

    For tests; a process normally never needs it. Series already in the registry stay, untracked.
    """
    caps = _caps_from_env()
    with GUARD.lock:
        GUARD.set_caps(caps)
        GUARD.series = 0
        GUARD.next_expiry = 0.0
        for family in _families:
            family._series.clear()
            for known in family._values.values():
                known.clear()
