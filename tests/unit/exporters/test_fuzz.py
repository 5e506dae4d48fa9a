"""Property-based: whatever arrives, the exporters answer 2xx or 4xx (never 5xx), keep serving,
and keep /metrics parseable."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.exporters.conftest import AUTH, TOKEN
from watchfloor_exporters.pipeline.app import build as build_pipeline
from watchfloor_exporters.trading.app import build as build_trading

TRADING_TYPES = ["order_submitted", "order_acked", "order_rejected", "order_filled",
                 "order_cancelled", "position_snapshot", "pnl_snapshot", "market_data_latency",
                 "risk_violation", "broker_api_call"]  # fmt: skip
PIPELINE_ROUTES = {"/v1/runs": ["run_started", "run_finished"], "/v1/quality": ["quality_check"],
                   "/v1/api-usage": ["api_usage"]}  # fmt: skip
FIELDS = ["order_id", "strategy", "symbol", "venue", "side", "order_type", "quantity", "price",
          "arrival_price", "final", "reason", "currency", "realized", "unrealized", "capital",
          "feed", "latency_seconds", "rule", "severity", "value", "limit", "broker", "endpoint",
          "status", "duration_seconds", "rate_limit_remaining", "run_id", "pipeline", "job",
          "records", "errors", "datasets", "dataset", "completeness", "api", "count"]  # fmt: skip

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["buy", "sell", "USD", "AAPL", "limit", "success", "critical", "/x", ""]),
)  # fmt: skip
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3), max_leaves=5)
timestamps = st.one_of(
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ).map(lambda d: d.isoformat()),
    st.just((datetime.now(UTC) - timedelta(seconds=1)).isoformat()),
    st.text(max_size=30),
)


@st.composite
def events(draw: st.DrawFn, types: list[str]) -> dict[str, object]:
    event: dict[str, object] = {
        "type": draw(st.one_of(st.sampled_from(types), st.text(max_size=12))),
        "id": draw(st.one_of(st.text(min_size=1, max_size=20), st.integers())),
        "timestamp": draw(timestamps),
    }
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=10, unique=True)):
        event[field] = draw(values)
    return event


def bodies(types: list[str]) -> st.SearchStrategy[bytes]:
    as_json = st.lists(events(types), max_size=8).map(lambda e: json.dumps(e).encode())
    ndjson = st.lists(events(types), max_size=5).map(
        lambda e: b"\n".join(json.dumps(x).encode() for x in e)
    )
    return st.one_of(
        as_json, ndjson, st.binary(max_size=200), values.map(lambda v: json.dumps(v).encode())
    )


async def _check(app, posts: list[tuple[str, bytes, str]]) -> None:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://fuzz") as client:
        for path, body, content_type in posts:
            response = await client.post(
                path, content=body, headers={**AUTH, "Content-Type": content_type}
            )
            assert response.status_code < 500, (path, body[:300], response.text[:300])
            if response.status_code >= 400:
                assert response.json()["error"]
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200
        assert list(text_string_to_metric_families(metrics.text))


TRADING_APP = build_trading(TOKEN, False, 0, None)
PIPELINE_APP = build_pipeline(TOKEN, False, 0, None)
CONTENT_TYPES = st.sampled_from(["application/json", "application/x-ndjson", "text/plain"])
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.lists(st.tuples(bodies(TRADING_TYPES), CONTENT_TYPES), min_size=1, max_size=4))
def test_trading_exporter_never_5xx(posts):
    asyncio.run(_check(TRADING_APP, [("/v1/events", b, c) for b, c in posts]))


@SETTINGS
@given(
    st.lists(
        st.sampled_from(sorted(PIPELINE_ROUTES)).flatmap(
            lambda path: st.tuples(st.just(path), bodies(PIPELINE_ROUTES[path]), CONTENT_TYPES)
        ),
        min_size=1,
        max_size=4,
    )
)
def test_pipeline_exporter_never_5xx(posts):
    asyncio.run(_check(PIPELINE_APP, posts))
