"""The trading metric catalog: orders, fills, slippage, P&L, risk, market data, broker APIs.

Labels: strategy, symbol, venue, feed, broker, endpoint, rule, reason and currency are capped by the
cardinality guard; side (buy|sell), order_type, status (order status, or the HTTP code 100..599 of
a broker call), severity and kind are closed sets, checked once per new label combination: a
value outside the set is case-folded into it or recorded as `__overflow__`, never raised
(`input_errors`; strict mode raises). Ratios a hair outside 0..1 are clamped, others dropped.
Slippage is signed in basis points against the arrival price: positive is a cost (bought above /
sold below arrival), negative an improvement. docs/metrics.md describes every label. The cardinality
guard also bounds series per metric and in total, and removes idle ones (`cardinality`).
"""

from __future__ import annotations

import math
import time

from prometheus_client import Counter, Gauge, Histogram

from watchfloor.metrics import input_errors
from watchfloor.metrics.cardinality import HTTP_STATUSES, OVERFLOW, Family, closed_value
from watchfloor.metrics.exemplars import current_exemplar

SIDES = frozenset({"buy", "sell"})
ORDER_TYPES = frozenset({"market", "limit", "stop", "stop_limit", "iceberg", "twap", "vwap"})
ORDER_STATUSES = frozenset(
    {"submitted", "acked", "partially_filled", "filled", "cancelled", "rejected", "expired"}
)
SEVERITIES = frozenset({"info", "warning", "critical"})
PNL_KINDS = frozenset({"realized", "unrealized"})
EXPOSURE_KINDS = frozenset({"gross", "net"})

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
MARKET_DATA_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    1,
)
SLIPPAGE_BUCKETS = (-50, -25, -10, -5, -2, -1, 0, 1, 2, 5, 10, 25, 50)
BROKER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

