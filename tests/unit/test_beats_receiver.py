"""The lumberjack v2 receiver against real clients and hand-built frames."""

from __future__ import annotations

import json
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import pylogbeat
import pytest
from logstash_async.constants import constants
from logstash_async.transport import BeatsTransport

from watchfloor.testing.beats import MAX_FRAME_BYTES, BeatsReceiver


def _json_frame(seq: int, event: object) -> bytes:
    body = json.dumps(event).encode()
    return b"2J" + struct.pack(">II", seq, len(body)) + body


def _data_frame(seq: int, fields: dict[str, str], version: bytes = b"2") -> bytes:
    out = version + b"D" + struct.pack(">II", seq, len(fields))
    for key, value in fields.items():
        out += struct.pack(">I", len(key.encode())) + key.encode()
        out += struct.pack(">I", len(value.encode())) + value.encode()
    return out


def _compressed(inner: bytes) -> bytes:
    packed = zlib.compress(inner)
    return b"2C" + struct.pack(">I", len(packed)) + packed


def _window(size: int, version: bytes = b"2") -> bytes:
    return version + b"W" + struct.pack(">I", size)


def _read_ack(sock: socket.socket, version: bytes = b"2") -> int:
    data = b""
    while len(data) < 6:
        chunk = sock.recv(6 - len(data))
        assert chunk, "connection closed before the ACK"
        data += chunk
    assert data[:2] == version + b"A"
    return int(struct.unpack(">I", data[2:])[0])


def _connect(port: int, timeout: float = 5) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=timeout)


