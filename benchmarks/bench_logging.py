"""Logging: caller-side cost against python-logstash-async, shipping throughput with ACKs, and
the writer thread's throughput with masking against the same writer without it.

The Beats receiver runs in its own process (watchfloor.testing.beats CLI) so that it does not
share the sender's GIL, as Logstash would not.
"""

from __future__ import annotations

import gc
import json
import logging
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import (
    Block,
    Budget,
    Figure,
    Outcome,
    Target,
    difference,
    evaluate,
    exit_code,
    measure,
    rate,
    ratio,
    report,
    report_measurement,
    single,
    timed,
)
from watchfloor.logging import Masker, configure_logging, shutdown_logging
from watchfloor.logging.ecs import EcsDocumentBuilder
from watchfloor.metrics.shipping import LOG_EVENTS_SHIPPED

EXTRA = {"order_id": "o-1", "symbol": "AAPL", "qty": 100, "price": 187.5, "strategy": "momo"}
CALLS = 5_000  # log calls per arm and round
DRAIN_SECONDS = 0.5  # after each block, so a handler's background thread does not run into the next
CALLER_BUDGET = Budget(max_rounds=60, max_seconds=120)
SHIP_EVENTS = 100_000
SHIP_ROUNDS = 3
WRITER_RECORDS = 5_000  # per arm and round
WRITER_BUDGET = Budget(max_rounds=200, max_seconds=60)
BASELINE = "python-logstash-async"


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


def _caller_arm(handler: logging.Handler) -> Callable[[], Block]:
    """Blocks of logger.info calls with `handler` alone on the root logger."""
    root, logger = logging.getLogger(), logging.getLogger("bench.caller")
    block = timed(lambda: logger.info("order filled", extra=EXTRA), CALLS)

    def run() -> Block:
        root.addHandler(handler)
        try:
            return block()
        finally:
            root.removeHandler(handler)
            time.sleep(DRAIN_SECONDS)

    return run


def _baseline_handler(port: int) -> logging.Handler:
    from logstash_async.formatter import LogstashEcsFormatter
    from logstash_async.handler import AsynchronousLogstashHandler

    handler: logging.Handler = AsynchronousLogstashHandler(
        "127.0.0.1", port, database_path=None, transport="logstash_async.transport.BeatsTransport"
    )
    handler.setFormatter(LogstashEcsFormatter())
    return handler


def bench_caller_cost() -> list[Outcome]:
    """What a log call costs the calling thread, ours against python-logstash-async's handler
    (AsynchronousLogstashHandler + LogstashEcsFormatter), both shipping to the same receiver."""
    root = logging.getLogger()
    with receiver_process() as (port, _), tempfile.TemporaryDirectory() as spool:
        installed = set(root.handlers)
        configure_logging(
            "bench",
            level="INFO",
            stream=None,
            logstash_host="127.0.0.1",
            logstash_port=port,
            spool_dir=spool,
        )
        ours = next(handler for handler in root.handlers if handler not in installed)
        root.removeHandler(ours)  # each arm puts its handler on the root logger for its blocks
        baseline = _baseline_handler(port)
        figures = [
            Figure(
                f"logger.info caller thread CPU vs {BASELINE}",
                ratio("watchfloor", BASELINE),
                Target.parse("<= 0.15x"),
            ),
            Figure(
                f"logger.info caller wall time (includes GIL contention with the writer) "
                f"vs {BASELINE}",
                ratio("watchfloor", BASELINE, clock="wall"),
                Target.parse("<= 0.15x"),
            ),
        ]
        try:
            result = measure(
                {BASELINE: _caller_arm(baseline), "watchfloor": _caller_arm(ours)},
                figures,
                budget=CALLER_BUDGET,
            )
        finally:
            baseline.close()
            shutdown_logging(timeout=30)
    report_measurement(result, per="call")
    return result.outcomes


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


def bench_shipping() -> list[Outcome]:
    """Throughput, not a ratio: SHIP_ROUNDS runs, each with a fresh receiver and spool and ending
    when the receiver has ACKed every event. With this few runs the interval is their range."""
    rates, distinct = [], []
    for _ in range(SHIP_ROUNDS):
        with tempfile.TemporaryDirectory() as spool, receiver_process() as (port, summary):
            seconds = _ship(SHIP_EVENTS, True, port, spool)
        rates.append(SHIP_EVENTS / seconds)
        distinct.append(summary.get("distinct_ids", 0))
    baseline_events = 20_000
    with receiver_process() as (port, base_summary):
        base_seconds = _ship_baseline(baseline_events, port)
    outcomes = [
        evaluate(
            rates,
            Figure(
                "shipping throughput, ACKed by a local Beats receiver",
                statistics.median,
                Target.parse(">= 20000"),
                unit="events/s",
            ),
        ),
        single(
            "distinct events the receiver got, fewest of the runs", min(distinct),
            f">= {SHIP_EVENTS}", "events",
        ),
    ]  # fmt: skip
    for outcome in outcomes:
        report(outcome)
    print(
        f"    for comparison, {BASELINE}'s handler (memory cache, Beats), one run: "
        f"{base_summary.get('events', 0) / base_seconds:,.0f} events/s, "
        f"{base_summary.get('events')}/{baseline_events} received"
    )
    return outcomes


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
        args: tuple[object, ...]
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


def _writer_arm(masker: Masker, records: list[logging.LogRecord]) -> Callable[[], Block]:
    """Blocks of the writer thread's work: build each record's ECS document and serialise it."""

    def run() -> Block:
        builder = EcsDocumentBuilder("bench", "bench", masker)
        gc.collect()
        cpu, wall = time.thread_time_ns(), time.perf_counter_ns()
        for sequence, record in enumerate(records):
            document = builder.build(record, "id", sequence)
            orjson.dumps(document, default=str, option=orjson.OPT_NON_STR_KEYS)
        return Block(
            (time.thread_time_ns() - cpu) / len(records),
            (time.perf_counter_ns() - wall) / len(records),
        )

    return run


def bench_writer_masking() -> list[Outcome]:
    """What masking costs the writer thread: the same writer with and without it. Masking only
    adds work, so its overhead must come out resolved above zero."""
    records = _writer_records(WRITER_RECORDS)
    figures = [
        Figure(
            "writer thread events/s with masking (unique messages, 1 in 20 with a secret) "
            "vs the same writer without masking, thread CPU",
            ratio("without masking", "with masking"),
            Target.parse(">= 0.2x"),
            overheads={"masking": difference("with masking", "without masking")},
        ),
        Figure(
            "writer thread events/s with masking, absolute, thread CPU",
            rate("with masking"),
            Target.parse(">= 20000"),
            unit="events/s",
        ),
    ]
    arms = {
        "with masking": _writer_arm(Masker(), records),
        "without masking": _writer_arm(_NoMasking(), records),
    }
    result = measure(arms, figures, budget=WRITER_BUDGET)
    report_measurement(result, per="event")
    return result.outcomes


def main() -> int:
    return exit_code(bench_caller_cost() + bench_shipping() + bench_writer_masking())


if __name__ == "__main__":
    sys.exit(main())
