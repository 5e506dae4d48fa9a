"""A Beats (lumberjack v2) receiver that behaves like Logstash's beats input.

It is the stand-in for Logstash in watchfloor's tests and benchmarks, and in users' own tests:
window frames announce a batch, compressed frames carry nested frames, JSON and data frames carry
events, and the receiver acknowledges the last sequence number of each window (optionally also
partial ACKs every N events, as Logstash does while a large window is in flight). Fault injection
(`fail_next_windows`) closes a connection after a window without acknowledging it, which is what
a sender sees when Logstash dies mid-batch.

Frames (big-endian): version '2' (or '1' for data frames), then
  W: uint32 window size          C: uint32 length + zlib data holding more frames
  J: uint32 seq, uint32 length + JSON
  D: uint32 seq, uint32 pairs, then per pair uint32 len + key, uint32 len + value
and the receiver answers A: uint32 seq.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import struct
import sys
import threading
import zlib
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

import orjson

_U32 = struct.Struct(">I")
_U32_PAIR = struct.Struct(">II")
_VERSIONS = (ord("1"), ord("2"))


class ProtocolError(Exception):
    """The peer sent something that is not lumberjack; its connection is closed."""


class _Reader:
    """Frames from a buffer that may end mid-frame; `need` tells how many bytes are missing."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data
        self.pos = 0

    def take(self, count: int) -> bytes | None:
        end = self.pos + count
        if end > len(self.data):
            return None
        chunk = bytes(self.data[self.pos : end])
        self.pos = end
        return chunk


