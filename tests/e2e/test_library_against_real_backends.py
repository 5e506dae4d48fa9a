"""watchfloor.logging against a real Logstash beats input; watchfloor.tracing against Jaeger v2."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
import uuid

from testcontainers.core.container import DockerContainer
from testcontainers.core.wait_strategies import HttpWaitStrategy, LogMessageWaitStrategy

from tests.e2e.conftest import JAEGER_IMAGE, LOGSTASH_IMAGE
from watchfloor.logging import configure_logging, shutdown_logging

PIPELINE = "input { beats { port => 5044 } } output { stdout { codec => json_lines } }"


def test_log_events_reach_a_real_logstash_beats_input(tmp_path):
    marker = uuid.uuid4().hex
    logstash = (
        DockerContainer(LOGSTASH_IMAGE)
        .with_env("XPACK_MONITORING_ENABLED", "false")
        .with_env("LS_JAVA_OPTS", "-Xms256m -Xmx256m")
        .with_command(["logstash", "-e", PIPELINE])
        .with_exposed_ports(5044)
        .waiting_for(
            LogMessageWaitStrategy("Starting server on port: 5044").with_startup_timeout(180)
        )
    )
    with logstash:
        configure_logging(
            "e2e-logstash",
            stream=None,
            logstash_host=logstash.get_container_host_ip(),
            logstash_port=int(logstash.get_exposed_port(5044)),
            spool_dir=str(tmp_path),
        )
        for index in range(100):
            logging.getLogger("e2e").info("order filled", extra={"marker": marker, "n": index})
        shutdown_logging(timeout=60)
        deadline = time.monotonic() + 60
        received: set[int] = set()
        while len(received) < 100 and time.monotonic() < deadline:
            stdout, _ = logstash.get_logs()
            for line in stdout.decode(errors="replace").splitlines():
                if marker in line:
                    received.add(json.loads(line)["n"])
            time.sleep(1)
    assert received == set(range(100))


def test_spans_reach_jaeger_v2_over_otlp_http():
    from watchfloor.tracing import configure_tracing, shutdown_tracing, traced

    jaeger = (
        DockerContainer(JAEGER_IMAGE)
        .with_exposed_ports(4318, 16686)
        .waiting_for(HttpWaitStrategy(16686, "/").with_startup_timeout(120))
    )
    service = f"e2e-{uuid.uuid4().hex[:8]}"
    with jaeger:
        host = jaeger.get_container_host_ip()
        configure_tracing(service, endpoint=f"http://{host}:{jaeger.get_exposed_port(4318)}")
        with traced("order.submit", **{"trading.symbol": "AAPL"}):
            pass
        shutdown_tracing(timeout=10)
        url = f"http://{host}:{jaeger.get_exposed_port(16686)}/api/traces?service={service}"
        deadline = time.monotonic() + 60
        spans: list[dict] = []
        while not spans and time.monotonic() < deadline:
            with urllib.request.urlopen(url, timeout=5) as response:
                spans = [s for t in json.load(response).get("data", []) for s in t["spans"]]
            time.sleep(1)
    assert [s["operationName"] for s in spans] == ["order.submit"]
