"""A Beats (lumberjack v2) receiver that behaves like Logstash's beats input.

It is the stand-in for Logstash in watchfloor's tests and benchmarks, and in users' own tests.
Frames start with a version byte, '2' (or '1', lumberjack v1), then a type; integers are
big-endian uint32:

  W  window size                      announces how many events the next batch holds
  C  length, zlib data                holds further frames, possibly compressed again
  J  seq, length, JSON object         one event
  D  seq, pair count, then per pair   one event of string fields (lumberjack v1)
     key length, key, value length, value

Once all events a window announced have arrived, the receiver answers with an ACK frame,
A + the sequence number of the window's last event, in the window's protocol version. With
``ack_every=N`` it also acknowledges every N events while a large window is in flight, which
senders such as pylogbeat read until the last sequence number is acknowledged.

As in Logstash, a new window frame closes a batch that is still incomplete (and acknowledges
it), and events that no window frame announced are received but never acknowledged. Anything
that is not lumberjack (unknown version or type, bad zlib, invalid JSON, a JSON value that is
not an object, a frame truncated inside a compressed frame) closes that connection and counts a
protocol error; the server keeps serving everyone else.

Events are delivered (``on_event``, ``events``, ``event_count``) at the latest when the bytes
that carried them have been read, and always before the ACK that covers them.
``fail_next_windows(n)`` makes the next n windows, on any connection, end with the connection
closed instead of an ACK, which is what a sender sees when Logstash dies mid-batch; their
events still count as received, so a sender that resends produces duplicates, exactly as it
would against Logstash.

One thread serves all connections with a selector. ``python -m watchfloor.testing.beats`` runs
the receiver in its own process (see ``main``) so that a benchmark's sender does not share its
GIL.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import selectors
import signal
import socket
import struct
import sys
import threading
import zlib
from collections.abc import Callable
from types import TracebackType
from typing import Any, BinaryIO

import orjson

__all__ = ["MAX_FRAME_BYTES", "BeatsReceiver", "ProtocolError", "main"]

MAX_FRAME_BYTES = 64 * 1024 * 1024
"""A frame longer than this (header included) is treated as garbage rather than waited for."""

_MAX_NESTING = 8
_RECV_BYTES = 1024 * 1024
_VERSIONS = frozenset(b"12")
_WINDOW, _COMPRESSED, _JSON, _DATA, _ACK = (ord(kind) for kind in "WCJDA")
_U32 = struct.Struct(">I")
_U32_PAIR = struct.Struct(">II")
_ACK_FRAME = struct.Struct(">BBI")
# On loopback the MSS is some 64 KiB, so each of a sender's 8 KiB writes is a small segment that
# Nagle holds until the previous one is ACKed at TCP level, which Linux delays by up to 40 ms
# once ACK frames make the connection look interactive: a stall per window that a real network
# does not have. The option only lasts until the kernel next decides, hence one per read.
_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)

_log = logging.getLogger(__name__)

Event = dict[str, Any]


class ProtocolError(Exception):
    """The peer sent something that is not lumberjack; its connection is closed."""


class _Hangup(Exception):
    """The connection ends here: the peer closed it, or a window is failed on purpose."""


def _data_frame(data: memoryview, pos: int, end: int) -> tuple[int, Event, int] | None:
    """(seq, fields, end of frame) of the D frame whose body starts at pos; None if incomplete."""
    if end - pos < 8:
        return None
    seq, pairs = _U32_PAIR.unpack_from(data, pos)
    pos += 8
    fields: Event = {}
    try:
        for _ in range(pairs):
            if end - pos < 4:
                return None
            (size,) = _U32.unpack_from(data, pos)
            key_end = pos + 4 + size
            if end - key_end < 4:
                return None
            key = str(data[pos + 4 : key_end], "utf-8")
            (size,) = _U32.unpack_from(data, key_end)
            pos = key_end + 4 + size
            if pos > end:
                return None
            fields[key] = str(data[key_end + 4 : pos], "utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("a data frame field is not UTF-8") from exc
    return seq, fields, pos


def _json_event(seq: int, body: memoryview) -> Event:
    try:
        event = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"invalid JSON in event {seq}: {exc}") from exc
    if type(event) is not dict:
        raise ProtocolError(f"event {seq} is JSON but not an object")
    return event


def _check_size(frame_bytes: int) -> None:
    if frame_bytes > MAX_FRAME_BYTES:
        raise ProtocolError(f"a frame of {frame_bytes} bytes")


class _Connection:
    """One client: its unparsed bytes, the window in progress, and ACKs not yet written."""

    __slots__ = (
        "ack",
        "ack_every",
        "buffer",
        "in_window",
        "last_seq",
        "pending",
        "receiver",
        "selector",
        "sock",
        "unsent",
        "version",
        "window",
    )

    def __init__(
        self, receiver: BeatsReceiver, sock: socket.socket, selector: selectors.BaseSelector
    ) -> None:
        self.receiver = receiver
        self.sock = sock
        self.selector = selector
        self.ack = receiver._ack
        self.ack_every = receiver._ack_every if receiver._ack else 0
        self.buffer = bytearray()
        self.unsent = bytearray()
        self.pending: list[Event] = []
        self.window = 0  # 0 until a W frame announces a batch, and again once it is complete
        self.in_window = 0
        self.last_seq = 0
        self.version = ord("2")

    def receive(self, scratch: memoryview) -> None:
        received = self.sock.recv_into(scratch)
        if not received:
            raise _Hangup
        if _QUICKACK is not None:
            self.sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
        buffer = self.buffer
        buffer += scratch[:received]
        with memoryview(buffer) as view:
            parsed = self._frames(view, 0, len(buffer), 0)
        # Events of a window still in flight are visible now, not only at its ACK.
        self._deliver()
        del buffer[:parsed]
        _check_size(len(buffer))

    def _frames(self, data: memoryview, pos: int, end: int, depth: int) -> int:
        """Handle every complete frame in data[pos:end]; where the first incomplete one starts."""
        while end - pos >= 2:
            version = data[pos]
            kind = data[pos + 1]
            if version not in _VERSIONS:
                raise ProtocolError(f"unknown protocol version 0x{version:02x}")
            if kind == _JSON:
                if end - pos < 10:
                    break
                seq, size = _U32_PAIR.unpack_from(data, pos + 2)
                start = pos + 10
                if start + size > end:
                    _check_size(start + size - pos)
                    break
                pos = start + size
                self._event(seq, _json_event(seq, data[start:pos]))
            elif kind == _COMPRESSED:
                if end - pos < 6:
                    break
                (size,) = _U32.unpack_from(data, pos + 2)
                start = pos + 6
                if start + size > end:
                    _check_size(start + size - pos)
                    break
                pos = start + size
                self._inflate(data[start:pos], depth)
            elif kind == _WINDOW:
                if end - pos < 6:
                    break
                (size,) = _U32.unpack_from(data, pos + 2)
                pos += 6
                self._new_window(version, size)
            elif kind == _DATA:
                frame = _data_frame(data, pos + 2, end)
                if frame is None:
                    break
                seq, fields, pos = frame
                self._event(seq, fields)
            else:
                raise ProtocolError(f"unknown frame type 0x{kind:02x}")
        return pos

    def _inflate(self, compressed: memoryview, depth: int) -> None:
        if depth == _MAX_NESTING:
            raise ProtocolError(f"compressed frames nested deeper than {_MAX_NESTING}")
        try:
            inner = zlib.decompress(compressed)
        except zlib.error as exc:
            raise ProtocolError(f"bad compressed frame: {exc}") from exc
        if self._frames(memoryview(inner), 0, len(inner), depth + 1) != len(inner):
            raise ProtocolError("truncated frame inside a compressed frame")

    def _event(self, seq: int, event: Event) -> None:
        self.pending.append(event)
        self.last_seq = seq
        self.in_window += 1
        if self.in_window == self.window:
            self._window_complete()
        elif self.ack_every and self.in_window % self.ack_every == 0:
            self._deliver()
            self._send_ack()

    def _new_window(self, version: int, size: int) -> None:
        if self.in_window:
            # Logstash hands an incomplete batch on (and ACKs it) when the next window starts.
            self._window_complete()
        self.window = size
        self.version = version

    def _window_complete(self) -> None:
        self.window = self.in_window = 0
        self._deliver()
        if self.receiver._window_done():
            raise _Hangup
        if self.ack:
            self._send_ack()

    def _deliver(self) -> None:
        if self.pending:
            self.receiver._deliver(self.pending)
            self.pending = []

    def _send_ack(self) -> None:
        frame = _ACK_FRAME.pack(self.version, _ACK, self.last_seq)
        if not self.unsent:
            try:
                sent = self.sock.send(frame)
            except BlockingIOError:
                sent = 0
            if sent == len(frame):
                return
            frame = frame[sent:]
            self.selector.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)
        self.unsent += frame

    def write(self) -> None:
        del self.unsent[: self.sock.send(self.unsent)]
        if not self.unsent:
            self.selector.modify(self.sock, selectors.EVENT_READ, self)


class BeatsReceiver:
    """Serve lumberjack v2 from a background thread until `stop`; see the module doc.

    ``ack=False`` never acknowledges (a Logstash that hangs); ``ack_every=N`` adds partial
    ACKs every N events of a window. ``on_event`` is called on the server thread for every
    event, before the event counts as received; if it raises, that connection is closed
    unacknowledged. ``keep_events=False`` keeps only the counters.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        ack: bool = True,
        ack_every: int = 0,
        on_event: Callable[[Event], None] | None = None,
        keep_events: bool = True,
    ) -> None:
        if ack_every < 0:
            raise ValueError("ack_every must be 0 (off) or positive")
        self.host = host
        self.port = port
        self._ack = ack
        self._ack_every = ack_every
        self._on_event = on_event
        self._keep = keep_events
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._events: list[Event] = []
        self._event_count = 0
        self._windows = 0
        self._connections = 0
        self._protocol_errors = 0
        self._fail_windows = 0
        self._thread: threading.Thread | None = None
        self._wake: socket.socket | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> BeatsReceiver:
        """Bind (port 0: an ephemeral port, then in `port`) and serve in a background thread."""
        if self._thread is not None:
            raise RuntimeError("the receiver is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self.port), family=family, backlog=1024)
        listener.setblocking(False)
        self.port = int(listener.getsockname()[1])
        wake, self._wake = socket.socketpair()
        wake.setblocking(False)
        self._thread = threading.Thread(
            target=self._serve, args=(listener, wake), name=f"beats-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and wait for the server thread."""
        if self._thread is None or self._wake is None:
            return
        self._wake.send(b"x")
        self._thread.join()
        self._wake.close()
        self._thread = self._wake = None

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
    def events(self) -> list[Event]:
        """A snapshot of the events received so far, in order (empty if keep_events is False)."""
        with self._lock:
            return list(self._events)

    @property
    def event_count(self) -> int:
        """Events received, including those of failed windows and of resends."""
        with self._lock:
            return self._event_count

    @property
    def windows(self) -> int:
        """Windows received completely, whether acknowledged or failed on purpose."""
        with self._lock:
            return self._windows

    @property
    def connections(self) -> int:
        """Connections accepted since start."""
        with self._lock:
            return self._connections

    @property
    def protocol_errors(self) -> int:
        """Connections closed because the peer did not speak lumberjack."""
        with self._lock:
            return self._protocol_errors

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until at least `count` events were received; False on timeout."""
        with self._arrived:
            return self._arrived.wait_for(lambda: self._event_count >= count, timeout)

    def fail_next_windows(self, n: int) -> None:
        """The next n complete windows close their connection instead of being acknowledged."""
        with self._lock:
            self._fail_windows = n

    # -- server thread ---------------------------------------------------------------------------

    def _deliver(self, events: list[Event]) -> None:
        if self._on_event is not None:
            for event in events:
                self._on_event(event)
        with self._arrived:
            self._event_count += len(events)
            if self._keep:
                self._events.extend(events)
            self._arrived.notify_all()

    def _window_done(self) -> bool:
        """Count a complete window; True if it is to be failed rather than acknowledged."""
        with self._lock:
            self._windows += 1
            if self._fail_windows:
                self._fail_windows -= 1
                return True
            return False

    def _serve(self, listener: socket.socket, wake: socket.socket) -> None:
        scratch = memoryview(bytearray(_RECV_BYTES))
        open_connections: set[_Connection] = set()
        with selectors.DefaultSelector() as selector, listener, wake:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            try:
                while True:
                    for key, mask in selector.select():
                        if key.fileobj is wake:
                            return
                        if key.fileobj is listener:
                            self._accept(listener, selector, open_connections)
                        else:
                            self._service(key.data, mask, scratch, open_connections)
            finally:
                for connection in open_connections:
                    connection.sock.close()

    def _accept(
        self,
        listener: socket.socket,
        selector: selectors.BaseSelector,
        open_connections: set[_Connection],
    ) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # Out of descriptors, or the peer gave up before the accept: try again on the
                # next readiness rather than bring the server down.
                _log.warning("accepting a Beats connection failed", exc_info=True)
                return
            sock.setblocking(False)
            # ACKs are tiny writes; Nagle would hold one back until the previous was acknowledged.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(self, sock, selector)
            selector.register(sock, selectors.EVENT_READ, connection)
            open_connections.add(connection)
            with self._lock:
                self._connections += 1

    def _service(
        self,
        connection: _Connection,
        mask: int,
        scratch: memoryview,
        open_connections: set[_Connection],
    ) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                connection.write()
            if mask & selectors.EVENT_READ:
                connection.receive(scratch)
            return
        except (BlockingIOError, InterruptedError):
            return
        except (_Hangup, OSError):
            pass
        except ProtocolError as exc:
            _log.info("closing a Beats connection: %s", exc)
            with self._lock:
                self._protocol_errors += 1
        except Exception:
            _log.exception("closing a Beats connection after an unexpected error, e.g. in on_event")
        connection.selector.unregister(connection.sock)
        connection.sock.close()
        open_connections.discard(connection)


def _id_getter(path: str) -> Callable[[Event], Any]:
    """The value at a dotted path (or under the flat key of that name); None when absent."""
    parts = path.split(".")

    def get(event: Event) -> Any:
        if path in event:
            return event[path]
        value: Any = event
        for part in parts:
            if type(value) is not dict:
                return None
            value = value.get(part)
        return value

    return get


def main(argv: list[str] | None = None) -> int:
    """Run a receiver until SIGTERM or SIGINT, then print a JSON summary of what it received.

    Events are not kept in memory, only the set of ids (and the NDJSON file if asked for).
    POSIX only: the stop signals are taken with sigwait.
    """
    parser = argparse.ArgumentParser(
        prog="python -m watchfloor.testing.beats",
        description="A lumberjack v2 (Beats) receiver. Prints 'LISTENING <port>' once bound; "
        'on SIGTERM or SIGINT prints {"events", "distinct_ids", "windows", "protocol_errors"} '
        "as one JSON line and exits.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (default): an ephemeral port")
    parser.add_argument(
        "--id-field", default="event.id", help="dotted path of the id counted in distinct_ids"
    )
    parser.add_argument("--output", help="also write every event to this NDJSON file")
    args = parser.parse_args(argv)
    # Parsed events are trees without cycles; collecting across hundreds of thousands of them
    # would cost a third of the receiver's time. Only in this process: the library leaves
    # its host's collector alone.
    gc.disable()

    get_id = _id_getter(args.id_field)
    ids: set[Any] = set()
    output: BinaryIO | None = None

    def record(event: Event) -> None:
        event_id = get_id(event)
        if event_id is not None:
            ids.add(event_id if isinstance(event_id, str | int | float) else repr(event_id))
        if output is not None:
            output.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))

    stop_signals = {signal.SIGTERM, signal.SIGINT}
    # Blocked before the server thread starts, so that it inherits the mask and sigwait below is
    # the only taker: no handler can run while a lock is held.
    signal.pthread_sigmask(signal.SIG_BLOCK, stop_signals)
    with contextlib.ExitStack() as stack:
        if args.output:
            output = stack.enter_context(open(args.output, "wb"))
        receiver = BeatsReceiver(args.host, args.port, on_event=record, keep_events=False)
        receiver.start()
        print(f"LISTENING {receiver.port}", flush=True)
        signal.sigwait(stop_signals)
        receiver.stop()
    summary = {
        "events": receiver.event_count,
        "distinct_ids": len(ids),
        "windows": receiver.windows,
        "protocol_errors": receiver.protocol_errors,
    }
    print(orjson.dumps(summary).decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
