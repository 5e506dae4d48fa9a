"""The trading exporter's event types (POST /v1/events), validated with pydantic."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from watchfloor_exporters.common.events import (
    Currency,
    Event,
    Finite,
    Flag,
    HttpStatus,
    Name,
    NonNegative,
    Positive,
)
from watchfloor_exporters.common.ingest import register_tags

Side = Literal["buy", "sell"]


def _non_zero(value: float) -> float:
    if value == 0:
        raise ValueError("must not be zero (utilisation is value / limit)")
    return value


OrderType = Literal["market", "limit", "stop", "stop_limit", "iceberg", "twap", "vwap"]
Severity = Literal["info", "warning", "critical"]


class OrderEvent(Event):
    order_id: Name
    strategy: Name
    symbol: Name


class OrderSubmitted(OrderEvent):
    type: Literal["order_submitted"]
    venue: Name
    side: Side
    order_type: OrderType = "limit"
    quantity: Positive
    limit_price: Positive | None = None
    arrival_price: Positive = Field(description="mid price when the order was decided/arrived")
    decision_price: Positive | None = None


class OrderAcked(OrderEvent):
    type: Literal["order_acked"]
    venue: Name | None = None


class OrderRejected(OrderEvent):
    type: Literal["order_rejected"]
    reason: Name
    venue: Name | None = None


class OrderFilled(OrderEvent):
    type: Literal["order_filled"]
    side: Side
    venue: Name | None = None
    quantity: Positive
    price: Positive
    final: Flag = Field(description="true on the fill that completes the order")
    arrival_price: Positive | None = None
    decision_price: Positive | None = None


class OrderCancelled(OrderEvent):
    type: Literal["order_cancelled"]
    reason: Name | None = None


class PositionSnapshot(Event):
    type: Literal["position_snapshot"]
    strategy: Name
    symbol: Name
    currency: Currency
    quantity: Finite = Field(description="signed: negative is short")
    price: Positive


class PnlSnapshot(Event):
    type: Literal["pnl_snapshot"]
    strategy: Name
    currency: Currency
    realized: Finite
    unrealized: Finite
    capital: Positive | None = Field(
        default=None, description="capital allocated to the strategy (drawdown base)"
    )


class MarketDataLatency(Event):
    type: Literal["market_data_latency"]
    feed: Name
    symbol: Name
    latency_seconds: Annotated[NonNegative, Field(le=3600)]


class RiskViolation(Event):
    type: Literal["risk_violation"]
    strategy: Name
    rule: Name
    severity: Severity
    value: Finite
    limit: Annotated[Finite, AfterValidator(_non_zero)]


class BrokerApiCall(Event):
    type: Literal["broker_api_call"]
    broker: Name
    endpoint: Name
    status: HttpStatus
    duration_seconds: Annotated[NonNegative, Field(le=3600)]
    rate_limit_remaining: NonNegative | None = None
    rate_limit_limit: Positive | None = None
    rate_limit_reset_seconds: NonNegative | None = Field(
        default=None, description="seconds until the rate-limit window resets"
    )


TradingEvent = Annotated[
    OrderSubmitted
    | OrderAcked
    | OrderRejected
    | OrderFilled
    | OrderCancelled
    | PositionSnapshot
    | PnlSnapshot
    | MarketDataLatency
    | RiskViolation
    | BrokerApiCall,
    Field(discriminator="type"),
]

register_tags(
    [
        "order_submitted",
        "order_acked",
        "order_rejected",
        "order_filled",
        "order_cancelled",
        "position_snapshot",
        "pnl_snapshot",
        "market_data_latency",
        "risk_violation",
        "broker_api_call",
    ]
)
