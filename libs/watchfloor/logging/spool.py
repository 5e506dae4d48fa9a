"""The durable on-disk spool between the writer thread and the shipper.

Events are appended as NDJSON lines to numbered segment files; a small cursor file records how
far Logstash has acknowledged. python-logstash-async's own SQLite cache commits per event
(about 800 events/s here), far below the shipping target, so the spool is plain files:
an append and a flush per batch, and one atomic cursor write per acknowledged batch.

Durability: a line is in the kernel's page cache once its batch is flushed, so it survives a
kill -9 of the process (not a power loss: there is no fsync on the hot path). A segment is never
appended to after a restart; a torn last line of an old segment is skipped and counted.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from watchfloor.metrics.shipping import LOG_EVENTS_DROPPED

_SEGMENT_PREFIX = "segment-"
_SEGMENT_SUFFIX = ".ndjson"
_CURSOR = "cursor.json"
_LOCK = "lock"


class SpoolLockedError(RuntimeError):
    """Another live process owns this spool directory."""


@dataclass(frozen=True, order=True)
class Position:
    segment: int
    offset: int


class Spool:
    """Append-only segmented spool with an acknowledged-read cursor; thread-safe."""

    def __init__(self, directory: str | os.PathLike[str], *, max_bytes: int) -> None:
        if max_bytes < 4096:
            raise ValueError(f"spool max_bytes must be at least 4096, got {max_bytes}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.directory / _LOCK, "a+b")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise SpoolLockedError(f"spool {self.directory} is in use by another process") from None
        self.max_bytes = max_bytes
        self._segment_bytes = max(1024, min(8 * 1024 * 1024, max_bytes // 4))
        self._mutex = threading.Lock()
        self._sizes: dict[int, int] = {
            n: (self.directory / _segment_name(n)).stat().st_size for n in self._existing()
        }
        self._cursor = self._load_cursor()
        self._active = max(self._sizes, default=0) + 1
        self._sizes[self._active] = 0
        self._writer: BinaryIO = open(self._path(self._active), "ab")  # noqa: SIM115
        self._reader: tuple[int, BinaryIO] | None = None
        self.pending_events = self._count_pending()
        self.dropped_events = 0

    # -- writer side ---------------------------------------------------------------------------

    def append(self, lines: list[bytes]) -> int:
        """Append events (one JSON document each, no newline) and flush; returns events dropped
        to stay under max_bytes (oldest first)."""
        data = b"\n".join(lines) + b"\n"
        with self._mutex:
            self._writer.write(data)
            self._writer.flush()
            self._sizes[self._active] += len(data)
            self.pending_events += len(lines)
            if self._sizes[self._active] >= self._segment_bytes:
                self._roll()
            return self._enforce_cap()

    # -- shipper side --------------------------------------------------------------------------

    def read(self, max_events: int) -> tuple[list[bytes], Position]:
        """Up to max_events unacknowledged events from the cursor, and the position after them."""
        with self._mutex:
            lines: list[bytes] = []
            segment, offset = self._cursor.segment, self._cursor.offset
            while len(lines) < max_events:
                handle = self._open_reader(segment)
                handle.seek(offset)
                while len(lines) < max_events:
                    line = handle.readline()
                    if not line.endswith(b"\n"):
                        if line and segment != self._active:
                            # Torn tail of a segment whose writer died mid-line: unrecoverable.
                            offset += len(line)
                            self.dropped_events += 1
                            LOG_EVENTS_DROPPED.labels("spool_corrupt").inc()
                        break
                    offset += len(line)
                    if len(line) > 1:
                        lines.append(line[:-1])
                next_segment = self._next_segment(segment)
                if len(lines) >= max_events or next_segment is None:
                    break
                if offset < self._sizes.get(segment, 0):
                    break
                segment, offset = next_segment, 0
            return lines, Position(segment, offset)

    def commit(self, position: Position, events: int) -> None:
        """Record that everything before `position` is acknowledged; delete finished segments."""
        with self._mutex:
            if position <= self._cursor:
                return  # the spool dropped these segments while they were in flight
            self._cursor = position
            self.pending_events = max(0, self.pending_events - events)
            for number in [n for n in self._sizes if n < position.segment]:
                self._delete(number)
            self._save_cursor()

    # -- state ---------------------------------------------------------------------------------

    @property
    def total_bytes(self) -> int:
        return sum(self._sizes.values())

    def close(self) -> None:
        with self._mutex:
            self._writer.close()
            if self._reader is not None:
                self._reader[1].close()
                self._reader = None
            drained = self._cursor == Position(self._active, self._sizes[self._active])
            if drained or self._sizes[self._active] == 0:
                # Nothing left to send: leave no segment behind for the next start to scan.
                for number in list(self._sizes):
                    if drained or number == self._active:
                        self._delete(number)
                if drained:
                    (self.directory / _CURSOR).unlink(missing_ok=True)
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()

    # -- internals (called with the mutex held) -------------------------------------------------

    def _existing(self) -> list[int]:
        numbers = []
        for path in self.directory.glob(f"{_SEGMENT_PREFIX}*{_SEGMENT_SUFFIX}"):
            stem = path.name[len(_SEGMENT_PREFIX) : -len(_SEGMENT_SUFFIX)]
            if stem.isdigit():
                numbers.append(int(stem))
        return sorted(numbers)

    def _path(self, number: int) -> Path:
        return self.directory / _segment_name(number)

    def _load_cursor(self) -> Position:
        first = Position(min(self._sizes, default=1), 0)
        try:
            raw = json.loads((self.directory / _CURSOR).read_text())
            cursor = Position(int(raw["segment"]), int(raw["offset"]))
        except (OSError, ValueError, KeyError, TypeError):
            return first
        # Segments before the cursor are acknowledged; one the cap removed means start later.
        return cursor if cursor.segment in self._sizes else first

    def _save_cursor(self) -> None:
        tmp = self.directory / (_CURSOR + ".tmp")
        tmp.write_text(json.dumps({"segment": self._cursor.segment, "offset": self._cursor.offset}))
        os.replace(tmp, self.directory / _CURSOR)

    def _count_pending(self) -> int:
        count = 0
        for number in sorted(self._sizes):
            if number < self._cursor.segment:
                continue
            with open(self._path(number), "rb") as handle:
                if number == self._cursor.segment:
                    handle.seek(self._cursor.offset)
                count += sum(
                    chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")
                )
        return count

    def _next_segment(self, number: int) -> int | None:
        later = [n for n in self._sizes if n > number]
        return min(later) if later else None

    def _open_reader(self, number: int) -> BinaryIO:
        if self._reader is None or self._reader[0] != number:
            if self._reader is not None:
                self._reader[1].close()
            self._reader = (number, open(self._path(number), "rb"))  # noqa: SIM115
        return self._reader[1]

    def _roll(self) -> None:
        self._writer.close()
        self._active += 1
        self._sizes[self._active] = 0
        self._writer = open(self._path(self._active), "ab")  # noqa: SIM115

    def _enforce_cap(self) -> int:
        dropped = 0
        while self.total_bytes > self.max_bytes:
            oldest = min(self._sizes)
            if oldest == self._active:
                self._roll()
                continue
            start = self._cursor.offset if oldest == self._cursor.segment else 0
            if oldest >= self._cursor.segment:
                with open(self._path(oldest), "rb") as handle:
                    handle.seek(start)
                    dropped += handle.read().count(b"\n")
            self._delete(oldest)
            if self._cursor.segment <= oldest:
                self._cursor = Position(min(self._sizes), 0)
                self._save_cursor()
        if dropped:
            self.dropped_events += dropped
            LOG_EVENTS_DROPPED.labels("spool_full").inc(dropped)
        self.pending_events = max(0, self.pending_events - dropped)
        return dropped

    def _delete(self, number: int) -> None:
        if self._reader is not None and self._reader[0] == number:
            self._reader[1].close()
            self._reader = None
        self._sizes.pop(number, None)
        self._path(number).unlink(missing_ok=True)


def _segment_name(number: int) -> str:
    return f"{_SEGMENT_PREFIX}{number:012d}{_SEGMENT_SUFFIX}"
