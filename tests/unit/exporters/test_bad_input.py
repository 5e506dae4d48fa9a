"""Bad input gets a 4xx naming the problem; nothing of a rejected batch is applied; never a 5xx."""

from __future__ import annotations

import json

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.unit.exporters.conftest import AUTH, TOKEN, event, later


def fill(**overrides):
    base = event("order_filled", order_id="b-1", strategy="bad-input", symbol="AAPL",
                 side="buy", quantity=10, price=100.0, final=True)  # fmt: skip
    base.update(overrides)
    return base


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ([fill(quantity=-5)], 422, "events[0].quantity"),
        ([fill(quantity="ten")], 422, "events[0].quantity"),
        ([fill(side="long")], 422, "events[0].side"),
        ([fill(type="order_teleported")], 422, "events[0].type"),
        ([fill(), fill(price=0)], 422, "events[1].price"),
        ([fill(timestamp=later(3600).isoformat())], 422, "events[0].timestamp"),
        ([fill(timestamp="2026-11-24T10:00:00")], 422, "events[0].timestamp"),
        ([fill(symbol="AA PL")], 422, "events[0].symbol"),
        ([fill(symbol="x" * 200)], 422, "events[0].symbol"),
        ([fill(surprise=1)], 422, "events[0].surprise"),
        ([{k: v for k, v in fill().items() if k != "id"}], 422, "events[0].id"),
        ({"not": "a list"}, 422, None),
    ],
)
async def test_invalid_events_name_the_field(trading, body, status, field):
    response = await trading.post("/v1/events", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    payload = response.json()
    assert payload["error"]
    if field:
        assert field in [e["field"] for e in payload["errors"]], payload


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
async def test_non_finite_numbers_are_refused(trading, literal):
    text = json.dumps([fill()]).replace('"price": 100.0', f'"price": {literal}')
    response = await trading.post("/v1/events", content=text, headers=AUTH)
    assert response.status_code in {400, 422}
    assert "price" in response.text or "JSON" in response.text


async def test_malformed_json(trading):
    response = await trading.post("/v1/events", content=b'[{"type": ', headers=AUTH)
    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]
    response = await trading.post(
        "/v1/events",
        content=b'{"a":1}\nnot json',
        headers={**AUTH, "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code == 400
    assert "line 2" in response.json()["error"]


async def test_a_bad_event_rejects_the_whole_batch(trading):
    good = fill(order_id="atomic-1", strategy="atomic")
    response = await trading.post("/v1/events", json=[good, fill(quantity=-1)], headers=AUTH)
    assert response.status_code == 422
    assert "nothing from this batch was applied" in response.json()["error"]
    assert REGISTRY.get_sample_value(
        "trading_fills_total", {"strategy": "atomic", "symbol": "AAPL", "venue": "unknown", "side": "buy"}
    ) is None  # fmt: skip
    retry = await trading.post("/v1/events", json=[good], headers=AUTH)
    assert retry.json() == {"accepted": 1, "duplicates": 0}  # its id was not burnt


async def test_oversized_body_and_too_many_events(trading, monkeypatch):
    big = b"[" + b" " * (1024 * 1024) + b"]"
    response = await trading.post("/v1/events", content=big, headers=AUTH)
    assert response.status_code == 413
    assert "1048576-byte limit" in response.json()["error"]
    many = [event("market_data_latency", feed="f", symbol="S", latency_seconds=0.001)] * 5001
    response = await trading.post("/v1/events", json=many, headers=AUTH)
    assert response.status_code == 413
    assert "at most 5000" in response.json()["error"]


async def test_authentication(trading):
    assert (await trading.post("/v1/events", json=[fill()])).status_code == 401
    wrong = await trading.post(
        "/v1/events", json=[fill()], headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 403
    other_scheme = await trading.post(
        "/v1/events", json=[fill()], headers={"Authorization": f"Basic {TOKEN}"}
    )
    assert other_scheme.status_code == 401
    assert other_scheme.headers["www-authenticate"] == "Bearer"
    assert (await trading.get("/metrics")).status_code == 200  # reading needs no token


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
async def test_the_bearer_scheme_is_case_insensitive(trading, scheme):
    response = await trading.post(
        "/v1/events", json=[fill(strategy="scheme")], headers={"Authorization": f"{scheme} {TOKEN}"}
    )
    assert response.status_code == 200, response.text


async def test_metrics_stay_parseable_after_bad_input(trading):
    for body in (b"\xff\xfe", b"[1,2,3]", b'[{"type":"pnl_snapshot"}]', b"null"):
        response = await trading.post("/v1/events", content=body, headers=AUTH)
        assert 400 <= response.status_code < 500, (body, response.status_code)
    metrics = await trading.get("/metrics")
    assert list(text_string_to_metric_families(metrics.text))
