"""Alert hub /health latency with WebSocket clients that never read, as a ratio to none.

The hub runs as its own process (`python -m watchfloor_alerthub`) holding ALERTS alerts. In each
round, /health is probed every 20 ms for SECONDS while webhooks change alerts under it (small
changes every 100 ms, and every fifth one too many to queue, so every client is due a snapshot):
first with no WebSocket client (the baseline), then with SLOW_READERS clients that authenticate
and never read again. Before the fix one full snapshot was built per overflowing client on the
event loop: 20 such clients held /health for 5.9 s and the hub at 474 MiB.
"""

from __future__ import annotations

import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _measure import Figure, Target, evaluate, exit_code, report

ALERTS = 5_000
SLOW_READERS = 50
SECONDS = 6.0
ROUNDS = 3
TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def webhook(start: int, count: int, version: int) -> dict[str, object]:
    now = datetime.now(UTC).isoformat()
    alerts = [
        {"status": "firing", "fingerprint": f"{n:06x}", "startsAt": now,
         "labels": {"alertname": "Bench", "severity": "warning", "id": str(n)},
         "annotations": {"summary": f"version {version}", "description": "d" * 300}}
        for n in range(start, start + count)
    ]  # fmt: skip
    return {"version": "4", "status": "firing", "receiver": "hub", "alerts": alerts}


def slow_reader(port: int) -> socket.socket:
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(10)
    client.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    client.sendall(
        f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"Authorization: Bearer {TOKEN}\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += client.recv(1)
    if not answer.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"WebSocket refused: {answer[:80]!r}")
    return client


def health_under_churn(base: str, client: httpx.Client) -> list[float]:
    latencies: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        with httpx.Client(timeout=60) as prober:
            while not stop.is_set():
                started = time.perf_counter()
                prober.get(f"{base}/health").raise_for_status()
                latencies.append(time.perf_counter() - started)
                stop.wait(0.02)

    prober = threading.Thread(target=probe)
    prober.start()
    ends, version = time.monotonic() + SECONDS, 0
    while time.monotonic() < ends:
        version += 1
        count = 400 if version % 5 == 0 else 40
        start = (version * 997) % (ALERTS - count)
        client.post(f"{base}/alertmanager/webhook", json=webhook(start, count, version))
        time.sleep(0.1)
    stop.set()
    prober.join()
    return latencies


def p95(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=20)[18]


def median_of(key: str) -> Callable[[Sequence[Mapping[str, float]]], float]:
    return lambda rounds: statistics.median(r[key] for r in rounds)


def main() -> int:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    workdir = Path(tempfile.mkdtemp(prefix="bench-alerthub-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
    env.update(WATCHFLOOR_ALERTHUB_TOKEN=TOKEN, WATCHFLOOR_LOG_STREAM="none",
               XDG_STATE_HOME=str(workdir))  # fmt: skip
    server = subprocess.Popen(
        [sys.executable, "-m", "watchfloor_alerthub", "--port", str(port),
         "--database", str(workdir / "hub.sqlite"), "--alertmanager-url", "http://127.0.0.1:9",
         "--reconcile-seconds", "3600"],
        env=env,
    )  # fmt: skip
    baseline_p50, baseline_p95, slow_p50, slow_p95 = [], [], [], []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the hub did not answer /health")
            time.sleep(0.2)
        with httpx.Client(timeout=60, headers=AUTH) as client:
            for start in range(0, ALERTS, 2500):
                client.post(
                    f"{base}/alertmanager/webhook", json=webhook(start, 2500, 0)
                ).raise_for_status()
            for _ in range(ROUNDS):
                none = health_under_churn(base, client)
                readers = [slow_reader(port) for _ in range(SLOW_READERS)]
                try:
                    slow = health_under_churn(base, client)
                finally:
                    for reader in readers:
                        reader.close()
                baseline_p50.append(statistics.median(none))
                baseline_p95.append(p95(none))
                slow_p50.append(statistics.median(slow))
                slow_p95.append(p95(slow))
        rss = next(
            int(line.split()[1]) / 1024
            for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
            if line.startswith("VmHWM:")
        )
    finally:
        server.terminate()
        server.wait(10)
    rounds = [
        {"p95": slow / none, "p50": slow_median / none_median}
        for slow, none, slow_median, none_median in zip(
            slow_p95, baseline_p95, slow_p50, baseline_p50, strict=True
        )
    ]
    # With this few rounds the interval is their range: met means met in every round.
    outcomes = [
        evaluate(
            rounds,
            Figure(
                f"hub /health {name} with {SLOW_READERS} non-reading WebSocket clients, "
                f"{ALERTS} alerts, vs with none",
                median_of(key),
                Target.parse(target),
            ),
        )
        for name, key, target in (("p95", "p95", "<= 3.0x"), ("median", "p50", "<= 2.0x"))
    ]
    for outcome in outcomes:
        report(outcome)
    print(
        f"    with none: p95 {statistics.median(baseline_p95) * 1000:.1f} ms, median "
        f"{statistics.median(baseline_p50) * 1000:.1f} ms; hub peak RSS {rss:.0f} MiB"
    )
    return exit_code(outcomes)


if __name__ == "__main__":
    sys.exit(main())
