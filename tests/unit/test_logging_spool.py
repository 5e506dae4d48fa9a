"""The on-disk spool: ordering, acknowledgement, restarts, the cap, torn tails, exclusivity."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchfloor.logging.spool import Spool, SpoolLockedError
from watchfloor.metrics.shipping import LOG_EVENTS_DROPPED


def _events(start: int, count: int) -> list[bytes]:
    return [b'{"n":%d}' % n for n in range(start, start + count)]


def test_read_commit_in_order(tmp_path: Path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_events(0, 10))
    lines, position = spool.read(4)
    assert lines == _events(0, 4)
    lines_again, _ = spool.read(4)
    assert lines_again == lines  # nothing advances before commit
    spool.commit(position, 4)
    assert spool.read(100)[0] == _events(4, 6)
    assert spool.pending_events == 6
    spool.close()


def test_unacknowledged_events_survive_restart(tmp_path: Path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_events(0, 10))
    _, position = spool.read(3)
    spool.commit(position, 3)
    spool.close()
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    assert reopened.pending_events == 7
    reopened.append(_events(10, 2))
    assert reopened.read(100)[0] == _events(3, 9)
    reopened.close()


def test_reading_crosses_segments_and_deletes_finished_ones(tmp_path: Path):
    spool = Spool(tmp_path, max_bytes=64 * 1024)  # segments of 16 KiB
    for batch in range(40):
        spool.append(_events(batch * 100, 100))
    seen: list[bytes] = []
    while True:
        lines, position = spool.read(700)
        if not lines:
            break
        seen.extend(lines)
        spool.commit(position, len(lines))
    assert seen == _events(0, 4000)[-len(seen) :]
    assert len(list(tmp_path.glob("segment-*"))) <= 2
    spool.close()


def test_cap_drops_oldest_and_counts(tmp_path: Path):
    dropped_before = LOG_EVENTS_DROPPED.labels("spool_full")._value.get()
    spool = Spool(tmp_path, max_bytes=8192)
    total = 0
    for batch in range(50):
        spool.append(_events(batch * 20, 20))
        total += 20
    assert spool.total_bytes <= 8192
    remaining = []
    while True:
        lines, position = spool.read(1000)
        if not lines:
            break
        remaining.extend(lines)
        spool.commit(position, len(lines))
    assert remaining == _events(0, total)[-len(remaining) :]  # the newest survive, in order
    dropped = LOG_EVENTS_DROPPED.labels("spool_full")._value.get() - dropped_before
    assert dropped == spool.dropped_events == total - len(remaining)
    assert dropped > 0
    spool.close()


def test_torn_tail_of_a_dead_writer_is_skipped(tmp_path: Path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    spool.append(_events(0, 3))
    spool.close()
    segment = sorted(tmp_path.glob("segment-*"))[-1]
    with open(segment, "ab") as handle:
        handle.write(b'{"n":99, "tor')  # a kill -9 in the middle of a write
    reopened = Spool(tmp_path, max_bytes=1 << 20)
    reopened.append(_events(3, 2))
    lines, _ = reopened.read(100)
    assert lines == _events(0, 5)
    assert reopened.dropped_events == 1
    reopened.close()


def test_one_process_per_spool(tmp_path: Path):
    spool = Spool(tmp_path, max_bytes=1 << 20)
    with pytest.raises(SpoolLockedError, match="in use"):
        # flock is per open file description, so a second open in-process conflicts too.
        Spool(tmp_path, max_bytes=1 << 20)
    spool.close()
    Spool(tmp_path, max_bytes=1 << 20).close()


def test_tiny_cap_is_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match="at least 4096"):
        Spool(tmp_path, max_bytes=100)
