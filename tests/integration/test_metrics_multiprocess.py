"""prometheus-client's multi-process mode with real worker processes: docs/examples' gunicorn
service with two sync workers, and instrument_app's /metrics over two forked workers. Each
worker counts only its own requests; /metrics, from any of them, must say the sum."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
ENV = "PROMETHEUS_MULTIPROC_DIR"


def value(text: str, name: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    return None


def wait_for(what: str, check: Callable[[], bool], attempts: int = 300) -> None:
    for _ in range(attempts):
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"never true: {what}")


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    port: int
    directory: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def scrape(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def live_gauge_pids(self) -> set[int]:
        return {int(p.stem.rsplit("_", 1)[1]) for p in self.directory.glob("gauge_livesum_*.db")}


def _leave_a_previous_runs_count(directory: Path) -> None:
    directory.mkdir()
    script = (
        "from prometheus_client import Counter; Counter('example_orders_accepted', '').inc(100)"
    )
    env = {**os.environ, ENV: str(directory)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=60)
    assert list(directory.glob("counter_*.db"))


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Gunicorn]:
    pytest.importorskip("gunicorn")
    directory = tmp_path / "metrics"
    _leave_a_previous_runs_count(directory)
    log_path = tmp_path / "gunicorn.log"
    command = [
        sys.executable, "-m", "gunicorn", "-c", str(EXAMPLES / "gunicorn.conf.py"),
        "--chdir", str(EXAMPLES), "--bind", "127.0.0.1:0", "--no-control-socket",
        "prefork_service:app",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env={**os.environ, ENV: str(directory)}, stdout=log, stderr=log
        )
    try:
        found: list[int] = []

        def listening() -> bool:
            assert process.poll() is None, log_path.read_text()
            match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", log_path.read_text())
            found.extend([int(match.group(1))] if match else [])
            return bool(found)

        wait_for("gunicorn listening", listening)
        service = Gunicorn(process, found[0], directory)
        # Each worker sets its `livesum` gauge to 1 when it imports the app, after the fork.
        wait_for("both workers up", lambda: value(service.scrape(), "example_workers") == 2)
        yield service
    finally:
        process.terminate()  # gunicorn's graceful stop ends its workers first
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _orders_from_two_workers(service: Gunicorn) -> tuple[int, int]:
    """Two orders served by two different workers: a sync worker serves one request at a time,
    so while one of them waits for the rest of our first request, the second must go to the
    other."""
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as held:
        held.sendall(b"GET /orders HTTP/1.1\r\nHost: test\r\n")
        second = httpx.get(f"{service.url}/orders", timeout=10).text
        held.sendall(b"Connection: close\r\n\r\n")
        chunks = []
        for _ in range(100):  # until the worker closes the connection
            chunk = held.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    first = b"".join(chunks).decode()
    assert first.startswith("HTTP/1.1 200"), first
    return _worker(first), _worker(second)


def _worker(answer: str) -> int:
    match = re.search(r"accepted by worker (\d+)", answer)
    assert match, answer
    return int(match.group(1))


def test_metrics_sum_two_gunicorn_workers(gunicorn: Gunicorn):
    worker_a, worker_b = _orders_from_two_workers(gunicorn)
    assert worker_a != worker_b
    assert {worker_a, worker_b} == gunicorn.live_gauge_pids()
    counted = {p.name for p in gunicorn.directory.glob("counter_*.db")}
    assert counted == {f"counter_{worker_a}.db", f"counter_{worker_b}.db"}  # the old run's: gone
    for _ in range(3):  # whichever worker answers the scrape, the sum is the same
        text = gunicorn.scrape()
        assert value(text, "example_orders_accepted_total") == 2  # not 102: on_starting cleared
        assert value(text, "example_workers") == 2


def test_a_dead_workers_live_gauge_leaves_the_sum_and_its_counts_stay(gunicorn: Gunicorn):
    victim = _worker(httpx.get(f"{gunicorn.url}/orders", timeout=10).text)
    survivors = gunicorn.live_gauge_pids() - {victim}
    os.kill(victim, signal.SIGKILL)
    # gunicorn's master reaps it (child_exit), then forks a replacement that sets its own gauge.
    wait_for(
        "the replacement worker counted, the dead one not",
        lambda: len(gunicorn.live_gauge_pids() - survivors - {victim}) == 1,
    )
    assert victim not in gunicorn.live_gauge_pids()
    text = gunicorn.scrape()
    assert value(text, "example_workers") == 2  # 3 if the dead worker's gauge had stayed
    assert value(text, "example_orders_accepted_total") == 1  # counted by the dead worker


FORKED_WORKERS = """
    import asyncio, json, multiprocessing, os, sys
    import httpx
    from fastapi import FastAPI
    from watchfloor.fastapi import instrument_app

    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, int]:
        return {"pid": os.getpid()}

    instrument_app(app, "orders")

    async def call(paths):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            return [await http.get(path) for path in paths]

    def worker(requests):
        responses = asyncio.run(call([f"/orders/o-{n}" for n in range(requests)]))
        assert all(r.status_code == 200 for r in responses)

    if __name__ == "__main__":
        fork = multiprocessing.get_context("fork")
        workers = [fork.Process(target=worker, args=(n,)) for n in (3, 5)]
        for process in workers:
            process.start()
        for process in workers:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
        (scrape,) = asyncio.run(call(["/metrics"]))
        files = sorted(name for name in os.listdir(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
        codes = [process.exitcode for process in workers]
        pids = [process.pid for process in workers]
        print(json.dumps({"metrics": scrape.text, "files": files, "exit": codes, "pids": pids}))
"""


def test_instrument_app_metrics_sum_forked_workers(tmp_path: Path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    script = tmp_path / "workers.py"
    script.write_text(textwrap.dedent(FORKED_WORKERS))
    done = subprocess.run(
        [sys.executable, str(script)],
        env={**os.environ, ENV: str(directory)},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["exit"] == [0, 0]
    assert {f"counter_{pid}.db" for pid in result["pids"]} <= set(result["files"])
    families = {f.name: f for f in text_string_to_metric_families(result["metrics"])}
    (ok,) = [
        s for s in families["http_server_requests"].samples if s.name.endswith("_total")
    ]  # one series: no label tells the workers apart, and none names the service
    assert ok.labels == {"method": "GET", "route": "/orders/{order_id}", "status": "200"}
    assert ok.value == 8  # 3 + 5
    count = [
        s
        for s in families["http_server_request_duration_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert [s.value for s in count] == [8]
