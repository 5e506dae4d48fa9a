"""Fuzz and flood of the real hub process (`python -m watchfloor_alerthub`) on loopback, with a
real Alertmanager 0.28.1 behind basic auth. Bounded in count and time (about a minute in all).

The bounds asserted, against the 256 MiB Compose gives the hub:
- no 5xx and no exception in the hub's log under fuzzed webhooks, acknowledgements, WebSockets;
- with SLOW_READERS WebSocket clients that never read and STORED_ALERTS stored alerts changing
  under them, then IDLE_CLIENTS more, /health answers within HEALTH_BOUND_SECONDS and the hub's
  peak RSS (VmHWM) stays under RSS_BOUND_MIB (before the fix, 20 readers alone: 5.9 s, 474 MiB);
- a 256 MiB chunked webhook gets its 413 with the hub's RSS growing less than UPLOAD_GROWTH_MIB
  (before: 413 at 313 MiB);
- the database holds at most --max-alerts alerts, and alerts Alertmanager does not hold are
  resolved, pruned after the retention, and their space given back.
"""

from __future__ import annotations

import base64
import json
import os
import select
import socket
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.integration.conftest import free_port
from tests.integration.test_alerting_e2e import (
    HUB_AUTH,
    HUB_TOKEN,
    Alertmanager,
    Hub,
    alertmanager,
    hub,
    hub_alert,
    webhook,
)

pytestmark = pytest.mark.integration

SLOW_READERS = 20
IDLE_CLIENTS = 280
STORED_ALERTS = 9_000
HEALTH_BOUND_SECONDS = 1.0
RSS_BOUND_MIB = 200
UPLOAD_GROWTH_MIB = 24
FUZZ = settings(
    max_examples=80, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)  # fmt: skip


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Alertmanager, Hub]]:
    workdir = tmp_path_factory.mktemp("flood")
    hub_port = free_port()
    with (
        alertmanager(workdir / "am", hub_port) as am,
        hub(workdir / "hub", "--alertmanager-warmup-seconds", "0", port=hub_port,
            alertmanagers=(am.url,)) as running,
    ):  # fmt: skip
        yield am, running
        assert not running.problems(), running.problems()[:5]


# -- fuzz


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=12), inner, max_size=5),
    ),
    max_leaves=15,
)
alert_like = st.fixed_dictionaries(
    {"status": st.sampled_from(["firing", "resolved", "pending", ""]),
     "labels": st.dictionaries(st.sampled_from(["alertname", "severity", "x", "9bad", ""]),
                               st.text(max_size=40), max_size=4),
     "fingerprint": st.one_of(st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=70),
                              st.text(max_size=10)),
     "startsAt": st.one_of(st.datetimes().map(lambda d: d.isoformat() + "Z"), st.text(max_size=25),
                           st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]))},
    optional={"annotations": st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=3),
              "endsAt": json_values, "generatorURL": json_values},
)  # fmt: skip
webhooks = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"version": st.sampled_from(["4", "3", 4]), "status": st.sampled_from(["firing", "x"]),
         "receiver": st.text(max_size=20), "alerts": st.lists(alert_like, max_size=8)}
    ),
)  # fmt: skip


