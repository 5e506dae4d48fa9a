"""A seedable simulated data platform: nightly and intraday jobs with occasional failures, late
data, quality dips, API throttling and cost. Schedules are compressed (a "nightly" job runs every
few minutes) so a dev box sees every kind of run quickly."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any


@dataclass
class _Job:
    pipeline: str
    job: str
    every: float  # seconds between runs (compressed schedule)
    typical_seconds: float  # the duration it reports
    records: int
    datasets: tuple[str, ...]
    api: str | None
    next_at: float = 0.0
    running: tuple[str, float, float] | None = None  # run id, real finish time, reported duration


JOBS = (
    _Job("eod_prices", "load", 240, 1500, 250_000, ("prices_eod",), "vendor_prices"),
    _Job("intraday_positions", "sync", 20, 35, 4_000, ("positions_intraday",), None),
    _Job("reference_data", "refresh", 120, 600, 60_000, ("instruments", "corporate_actions"),
         "vendor_reference"),
)  # fmt: skip


RUNS, QUALITY, API = "/v1/runs", "/v1/quality", "/v1/api-usage"


class PipelineSimulator:
    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.prefix = f"psim-{seed if seed is not None else self.rng.getrandbits(32)}"
        self.jobs = [dataclasses.replace(job) for job in JOBS]
        for job in self.jobs:
            job.next_at = self.rng.uniform(0, 3)  # every job shows up within seconds of start
        self.elapsed = 0.0
        self.counter = 0
        self.quota = {"vendor_prices": 1000.0, "vendor_reference": 300.0}

    def _id(self) -> str:
        self.counter += 1
        return f"{self.prefix}-{self.counter}"

    def step(self, now: datetime, dt: float) -> dict[str, list[dict[str, Any]]]:
        """Events for the last `dt` seconds, by the route they are posted to."""
        self.elapsed += dt
        out: dict[str, list[dict[str, Any]]] = {RUNS: [], QUALITY: [], API: []}
        for name in self.quota:  # quotas refill over time
            self.quota[name] = min(1000.0, self.quota[name] + 5 * dt)
        for job in self.jobs:
            if job.running is None and self.elapsed >= job.next_at:
                self._start(job, now, out)
            elif job.running is not None and self.elapsed >= job.running[1]:
                self._finish(job, now, out)
        return out

    def _start(self, job: _Job, now: datetime, out: dict[str, list[dict[str, Any]]]) -> None:
        run_id = f"{self.prefix}-{job.pipeline}-{self.counter}"
        reported = job.typical_seconds * self.rng.lognormvariate(0, 0.3)
        job.running = (run_id, self.elapsed + self.rng.uniform(1, 4), reported)
        out[RUNS].append({
            "type": "run_started", "id": self._id(), "timestamp": now.isoformat(),
            "run_id": run_id, "pipeline": job.pipeline, "job": job.job,
        })  # fmt: skip
        if job.api:
            calls = self.rng.randint(20, 120)
            self.quota[job.api] -= calls
            throttled = self.quota[job.api] < 0 or self.rng.random() < 0.05
            self.quota[job.api] = max(0.0, self.quota[job.api])
            out[API].append({"type": "api_usage", "id": self._id(), "timestamp": now.isoformat(),
                               "api": job.api, "status": 200, "count": calls,
                               "rate_limit_remaining": self.quota[job.api]})  # fmt: skip
            if throttled:
                out[API].append({"type": "api_usage", "id": self._id(),
                                   "timestamp": now.isoformat(), "api": job.api, "status": 429,
                                   "count": self.rng.randint(1, 15),
                                   "rate_limit_remaining": 0})  # fmt: skip

    def _finish(self, job: _Job, now: datetime, out: dict[str, list[dict[str, Any]]]) -> None:
        assert job.running is not None
        run_id, _, reported = job.running
        job.running = None
        job.next_at = self.elapsed + job.every
        failed = self.rng.random() < 0.06
        late = self.rng.random() < 0.1  # the vendor delivered yesterday's file again
        lag = timedelta(seconds=self.rng.uniform(600, 7200) if late else self.rng.uniform(5, 60))
        records = int(job.records * self.rng.uniform(0.9, 1.1)) if not failed else 0
        out[RUNS].append({
            "type": "run_finished", "id": self._id(), "timestamp": now.isoformat(),
            "run_id": run_id, "pipeline": job.pipeline, "job": job.job,
            "status": "failure" if failed else "success", "records": records,
            "errors": self.rng.randint(50, 500) if failed else self.rng.randint(0, 20),
            "duration_seconds": reported, "cost_usd": round(reported / 3600 * 2.4, 4),
            "datasets": list(job.datasets), "data_timestamp": (now - lag).isoformat(),
        })  # fmt: skip
        if failed:
            return
        dip = self.rng.random() < 0.08
        uniform = self.rng.uniform
        for dataset in job.datasets:
            checks = self.rng.randint(20, 60)
            failed_checks = self.rng.randint(3, 8) if dip else self.rng.randint(0, 1)
            out[QUALITY].append({
                "type": "quality_check", "id": self._id(), "timestamp": now.isoformat(),
                "dataset": dataset,
                "completeness": round(uniform(0.6, 0.8) if dip else uniform(0.95, 1.0), 4),
                "consistency": round(uniform(0.8, 0.9) if dip else uniform(0.97, 1.0), 4),
                "validity": round(min(1.0, self.rng.gauss(0.99, 0.005)), 4),
                "validations_passed": checks - failed_checks, "validations_failed": failed_checks,
            })  # fmt: skip
