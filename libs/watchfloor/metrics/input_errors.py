"""Bad values handed to a metric helper: counted and logged once, never raised into the caller.

A metric call sits on the trading hot path; an order must not fail because its side came in as
"BUY" or a ratio came out of float arithmetic as 1.0000000000000002. So a helper repairs what it
can (a closed label's case and whitespace, a ratio a hair outside 0..1), records what it cannot
repair under `__overflow__` (a closed label) or drops it (a number), and counts each such value in
`watchfloor_metric_input_errors_total{metric, reason}`; the first one of each (metric, reason)
is logged as a warning. Both labels are closed: metric is a catalog name, reason one of REASONS.

Strict mode (WATCHFLOOR_METRICS_STRICT=1, or `set_strict(True)` in tests) raises ValueError
instead, before anything is recorded, so a test sees its own mistakes.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import Final, SupportsFloat

from prometheus_client import Counter

LABEL_CASE: Final = "label_case"  # a closed label's value recorded after case/whitespace folding
LABEL_UNKNOWN: Final = "label_unknown"  # a closed label's value outside its set: `__overflow__`
NOT_A_NUMBER: Final = "not_a_number"  # None, a string... where a number belongs: dropped
NOT_FINITE: Final = "not_finite"  # NaN or infinite: dropped
OUT_OF_RANGE: Final = "out_of_range"  # a ratio outside 0..1, a negative increment: dropped
REASONS: Final = (LABEL_CASE, LABEL_UNKNOWN, NOT_A_NUMBER, NOT_FINITE, OUT_OF_RANGE)

# Float arithmetic lands a true 1.0 or 0.0 this far off ((0.1 + 0.2) / 0.3 is 1 + 2.2e-16): such a
# ratio is clamped and recorded, uncounted and in strict mode too, since no caller made a mistake.
RATIO_TOLERANCE: Final = 1e-9
_DETAIL_CHARS = 200  # a hostile value must not make the one log line large

INPUT_ERRORS = Counter(
    "watchfloor_metric_input_errors_total",
    "Values a metric helper could not record as given, by catalog metric and reason: label_case "
    "(closed label recorded case-folded), label_unknown (closed label recorded as __overflow__), "
    "not_a_number, not_finite, out_of_range (value dropped).",
    ["metric", "reason"],
)

_log = logging.getLogger("watchfloor.metrics")


class _Mode:
    strict = os.environ.get("WATCHFLOOR_METRICS_STRICT", "").strip().lower() in {"1", "true", "yes"}


_logged: set[tuple[str, str]] = set()
_logged_lock = threading.Lock()


def set_strict(strict: bool) -> None:
    """Raise ValueError on bad values (tests) instead of counting them (the default)."""
    _Mode.strict = strict


def is_strict() -> bool:
    return _Mode.strict


def report(metric: str, reason: str, detail: str) -> None:
    """A bad value for `metric`: ValueError(detail) in strict mode, else counted (logged once)."""
    if _Mode.strict:
        raise ValueError(detail)
    INPUT_ERRORS.labels(metric, reason).inc()
    with _logged_lock:
        first = (metric, reason) not in _logged
        _logged.add((metric, reason))
    if first:
        _log.warning(
            "metric input error (%s): %s; further ones are only counted in "
            "watchfloor_metric_input_errors_total",
            reason,
            detail[:_DETAIL_CHARS],
        )


def number(metric: str, value: object, what: str = "the amount") -> float | None:
    """`value` as a finite float, or None (reported) if it is not one."""
    result = _as_float(metric, value, what)
    if result is not None and not math.isfinite(result):
        # A NaN or infinite increment would stick in a counter or a histogram's _sum for good,
        # and OpenMetrics parsers refuse a NaN there.
        report(metric, NOT_FINITE, f"{metric}: {what} must be a finite number, got {_show(value)}")
        return None
    return result


def gauge_value(metric: str, value: object) -> float | None:
    """A gauge's value: a finite float, or None (reported). Every gauge of the catalog holds an
    amount (P&L, a position, a backlog): a NaN or infinity there is a caller's bug, and would
    turn every sum over it into NaN on the dashboards."""
    return number(metric, value, "the value")


def ratio(metric: str, value: object, what: str) -> float | None:
    """`value` within 0..1 (clamped within RATIO_TOLERANCE), or None (reported)."""
    result = _as_float(metric, value, what)
    if result is None or 0.0 <= result <= 1.0:
        return result
    if -RATIO_TOLERANCE <= result <= 1.0 + RATIO_TOLERANCE:
        return min(max(result, 0.0), 1.0)
    reason = OUT_OF_RANGE if math.isfinite(result) else NOT_FINITE
    report(metric, reason, f"{what} must be within 0..1, got {_show(value)}")
    return None


def _as_float(metric: str, value: object, what: str) -> float | None:
    """float(value); NaN past the float range; None (reported) for a non-number."""
    if isinstance(value, float):
        return value
    # int before the SupportsFloat protocol check, which costs microseconds on the hot path.
    if not isinstance(value, int) and not isinstance(value, SupportsFloat):  # None, str, bytes...
        report(metric, NOT_A_NUMBER, f"{metric}: {what} must be a number, got {_show(value)}")
        return None
    try:
        return float(value)
    except (TypeError, ValueError, OverflowError):  # an int past the float range, a broken type
        return math.nan


def _show(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # a caller's object with a broken __repr__ must not raise from here
        text = f"<{type(value).__name__}>"
    return text[:_DETAIL_CHARS]


def reset() -> None:
    """Log the next bad value of each kind again (tests)."""
    with _logged_lock:
        _logged.clear()