@FUZZ
@given(document=webhooks, raw=st.one_of(st.none(), st.binary(max_size=200)))
def test_fuzzed_webhooks_never_5xx(stack, http, document, raw):
    _, running = stack
    content = raw if raw is not None else json.dumps(document).encode()
    response = http.post(
        f"{running.url}/alertmanager/webhook",
        content=content,
        headers={**HUB_AUTH, "Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text


@FUZZ
@given(
    fingerprint=st.one_of(st.sampled_from(["f10d01", "F10D01", "0", "x" * 65]), st.text(max_size=70)),
    document=st.one_of(
        json_values,
        st.fixed_dictionaries(
            {},
            optional={"by": st.one_of(st.text(max_size=120), json_values),
                      "hours": st.one_of(st.floats(), st.integers(), st.booleans(), st.text(max_size=5),
                                         st.sampled_from([1e-300, 0.25, 168, 168.0001, 2])),
                      "comment": st.one_of(st.text(max_size=50), json_values)},
        ),
    ),
    authorization=st.sampled_from([HUB_AUTH["Authorization"], "Bearer wrong", "", None]),
)  # fmt: skip
def test_fuzzed_acknowledgements_never_5xx(stack, http, fingerprint, document, authorization):
    _, running = stack
    http.post(f"{running.url}/alertmanager/webhook", json=webhook(hub_alert("f10d01")),
              headers=HUB_AUTH)  # fmt: skip
    headers = {} if authorization is None else {"Authorization": authorization}
    response = http.post(
        f"{running.url}/api/alerts/{quote(fingerprint, safe='')}/acknowledge",
        content=json.dumps(document).encode(),
        headers=headers,
    )
    assert response.status_code < 500, response.text
    routed = fingerprint not in {"", ".", ".."} and "/" not in fingerprint
    if authorization != HUB_AUTH["Authorization"] and routed:
        assert response.status_code in {401, 403}  # before anything in the body is looked at


@FUZZ
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]),
    path=st.one_of(
        st.sampled_from(["/api/alerts", "/api/alerts?status=all", "/api/alerts?status=x", "/ws",
                         "/docs/runbooks/Watchdog.md", "/docs/runbooks/..%2f..%2fetc", "/", "/metrics"]),
        st.text(max_size=30).map(lambda text: "/" + quote(text)),
    ),
    body=st.binary(max_size=100),
)  # fmt: skip
def test_fuzzed_requests_to_any_route_never_5xx(stack, http, method, path, body):
    _, running = stack
    response = http.request(method, running.url + path, content=body, headers=HUB_AUTH)
    assert response.status_code < 500, (method, path, response.text)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    query=st.sampled_from(["", f"?token={HUB_TOKEN}", "?token=", "?x=1"]),
    origin=st.one_of(
        st.none(),
        st.sampled_from(["same", "http://evil.example", "null", "file://",
                         "http://127.0.0.1.evil.example"]),
        st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=20),
    ),
    authorization=st.sampled_from([None, HUB_AUTH["Authorization"], "Bearer wrong", "Basic eA=="]),
    first=st.one_of(st.none(), st.text(max_size=50), st.binary(max_size=50),
                    st.sampled_from([json.dumps({"type": "auth", "token": HUB_TOKEN}),
                                     json.dumps({"type": "auth", "token": "wrong"}),
                                     json.dumps({"type": "auth", "token": 1}), "x" * 5000])),
)  # fmt: skip
def test_fuzzed_websockets_are_refused_or_served_never_5xx(
    stack, query, origin, authorization, first
):
    _, running = stack
    host = running.url.removeprefix("http://")
    headers = {} if authorization is None else {"Authorization": authorization}
    origin_header = f"http://{host}" if origin == "same" else origin
    try:
        with connect(
            running.ws + query,
            origin=origin_header,  # type: ignore[arg-type]
            additional_headers=headers,
            open_timeout=10,
            close_timeout=2,
        ) as socket_:
            if first is None:
                return  # gone at once, before authenticating
            socket_.send(first)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                message = json.loads(socket_.recv(timeout=max(0.1, deadline - time.monotonic())))
                if message["type"] == "snapshot":
                    return  # served
    except InvalidStatus as refused:
        assert refused.response.status_code in {403, 429}, refused.response.status_code
    except ConnectionClosed as closed:
        assert closed.rcvd is not None and closed.rcvd.code in {4400, 4401, 1008, 1009, 1013}


# -- flood


def _slow_reader(running: Hub) -> socket.socket:
    """A WebSocket client that authenticates and then never reads: a small receive buffer, so
    what the hub sends piles up on its side."""
    port = int(running.url.rsplit(":", 1)[1])
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(10)
    client.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    client.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {HUB_TOKEN}\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += client.recv(1)
    assert answer.startswith(b"HTTP/1.1 101"), answer
    return client


def _alerts(start: int, count: int, version: int) -> list[dict]:
    return [hub_alert(f"{n:06x}", description=f"version {version} " + "d" * 300)
            for n in range(start, start + count)]  # fmt: skip


def test_slow_readers_and_many_alerts_leave_health_fast_and_memory_bounded(stack):
    _, running = stack
    client = httpx.Client(headers=HUB_AUTH, timeout=60)
    for start in range(0, STORED_ALERTS, 3000):
        response = client.post(
            f"{running.url}/alertmanager/webhook", json=webhook(*_alerts(start, 3000, 0))
        )
        assert response.status_code == 200, response.text
    slow = [_slow_reader(running) for _ in range(SLOW_READERS)]
    idle: list[socket.socket] = []
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=60) as prober:
            while not stop.is_set():
                started = time.monotonic()
                assert prober.get(f"{running.url}/health").status_code == 200
                latencies.append(time.monotonic() - started)
                stop.wait(0.05)

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        # Changes under the readers: small ones (queued) and, every fifth, too many to queue
        # (every reader is due a snapshot again); and readers that come and go meanwhile.
        for version in range(1, 41):
            count = 400 if version % 5 == 0 else 40
            start = (version * 997) % (STORED_ALERTS - count)
            response = client.post(
                f"{running.url}/alertmanager/webhook", json=webhook(*_alerts(start, count, version))
            )
            assert response.status_code == 200, response.text
            if version % 10 == 0:
                slow.pop().close()
                slow.append(_slow_reader(running))
            time.sleep(0.1)
        # The 300 idle clients: past --max-clients (100) they are closed with 1013.
        idle += [_slow_reader(running) for _ in range(IDLE_CLIENTS)]
        for version in range(41, 46):
            response = client.post(
                f"{running.url}/alertmanager/webhook", json=webhook(*_alerts(0, 400, version))
            )
            assert response.status_code == 200, response.text
            time.sleep(0.1)
        while idle:
            idle.pop().close()
        time.sleep(0.5)  # their slots are free again
        with connect(running.ws, additional_headers=HUB_AUTH) as reading:  # a page still works
            parts = []
            while not parts or not parts[-1]["last"]:
                message = json.loads(reading.recv(timeout=30))
                parts.append(message)
            assert sum(len(p["alerts"]) for p in parts) >= STORED_ALERTS
    finally:
        stop.set()
        prober.join(timeout=60)
        for reader in slow + idle:
            reader.close()
        client.close()
    peak = running.rss_mib("VmHWM")
    print(
        f"/health with {SLOW_READERS} slow readers, {STORED_ALERTS} alerts: median "
        f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.0f} ms over "
        f"{len(latencies)} probes; hub peak RSS {peak:.0f} MiB"
    )
    assert len(latencies) > 50
    assert max(latencies) < HEALTH_BOUND_SECONDS
    assert peak < RSS_BOUND_MIB


