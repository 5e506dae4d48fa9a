"""Trading exporter under sustained ingest: 5 000 events/s offered on one core, /metrics p99;
and its memory under a label-combination flood.

The exporter runs as its own process (uvicorn, one worker: one core). A client process posts
pre-generated realistic batches (the simulator's stream) at a fixed pace while another thread
scrapes /metrics every 100 ms, as a hurried Prometheus would. Baseline: /metrics latency with no
ingest, measured first in the same run.

Flood: FLOOD_RUNS fresh exporters each take FLOOD_EVENTS events whose label combinations are all
new (300 strategies x symbols, venues, feeds, rules, brokers), scraped as they go. Figure: peak RSS
(VmHWM) over the same process's idle RSS, median of the runs with their spread; the target keeps
the peak well under the 256 MiB Compose limit (63 MiB idle x 3 = 189 MiB).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Figure, Outcome, Target, evaluate, exit_code, report, single
from watchfloor_exporters.trading.simulator import TradingSimulator

RATE = 5_000  # events per second offered
BATCH = 500
SECONDS = 20
TOKEN = "bench-token"
FLOOD_EVENTS = 120_000
FLOOD_BATCH = 2_500
FLOOD_RUNS = 3


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def batches(count: int) -> list[bytes]:
    simulator = TradingSimulator(seed=1, orders_per_second=400)
    events: list[dict[str, object]] = []
    while len(events) < count:
        events += simulator.step(datetime.now(UTC), 0.25)
    return [json.dumps(events[i : i + BATCH]).encode() for i in range(0, count, BATCH)]


def scrape_latencies(url: str, stop: threading.Event) -> list[float]:
    latencies: list[float] = []
    with httpx.Client(timeout=5) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(url, headers={"Accept": "application/openmetrics-text"}).raise_for_status()
            latencies.append(time.perf_counter() - started)
            stop.wait(0.1)
    return latencies


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 2 else samples[0]


def start_exporter() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "WATCHFLOOR_INGEST_TOKEN": TOKEN, "WATCHFLOOR_LOG_STREAM": "none"}
    server = subprocess.Popen(
        [sys.executable, "-m", "watchfloor_exporters.trading", "--port", str(port)], env=env
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return server, base
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            server.terminate()
            raise RuntimeError("exporter did not become ready")
        time.sleep(0.2)


def rss_mib(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def flood_batches() -> list[bytes]:
    """FLOOD_EVENTS events, every one with a label combination not seen before."""
    now = datetime.now(UTC).isoformat()
    events: list[dict[str, object]] = []
    for n in range(FLOOD_EVENTS):
        strategy, symbol = f"s{n % 300}", f"F{n // 300}"
        base = {"id": f"flood-{n}", "timestamp": now, "strategy": strategy}
        kind = n % 4
        if kind == 0:
            events.append({**base, "type": "order_submitted", "order_id": f"o{n}",
                           "symbol": symbol, "venue": f"V{n % 50}", "side": "buy",
                           "quantity": 1, "arrival_price": 10.0})  # fmt: skip
        elif kind == 1:
            events.append({**base, "type": "order_filled", "order_id": f"o{n - 1}",
                           "symbol": symbol, "side": "buy", "quantity": 1, "price": 10.1,
                           "final": True})  # fmt: skip
        elif kind == 2:
            events.append({**base, "type": "position_snapshot", "symbol": symbol,
                           "currency": "USD", "quantity": 5, "price": 1.0})  # fmt: skip
        else:
            events.append({**base, "type": "risk_violation", "rule": f"rule{n}",
                           "severity": "info", "value": 1, "limit": 2})  # fmt: skip
    return [
        json.dumps(events[i : i + FLOOD_BATCH]).encode() for i in range(0, len(events), FLOOD_BATCH)
    ]


def flood_peak_ratio(payloads: list[bytes]) -> tuple[float, float, float]:
    """(idle MiB, peak MiB, peak / idle) of one fresh exporter taking the flood."""
    server, base = start_exporter()
    try:
        idle = rss_mib(server.pid, "VmRSS")
        with httpx.Client(
            base_url=base, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as client:
            for index, payload in enumerate(payloads):
                client.post("/v1/events", content=payload).raise_for_status()
                if index % 8 == 0:
                    client.get("/metrics", headers={"Accept": "application/openmetrics-text"})
            client.get("/metrics").raise_for_status()
        peak = rss_mib(server.pid, "VmHWM")
    finally:
        server.terminate()
        server.wait(15)
    return idle, peak, peak / idle


def main() -> int:
    outcomes = sustained_ingest()
    payloads = flood_batches()
    runs = [flood_peak_ratio(payloads) for _ in range(FLOOD_RUNS)]
    # With this few runs the interval is their range: met means met in every run.
    flood = evaluate(
        [ratio for _, _, ratio in runs],
        Figure(
            f"peak RSS under a {FLOOD_EVENTS}-event label-combination flood vs idle RSS of the "
            "same process",
            statistics.median,
            Target.parse("<= 3.0x"),
        ),
    )
    report(flood)
    idles = ", ".join(f"{idle:.0f}" for idle, _, _ in runs)
    peaks = ", ".join(f"{peak:.0f}" for _, peak, _ in runs)
    print(f"    idle {idles} MiB; peaks {peaks} MiB")
    return exit_code([*outcomes, flood])


def sustained_ingest() -> list[Outcome]:
    server, base = start_exporter()
    try:
        payloads = batches(RATE * SECONDS)
        # Baseline: /metrics with nothing else going on (after one batch so the catalog exists).
        httpx.post(f"{base}/v1/events", content=payloads[0],
                   headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()  # fmt: skip
        stop = threading.Event()
        idle: list[float] = []
        idle_thread = threading.Thread(
            target=lambda: idle.extend(scrape_latencies(f"{base}/metrics", stop))
        )
        idle_thread.start()
        time.sleep(5)
        stop.set()
        idle_thread.join()

        stop = threading.Event()
        loaded: list[float] = []
        scraper = threading.Thread(
            target=lambda: loaded.extend(scrape_latencies(f"{base}/metrics", stop))
        )
        scraper.start()
        accepted = 0
        started = time.perf_counter()
        with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for index, payload in enumerate(payloads[1:], start=1):
                due = started + index * BATCH / RATE
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
                response = client.post(f"{base}/v1/events", content=payload)
                response.raise_for_status()
                accepted += response.json()["accepted"]
        elapsed = time.perf_counter() - started
        stop.set()
        scraper.join()
    finally:
        server.terminate()
        server.wait(15)
    outcomes = [
        single(
            f"sustained ingest, one exporter process, offered {RATE} events/s in batches of "
            f"{BATCH}",
            accepted / elapsed,
            f">= {RATE * 0.98:.0f}",
            "events/s",
        ),
        single("/metrics p99 while ingesting", p99(loaded) * 1000, "<= 100", "ms"),
    ]
    for outcome in outcomes:
        report(outcome)
    print(
        f"    {len(loaded)} scrapes under load, median {statistics.median(loaded) * 1000:.1f} ms; "
        f"idle: p99 {p99(idle) * 1000:.1f} ms"
    )
    return outcomes


if __name__ == "__main__":
    sys.exit(main())
