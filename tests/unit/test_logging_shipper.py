"""The shipper's choice of Logstash endpoint: failover, balancing, backoff, rejoining.

The transports here record batches and fail on demand, so that each routing decision can be
checked batch by batch; delivery over real sockets is in tests/integration.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchfloor.logging.shipper import Endpoint, Shipper
from watchfloor.logging.spool import Spool


class Recorder:
    """A transport that records the batches it is given, or refuses while `down` is set."""

    def __init__(self, name: str, log: list[tuple[str, int]]) -> None:
        self.name = name
        self.log = log
        self.down = threading.Event()
        self.refused = 0

    def send(self, events: list[bytes], use_logging: bool = False) -> None:
        if self.down.is_set():
            self.refused += 1
            raise ConnectionRefusedError(f"{self.name} is down")
        self.log.extend((self.name, int(e.split(b":")[1].rstrip(b"}"))) for e in events)


@pytest.fixture
def spool(tmp_path: Path) -> Iterator[Spool]:
    opened = Spool(tmp_path, max_bytes=1 << 24)
    yield opened
    opened.close()


def _run(spool: Spool, transports: list[Recorder], *, loadbalance: bool) -> Shipper:
    shipper = Shipper(
        spool,
        [(Endpoint(t.name, 5044), t) for t in transports],
        loadbalance=loadbalance,
        batch_size=10,
        retry_initial=0.05,
        retry_max=0.2,
    )
    shipper.start()
    return shipper


def _stop(shipper: Shipper) -> None:
    shipper.stop()
    shipper.join(5)
    assert not shipper.is_alive()


def _ship(spool: Spool, shipper: Shipper, start: int, count: int) -> None:
    """Append events one batch at a time and wait until each is acknowledged."""
    for first in range(start, start + count, 10):
        spool.append([b'{"n":%d}' % n for n in range(first, first + 10)])
        shipper.wakeup.set()
        deadline = time.monotonic() + 5
        while spool.pending_events:
            assert time.monotonic() < deadline, "batch never acknowledged"
            time.sleep(0.002)


def _names(log: list[tuple[str, int]], numbers: range) -> list[str]:
    by_number = {n: name for name, n in log}
    return [by_number[n] for n in numbers[::10]]


def test_failover_sticks_to_one_endpoint_and_moves_when_it_fails(spool):
    log: list[tuple[str, int]] = []
    a, b = Recorder("a", log), Recorder("b", log)
    shipper = _run(spool, [a, b], loadbalance=False)
    try:
        _ship(spool, shipper, 0, 50)
        (first,) = set(_names(log, range(50)))  # one endpoint only
        dead, other = (a, b) if first == "a" else (b, a)
        dead.down.set()
        _ship(spool, shipper, 50, 50)
        assert set(_names(log, range(50, 100))) == {other.name}
        assert dead.refused == 1  # tried once, then never again while the other works
        dead.down.clear()
        time.sleep(0.3)
        _ship(spool, shipper, 100, 30)
        assert set(_names(log, range(100, 130))) == {other.name}  # no flapping back
    finally:
        _stop(shipper)
    assert sorted(n for _, n in log) == list(range(130))  # every batch once, none lost


def test_loadbalance_alternates_skips_a_failed_endpoint_and_takes_it_back(spool):
    log: list[tuple[str, int]] = []
    a, b = Recorder("a", log), Recorder("b", log)
    shipper = _run(spool, [a, b], loadbalance=True)
    try:
        _ship(spool, shipper, 0, 60)
        names = _names(log, range(60))
        assert all(x != y for x, y in itertools.pairwise(names)), names
        a.down.set()
        _ship(spool, shipper, 60, 100)
        assert set(_names(log, range(60, 160))) == {"b"}
        assert 1 <= a.refused <= 10  # retried only after its backoff, not on every batch
        assert shipper.consecutive_failures == 0
        a.down.clear()
        time.sleep(0.3)  # past retry_max: a is due again
        _ship(spool, shipper, 160, 40)
        assert "a" in _names(log, range(160, 200))
    finally:
        _stop(shipper)
    # Refused batches were never ACKed, so each went to b instead: nothing lost, nothing twice.
    assert sorted(n for _, n in log) == list(range(200))


def test_all_endpoints_down_keeps_events_spooled_until_one_returns(spool):
    log: list[tuple[str, int]] = []
    a, b = Recorder("a", log), Recorder("b", log)
    a.down.set()
    b.down.set()
    shipper = _run(spool, [a, b], loadbalance=True)
    try:
        spool.append([b'{"n":%d}' % n for n in range(10)])
        shipper.wakeup.set()
        deadline = time.monotonic() + 5
        while a.refused + b.refused < 6:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert spool.pending_events == 10
        assert shipper.consecutive_failures >= 6
        b.down.clear()
        _ship(spool, shipper, 10, 10)
    finally:
        _stop(shipper)
    assert sorted(n for _, n in log) == list(range(20))
