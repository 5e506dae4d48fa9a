"""Shipping to two Logstash beats inputs (the library's receivers), one of them killed mid-stream.

Nothing accepted may be lost: every event id arrives at least once across the two receivers
(resent batches are duplicates, which `event.id` collapses downstream), the spool drains, and
shipping goes on with the survivor; with balancing the restarted receiver is used again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from watchfloor.logging import configure_logging, shutdown_logging
from watchfloor.metrics.shipping import LOG_EVENTS_QUEUED, LOG_EVENTS_SHIPPED, LOG_SHIP_FAILURES
from watchfloor.testing.beats import BeatsReceiver

pytestmark = pytest.mark.integration
log = logging.getLogger("tests.failover")

TOTAL = 20_000


@pytest.fixture
def receivers(monkeypatch) -> Iterator[list[BeatsReceiver]]:
    for name in ("WATCHFLOOR_LOGSTASH_HOST", "WATCHFLOOR_LOGSTASH_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WATCHFLOOR_LOG_BATCH_SIZE", "250")
    monkeypatch.setenv("WATCHFLOOR_LOG_RETRY_MAX_SECONDS", "0.2")
    monkeypatch.setenv("WATCHFLOOR_LOG_SHIP_TIMEOUT", "5")
    running = [BeatsReceiver().start(), BeatsReceiver().start()]
    try:
        yield running  # a test may replace an entry by a restarted receiver
    finally:
        shutdown_logging(timeout=5)
        for receiver in running:
            receiver.stop()


def _ids(*receivers: BeatsReceiver) -> set[int]:
    return {event["n"] for receiver in receivers for event in receiver.events}


def _until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def _queued() -> float:
    """Events accepted but not yet acknowledged (the in-memory queue plus the spool)."""
    return float(LOG_EVENTS_QUEUED.collect()[0].samples[0].value)


def _log(numbers: range, pace: int = 500) -> None:
    # Paced, as a busy service logs, so that the kill lands while batches are in flight.
    for n in numbers:
        log.info("fill %d", n, extra={"n": n})
        if n % pace == pace - 1:
            time.sleep(0.01)


def _configure(receivers: list[BeatsReceiver], tmp_path: Path, *, loadbalance: bool) -> None:
    configure_logging(
        "failover",
        stream=None,
        logstash_hosts=[f"127.0.0.1:{r.port}" for r in receivers],
        logstash_loadbalance=loadbalance,
        spool_dir=str(tmp_path),
    )


def test_loadbalance_survives_a_killed_node_and_takes_it_back(receivers, tmp_path: Path):
    shipped_before = LOG_EVENTS_SHIPPED._value.get()
    failures_before = LOG_SHIP_FAILURES._value.get()
    _configure(receivers, tmp_path, loadbalance=True)
    victim, survivor = receivers
    started = time.monotonic()
    _log(range(TOTAL // 2))
    _until(lambda: victim.event_count >= 2000, 20, "the first node to receive")
    assert survivor.event_count > 0  # both take batches
    victim.stop()  # abruptly: listener and open connections closed, window or not
    killed_at = time.monotonic()
    at_kill = len(_ids(victim, survivor))
    assert at_kill < TOTAL, "the stream had finished before the kill"
    _log(range(TOTAL // 2, TOTAL))
    _until(lambda: len(_ids(victim, survivor)) == TOTAL, 30, "every event on the two nodes")
    elapsed = time.monotonic() - started
    # Everything logged after the kill reached the survivor; the victim got nothing more.
    assert set(range(TOTAL // 2, TOTAL)) <= _ids(survivor)
    assert LOG_SHIP_FAILURES._value.get() > failures_before  # the dead node was noticed
    _until(lambda: LOG_EVENTS_SHIPPED._value.get() - shipped_before >= TOTAL, 10, "all ACKs")
    _until(lambda: _queued() == 0, 10, "the spool to drain")
    print(
        f"{TOTAL} events over two nodes in {elapsed:.2f}s ({TOTAL / elapsed:.0f}/s), "
        f"{at_kill} delivered at the kill, {victim.event_count + survivor.event_count - TOTAL} "
        f"duplicates, all delivered {time.monotonic() - killed_at:.2f}s after it"
    )

    restarted = BeatsReceiver(port=victim.port)
    receivers[0] = restarted
    restarted.start()
    time.sleep(0.3)  # past WATCHFLOOR_LOG_RETRY_MAX_SECONDS: the node is due for a retry
    _log(range(TOTAL, TOTAL + 5000))
    _until(lambda: restarted.event_count > 0, 10, "the restarted node to get a batch")
    _until(lambda: set(range(TOTAL, TOTAL + 5000)) <= _ids(restarted, survivor), 20, "the rest")
    # Batches alternate again: each node has a real share of what was logged after the restart.
    assert restarted.event_count >= 1000
    assert len(_ids(survivor) & set(range(TOTAL, TOTAL + 5000))) >= 1000
    shutdown_logging(timeout=10)
    assert not list(tmp_path.glob("segment-*"))  # everything acknowledged, spool removed


def test_failover_moves_to_the_other_node_when_the_current_one_dies(receivers, tmp_path: Path):
    _configure(receivers, tmp_path, loadbalance=False)
    _log(range(2000))
    _until(lambda: len(_ids(*receivers)) == 2000, 20, "the first events")
    counts = [r.event_count for r in receivers]
    assert sorted(counts) == [0, 2000]  # failover mode uses one node at a time
    current, standby = receivers if counts[0] else receivers[::-1]
    _log(range(2000, 4000))
    _until(lambda: current.event_count > 2500, 20, "the stream to be under way")
    current.stop()
    killed_at = time.monotonic()
    # More is logged at once: had the shipper sent everything before the kill, the standby would
    # otherwise wait for events that never come.
    _log(range(4000, TOTAL))
    _until(lambda: standby.event_count > 0, 10, "the standby to take over")
    failover = time.monotonic() - killed_at
    _until(lambda: len(_ids(current, standby)) == TOTAL, 30, "every event on the two nodes")
    assert set(range(4000, TOTAL)) <= _ids(standby)
    shutdown_logging(timeout=10)
    assert not list(tmp_path.glob("segment-*"))  # everything acknowledged
    print(f"failover to the standby {failover * 1000:.0f} ms after the kill")
