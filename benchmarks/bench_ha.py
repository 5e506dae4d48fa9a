"""Local mode in HA (`watchfloor-local up --ha`, the pinned binaries): what the store takes in and
how fast a breach reaches the hub, for docs/sizing.md.

Figures, each against a baseline from the same run:
- VictoriaMetrics' ingested rows/s vs the samples/s both Prometheus replicas append (what they
  remote-write): everything the pair writes must arrive, so the ratio must be about 1.
- breach → alert hub latency vs the configured floor of the path (scrape + evaluation interval +
  Alertmanager's group_wait), over several breaches.
The absolute figures (samples/s per replica, head series, rows/s, deduplicated/s, RSS) are
printed beside them. Needs `make tools` (Prometheus, Alertmanager, Jaeger, Pushgateway,
node-exporter, VictoriaMetrics).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from _measure import Figure, Target, evaluate, exit_code, report

INTERVAL_S = 1.0  # scrape, evaluation and group_wait: the floor is three of them
RATE_ROUNDS = 5
BREACHES = 5
T = TypeVar("T")


def _until(check: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.25)
    raise RuntimeError(f"{what}: not within {timeout:.0f} s")


class Stack:
    def __init__(self, state: Path) -> None:
        self.state = state
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
        self.env.update(
            WATCHFLOOR_LOCAL_DIR=str(state), WATCHFLOOR_ENV_FILE=str(state / "none.env"),
            WATCHFLOOR_LOG_STREAM="none", WATCHFLOOR_SIMULATOR_SEED="42",
        )  # fmt: skip

    def cli(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "watchfloor_stack.localmode", *args], env=self.env,
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"watchfloor-local {' '.join(args)}: {done.stdout}{done.stderr}")

    def load(self) -> None:
        self.ports: dict[str, int] = json.loads((self.state / "ports.json").read_text())
        lines = (self.state / "secrets.env").read_text().splitlines()
        self.secrets = dict(line.split("=", 1) for line in lines if "=" in line)
        self.auth = ("watchfloor", self.secrets["PROMETHEUS_PASSWORD"])

    def query(self, expr: str, component: str = "prometheus-b") -> list[dict[str, Any]]:
        answer = httpx.get(
            f"http://127.0.0.1:{self.ports[component]}/api/v1/query",
            params={"query": expr}, auth=self.auth, timeout=10,
        ).json()  # fmt: skip
        return list(answer["data"]["result"])

    def value(self, expr: str) -> float:
        return sum(float(series["value"][1]) for series in self.query(expr))

    def risk_violations(self, strategy: str, count: int) -> None:
        events = [
            {"type": "risk_violation", "id": f"{strategy}-{time.time_ns()}-{n}",
             "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "strategy": strategy, "rule": "max_position", "severity": "critical",
             "value": 2_000_000, "limit": 1_000_000}
            for n in range(count)
        ]  # fmt: skip
        httpx.post(
            f"http://127.0.0.1:{self.ports['trading-exporter']}/v1/events", json=events,
            headers={"Authorization": f"Bearer {self.secrets['WATCHFLOOR_INGEST_TOKEN']}"},
            timeout=10,
        ).raise_for_status()  # fmt: skip

    def hub_holds(self, strategy: str) -> int:
        alerts = httpx.get(
            f"http://127.0.0.1:{self.ports['alert-hub']}/api/alerts", params={"status": "all"},
            headers={"Authorization": f"Bearer {self.secrets['WATCHFLOOR_ALERTHUB_TOKEN']}"},
            timeout=10,
        ).json()["alerts"]  # fmt: skip
        return sum(1 for alert in alerts if alert["labels"].get("strategy") == strategy)


def ingest_rounds(stack: Stack) -> list[tuple[float, float, float]]:
    """(VictoriaMetrics rows/s, both replicas' appended samples/s, deduplicated/s) per round."""
    rounds = []
    for _ in range(RATE_ROUNDS):
        appended = stack.value("sum(rate(prometheus_tsdb_head_samples_appended_total[30s]))")
        rows = stack.value('sum(rate(vm_rows_inserted_total{type="promremotewrite"}[30s]))')
        deduplicated = stack.value("sum(rate(vm_deduplicated_samples_total[30s]))")
        rounds.append((rows, appended, deduplicated))
        time.sleep(5)
    return rounds


def breach_latency(stack: Stack, strategy: str) -> float:
    stack.risk_violations(strategy, 1)  # increase() needs the series before the rise
    _until(lambda: stack.query(f'trading_risk_violations_total{{strategy="{strategy}"}}'),
           30, f"the first risk violation of {strategy} scraped")  # fmt: skip
    sent = time.monotonic()
    stack.risk_violations(strategy, 6)
    _until(lambda: stack.hub_holds(strategy), 120, f"{strategy}'s alert at the hub")
    latency = time.monotonic() - sent
    if stack.hub_holds(strategy) != 1:
        raise RuntimeError(f"the hub holds {strategy}'s alert more than once")
    return latency


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-ha-") as folder:
        stack = Stack(Path(folder))
        interval = f"{INTERVAL_S:.0f}s"
        stack.cli("up", "--ha", "--free-ports", "--scrape-interval", interval,
                  "--evaluation-interval", interval, "--group-wait", interval,
                  "--timeout", "180")  # fmt: skip
        try:
            stack.load()
            time.sleep(45)  # rate()'s [30s] windows filled after the first remote-write batches
            rates = ingest_rounds(stack)
            latencies = [breach_latency(stack, f"bench-ha-{n}") for n in range(BREACHES)]
            series = stack.value("max(prometheus_tsdb_head_series)")
            memory = (
                'max by (job) (process_resident_memory_bytes{job=~"prometheus|victoriametrics"})'
            )
            rss = {
                found["metric"]["job"]: float(found["value"][1]) / 2**20
                for found in stack.query(memory)
            }
        finally:
            stack.cli("down")
    ingest = evaluate(
        rates,
        Figure(
            "VictoriaMetrics rows/s ingested vs samples/s appended by both Prometheus replicas",
            lambda rounds: statistics.median(rows / appended for rows, appended, _ in rounds),
            Target.parse(">= 0.95x"),
        ),
    )
    floor = 3 * INTERVAL_S
    latency = evaluate(
        latencies,
        Figure(
            f"breach -> alert hub latency in HA vs the path's configured floor ({floor:.0f} s: "
            "scrape + evaluation + group_wait)",
            lambda rounds: statistics.median(rounds) / floor,
            Target.parse("<= 2.0x"),
        ),
    )
    report(ingest)
    appended = statistics.median(a for _, a, _ in rates)
    print(f"    per replica {appended / 2:,.0f} samples/s ({series:,.0f} head series, "
          f"{INTERVAL_S:.0f} s scrape); VictoriaMetrics "
          f"{statistics.median(r for r, _, _ in rates):,.0f} rows/s, deduplicated "
          f"{statistics.median(d for _, _, d in rates):,.0f}/s; RSS "
          + ", ".join(f"{job} {mib:.0f} MiB" for job, mib in sorted(rss.items())))  # fmt: skip
    report(latency)
    print("    latencies " + ", ".join(f"{s:.1f}" for s in latencies) + " s, each alert held once")
    return exit_code([ingest, latency])


if __name__ == "__main__":
    sys.exit(main())