ORDER_EXECUTION = Family(
    Histogram(
        "trading_order_execution_duration_seconds",
        "Time from order submission to its final fill.",
        ["strategy", "symbol", "venue", "side", "order_type"],
        buckets=LATENCY_BUCKETS,
    ),
    capped=("strategy", "symbol", "venue"),
    closed={"side": SIDES, "order_type": ORDER_TYPES},
)
ORDER_ACK = Family(
    Histogram(
        "trading_order_ack_duration_seconds",
        "Time from order submission to the venue's acknowledgement.",
        ["strategy", "venue"],
        buckets=LATENCY_BUCKETS,
    ),
    capped=("strategy", "venue"),
)
ORDERS = Family(
    Counter(
        "trading_orders_total",
        "Order lifecycle events by status (submitted, acked, partially_filled, filled, cancelled, "
        "rejected, expired).",
        ["strategy", "symbol", "venue", "side", "order_type", "status"],
    ),
    capped=("strategy", "symbol", "venue"),
    closed={"side": SIDES, "order_type": ORDER_TYPES, "status": ORDER_STATUSES},
)
REJECTIONS = Family(
    Counter(
        "trading_order_rejections_total",
        "Orders rejected, by the venue's or the risk engine's reason.",
        ["strategy", "venue", "reason"],
    ),
    capped=("strategy", "venue", "reason"),
)
FILLS = Family(
    Counter(
        "trading_fills_total", "Fills (partial and final).", ["strategy", "symbol", "venue", "side"]
    ),
    capped=("strategy", "symbol", "venue"),
    closed={"side": SIDES},
)
FILLED_QUANTITY = Family(
    Counter(
        "trading_filled_quantity_total",
        "Quantity filled, in units of the instrument.",
        ["strategy", "symbol", "side"],
    ),
    capped=("strategy", "symbol"),
    closed={"side": SIDES},
)
SUBMITTED_QUANTITY = Family(
    Counter(
        "trading_submitted_quantity_total",
        "Quantity submitted, in units of the instrument.",
        ["strategy", "symbol", "side"],
    ),
    capped=("strategy", "symbol"),
    closed={"side": SIDES},
)
FILL_RATIO = Family(
    Gauge(
        "trading_fill_ratio",
        "Filled over submitted quantity of the strategy's recently completed orders (0..1).",
        ["strategy", "symbol"],
    ),
    capped=("strategy", "symbol"),
)
SLIPPAGE = Family(
    Histogram(
        "trading_slippage_bps",
        "Signed slippage of a fill against the arrival price, in basis points (positive = cost).",
        ["strategy", "symbol", "side"],
        buckets=SLIPPAGE_BUCKETS,
    ),
    capped=("strategy", "symbol"),
    closed={"side": SIDES},
)
PNL = Family(
    Gauge(
        "trading_strategy_pnl",
        "Strategy profit and loss in the currency's units; kind is realized or unrealized.",
        ["strategy", "currency", "kind"],
    ),
    capped=("strategy", "currency"),
    closed={"kind": PNL_KINDS},
)
DRAWDOWN = Family(
    Gauge(
        "trading_strategy_drawdown_ratio",
        "Fall of the strategy's equity from its peak, as a fraction of the peak (0..1).",
        ["strategy"],
    ),
    capped=("strategy",),
)
WIN_RATIO = Family(
    Gauge(
        "trading_strategy_win_ratio",
        "Share of the strategy's closed trades with a positive realized P&L (0..1).",
        ["strategy"],
    ),
    capped=("strategy",),
)
EXPOSURE = Family(
    Gauge(
        "trading_exposure",
        "Position exposure in the currency's units; kind is gross (sum of |value|) or net.",
        ["currency", "kind"],
    ),
    capped=("currency",),
    closed={"kind": EXPOSURE_KINDS},
)
RISK_VIOLATIONS = Family(
    Counter(
        "trading_risk_violations_total",
        "Risk rule violations by rule and severity (info, warning, critical).",
        ["strategy", "rule", "severity"],
    ),
    capped=("strategy", "rule"),
    closed={"severity": SEVERITIES},
)
LIMIT_UTILISATION = Family(
    Gauge(
        "trading_risk_limit_utilisation_ratio",
        "Value over limit of a risk rule, as last reported (1 = at the limit).",
        ["strategy", "rule"],
    ),
    capped=("strategy", "rule"),
)
MARKET_DATA_LATENCY = Family(
    Histogram(
        "trading_market_data_latency_seconds",
        "Delay from the exchange timestamp of a market-data update to its processing.",
        ["feed", "symbol"],
        buckets=MARKET_DATA_BUCKETS,
    ),
    capped=("feed", "symbol"),
)
MARKET_DATA_UPDATES = Family(
    Counter(
        "trading_market_data_updates_total", "Market-data updates processed.", ["feed", "symbol"]
    ),
    capped=("feed", "symbol"),
)
MARKET_DATA_LAST_UPDATE = Family(
    Gauge(
        "trading_market_data_last_update_timestamp_seconds",
        "Unix time of the feed's latest update (staleness = time() - this).",
        ["feed"],
    ),
    capped=("feed",),
    keep_idle=True,
)
BROKER_REQUESTS = Family(
    Counter(
        "trading_broker_requests_total",
        "Broker API requests by HTTP status code.",
        ["broker", "endpoint", "status"],
    ),
    capped=("broker", "endpoint"),
    closed={"status": HTTP_STATUSES},
)
BROKER_DURATION = Family(
    Histogram(
        "trading_broker_request_duration_seconds",
        "Broker API request duration.",
        ["broker", "endpoint"],
        buckets=BROKER_BUCKETS,
    ),
    capped=("broker", "endpoint"),
)
BROKER_RATE_LIMIT_REMAINING = Family(
    Gauge(
        "trading_broker_rate_limit_remaining",
        "Requests left in the broker's current rate-limit window.",
        ["broker", "endpoint"],
    ),
    capped=("broker", "endpoint"),
)
BROKER_RATE_LIMIT_LIMIT = Family(
    Gauge(
        "trading_broker_rate_limit_limit",
        "Requests allowed per rate-limit window.",
        ["broker", "endpoint"],
    ),
    capped=("broker", "endpoint"),
)
BROKER_RATE_LIMIT_RESET = Family(
    Gauge(
        "trading_broker_rate_limit_reset_seconds",
        "Seconds until the broker's rate-limit window resets.",
        ["broker", "endpoint"],
    ),
    capped=("broker", "endpoint"),
)


def record_order(
    *,
    strategy: str,
    symbol: str,
    venue: str,
    side: str,
    order_type: str,
    status: str,
    duration_seconds: float | None = None,
) -> None:
    """Count an order lifecycle event; with a duration on `filled`, observe execution time."""
    ORDERS.inc((strategy, symbol, venue, side, order_type, status))
    if duration_seconds is not None:
        ORDER_EXECUTION.observe(
            (strategy, symbol, venue, side, order_type), duration_seconds, current_exemplar()
        )


def record_order_ack(*, strategy: str, venue: str, duration_seconds: float) -> None:
    ORDER_ACK.observe((strategy, venue), duration_seconds, current_exemplar())