class BeatsReceiver:
    """Serve lumberjack v2 on a background thread; one thread per connection."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ack: bool = True,
        ack_every: int = 0,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        keep_events: bool = True,
    ) -> None:
        self.host = host
        self.port = port
        self._ack = ack
        self._ack_every = ack_every
        self._on_event = on_event
        self._keep = keep_events
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._events: list[dict[str, Any]] = []
        self.event_count = 0
        self.windows = 0
        self.connections = 0
        self.protocol_errors = 0
        self._fail_windows = 0
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._clients: set[socket.socket] = set()
        self._stopping = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> BeatsReceiver:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = int(listener.getsockname()[1])
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, name="beats-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
        with self._lock:
            clients = list(self._clients)
        for client in clients:
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> BeatsReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- observation -----------------------------------------------------------------------------

    @property
    def events(self) -> list[dict[str, Any]]:
        """A snapshot of the events received so far (empty when keep_events is False)."""
        with self._lock:
            return list(self._events)

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least `count` events arrived; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self.event_count >= count, timeout)

    def fail_next_windows(self, count: int) -> None:
        """For the next `count` windows: read them, then drop the connection unacknowledged."""
        with self._lock:
            self._fail_windows = count

    # -- serving ---------------------------------------------------------------------------------

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                self._clients.add(client)
            threading.Thread(
                target=self._serve, args=(client,), name="beats-conn", daemon=True
            ).start()

    def _serve(self, client: socket.socket) -> None:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        window = 0
        in_window = 0
        last_seq = 0
        try:
            while True:
                chunk = client.recv(1 << 18)
                if not chunk:
                    return
                buffer += chunk
                reader = _Reader(buffer)
                while True:
                    start = reader.pos
                    frame = self._next_frame(reader)
                    if frame is None:
                        reader.pos = start
                        break
                    kind, payload = frame
                    if kind == "W":
                        window, in_window = payload, 0
                        continue
                    batch = payload if kind == "C" else [payload]
                    for seq, event in batch:
                        self._deliver(event)
                        last_seq = seq
                        in_window += 1
                        if self._ack_every and in_window % self._ack_every == 0:
                            self._send_ack(client, last_seq)
                    if window and in_window >= window:
                        with self._lock:
                            self.windows += 1
                            fail = self._fail_windows > 0
                            if fail:
                                self._fail_windows -= 1
                        if fail:
                            return
                        if self._ack:
                            self._send_ack(client, last_seq)
                        window = in_window = 0
                del buffer[: reader.pos]
        except (ProtocolError, zlib.error, ValueError, struct.error):
            with self._lock:
                self.protocol_errors += 1
        except OSError:
            return
        finally:
            with self._lock:
                self._clients.discard(client)
            with contextlib.suppress(OSError):
                client.close()

    def _next_frame(self, reader: _Reader) -> tuple[str, Any] | None:
        """One top-level frame: ('W', size), ('C', [(seq, event)...]) or ('E', (seq, event))."""
        header = reader.take(2)
        if header is None:
            return None
        version, kind = header[0], chr(header[1])
        if version not in _VERSIONS:
            raise ProtocolError(f"unknown protocol version {version!r}")
        if kind == "W":
            raw = reader.take(4)
            return None if raw is None else ("W", _U32.unpack(raw)[0])
        if kind == "C":
            raw = reader.take(4)
            if raw is None:
                return None
            body = reader.take(_U32.unpack(raw)[0])
            if body is None:
                return None
            return "C", self._inner_events(zlib.decompress(body))
        event = self._event_frame(reader, kind)
        return None if event is None else ("E", event)

    def _inner_events(self, data: bytes) -> list[tuple[int, dict[str, Any]]]:
        reader = _Reader(data)
        events: list[tuple[int, dict[str, Any]]] = []
        while reader.pos < len(data):
            frame = self._next_frame(reader)
            if frame is None:
                raise ProtocolError("truncated frame inside a compressed frame")
            kind, payload = frame
            if kind == "C":
                events.extend(payload)
            elif kind == "E":
                events.append(payload)
            else:
                raise ProtocolError("window frame inside a compressed frame")
        return events

    @staticmethod
    def _event_frame(reader: _Reader, kind: str) -> tuple[int, dict[str, Any]] | None:
        if kind == "J":
            raw = reader.take(8)
            if raw is None:
                return None
            seq, length = _U32_PAIR.unpack(raw)
            body = reader.take(length)
            if body is None:
                return None
            event = orjson.loads(body)
            if not isinstance(event, dict):
                raise ProtocolError("a JSON frame must hold an object")
            return seq, event
        if kind == "D":
            raw = reader.take(8)
            if raw is None:
                return None
            seq, pairs = _U32_PAIR.unpack(raw)
            fields: dict[str, Any] = {}
            for _ in range(pairs):
                parts = []
                for _ in range(2):
                    size = reader.take(4)
                    if size is None:
                        return None
                    value = reader.take(_U32.unpack(size)[0])
                    if value is None:
                        return None
                    parts.append(value.decode())
                fields[parts[0]] = parts[1]
            return seq, fields
        raise ProtocolError(f"unknown frame type {kind!r}")

    def _deliver(self, event: dict[str, Any]) -> None:
        if self._on_event is not None:
            self._on_event(event)
        with self._arrived:
            self.event_count += 1
            if self._keep:
                self._events.append(event)
            self._arrived.notify_all()

    @staticmethod
    def _send_ack(client: socket.socket, seq: int) -> None:
        client.sendall(b"2A" + _U32.pack(seq))


def _dotted(event: dict[str, Any], path: str) -> Any:
    if path in event:
        return event[path]
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m watchfloor.testing.beats",
        description="A lumberjack v2 receiver: prints 'LISTENING <port>', then on SIGTERM a "
        "JSON summary of what it received.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--id-field", default="event.id", help="dotted path of the event id")
    parser.add_argument("--output", help="also write every event to this NDJSON file")
    args = parser.parse_args(argv)

    ids: set[Any] = set()
    output = open(args.output, "wb") if args.output else None  # noqa: SIM115
    write_lock = threading.Lock()

    def record(event: dict[str, Any]) -> None:
        with write_lock:
            ids.add(_dotted(event, args.id_field))
            if output is not None:
                output.write(orjson.dumps(event) + b"\n")

    receiver = BeatsReceiver(args.host, args.port, on_event=record, keep_events=False).start()
    done = threading.Event()

    def finish(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, finish)
    signal.signal(signal.SIGINT, finish)
    print(f"LISTENING {receiver.port}", flush=True)
    done.wait()
    receiver.stop()
    if output is not None:
        output.close()
    summary = {
        "events": receiver.event_count,
        "distinct_ids": len(ids - {None}),
        "windows": receiver.windows,
        "protocol_errors": receiver.protocol_errors,
    }
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
