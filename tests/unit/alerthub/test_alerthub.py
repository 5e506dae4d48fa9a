"""The alert hub in-process: webhook, persistence, API, WebSocket pushes, bounded queues."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchfloor_alerthub import broadcast
from watchfloor_alerthub.app import create_app

TOKEN = "hub-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def alert(name: str, fingerprint: str, status: str = "firing", severity: str = "warning") -> dict:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "strategy": "momo"},
        "annotations": {"summary": f"{name} summary", "runbook_url": f"docs/runbooks/{name}.md"},
        "startsAt": datetime.now(UTC).isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict) -> dict:
    return {"version": "4", "status": "firing", "receiver": "hub", "groupKey": "{}:{}",
            "externalURL": "http://alertmanager", "alerts": list(alerts)}  # fmt: skip


@pytest.fixture
def hub(tmp_path):
    app = create_app(
        token=TOKEN, database=tmp_path / "hub.sqlite", alertmanager_url="http://127.0.0.1:9"
    )
    with TestClient(app) as client:
        yield client


def test_webhook_then_api(hub):
    response = hub.post(
        "/alertmanager/webhook", json=payload(alert("TradingSlippageHigh", "aa01")), headers=AUTH
    )
    assert response.status_code == 200 and response.json() == {"received": 1}
    body = hub.get("/api/alerts", headers=AUTH).json()
    (stored,) = body["alerts"]
    assert stored["labels"]["alertname"] == "TradingSlippageHigh"
    assert stored["annotations"]["summary"] == "TradingSlippageHigh summary"
    assert stored["status"] == "firing" and stored["fingerprint"] == "aa01"
    assert stored["startsAt"]
    hub.post(
        "/alertmanager/webhook",
        json=payload(alert("TradingSlippageHigh", "aa01", "resolved")),
        headers=AUTH,
    )
    assert hub.get("/api/alerts", headers=AUTH).json()["alerts"] == []
    assert len(hub.get("/api/alerts?status=all", headers=AUTH).json()["alerts"]) == 1


def test_alerts_survive_a_restart(tmp_path):
    database = tmp_path / "hub.sqlite"
    with TestClient(
        create_app(token=TOKEN, database=database, alertmanager_url="http://x")
    ) as first:
        first.post(
            "/alertmanager/webhook", json=payload(alert("HostMemoryLow", "bb02")), headers=AUTH
        )
    with TestClient(
        create_app(token=TOKEN, database=database, alertmanager_url="http://x")
    ) as second:
        assert [
            a["fingerprint"] for a in second.get("/api/alerts", headers=AUTH).json()["alerts"]
        ] == ["bb02"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**payload(), "version": "3"}, "version"),
        (payload({**alert("X", "cc03"), "status": "pending"}), "alerts.0.status"),
        (payload({**alert("X", "cc03"), "fingerprint": "not hex!"}), "alerts.0.fingerprint"),
        (
            payload({k: v for k, v in alert("X", "cc03").items() if k != "labels"}),
            "alerts.0.labels",
        ),
        ({"alerts": "nope"}, "version"),
    ],
)
def test_bad_payloads_get_a_4xx_naming_the_field(hub, body, field):
    response = hub.post("/alertmanager/webhook", json=body, headers=AUTH)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


def test_authentication(hub):
    assert hub.post("/alertmanager/webhook", json=payload()).status_code == 401
    assert hub.get("/api/alerts", headers={"Authorization": "Bearer wrong"}).status_code == 403
    assert hub.get("/api/alerts").status_code == 401
    with pytest.raises(Exception), hub.websocket_connect("/ws?token=wrong") as socket:
        socket.receive_json()


def test_websocket_snapshot_then_changes_and_watchdog(hub):
    hub.post("/alertmanager/webhook", json=payload(alert("Old", "dd04")), headers=AUTH)
    with hub.websocket_connect(f"/ws?token={TOKEN}") as socket:
        snapshot = socket.receive_json()
        assert snapshot["type"] == "snapshot"
        assert [a["fingerprint"] for a in snapshot["alerts"]] == ["dd04"]
        assert snapshot["watchdog"]["stale"] is True
        hub.post(
            "/alertmanager/webhook",
            json=payload(alert("Watchdog", "ee05", severity="info")),
            headers=AUTH,
        )
        change = socket.receive_json()
        assert change["type"] == "alert" and change["alert"]["labels"]["alertname"] == "Watchdog"
        heartbeat = socket.receive_json()
        assert heartbeat["type"] == "watchdog" and heartbeat["watchdog"]["stale"] is False


def test_acknowledge_without_alertmanager_is_a_502_with_the_reason(hub):
    hub.post("/alertmanager/webhook", json=payload(alert("X", "ff06")), headers=AUTH)
    response = hub.post("/api/alerts/ff06/acknowledge", json={}, headers=AUTH)
    assert response.status_code == 502 and "unreachable" in response.json()["error"]
    assert hub.post("/api/alerts/0000/acknowledge", json={}, headers=AUTH).status_code == 404
    assert (
        hub.post("/api/alerts/ff06/acknowledge", json={"hours": -1}, headers=AUTH).status_code
        == 422
    )


def test_slow_clients_are_bounded_and_resynced():
    async def scenario() -> None:
        hub = broadcast.Broadcaster(lambda: {"type": "snapshot", "alerts": []})
        slow = hub.connect()
        before = broadcast.RESYNCS._value.get()
        for index in range(broadcast.QUEUE_SIZE * 5):
            hub.publish({"type": "alert", "n": index})
        assert slow.queue.qsize() <= broadcast.QUEUE_SIZE
        assert broadcast.RESYNCS._value.get() - before >= 4
        first = slow.queue.get_nowait()
        assert first["type"] == "snapshot"  # what it missed is superseded by a snapshot

    asyncio.run(scenario())


def test_page_is_served(hub):
    page = hub.get("/")
    assert page.status_code == 200 and "watchfloor alerts" in page.text


def test_runbooks_are_served_safely(tmp_path):
    from pathlib import Path

    runbooks = Path(__file__).resolve().parents[3] / "docs" / "runbooks"
    app = create_app(
        token=TOKEN, database=tmp_path / "h.sqlite", alertmanager_url="http://x", runbooks=runbooks
    )
    with TestClient(app) as client:
        page = client.get("/docs/runbooks/Watchdog.md")
        assert page.status_code == 200 and page.text.startswith("# Watchdog")
        assert client.get("/docs/runbooks/..%2F..%2FREADME.md").status_code == 404
        assert client.get("/docs/runbooks/Nope.md").status_code == 404


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4),
                                            st.dictionaries(st.sampled_from(
                                                ["version", "status", "alerts", "labels", "fingerprint",
                                                 "startsAt", "receiver", "annotations", "x"]), inner, max_size=6)),
                    max_leaves=12))  # fmt: skip
def test_fuzzed_webhooks_never_5xx(hub, document):
    response = hub.post("/alertmanager/webhook", content=json.dumps(document), headers=AUTH)
    assert response.status_code < 500
