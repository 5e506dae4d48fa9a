"""Delivery to a real lumberjack v2 receiver: ACKs, resends, outages, crashes.

The receiver (watchfloor.testing.beats) speaks the protocol of Logstash's beats input; the
sender is python-logstash-async's BeatsTransport driven by watchfloor's shipper.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.conftest import free_port
from watchfloor.logging import configure_logging, shutdown_logging
from watchfloor.metrics.shipping import LOG_EVENTS_SHIPPED, LOG_SHIP_FAILURES
from watchfloor.testing.beats import BeatsReceiver

pytestmark = pytest.mark.integration
log = __import__("logging").getLogger("tests.delivery")


def _ids(receiver: BeatsReceiver) -> set[str]:
    return {event["event"]["id"] for event in receiver.events}


def test_every_event_arrives_once_acknowledged(receiver, tmp_path: Path):
    shipped_before = LOG_EVENTS_SHIPPED._value.get()
    configure_logging(
        "delivery",
        stream=None,
        logstash_host="127.0.0.1",
        logstash_port=receiver.port,
        spool_dir=str(tmp_path),
    )
    for index in range(3000):
        log.info("fill %d", index, extra={"n": index, "symbol": "AAPL"})
    shutdown_logging(timeout=20)
    assert receiver.wait_for(3000, timeout=5)
    events = receiver.events
    assert len(_ids(receiver)) == 3000
    assert sorted(e["n"] for e in events) == list(range(3000))
    assert events[0]["service"]["name"] == "delivery"
    assert LOG_EVENTS_SHIPPED._value.get() - shipped_before == 3000
    # Everything acknowledged: the spool holds no event any more.
    assert not list(tmp_path.glob("segment-*"))


def test_unacknowledged_windows_are_resent(receiver, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_LOG_RETRY_MAX_SECONDS", "0.2")
    shipped_before = LOG_EVENTS_SHIPPED._value.get()
    receiver.fail_next_windows(3)
    configure_logging(
        "resend",
        stream=None,
        logstash_host="127.0.0.1",
        logstash_port=receiver.port,
        spool_dir=str(tmp_path),
    )
    try:
        for index in range(500):
            log.info("order %d", index)
        deadline = time.monotonic() + 30
        while LOG_EVENTS_SHIPPED._value.get() - shipped_before < 500:
            assert time.monotonic() < deadline, "never acknowledged"
            time.sleep(0.05)
    finally:
        shutdown_logging(timeout=5)
    assert receiver.windows >= 4  # three dropped unacknowledged, then the one that was ACKed
    assert receiver.event_count > 500  # the dropped windows were sent again
    assert len(_ids(receiver)) == 500  # resends are duplicates, nothing else


@pytest.mark.slow
def test_ten_thousand_events_survive_a_sixty_second_outage(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("WATCHFLOOR_LOG_RETRY_MAX_SECONDS", "1")
    failures_before = LOG_SHIP_FAILURES._value.get()
    port = free_port()
    configure_logging(
        "outage",
        stream=None,
        logstash_host="127.0.0.1",
        logstash_port=port,
        spool_dir=str(tmp_path),
    )
    try:
        outage_started = time.monotonic()
        for index in range(10_000):
            log.info("during outage %d", index, extra={"n": index})
        time.sleep(max(0.0, 60.0 - (time.monotonic() - outage_started)))
        assert LOG_SHIP_FAILURES._value.get() - failures_before >= 30  # it kept retrying
        with BeatsReceiver(port=port) as receiver:
            outage = time.monotonic() - outage_started
            deadline = time.monotonic() + 60
            while len(_ids(receiver)) < 10_000 and time.monotonic() < deadline:
                time.sleep(0.1)
            recovered_in = time.monotonic() - outage_started - outage
            ids = _ids(receiver)
            numbers = {e["n"] for e in receiver.events}
    finally:
        shutdown_logging(timeout=5)
    print(f"outage {outage:.1f}s, 10000 events delivered {recovered_in:.2f}s after recovery")
    assert outage >= 60
    assert len(ids) == 10_000
    assert numbers == set(range(10_000))


_CHILD = textwrap.dedent(
    """
    import logging, sys, time
    from watchfloor.logging import configure_logging, shutdown_logging
    port, spool, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    configure_logging("crashy", stream=None, logstash_host="127.0.0.1", logstash_port=port,
                      spool_dir=spool)
    log = logging.getLogger("crashy")
    if mode == "log":
        n = 0
        started = time.time()
        while True:
            log.info("event %d", n, extra={"n": n, "t": time.time()})
            n += 1
            if n == 2000:
                print("READY", flush=True)
            if n % 20 == 0:
                time.sleep(0.001)  # a busy service, not a tight loop: some 15k events/s
    else:
        shutdown_logging(timeout=60)
        print("DRAINED", flush=True)
    """
)


def test_kill_minus_nine_loses_at_most_the_last_flush_window(tmp_path: Path):
    spool = tmp_path / "spool"
    port = free_port()  # nobody listens while the first process runs: all stays spooled
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(port), str(spool), "log"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "READY"
    time.sleep(1.0)
    killed_at = time.time()
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=10)

    with BeatsReceiver(port=port) as receiver:
        restarted = subprocess.run(
            [sys.executable, "-c", _CHILD, str(port), str(spool), "drain"],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        assert "DRAINED" in restarted.stdout
        events = receiver.events
    arrived = {e["n"]: e["t"] for e in events}
    assert len(arrived) > 2000
    last = max(arrived)
    missing_before_last = set(range(last + 1)) - set(arrived)
    assert not missing_before_last, f"gaps in delivered events: {sorted(missing_before_last)[:10]}"
    newest_delivered = arrived[last]
    window = killed_at - newest_delivered
    print(f"{len(arrived)} events recovered after kill -9; newest was {window * 1000:.0f} ms old")
    assert window <= 0.1, f"lost events logged up to {window * 1000:.0f} ms before the kill"
    assert json.loads(json.dumps(events[0]))["service"]["name"] == "crashy"