def _eventually(condition, timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


@pytest.fixture
def receiver():
    with BeatsReceiver() as running:
        yield running


def test_pylogbeat_client_is_acknowledged(receiver):
    events = [
        {"n": n, "message": f"event {n}", "nested": {"ok": True, "x": [1, 2.5]}} for n in range(250)
    ]
    with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client:
        client.send(events)
        client.send(events[:10])  # sequence numbers go on across windows: ACK 260
    # Delivered before the ACK that the client waited for: no waiting needed.
    assert receiver.events == events + events[:10]
    assert (receiver.event_count, receiver.windows, receiver.connections) == (260, 2, 1)
    assert receiver.protocol_errors == 0


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
    try:
        transport.send([json.dumps({"n": n}) for n in range(60)])
        transport.send([json.dumps({"n": n}) for n in range(60, 70)])
    finally:
        transport.close()
    assert [e["n"] for e in receiver.events] == list(range(70))
    # 4.x reads the constant; 3.x (the lowest the library allows) a class attribute.
    batch = getattr(constants, "QUEUED_EVENTS_BEATS_BATCH_SIZE", None) or BeatsTransport._batch_size
    assert receiver.windows == -(-60 // batch) + -(-10 // batch)
    assert receiver.connections == 2  # one per send


def test_uncompressed_json_data_and_nested_compressed_frames(receiver):
    payload = (
        _window(5)
        + _json_frame(1, {"a": 1})
        + _data_frame(2, {"line": "plain", "host": "h"})
        + _compressed(
            _data_frame(3, {"v1": "yes"}, version=b"1")
            + _compressed(_json_frame(4, {"b": 2}) + _compressed(_json_frame(5, {"c": "é"})))
        )
    )
    with _connect(receiver.port) as sock:
        sock.sendall(payload)
        assert _read_ack(sock) == 5
    assert receiver.events == [
        {"a": 1},
        {"line": "plain", "host": "h"},
        {"v1": "yes"},
        {"b": 2},
        {"c": "é"},
    ]


def test_lumberjack_v1_window_is_acknowledged_in_v1(receiver):
    payload = _window(2, b"1") + _data_frame(7, {"k": "v"}, b"1") + _data_frame(8, {}, b"1")
    with _connect(receiver.port) as sock:
        sock.sendall(payload)
        assert _read_ack(sock, version=b"1") == 8
    assert receiver.events == [{"k": "v"}, {}]


def test_every_frame_type_split_into_single_bytes(receiver):
    payload = (
        _window(4)
        + _json_frame(1, {"x": 1})
        + _data_frame(2, {"x": "2", "y": "z"})
        + _compressed(_json_frame(3, {"x": 3}) + _compressed(_json_frame(4, {"x": 4})))
    )
    with _connect(receiver.port) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for byte in payload:
            sock.send(bytes([byte]))
        assert _read_ack(sock) == 4
    assert receiver.events == [{"x": 1}, {"x": "2", "y": "z"}, {"x": 3}, {"x": 4}]


def test_partial_acks_while_a_large_window_is_in_flight():
    with BeatsReceiver(ack_every=2) as receiver:
        frames = b"".join(_json_frame(seq, {"seq": seq}) for seq in range(11, 16))
        with _connect(receiver.port) as sock:
            sock.sendall(_window(5) + _compressed(frames))
            assert [_read_ack(sock) for _ in range(3)] == [12, 14, 15]
        assert receiver.windows == 1


def test_pylogbeat_reads_partial_acks_until_the_last():
    with BeatsReceiver(ack_every=7) as receiver:
        with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client:
            client.send([{"n": n} for n in range(100)])
        assert receiver.event_count == 100


def test_a_new_window_completes_the_unfinished_one_as_logstash_does(receiver):
    with _connect(receiver.port) as sock:
        sock.sendall(_window(3) + _json_frame(1, {"n": 1}) + _json_frame(2, {"n": 2}))
        assert receiver.wait_for(2, timeout=5)
        sock.sendall(_window(1) + _json_frame(3, {"n": 3}))
        assert [_read_ack(sock) for _ in range(2)] == [2, 3]
    assert receiver.windows == 2


def test_without_acks_events_arrive_but_the_sender_waits_in_vain():
    with BeatsReceiver(ack=False) as receiver, _connect(receiver.port, timeout=0.3) as sock:
        sock.sendall(_window(1) + _json_frame(1, {"n": 1}))
        assert receiver.wait_for(1, timeout=5)
        with pytest.raises(TimeoutError):
            sock.recv(6)
        assert receiver.windows == 1


def test_wait_for_times_out(receiver):
    started = time.monotonic()
    assert not receiver.wait_for(1, timeout=0.05)
    assert time.monotonic() - started < 2


@pytest.mark.parametrize(
    "garbage",
    [
        b"9W\x00\x00\x00\x01",
        b"2Z\x00\x00",
        b"2C\x00\x00\x00\x04abcd",
        _window(1) + b"2J" + struct.pack(">II", 1, 3) + b"{x}",
        _window(1) + _json_frame(1, [1, 2]),
        _window(1) + _data_frame(1, {"k": "v"})[:-1] + b"\xff",
        _window(1) + _compressed(_json_frame(1, {"n": 1})[:-2]),
        b"2C" + struct.pack(">I", MAX_FRAME_BYTES),
        b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    ],
    ids=[
        "bad-version",
        "unknown-frame",
        "bad-zlib",
        "bad-json",
        "json-not-an-object",
        "data-not-utf8",
        "truncated-inside-compressed",
        "oversized-frame",
        "http",
    ],
)
def test_garbage_closes_only_that_connection(receiver, garbage):
    with _connect(receiver.port) as sock:
        sock.sendall(garbage)
        assert sock.recv(10) == b""  # closed by the receiver, without an ACK
    assert _eventually(lambda: receiver.protocol_errors == 1)
    with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client:
        client.send([{"still": "serving"}])
    assert receiver.events[-1] == {"still": "serving"}
    assert receiver.protocol_errors == 1


def test_failed_windows_are_read_but_not_acknowledged(receiver):
    receiver.fail_next_windows(2)
    for _ in range(2):
        with (
            pytest.raises(pylogbeat.ConnectionException),
            pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client,
        ):
            client.send([{"n": 1}, {"n": 2}])
    with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client:
        client.send([{"n": 1}, {"n": 2}])
        client.send([{"n": 3}])
    assert receiver.windows == 4
    assert receiver.events == [{"n": 1}, {"n": 2}] * 3 + [{"n": 3}]
    assert receiver.protocol_errors == 0


def test_many_concurrent_connections(receiver):
    errors: list[BaseException] = []

    def send(client_id: int) -> None:
        try:
            with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=10) as client:
                for window in range(3):
                    client.send(
                        [{"client": client_id, "window": window, "i": i} for i in range(20)]
                    )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert receiver.connections == 40
    assert receiver.windows == 120
    received = {(e["client"], e["window"], e["i"]) for e in receiver.events}
    assert len(received) == receiver.event_count == 40 * 3 * 20


def test_on_event_sees_every_event_and_a_failing_callback_only_drops_its_connection():
    seen: list[dict] = []

    def on_event(event: dict) -> None:
        if event.get("boom"):
            raise RuntimeError("the pipeline broke")
        seen.append(event)

    with BeatsReceiver(on_event=on_event, keep_events=False) as receiver:
        with (
            pytest.raises(pylogbeat.ConnectionException),
            pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client,
        ):
            client.send([{"boom": True}])
        with pylogbeat.PyLogBeatClient("127.0.0.1", receiver.port, timeout=5) as client:
            client.send([{"n": 1}, {"n": 2}])
        assert seen == [{"n": 1}, {"n": 2}]
        assert receiver.events == []
        assert receiver.event_count == 2
        assert receiver.protocol_errors == 0


def test_stop_closes_open_connections_and_is_idempotent():
    receiver = BeatsReceiver().start()
    with _connect(receiver.port) as sock:
        sock.sendall(_window(2) + _json_frame(1, {"n": 1}))
        assert receiver.wait_for(1, timeout=5)
        receiver.stop()
        assert sock.recv(10) == b""
    receiver.stop()
    with pytest.raises(OSError):
        _connect(receiver.port, timeout=1).close()


def test_cli_reports_distinct_ids(tmp_path):
    out = tmp_path / "events.ndjson"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "watchfloor.testing.beats",
            "--id-field",
            "event.id",
            "--output",
            out,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        word, port = proc.stdout.readline().split()
        assert word == "LISTENING"
        nested = [{"event": {"id": f"id-{n % 40}"}, "n": n} for n in range(100)]
        flat = [{"event.id": f"id-{n}"} for n in range(30, 50)]  # ten ids are new
        with pylogbeat.PyLogBeatClient("127.0.0.1", int(port), timeout=5) as client:
            client.send(nested)
            client.send([*flat, {"no": "id"}])
        with _connect(int(port)) as sock:
            sock.sendall(b"junk")
            assert sock.recv(10) == b""
        proc.send_signal(signal.SIGTERM)
        stdout, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary == {"events": 121, "distinct_ids": 50, "windows": 2, "protocol_errors": 1}
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == [*nested, *flat, {"no": "id"}]


def test_cli_stops_on_sigint_without_output():
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchfloor.testing.beats", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        _, port = proc.stdout.readline().split()
        with pylogbeat.PyLogBeatClient("127.0.0.1", int(port), timeout=5) as client:
            client.send([{"event": {"id": "a"}}, {"event": {"id": "a"}}])
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert json.loads(stdout.strip().splitlines()[-1]) == {
        "events": 2,
        "distinct_ids": 1,
        "windows": 1,
        "protocol_errors": 0,
    }
