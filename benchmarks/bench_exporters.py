"""Trading exporter under sustained ingest: 5 000 events/s offered on one core, /metrics p99.

The exporter runs as its own process (uvicorn, one worker: one core). A client process posts
pre-generated realistic batches (the simulator's stream) at a fixed pace while another thread
scrapes /metrics every 100 ms, as a hurried Prometheus would. Baseline: /metrics latency with no
ingest, measured first in the same run.
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

from _common import report
from watchfloor_exporters.trading.simulator import TradingSimulator

RATE = 5_000  # events per second offered
BATCH = 500
SECONDS = 20
TOKEN = "bench-token"


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


def main() -> int:
    port = free_port()
    env = {**os.environ, "WATCHFLOOR_INGEST_TOKEN": TOKEN, "WATCHFLOOR_LOG_STREAM": "none"}
    server = subprocess.Popen(
        [sys.executable, "-m", "watchfloor_exporters.trading", "--port", str(port)], env=env
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("exporter did not become ready")
            time.sleep(0.2)
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
        server.wait(10)
    achieved = accepted / elapsed
    met = report(
        "sustained ingest, one exporter process",
        achieved,
        baseline_name=f"offered load ({RATE} events/s in batches of {BATCH})",
        baseline=RATE,
        unit="events/s",
        target=f">= {RATE * 0.98:.0f}",
        lower_is_better=False,
    )
    met &= report(
        "/metrics p99 while ingesting",
        p99(loaded) * 1000,
        baseline_name="/metrics p99 idle",
        baseline=p99(idle) * 1000,
        unit="ms",
        target="<= 100",
    )
    print(f"  {len(loaded)} scrapes under load, median {statistics.median(loaded) * 1000:.1f} ms")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
