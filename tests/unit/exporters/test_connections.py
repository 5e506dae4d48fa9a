"""Half-open requests time out and open connections are capped (a real uvicorn on loopback).

The server runs in a thread with a 0.5 s request deadline and a cap of 8 connections; every wait
is bounded, and the server is stopped whatever happens.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import Response

from tests.integration.conftest import free_port
from tests.unit.exporters.conftest import TOKEN
from watchfloor_exporters.common.server import BoundedH11Protocol, protocol_from_env, server_config
from watchfloor_exporters.trading.app import build

DEADLINE = 0.5
CAP = 8
BIG = 32 * 1024 * 1024  # more than the kernel buffers of both ends hold


@pytest.fixture(scope="module")
def running() -> Iterator[tuple[tuple[str, int], uvicorn.Server]]:
    class Protocol(BoundedH11Protocol):
        request_timeout = DEADLINE
        max_connections = CAP

    port = free_port()
    app = build(TOKEN, False, port, None)

    @app.get("/big")
    async def big() -> Response:
        return Response(b"x" * BIG, media_type="application/octet-stream")

    config = server_config(app, host="127.0.0.1", port=port, protocol=Protocol)
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not running.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield ("127.0.0.1", port), running
    finally:
        running.should_exit = True
        thread.join(10)


@pytest.fixture
def server(running) -> tuple[str, int]:
    return running[0]


def connect(address: tuple[str, int], first: bytes = b"") -> socket.socket:
    sock = socket.create_connection(address, timeout=5)
    if first:
        sock.sendall(first)
    return sock


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the server closed `sock` (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


PARTIAL_BODY = (
    b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode()
    + b"\r\nContent-Length: 1000\r\n\r\n[{"
)  # fmt: skip


@pytest.mark.parametrize(
    "first",
    [b"", b"GET /health HTTP/1.1\r\nHost: x\r\n", PARTIAL_BODY],
    ids=["silent", "partial-headers", "partial-body"],
)
def test_a_half_open_request_is_closed_at_the_deadline(server, first):
    with connect(server, first) as sock:
        started = time.monotonic()
        assert closed_within(sock, DEADLINE + 3)
        assert time.monotonic() - started >= DEADLINE * 0.8


def test_trickling_bytes_do_not_extend_the_deadline(server):
    with connect(server, b"GET /health HTTP/1.1\r\n") as sock:
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < DEADLINE + 3:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                closed = True
                break
            if closed_within(sock, 0.1):
                closed = True
                break
        assert closed
        assert time.monotonic() - started < DEADLINE + 2


def test_a_connection_past_the_cap_closes_the_longest_waiting_one(server):
    held = [connect(server, b"GET /health HTTP/1.1\r\n") for _ in range(CAP * 3)]
    try:
        # /health answers although three times the cap of half-open connections came first.
        with httpx.Client(base_url=f"http://{server[0]}:{server[1]}", timeout=5) as client:
            for _ in range(5):
                assert client.get("/health").json()["status"] == "ok"
        still_open = [s for s in held if not closed_within(s, 0.05)]
        assert len(still_open) <= CAP
        assert held[0] not in still_open  # the oldest went first
    finally:
        for sock in held:
            sock.close()


def test_a_client_that_stops_reading_is_cut_off(running):
    address, server = running
    before = len(server.server_state.connections)
    with connect(address) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        deadline = time.monotonic() + 3
        while len(server.server_state.connections) == before:
            assert time.monotonic() < deadline, "the connection never arrived"
            time.sleep(0.01)
        deadline = time.monotonic() + 3 * DEADLINE + 3
        while len(server.server_state.connections) > before:  # it used to stay for good
            assert time.monotonic() < deadline, "the stalled connection was kept"
            time.sleep(0.05)


def test_keep_alive_connections_get_a_fresh_deadline_per_request(server):
    # One connection, requests spaced so that together they outlast the deadline.
    with connect(server) as sock:
        sock.settimeout(5)
        for _ in range(4):
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            response = b""
            while not response.endswith(b"}"):
                chunk = sock.recv(4096)
                assert chunk, "the server closed a healthy keep-alive connection"
                response += chunk
            assert response.startswith(b"HTTP/1.1 200")
            time.sleep(DEADLINE * 0.6)


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_REQUEST_TIMEOUT_SECONDS", "2.5")
    monkeypatch.setenv("WATCHFLOOR_MAX_CONNECTIONS", "64")
    protocol = protocol_from_env()
    assert (protocol.request_timeout, protocol.max_connections) == (2.5, 64)
    monkeypatch.delenv("WATCHFLOOR_REQUEST_TIMEOUT_SECONDS")
    monkeypatch.delenv("WATCHFLOOR_MAX_CONNECTIONS")
    assert (protocol_from_env().request_timeout, protocol_from_env().max_connections) == (10, 256)
    for name, value in (("WATCHFLOOR_REQUEST_TIMEOUT_SECONDS", "0"),
                        ("WATCHFLOOR_MAX_CONNECTIONS", "lots")):  # fmt: skip
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=name):
            protocol_from_env()
        monkeypatch.delenv(name)
