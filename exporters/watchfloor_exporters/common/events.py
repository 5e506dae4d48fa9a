"""Fields every ingested event has, and the checks that keep bad values out of the metrics.

Validation is strict: a number must be a JSON number (not `"100"`, not `true`), an integer an
integer (not `5.0`), a boolean a boolean, a timestamp an ISO 8601 string with a timezone. Numbers
are finite and at most 1e18 in magnitude, so sums, products and ratios the exporters derive stay
finite; where a derived figure could still overflow (a ratio over a tiny divisor), the state
refuses the event and names the field.
"""

from __future__ import annotations

import functools
import os
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
)

# Label-bound strings: bounded, printable, no whitespace at the ends (they become label values).
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9/][A-Za-z0-9._:/@+\-]*$"),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]

MAX_MAGNITUDE = 1e18
_BOUNDS: dict[str, Any] = {"allow_inf_nan": False, "le": MAX_MAGNITUDE}

Finite = Annotated[float, Strict(), Field(ge=-MAX_MAGNITUDE, **_BOUNDS)]
Positive = Annotated[float, Strict(), Field(gt=0, **_BOUNDS)]
NonNegative = Annotated[float, Strict(), Field(ge=0, **_BOUNDS)]
Ratio = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
Flag = Annotated[bool, Strict()]
Count = Annotated[int, Strict(), Field(ge=0, le=10**12)]
HttpStatus = Annotated[int, Strict(), Field(ge=100, le=599)]


@functools.cache
def max_future_skew() -> timedelta:
    return timedelta(seconds=float(os.environ.get("WATCHFLOOR_MAX_CLOCK_SKEW_SECONDS", "300")))


@functools.cache
def max_event_age() -> timedelta:
    return timedelta(seconds=float(os.environ.get("WATCHFLOOR_MAX_EVENT_AGE_SECONDS", "604800")))


DATA_MAX_AGE = timedelta(days=366)


def _iso_string(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 string (e.g. 2026-11-24T14:30:00Z)")
    return value


def _within(value: datetime, oldest: timedelta, what: str) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a timezone (e.g. 2026-11-24T14:30:00Z)")
    now = datetime.now(UTC)
    if value > now + max_future_skew():
        raise ValueError("is too far in the future (check the sender's clock)")
    if value < now - oldest:
        raise ValueError(f"is more than {oldest.total_seconds():.0f} seconds old ({what})")
    return value


Timestamp = Annotated[
    datetime,
    BeforeValidator(_iso_string),
    AfterValidator(lambda v: _within(v, max_event_age(), "WATCHFLOOR_MAX_EVENT_AGE_SECONDS")),
]
DataTimestamp = Annotated[
    datetime,
    BeforeValidator(_iso_string),
    AfterValidator(lambda v: _within(v, DATA_MAX_AGE, "a data time older than a year")),
]


class Event(BaseModel):
    """The envelope: an id (replays with the same id are counted once) and when it happened."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: EventId
    timestamp: Timestamp
