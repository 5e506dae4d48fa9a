"""Alertmanager's webhook payload (version 4) and the acknowledge body, validated: a bad one gets
a 4xx naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    model_validator,
)

from watchfloor_alerthub.limits import MAX_ALERT_BYTES

Text = Annotated[str, StringConstraints(max_length=10_000)]
LabelName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]
Labels = Annotated[dict[LabelName, Text], Field(max_length=100)]
FINGERPRINT_PATTERN = r"^[0-9a-fA-F]{1,64}$"


def _utc(value: datetime) -> datetime:
    # Stored as UTC ISO text so that rows compare and sort as times; a time that cannot be
    # expressed in UTC (year 1 with a positive offset, year 9999 with a negative one) is refused.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is outside what UTC can express") from None


Timestamp = Annotated[datetime, AfterValidator(_utc)]


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: Timestamp
    endsAt: Timestamp | None = None
    generatorURL: Text = ""
    fingerprint: Annotated[
        str, StringConstraints(pattern=FINGERPRINT_PATTERN), AfterValidator(str.lower)
    ]
    _labels_json: str = PrivateAttr("")
    _annotations_json: str = PrivateAttr("")

    @model_validator(mode="after")
    def _bounded(self) -> WebhookAlert:
        self._labels_json = orjson.dumps(self.labels, option=orjson.OPT_SORT_KEYS).decode()
        self._annotations_json = orjson.dumps(self.annotations).decode()
        if self.size > MAX_ALERT_BYTES:
            raise ValueError(
                f"labels, annotations and generatorURL take {self.size} bytes, over the"
                f" {MAX_ALERT_BYTES}-byte limit for one alert"
            )
        return self

    @property
    def labels_json(self) -> str:
        return self._labels_json

    @property
    def annotations_json(self) -> str:
        return self._annotations_json

    @property
    def size(self) -> int:
        """What the alert weighs against the hub's storage bound."""
        return len(self._labels_json) + len(self._annotations_json) + len(self.generatorURL)


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: Text
    groupKey: Text = ""
    externalURL: Text = ""
    alerts: Annotated[list[WebhookAlert], Field(max_length=10_000)]


class Acknowledge(BaseModel):
    """POST /api/alerts/{fingerprint}/acknowledge: a silence of `hours` on the alert's labels."""

    model_config = ConfigDict(extra="forbid")

    by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = (
        "alert hub"
    )
    # Strict: `true` or "2" are not a number of hours. From 15 minutes (shorter ones reach
    # Alertmanager as a silence already over) to a week.
    hours: Annotated[float, Field(strict=True, ge=0.25, le=24 * 7, allow_inf_nan=False)] = 2.0
    comment: Annotated[str, StringConstraints(max_length=1000)] = (
        "Acknowledged in the watchfloor alert hub"
    )