def _rss_during_upload(running: Hub, total_mib: int) -> tuple[bytes, float, float]:
    """Send a chunked webhook of `total_mib` MiB, watching for the answer between chunks."""
    port = int(running.url.rsplit(":", 1)[1])
    before = peak = running.rss_mib()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as upload:
        upload.sendall(
            b"POST /alertmanager/webhook HTTP/1.1\r\nHost: hub\r\n"
            b"Authorization: Bearer " + HUB_TOKEN.encode() + b"\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b" " * (1 << 20)
        frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        try:
            for _ in range(total_mib):
                if select.select([upload], [], [], 0)[0]:
                    break
                upload.sendall(frame)
                peak = max(peak, running.rss_mib())
            answer = upload.recv(65536)
        except OSError:  # the hub closed the connection after answering
            answer = answer or upload.recv(65536)
    return answer, before, peak


def test_an_oversize_chunked_webhook_is_refused_without_growing(stack):
    _, running = stack
    answer, before, peak = _rss_during_upload(running, 256)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
    assert peak - before < UPLOAD_GROWTH_MIB, (before, peak)


def test_the_database_is_capped(tmp_path):
    # No Alertmanager: nothing is reconciled, so the cap alone decides.
    with hub(tmp_path / "hub", "--max-alerts", "1000", credentials=None) as running:
        client = httpx.Client(headers=HUB_AUTH, timeout=60)
        assert client.post(f"{running.url}/alertmanager/webhook",
                           json=webhook(*_alerts(0, 1000, 0))).status_code == 200  # fmt: skip
        over = client.post(
            f"{running.url}/alertmanager/webhook", json=webhook(*_alerts(1000, 500, 0))
        )
        assert over.status_code == 429 and "500 new firing alerts of 500" in over.json()["error"]
        resolved = [{**a, "status": "resolved"} for a in _alerts(0, 100, 1)]
        assert client.post(f"{running.url}/alertmanager/webhook",
                           json=webhook(*resolved)).status_code == 200  # fmt: skip
        # The resolved alerts make room for new firing ones.
        assert client.post(f"{running.url}/alertmanager/webhook",
                           json=webhook(*_alerts(2000, 100, 0))).status_code == 200  # fmt: skip
        client.close()
        with sqlite3.connect(running.database) as db:
            assert db.execute("SELECT count(*) FROM alerts").fetchone()[0] == 1000


def test_alerts_alertmanager_does_not_hold_are_resolved_pruned_and_their_space_freed(
    stack, tmp_path
):
    am, _ = stack
    hub_port = free_port()
    with hub(tmp_path / "hub", "--reconcile-seconds", "1", "--resolved-retention-seconds", "2",
             "--alertmanager-warmup-seconds", "0", port=hub_port, alertmanagers=(am.url,)) as running:  # fmt: skip
        client = httpx.Client(headers=HUB_AUTH, timeout=60)
        for start in range(0, 6000, 3000):
            response = client.post(
                f"{running.url}/alertmanager/webhook", json=webhook(*_alerts(start, 3000, 0))
            )
            assert response.status_code == 200
        client.close()
        size = _on_disk(running.database)

        def rows() -> int:
            with sqlite3.connect(running.database) as db:
                return int(db.execute("SELECT count(*) FROM alerts").fetchone()[0])

        deadline = time.monotonic() + 30
        while rows() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert rows() == 0
        time.sleep(1.5)  # the next round vacuums
        assert _on_disk(running.database) < min(size / 4, 1 << 20), (
            size,
            _on_disk(running.database),
        )


def _on_disk(database: Path) -> int:
    wal = database.with_name(database.name + "-wal")
    return database.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
