"""The alert hub in-process: webhook, persistence, API, WebSocket door, acknowledge validation."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

from watchfloor_alerthub import limits
from watchfloor_alerthub.app import create_app

TOKEN = "hub-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOWHERE = "http://127.0.0.1:9"  # nothing listens: acknowledging fails, reconciling fails


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
    app = create_app(token=TOKEN, database=tmp_path / "hub.sqlite", alertmanager_url=NOWHERE)
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


def test_one_alert_from_several_alertmanagers_is_stored_once(hub):
    """HA: every Alertmanager of a cluster may deliver the same alert; the fingerprint keys it."""
    for receiver in ("hub", "trading-page", "hub"):
        body = {**payload(alert("X", "AB12")), "receiver": receiver}
        assert hub.post("/alertmanager/webhook", json=body, headers=AUTH).status_code == 200
    assert [a["fingerprint"] for a in hub.get("/api/alerts", headers=AUTH).json()["alerts"]] == [
        "ab12"
    ]


def test_alerts_survive_a_restart(tmp_path):
    database = tmp_path / "hub.sqlite"
    with TestClient(create_app(token=TOKEN, database=database, alertmanager_url=NOWHERE)) as first:
        first.post(
            "/alertmanager/webhook", json=payload(alert("HostMemoryLow", "bb02")), headers=AUTH
        )
    with TestClient(create_app(token=TOKEN, database=database, alertmanager_url=NOWHERE)) as again:
        alerts = again.get("/api/alerts", headers=AUTH).json()["alerts"]
        assert [a["fingerprint"] for a in alerts] == ["bb02"]


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
        # One alert over the per-alert bound (limits.MAX_ALERT_BYTES), though each value is legal.
        (
            payload({**alert("X", "cc03"), "annotations": {f"a{n}": "x" * 9000 for n in range(2)}}),
            "alerts.0",
        ),
        # A time UTC cannot hold is refused, not a 500 when it is converted.
        (
            payload({**alert("X", "cc03"), "startsAt": "9999-12-31T23:59:59-23:00"}),
            "alerts.0.startsAt",
        ),
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


def receive_until(socket, kind: str, limit: int = 20) -> dict:
    for _ in range(limit):
        message = socket.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message in {limit}")


def test_websocket_auth_by_first_message_then_snapshot_changes_and_watchdog(hub):
    hub.post("/alertmanager/webhook", json=payload(alert("Old", "dd04")), headers=AUTH)
    with hub.websocket_connect("/ws") as socket:
        socket.send_json({"type": "auth", "token": TOKEN})
        snapshot = socket.receive_json()
        assert snapshot["type"] == "snapshot" and snapshot["part"] == 0 and snapshot["last"]
        assert [a["fingerprint"] for a in snapshot["alerts"]] == ["dd04"]
        assert socket.receive_json()["watchdog"]["stale"] is True
        hub.post(
            "/alertmanager/webhook",
            json=payload(alert("Watchdog", "ee05", severity="info")),
            headers=AUTH,
        )
        change = socket.receive_json()
        assert change["type"] == "alert" and change["alert"]["labels"]["alertname"] == "Watchdog"
        assert receive_until(socket, "watchdog")["watchdog"]["stale"] is False


def test_websocket_auth_by_header_for_programs(hub):
    with hub.websocket_connect("/ws", headers=AUTH) as socket:
        assert socket.receive_json()["type"] == "snapshot"
    with pytest.raises(WebSocketDenialResponse) as denied:
        hub.websocket_connect("/ws", headers={"Authorization": "Bearer wrong"}).__enter__()
    assert denied.value.status_code == 403


@pytest.mark.parametrize(
    ("first", "code"),
    [
        ({"type": "auth", "token": "wrong"}, 4401),
        ({"type": "auth"}, 4400),
        ({"token": TOKEN}, 4400),
        ("not json at all", 4400),
        ({"type": "auth", "token": ["list"]}, 4400),
    ],
)
def test_websocket_bad_first_message_is_closed_with_a_reason(hub, first, code):
    with hub.websocket_connect("/ws") as socket:
        if isinstance(first, str):
            socket.send_text(first)
        else:
            socket.send_json(first)
        with pytest.raises(WebSocketDisconnect) as closed:
            socket.receive_json()
    assert closed.value.code == code and closed.value.reason


def test_websocket_refuses_a_token_in_the_url(hub):
    """Even the right token: a URL's query string ends up in proxies' access logs."""
    with (
        hub.websocket_connect(f"/ws?token={TOKEN}") as socket,
        pytest.raises(WebSocketDisconnect) as closed,
    ):
        socket.receive_json()
    assert closed.value.code == 4400 and "URL" in closed.value.reason


def test_websocket_checks_the_origin(tmp_path):
    app = create_app(
        token=TOKEN, database=tmp_path / "h.sqlite", alertmanager_url=NOWHERE,
        allowed_origins=["https://hub.example.com"],
    )  # fmt: skip
    with TestClient(app) as client:
        for origin in ("http://evil.example", "null", "http://testserver.evil.example"):
            with pytest.raises(WebSocketDenialResponse) as denied:
                client.websocket_connect("/ws", headers={"origin": origin, **AUTH}).__enter__()
            assert denied.value.status_code == 403 and "origin" in denied.value.json()["error"]
        for origin in ("http://testserver", "https://hub.example.com"):
            with client.websocket_connect("/ws", headers={"origin": origin, **AUTH}) as socket:
                assert socket.receive_json()["type"] == "snapshot"


def test_websocket_clients_are_capped(tmp_path):
    app = create_app(
        token=TOKEN, database=tmp_path / "h.sqlite", alertmanager_url=NOWHERE, max_clients=2
    )
    with (
        TestClient(app) as client,
        client.websocket_connect("/ws", headers=AUTH) as one,
        client.websocket_connect("/ws", headers=AUTH) as two,
    ):
        one.receive_json()
        two.receive_json()
        with (
            client.websocket_connect("/ws", headers=AUTH) as three,
            pytest.raises(WebSocketDisconnect) as closed,
        ):
            three.receive_json()
        assert closed.value.code == 1013


def test_a_message_after_auth_closes_the_feed(hub):
    with hub.websocket_connect("/ws", headers=AUTH) as socket:
        receive_until(socket, "watchdog")
        socket.send_text("x" * 100)
        with pytest.raises(WebSocketDisconnect) as closed:
            receive_until(socket, "never")
    assert closed.value.code == 1008


def test_acknowledge_without_alertmanager_is_a_502_with_the_reason(hub):
    hub.post("/alertmanager/webhook", json=payload(alert("X", "ff06")), headers=AUTH)
    response = hub.post("/api/alerts/ff06/acknowledge", json={}, headers=AUTH)
    assert response.status_code == 502 and "unreachable" in response.json()["error"]
    assert hub.post("/api/alerts/0000/acknowledge", json={}, headers=AUTH).status_code == 404


def test_acknowledge_authenticates_before_it_reads_the_body(hub):
    for body in ({"hours": "nonsense"}, "not json", {"unknown": 1}):
        response = hub.post("/api/alerts/ff06/acknowledge", json=body)
        assert response.status_code == 401, response.text
        response = hub.post(
            "/api/alerts/ff06/acknowledge", json=body, headers={"Authorization": "x"}
        )
        assert response.status_code == 403, response.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"hours": 1e-300}, "body.hours"),  # reached Alertmanager as a silence already over: 502
        ({"hours": True}, "body.hours"),
        ({"hours": "2"}, "body.hours"),
        ({"hours": -1}, "body.hours"),
        ({"hours": 24 * 7 + 1}, "body.hours"),
        ({"by": ""}, "body.by"),
        ({"by": "   "}, "body.by"),
        ({"by": "x" * 101}, "body.by"),
        ({"comment": "x" * 1001}, "body.comment"),
        ({"silence": "everything"}, "body.silence"),
        ([], "body"),
    ],
)
def test_acknowledge_validates_its_body(hub, body, field):
    hub.post("/alertmanager/webhook", json=payload(alert("X", "ff06")), headers=AUTH)
    response = hub.post("/api/alerts/ff06/acknowledge", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


def test_acknowledge_checks_the_fingerprint_and_body_size(hub):
    response = hub.post("/api/alerts/not-hex/acknowledge", json={}, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.fingerprint"
    big = {"comment": "x" * (limits.MAX_ACK_BODY_BYTES + 1)}
    assert hub.post("/api/alerts/ff06/acknowledge", json=big, headers=AUTH).status_code == 413


def test_acknowledging_a_resolved_alert_is_a_conflict(hub):
    hub.post("/alertmanager/webhook", json=payload(alert("X", "ab07", "firing")), headers=AUTH)
    hub.post("/alertmanager/webhook", json=payload(alert("X", "ab07", "resolved")), headers=AUTH)
    assert hub.post("/api/alerts/ab07/acknowledge", json={}, headers=AUTH).status_code == 409


def test_declared_oversize_body_is_refused_before_it_is_read(hub):
    response = hub.post(
        "/alertmanager/webhook",
        content=b"{" * (limits.MAX_BODY_BYTES + 1),
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_chunked_body_is_refused_as_soon_as_it_passes_the_limit(tmp_path):
    """Starlette's request.body() read all 256 MiB before the size check; now the hub stops
    pulling chunks as soon as the limit is passed."""
    app = create_app(token=TOKEN, database=tmp_path / "h.sqlite", alertmanager_url=NOWHERE)
    chunk, chunks = b" " * 65536, 4096  # 256 MiB if it were all read
    pulled = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": pulled < chunks}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": "/alertmanager/webhook", "raw_path": b"/alertmanager/webhook",
        "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1), "server": ("hub", 80),
        "headers": [(b"host", b"hub"), (b"authorization", f"Bearer {TOKEN}".encode()),
                    (b"transfer-encoding", b"chunked")],
    }  # fmt: skip
    asyncio.run(app(scope, receive, send))
    assert sent[0]["status"] == 413
    assert pulled <= limits.MAX_BODY_BYTES // len(chunk) + 2


def test_page_is_served_with_a_policy_that_runs_only_its_own_script(hub):
    page = hub.get("/")
    assert page.status_code == 200 and "watchfloor alerts" in page.text
    script = page.text.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    directives = dict(
        d.strip().split(" ", 1) for d in page.headers["content-security-policy"].split(";")
    )
    assert directives["script-src"] == f"'sha256-{digest}'"  # no 'unsafe-inline', no javascript:
    assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'none'"
    assert "?token=" not in script  # the token is never put in a URL


def test_runbooks_are_served_safely(tmp_path):
    runbooks = Path(__file__).resolve().parents[3] / "docs" / "runbooks"
    app = create_app(
        token=TOKEN, database=tmp_path / "h.sqlite", alertmanager_url=NOWHERE, runbooks=runbooks
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


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fingerprint=st.text(min_size=1, max_size=80),
    document=st.dictionaries(
        st.sampled_from(["by", "hours", "comment", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
        max_size=4,
    ),
)
def test_fuzzed_acknowledgements_never_5xx_but_the_unreachable_alertmanager(
    hub, fingerprint, document
):
    hub.post("/alertmanager/webhook", json=payload(alert("X", "ff06")), headers=AUTH)
    response = hub.post(
        f"/api/alerts/{quote(fingerprint, safe='')}/acknowledge",
        content=json.dumps(document),
        headers=AUTH,
    )
    # 502 only for a valid acknowledgement of a stored alert: Alertmanager is NOWHERE here.
    assert response.status_code < 500 or (
        response.status_code == 502 and fingerprint.lower() == "ff06"
    ), response.text
