"""Logging: caller-side cost against python-logstash-async, shipping throughput with ACKs, and
the writer thread's throughput with masking against the same writer without it.

The Beats receiver runs in its own process (watchfloor.testing.beats CLI) so that it does not
share the sender's GIL, as Logstash would not.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import report
from watchfloor.logging import Masker, configure_logging, shutdown_logging
from watchfloor.logging.ecs import EcsDocumentBuilder
from watchfloor.metrics.shipping import LOG_EVENTS_SHIPPED

EXTRA = {"order_id": "o-1", "symbol": "AAPL", "qty": 100, "price": 187.5, "strategy": "momo"}
CALLS = 20_000
SHIP_EVENTS = 100_000


@contextmanager
def receiver_process() -> Iterator[tuple[int, dict[str, int]]]:
    """A Beats receiver in a child process; yields its port and, after exit, its summary."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchfloor.testing.beats", "--port", "0", "--id-field", "event.id"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if line[:1] != ["LISTENING"]:
        proc.kill()
        raise RuntimeError(f"receiver did not start: {line}")
    summary: dict[str, int] = {}
    try:
        yield int(line[1]), summary
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        summary.update(json.loads(out.strip().splitlines()[-1]))


def _caller_cost(logger: logging.Logger) -> tuple[float, float]:
    """(wall µs, caller-thread CPU µs) per call, the median of five runs."""
    walls, cpus = [], []
    for _ in range(5):
        wall, cpu = time.perf_counter(), time.thread_time()
        for _ in range(CALLS):
            logger.info("order filled", extra=EXTRA)
        walls.append((time.perf_counter() - wall) / CALLS * 1e6)
        cpus.append((time.thread_time() - cpu) / CALLS * 1e6)
        time.sleep(0.5)  # let the background side drain between runs
    return sorted(walls)[2], sorted(cpus)[2]


def _baseline_handler(port: int) -> logging.Handler:
    from logstash_async.formatter import LogstashEcsFormatter
    from logstash_async.handler import AsynchronousLogstashHandler

    handler = AsynchronousLogstashHandler(
        "127.0.0.1", port, database_path=None, transport="logstash_async.transport.BeatsTransport"
    )
    handler.setFormatter(LogstashEcsFormatter())
    return handler


def bench_caller_cost() -> bool:
    logger = logging.getLogger("bench.caller")
    with receiver_process() as (port, _):
        root = logging.getLogger()
        root.setLevel(logging.INFO)
        baseline = _baseline_handler(port)
        root.addHandler(baseline)
        base_wall, base_cpu = _caller_cost(logger)
        root.removeHandler(baseline)
        baseline.close()
        with tempfile.TemporaryDirectory() as spool:
            configure_logging(
                "bench",
                stream=None,
                logstash_host="127.0.0.1",
                logstash_port=port,
                spool_dir=spool,
            )
            ours_wall, ours_cpu = _caller_cost(logger)
            shutdown_logging(timeout=30)
    baseline_name = "python-logstash-async AsynchronousLogstashHandler + LogstashEcsFormatter"
    met_cpu = report(
        "logger.info caller thread CPU",
        ours_cpu,
        baseline_name=baseline_name,
        baseline=base_cpu,
        unit="µs/call",
        target="<= 0.15x",
    )
    met_wall = report(
        "logger.info caller wall time (includes GIL contention with the writer)",
        ours_wall,
        baseline_name=baseline_name,
        baseline=base_wall,
        unit="µs/call",
        target="<= 0.15x",
    )
    return met_cpu and met_wall


def _ship(count: int, configure: bool, port: int, spool: str) -> float:
    """Seconds from the first log call until Logstash (the receiver) ACKed all `count` events."""
    logger = logging.getLogger("bench.ship")
    if configure:
        configure_logging(
            "bench", stream=None, logstash_host="127.0.0.1", logstash_port=port, spool_dir=spool
        )
    shipped_before = LOG_EVENTS_SHIPPED._value.get()
    started = time.perf_counter()
    for index in range(count):
        logger.info("order filled", extra={**EXTRA, "n": index})
    while LOG_EVENTS_SHIPPED._value.get() - shipped_before < count:
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    shutdown_logging(timeout=30)
    return elapsed


def _ship_baseline(count: int, port: int) -> float:
    """The same with python-logstash-async's own handler, timed until the receiver has all."""
    from logstash_async.constants import constants

    constants.QUEUED_EVENTS_FLUSH_INTERVAL = 0.1
    logger = logging.getLogger("bench.ship.baseline")
    handler = _baseline_handler(port)
    root = logging.getLogger()
    root.addHandler(handler)
    started = time.perf_counter()
    for index in range(count):
        logger.info("order filled", extra={**EXTRA, "n": index})
    handler.flush()
    handler.close()  # joins its worker after it sent what it had
    elapsed = time.perf_counter() - started
    root.removeHandler(handler)
    return elapsed


