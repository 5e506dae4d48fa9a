"""The scale profile's tail sampling, run by the real Jaeger (the release Compose pins).

The ingester's processors (infrastructure/jaeger/ingester.yaml) are put behind an OTLP receiver
on loopback and in front of in-memory storage: Kafka and Elasticsearch are the e2e suite's
(tests/e2e/test_scale_profile.py); what is decided here is which traces are kept. One change to
the file's settings: a 1 s decision wait instead of 10 s. `jaeger validate` does not parse the
OTTL conditions; starting the processor does, so a broken condition fails here.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.binaries import pinned_binary
from tests.integration.conftest import free_port
from tests.processes import stop

pytestmark = pytest.mark.integration

INGESTER = Path(__file__).resolve().parents[2] / "infrastructure" / "jaeger" / "ingester.yaml"
PORTS = ("otlp", "query", "query-grpc", "health", "metrics")

# Five traces, one process: each root span is its own trace.
TRACES = """
    import sys, time
    from watchfloor.tracing import OrderTrace, broker_call, configure_tracing, shutdown_tracing
    from watchfloor.tracing.trading import market_data
    configure_tracing("it-tail-sampling", endpoint=sys.argv[1])
    try:
        with market_data("feed-a", "ERR"):
            raise ValueError("bad tick")
    except ValueError:
        pass
    with market_data("feed-a", "SLOW"):
        time.sleep(0.25)
    fast = OrderTrace("o-fast", strategy="momo", symbol="AAPL", side="buy", quantity=1.0)
    fast.filled(1.0, 187.5, final=True)
    slow = OrderTrace("o-slow", strategy="momo", symbol="AAPL", side="buy", quantity=1.0)
    time.sleep(0.25)
    slow.filled(1.0, 187.5, final=True)
    with broker_call("alpaca", "/v2/orders") as call:
        time.sleep(0.25)
        call.response(201)
    shutdown_tracing()
"""
ALL = {"market_data.process ERR", "market_data.process SLOW", "order o-fast", "order o-slow",
       "broker.call"}  # fmt: skip
# An error anywhere; an order-path span in a trace slower than 100 ms. Not kept: the fast order,
# the slow trace off the order path.
KEPT_WITHOUT_BASELINE = {"market_data.process ERR", "order o-slow", "broker.call"}


@dataclass
class Jaeger:
    ports: dict[str, int]
    log: Path

    def url(self, port: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[port]}{path}"


def config(ports: dict[str, int]) -> dict[str, Any]:
    ingester = yaml.safe_load(INGESTER.read_text())
    processors = ingester["service"]["pipelines"]["traces"]["processors"]
    sampling = {**ingester["processors"]["tail_sampling"], "decision_wait": "1s"}
    loopback = {name: f"127.0.0.1:{port}" for name, port in ports.items()}
    return {
        "service": {
            "extensions": ["jaeger_storage", "jaeger_query", "healthcheckv2"],
            "pipelines": {"traces": {"receivers": ["otlp"], "processors": processors,
                                     "exporters": ["jaeger_storage_exporter"]}},
            "telemetry": {"metrics": {"level": "detailed", "readers": [{"pull": {"exporter": {
                "prometheus": {"host": "127.0.0.1", "port": ports["metrics"]}}}}]}},
        },
        "extensions": {
            "healthcheckv2": {"use_v2": True, "http": {"endpoint": loopback["health"]}},
            "jaeger_query": {"enable_tracing": False, "storage": {"traces": "memory"},
                             "http": {"endpoint": loopback["query"]},
                             "grpc": {"endpoint": loopback["query-grpc"]}},
            "jaeger_storage": {"backends": {"memory": {"memory": {"max_traces": 1000}}}},
        },
        "receivers": {"otlp": {"protocols": {"http": {"endpoint": loopback["otlp"]}}}},
        "processors": {**ingester["processors"], "tail_sampling": sampling},
        "exporters": {"jaeger_storage_exporter": {"trace_storage": "memory"}},
    }  # fmt: skip


@pytest.fixture(scope="module", params=["0", "100"], ids=["baseline-0", "baseline-100"])
def jaeger(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Jaeger]:
    state = tmp_path_factory.mktemp("tail-sampling")
    ports = {name: free_port() for name in PORTS}
    path = state / "config.yaml"
    path.write_text(yaml.safe_dump(config(ports)))
    log = state / "jaeger.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [pinned_binary("jaeger"), "--config", str(path)],
            env={"PATH": "/usr/bin:/bin", "JAEGER_TAIL_SAMPLING_PERCENT": request.param},
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=state,
        )  # fmt: skip
    try:
        _wait_healthy(process, f"http://127.0.0.1:{ports['health']}/status", log)
        yield Jaeger(ports, log)
    finally:
        stop(process)


def _wait_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jaeger exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"jaeger not healthy within 60 s:\n{log.read_text()[-4000:]}")


def _counter(jaeger: Jaeger, family: str) -> float:
    text = httpx.get(jaeger.url("metrics", "/metrics"), timeout=5).text
    return sum(
        sample.value
        for metric in text_string_to_metric_families(text) if metric.name == family
        for sample in metric.samples if sample.name.endswith("_total")
    )  # fmt: skip


def _stored(jaeger: Jaeger) -> set[str]:
    """Each stored trace as its root span's name and order id or symbol."""
    response = httpx.get(jaeger.url("query", "/api/traces"),
                         params={"service": "it-tail-sampling", "limit": "100"}, timeout=5)  # fmt: skip
    if response.status_code == 404:  # the service is not known until a span is stored
        return set()
    response.raise_for_status()
    stored = set()
    for trace in response.json()["data"] or []:
        (root,) = [span for span in trace["spans"] if not span["references"]]
        tags = {tag["key"]: tag["value"] for tag in root["tags"]}
        key = tags.get("trading.order.id") or tags.get("trading.symbol")
        stored.add(f"{root['operationName']} {key}" if key else root["operationName"])
    return stored


def _send_and_wait_for_every_decision(jaeger: Jaeger) -> None:
    before = _counter(jaeger, "otelcol_processor_tail_sampling_global_count_traces_sampled")
    subprocess.run([sys.executable, "-c", textwrap.dedent(TRACES), jaeger.url("otlp", "/v1/traces")],
                   check=True, timeout=60, stdin=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 30
    while _counter(
        jaeger, "otelcol_processor_tail_sampling_global_count_traces_sampled"
    ) < before + len(ALL):
        if time.monotonic() > deadline:
            pytest.fail(
                f"no decision on all {len(ALL)} traces in 30 s:\n{jaeger.log.read_text()[-4000:]}"
            )
        time.sleep(0.25)


def test_errors_and_slow_order_path_traces_are_kept_and_the_baseline_decides_the_rest(
    jaeger: Jaeger, request: pytest.FixtureRequest
) -> None:
    _send_and_wait_for_every_decision(jaeger)
    expected = ALL if "baseline-100" in request.node.callspec.id else KEPT_WITHOUT_BASELINE
    deadline = time.monotonic() + 30
    while not expected <= (stored := _stored(jaeger)) and time.monotonic() < deadline:
        time.sleep(0.25)  # decided, then batched and exported to storage
    assert stored == expected
    # The conditions were evaluated, not skipped: error_mode ignore would hide a failing one.
    assert _counter(jaeger, "otelcol_processor_tail_sampling_sampling_policy_evaluation_error") == 0
