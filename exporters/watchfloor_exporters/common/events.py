"""Fields every ingested event has, and the checks that keep bad values out of the metrics."""

from __future__ import annotations

import functools
import math
import os
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

# Label-bound strings: bounded, printable, no whitespace at the ends (they become label values).
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9/][A-Za-z0-9._:/@+\-]*$"),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number (no NaN or infinity)")
    return value


Finite = Annotated[float, AfterValidator(_finite)]
Positive = Annotated[float, Field(gt=0), AfterValidator(_finite)]
NonNegative = Annotated[float, Field(ge=0), AfterValidator(_finite)]
Ratio = Annotated[float, Field(ge=0, le=1), AfterValidator(_finite)]


@functools.cache
def max_future_skew() -> timedelta:
    return timedelta(seconds=float(os.environ.get("WATCHFLOOR_MAX_CLOCK_SKEW_SECONDS", "300")))


def _not_in_future(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("must carry a timezone (e.g. 2026-11-24T14:30:00Z)")
    if value > datetime.now(UTC) + max_future_skew():
        raise ValueError("is too far in the future (check the sender's clock)")
    return value


Timestamp = Annotated[datetime, AfterValidator(_not_in_future)]


class Event(BaseModel):
    """The envelope: an id (replays with the same id are counted once) and when it happened."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: EventId
    timestamp: Timestamp
