"""Alertmanager's webhook payload (version 4), validated: a bad one gets a 4xx naming the field."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Text = Annotated[str, StringConstraints(max_length=10_000)]
LabelName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]
Labels = Annotated[dict[LabelName, Text], Field(max_length=100)]


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    startsAt: datetime
    endsAt: datetime | None = None
    generatorURL: Text = ""
    fingerprint: Annotated[
        str, StringConstraints(min_length=1, max_length=64, pattern=r"^[0-9a-fA-F]+$")
    ]


class WebhookPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    status: Literal["firing", "resolved"]
    receiver: Text
    groupKey: Text = ""
    externalURL: Text = ""
    alerts: Annotated[list[WebhookAlert], Field(max_length=10_000)]