def record_submitted_quantity(*, strategy: str, symbol: str, side: str, quantity: float) -> None:
    SUBMITTED_QUANTITY.inc((strategy, symbol, side), quantity)


def record_rejection(*, strategy: str, venue: str, reason: str) -> None:
    REJECTIONS.inc((strategy, venue, reason))


def record_fill(*, strategy: str, symbol: str, venue: str, side: str, quantity: float) -> None:
    # Quantity first: in strict mode a negative one raises before the fill is counted, so nothing
    # half-lands; otherwise the bad quantity alone is dropped and the fill still counts.
    FILLED_QUANTITY.inc((strategy, symbol, side), quantity)
    FILLS.inc((strategy, symbol, venue, side))


def set_fill_ratio(*, strategy: str, symbol: str, ratio: float) -> None:
    checked = input_errors.ratio(FILL_RATIO.name, ratio, "fill ratio")
    if checked is not None:
        FILL_RATIO.set((strategy, symbol), checked)


def record_slippage(*, strategy: str, symbol: str, side: str, bps: float) -> None:
    SLIPPAGE.observe((strategy, symbol, side), bps, current_exemplar())


def slippage_bps(*, side: str, arrival_price: float, fill_price: float) -> float:
    """Signed slippage in bps against arrival: positive when the fill was worse than arrival.

    NaN (reported under trading_slippage_bps) when the inputs give none; record_slippage drops it.
    """
    metric = SLIPPAGE.name
    side = closed_value(metric, "side", str(side), SIDES)
    arrival = input_errors.number(metric, arrival_price, "arrival_price")
    fill = input_errors.number(metric, fill_price, "fill_price")
    if arrival is not None and arrival <= 0:
        detail = f"arrival_price must be positive, got {arrival_price}"
        input_errors.report(metric, input_errors.OUT_OF_RANGE, detail)
        arrival = None
    if side == OVERFLOW or arrival is None or fill is None:
        return math.nan
    move = (fill - arrival) / arrival * 10_000
    return move if side == "buy" else -move


def set_pnl(*, strategy: str, currency: str, realized: float, unrealized: float) -> None:
    PNL.set((strategy, currency, "realized"), realized)
    PNL.set((strategy, currency, "unrealized"), unrealized)


def set_drawdown(*, strategy: str, ratio: float) -> None:
    checked = input_errors.ratio(DRAWDOWN.name, ratio, "drawdown ratio")
    if checked is not None:
        DRAWDOWN.set((strategy,), checked)


def set_win_ratio(*, strategy: str, ratio: float) -> None:
    checked = input_errors.ratio(WIN_RATIO.name, ratio, "win ratio")
    if checked is not None:
        WIN_RATIO.set((strategy,), checked)


def set_exposure(*, currency: str, gross: float, net: float) -> None:
    EXPOSURE.set((currency, "gross"), gross)
    EXPOSURE.set((currency, "net"), net)


def record_risk_violation(*, strategy: str, rule: str, severity: str) -> None:
    RISK_VIOLATIONS.inc((strategy, rule, severity))


def set_limit_utilisation(*, strategy: str, rule: str, ratio: float) -> None:
    LIMIT_UTILISATION.set((strategy, rule), ratio)


def record_market_data(
    *, feed: str, symbol: str, latency_seconds: float, at: float | None = None
) -> None:
    """One processed update: its latency, the update count and the feed's last-update time."""
    MARKET_DATA_LATENCY.observe((feed, symbol), latency_seconds, current_exemplar())
    MARKET_DATA_UPDATES.inc((feed, symbol))
    MARKET_DATA_LAST_UPDATE.set((feed,), time.time() if at is None else at)


def record_broker_call(
    *,
    broker: str,
    endpoint: str,
    status: int,
    duration_seconds: float,
    rate_limit_remaining: float | None = None,
    rate_limit_limit: float | None = None,
    rate_limit_reset_seconds: float | None = None,
) -> None:
    BROKER_REQUESTS.inc((broker, endpoint, str(status)))
    BROKER_DURATION.observe((broker, endpoint), duration_seconds, current_exemplar())
    if rate_limit_remaining is not None:
        BROKER_RATE_LIMIT_REMAINING.set((broker, endpoint), rate_limit_remaining)
    if rate_limit_limit is not None:
        BROKER_RATE_LIMIT_LIMIT.set((broker, endpoint), rate_limit_limit)
    if rate_limit_reset_seconds is not None:
        BROKER_RATE_LIMIT_RESET.set((broker, endpoint), rate_limit_reset_seconds)
