"""The real Prometheus 3.5, on the repository's prometheus.yml (local mode's rendering), scrapes
an instrument_app service twice: as a user's service (job `services`, `service` label from the
target file, as services.example.yml shows) and as the stack's alert-hub job (`service` from the
job's relabelling). Each series must carry the target's `service` and no `exported_service`:
the label instrument_app used to add collided with the target's."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.binaries import pinned_binary
from tests.integration.conftest import free_port
from watchfloor_stack.localmode.components import DEFAULT_PORTS
from watchfloor_stack.localmode.config import render_prometheus

pytestmark = pytest.mark.integration

SERVICE = """
    from fastapi import FastAPI
    from watchfloor.fastapi import instrument_app

    app = FastAPI()

    @app.get("/orders/{order_id}")
    async def get_order(order_id: str) -> dict[str, str]:
        return {"order_id": order_id}

    instrument_app(app, "order-router")
"""


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[int]:
    (tmp_path / "order_router.py").write_text(textwrap.dedent(SERVICE))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHFLOOR_", "OTEL_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "order_router:app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        cwd=tmp_path, env={**env, "WATCHFLOOR_LOG_STREAM": "none"},
    )  # fmt: skip
    try:
        for _ in range(300):
            assert process.poll() is None, "the service exited"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        for n in range(3):
            assert httpx.get(f"http://127.0.0.1:{port}/orders/o-{n}").status_code == 200
        yield port
    finally:
        _stop(process)


@pytest.fixture
def prometheus(tmp_path: Path, service: int) -> Iterator[str]:
    ports = {name: free_port() for name in DEFAULT_PORTS}
    ports["alert-hub"] = service  # the stack's job for an instrument_app service
    state = tmp_path / "state"
    config = render_prometheus(state, ports, scrape_interval="1s", evaluation_interval="1s")
    (state / "prometheus" / "services" / "order-router.yml").write_text(
        f'- targets: ["127.0.0.1:{service}"]\n  labels: {{service: order-router, team: trading}}\n'
    )
    port = free_port()
    process = subprocess.Popen(
        [pinned_binary("prometheus"), f"--config.file={config}",
         f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}/api/v1"
    finally:
        _stop(process)


def _query(api: str, promql: str) -> list[dict[str, Any]]:
    try:
        body = httpx.get(f"{api}/query", params={"query": promql}, timeout=5).json()
    except (httpx.TransportError, ValueError):
        return []
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def test_request_series_carry_the_targets_service_label_only(prometheus: str):
    promql = 'http_server_requests_total{route="/orders/{order_id}"}'
    found: list[dict[str, Any]] = []
    for _ in range(120):  # Prometheus starts, then scrapes every second
        found = _query(prometheus, promql)
        if len(found) == 2:
            break
        time.sleep(0.5)
    labels = [result["metric"] for result in found]
    assert {m["job"]: m["service"] for m in labels} == {
        "services": "order-router",
        "alert-hub": "alert-hub",
    }, labels
    assert not [name for m in labels for name in m if name.startswith("exported_")], labels
    assert _query(prometheus, '{exported_service!=""}') == []
