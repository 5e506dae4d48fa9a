"""The lumberjack v2 receiver against real clients and hand-built frames."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib

import pylogbeat
import pytest
from logstash_async.transport import BeatsTransport

from watchfloor.testing.beats import BeatsReceiver


def _json_frame(seq: int, event: dict) -> bytes:
    body = json.dumps(event).encode()
    return b"2J" + struct.pack(">II", seq, len(body)) + body


def _data_frame(seq: int, fields: dict[str, str], version: bytes = b"2") -> bytes:
    out = version + b"D" + struct.pack(">II", seq, len(fields))
    for key, value in fields.items():
        out += struct.pack(">I", len(key)) + key.encode() + struct.pack(">I", len(value))
        out += value.encode()
    return out


def _compressed(inner: bytes) -> bytes:
    packed = zlib.compress(inner)
    return b"2C" + struct.pack(">I", len(packed)) + packed


def _window(size: int) -> bytes:
    return b"2W" + struct.pack(">I", size)


def _read_ack(sock: socket.socket) -> int:
    data = b""
    while len(data) < 6:
        chunk = sock.recv(6 - len(data))
        assert chunk, "connection closed before the ACK"
        data += chunk
    assert data[:2] == b"2A"
    return int(struct.unpack(">I", data[2:])[0])


@pytest.fixture
def receiver():
    with BeatsReceiver() as running:
        yield running


def test_pylogbeat_client_is_acknowledged(receiver):
    events = [{"n": n, "message": f"event {n}"} for n in range(250)]
    with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client:
        client.send(events)
    assert receiver.wait_for(250, timeout=5)
    assert receiver.events == events
    assert receiver.windows == 1


def test_python_logstash_async_beats_transport(receiver):
    transport = BeatsTransport(
        "127.0.0.1",
        receiver.port,
        ssl_enable=False,
        ssl_verify=False,
        ssl_verify_flags=None,
        keyfile=None,
        certfile=None,
        ca_certs=None,
        timeout=5,
    )
    transport.send([json.dumps({"n": n}) for n in range(60)])
    assert [e["n"] for e in receiver.events] == list(range(60))


def test_uncompressed_json_and_data_frames_and_nesting(receiver):
    payload = (
        _window(4)
        + _json_frame(1, {"a": 1})
        + _data_frame(2, {"line": "plain", "host": "h"})
        + _compressed(
            _data_frame(3, {"v1": "yes"}, version=b"1") + _compressed(_json_frame(4, {"b": 2}))
        )
    )
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.sendall(payload)
        assert _read_ack(sock) == 4
    assert receiver.events == [{"a": 1}, {"line": "plain", "host": "h"}, {"v1": "yes"}, {"b": 2}]


def test_frames_split_into_single_bytes(receiver):
    payload = _window(2) + _compressed(_json_frame(1, {"x": 1}) + _json_frame(2, {"x": 2}))
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in payload:
            sock.send(bytes([byte]))
        assert _read_ack(sock) == 2
    assert [e["x"] for e in receiver.events] == [1, 2]


def test_partial_acks_while_a_large_window_is_in_flight():
    with BeatsReceiver(ack_every=2) as receiver:
        frames = b"".join(_json_frame(seq, {"seq": seq}) for seq in range(1, 6))
        with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
            sock.sendall(_window(5) + frames)
            assert [_read_ack(sock) for _ in range(3)] == [2, 4, 5]


@pytest.mark.parametrize(
    "garbage",
    [
        b"9W\x00\x00\x00\x01",
        b"2Z\x00\x00",
        b"2C\x00\x00\x00\x04abcd",
        _window(1) + b"2J" + struct.pack(">II", 1, 3) + b"{x}",
    ],
    ids=["bad-version", "unknown-frame", "bad-zlib", "bad-json"],
)
def test_garbage_closes_only_that_connection(receiver, garbage):
    with socket.create_connection(("127.0.0.1", receiver.port), timeout=5) as sock:
        sock.sendall(garbage)
        assert sock.recv(10) == b""  # closed by the receiver
    deadline = time.monotonic() + 5
    while receiver.protocol_errors < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert receiver.protocol_errors == 1
    with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client:
        client.send([{"still": "serving"}])
    assert receiver.events == [{"still": "serving"}]


def test_failed_windows_are_not_acknowledged(receiver):
    receiver.fail_next_windows(1)
    with (
        pytest.raises(Exception),
        pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client,
    ):
        client.send([{"n": 1}])
    with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client:
        client.send([{"n": 1}])
    assert receiver.windows == 2
    assert receiver.events == [{"n": 1}, {"n": 1}]


def test_cli_reports_distinct_ids(tmp_path):
    out = tmp_path / "events.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchfloor.testing.beats", "--output", str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    word, port = proc.stdout.readline().split()
    assert word == "LISTENING"
    with pylogbeat.PyLogBeatClient("127.0.0.1", int(port), timeout=5) as client:
        client.send([{"event": {"id": f"id-{n % 40}"}} for n in range(100)])
    proc.send_signal(signal.SIGTERM)
    summary = json.loads(proc.communicate(timeout=10)[0].strip().splitlines()[-1])
    assert summary == {"events": 100, "distinct_ids": 40, "windows": 1, "protocol_errors": 0}
    assert len(out.read_text().splitlines()) == 100