def bench_shipping() -> bool:
    with tempfile.TemporaryDirectory() as spool, receiver_process() as (port, summary):
        seconds = _ship(SHIP_EVENTS, True, port, spool)
    received_all = summary.get("distinct_ids") == SHIP_EVENTS
    baseline_events = 20_000
    with receiver_process() as (port, base_summary):
        base_seconds = _ship_baseline(baseline_events, port)
    ours = SHIP_EVENTS / seconds
    base = base_summary.get("events", 0) / base_seconds
    print(
        f"  received: watchfloor {summary.get('distinct_ids')}/{SHIP_EVENTS} distinct ids; "
        f"baseline {base_summary.get('events')}/{baseline_events}"
    )
    met = report(
        "shipping throughput, ACKed by a local Beats receiver",
        ours,
        baseline_name="python-logstash-async handler (memory cache, Beats)",
        baseline=base,
        unit="events/s",
        target=">= 20000",
        lower_is_better=False,
    )
    return met and received_all


class _NoMasking(Masker):
    """The baseline: the same writer work with masking switched off."""

    def mask_text(self, text: str) -> str:
        return text

    def mask_value(self, value: Any) -> Any:
        return value

    def mask_field(self, key: Any, value: Any) -> tuple[Any, Any]:
        return key, value


def _writer_records(count: int) -> list[logging.LogRecord]:
    """Records as trading services write them: unique messages (ids, prices, times), a trace id,
    extras; one in twenty carries a secret (a DSN, a bearer token, a card) to be masked."""
    rng = random.Random(12)
    records = []
    for index in range(count):
        ts = 1_718_000_000_000 + index * 7
        kind = index % 20
        if kind == 0:
            msg, args = "pool error for %s", (f"postgresql://oms:pw{index}x@db:5432/oms",)
        elif kind == 1:
            msg = "upstream call with Authorization: Bearer %s"
            args = (f"eyJhbGciOi.{index}abc.sig",)
        elif kind == 2:
            msg, args = "payment with card %s declined", ("4111 1111 1111 1111",)
        elif kind % 3 == 0:
            msg, args = "order %s filled %s @ %.2f ts=%d venue=XNAS", (index, "AAPL", 187.25, ts)
        elif kind % 3 == 1:
            msg = "risk check passed account_type=margin desk=EQ-%d latency_us=%d"
            args = (index, 42)
        else:
            msg = "GET /api/v1/orders/%d?limit=50 200 %.1fms request_id=%016x"
            args = (index, rng.uniform(1, 30), rng.getrandbits(64))
        record = logging.LogRecord("bench.writer", logging.INFO, __file__, 1, msg, args, None)
        record.__dict__.update(EXTRA)
        record.__dict__["order_id"] = 10**12 + index
        record.__dict__["trace"] = f"{rng.getrandbits(128):032x}"
        records.append(record)
    return records


def _writer_events_per_second(masker: Masker, records: list[logging.LogRecord]) -> float:
    builder = EcsDocumentBuilder("bench", "bench", masker)
    started = time.perf_counter()
    for sequence, record in enumerate(records):
        document = builder.build(record, "id", sequence)
        orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS)
    return len(records) / (time.perf_counter() - started)


def bench_writer_masking() -> bool:
    """What masking costs the writer thread: events/s built and serialised, with and without."""
    records = _writer_records(20_000)
    masked, plain = [], []
    for _ in range(5):  # interleaved, so a noisy neighbour hits both alike
        masked.append(_writer_events_per_second(Masker(), records))
        plain.append(_writer_events_per_second(_NoMasking(), records))
    ratios = sorted(m / p for m, p in zip(masked, plain, strict=True))
    print(
        f"  writer with masking: {min(masked):,.0f}-{max(masked):,.0f} events/s, without: "
        f"{min(plain):,.0f}-{max(plain):,.0f}; ratio {ratios[0]:.2f}-{ratios[-1]:.2f} over 5 runs"
    )
    met_ratio = report(
        "writer thread events/s with masking (unique messages, 1 in 20 with a secret)",
        sorted(masked)[2],
        baseline_name="the same writer without masking",
        baseline=sorted(plain)[2],
        unit="events/s",
        target=">= 0.2x",
        lower_is_better=False,
    )
    met_absolute = report(
        "writer thread events/s with masking, absolute",
        sorted(masked)[2],
        baseline_name="the same writer without masking",
        baseline=sorted(plain)[2],
        unit="events/s",
        target=">= 20000",
        lower_is_better=False,
    )
    return met_ratio and met_absolute


def main() -> int:
    results = [bench_caller_cost(), bench_shipping(), bench_writer_masking()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
