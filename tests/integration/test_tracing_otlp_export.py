"""configure_tracing's real OTLP/HTTP exporter against a local receiver decoding the protobuf.

Runs in a subprocess: configure_tracing installs the process-wide tracer provider, once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

pytestmark = pytest.mark.integration


class OtlpReceiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.paths: list[str] = []
        self.headers: list[dict[str, str]] = []


class _Handler(BaseHTTPRequestHandler):
    server: OtlpReceiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.server.requests.append(request)
        self.server.paths.append(self.path)
        self.server.headers.append({k.lower(): v for k, v in self.headers.items()})
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    server = OtlpReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


SERVICE = textwrap.dedent(
    """
    import sys
    from watchfloor.correlation import correlation_scope
    from watchfloor.tracing import OrderTrace, configure_tracing, shutdown_tracing, traced
    configure_tracing("otlp-test", endpoint=sys.argv[1], environment="ci")
    with correlation_scope("corr-otlp"), traced("strategy.evaluate", strategy="momo"):
        order = OrderTrace("o-1", strategy="momo", symbol="AAPL", side="buy", quantity=10)
        order.filled(10, 187.5, final=True)
    configure_tracing("otlp-test", endpoint=sys.argv[1], environment="ci", sample_ratio=0.0)
    with traced("dropped.by.sampler"):
        pass
    shutdown_tracing()
    """
)


def test_spans_arrive_over_otlp_http(receiver: OtlpReceiver):
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"
    subprocess.run([sys.executable, "-c", SERVICE, endpoint], check=True, timeout=60)
    assert set(receiver.paths) == {"/v1/traces"}
    spans = {}
    resources = []
    for request in receiver.requests:
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            resources.append(attrs)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    spans[span.name] = {a.key: a.value for a in span.attributes}
    assert set(spans) == {"strategy.evaluate", "order"}  # the sampler change took effect
    assert resources[0]["service.name"] == "otlp-test"
    assert resources[0]["deployment.environment.name"] == "ci"
    assert spans["order"]["trading.order.id"].string_value == "o-1"
    assert spans["order"]["correlation.id"].string_value == "corr-otlp"
    assert spans["strategy.evaluate"]["strategy"].string_value == "momo"


def test_a_bad_sample_ratio_is_refused_with_the_reason():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from watchfloor.tracing import configure_tracing as c; c('x', sample_ratio=2)",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "sample_ratio must be within 0..1" in result.stderr


def _run(script: str, *args: str, **env: str) -> None:
    """`script` in a fresh interpreter with only the given OTEL_*/WATCHFLOOR_* variables."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "WATCHFLOOR_"))}
    subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        env={**clean, **env},
        check=True,
        timeout=60,
    )


def _exported(receiver: OtlpReceiver) -> list[tuple[dict[str, str], str]]:
    """(resource attributes, span name) of every span received."""
    return [
        ({a.key: a.value.string_value for a in rs.resource.attributes}, span.name)
        for request in receiver.requests
        for rs in request.resource_spans
        for scope_spans in rs.scope_spans
        for span in scope_spans.spans
    ]


def test_the_otel_variables_alone_configure_the_export(receiver: OtlpReceiver):
    _run(
        """
        from watchfloor.tracing import configure_tracing, shutdown_tracing, traced
        configure_tracing()
        with traced("from.env"):
            pass
        shutdown_tracing()
        """,
        OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{receiver.server_address[1]}",
        OTEL_EXPORTER_OTLP_HEADERS="x-desk=rates,x-tenant=t%207",
        OTEL_EXPORTER_OTLP_TIMEOUT="5",
        OTEL_SERVICE_NAME="env-service",
        OTEL_RESOURCE_ATTRIBUTES="service.version=9.9.9,deployment.environment.name=prod",
        OTEL_TRACES_SAMPLER="always_on",
        OTEL_BSP_MAX_EXPORT_BATCH_SIZE="1",
    )
    ((resource, name),) = _exported(receiver)
    assert name == "from.env"
    assert resource["service.name"] == "env-service"
    assert resource["service.version"] == "9.9.9"
    assert resource["deployment.environment.name"] == "prod"
    assert receiver.paths == ["/v1/traces"]
    assert receiver.headers[0]["x-desk"] == "rates"
    assert receiver.headers[0]["x-tenant"] == "t 7"


CONFIGURED = """
    import sys
    from watchfloor.tracing import configure_tracing, shutdown_tracing, traced
    configure_tracing("switches", endpoint=sys.argv[1], service_version="1.2.3", {args})
    with traced("{name}"):
        pass
    shutdown_tracing()
"""


def test_always_off_disabled_and_explicit_arguments_winning(receiver: OtlpReceiver):
    endpoint = f"http://127.0.0.1:{receiver.server_address[1]}"

    def run(name: str, args: str, **env: str) -> None:
        _run(CONFIGURED.replace("{args}", args).replace("{name}", name), endpoint, **env)

    run("off", "", OTEL_TRACES_SAMPLER="always_off")
    run("ratio-zero", "", OTEL_TRACES_SAMPLER="traceidratio", OTEL_TRACES_SAMPLER_ARG="0")
    run("disabled", "sample_ratio=1.0", OTEL_SDK_DISABLED="true")
    run("explicit-wins", "sample_ratio=1.0", OTEL_TRACES_SAMPLER="always_off",
        OTEL_RESOURCE_ATTRIBUTES="service.version=0.0.1,service.name=other")  # fmt: skip
    ((resource, name),) = _exported(receiver)
    assert name == "explicit-wins"
    assert resource["service.name"] == "switches"
    assert resource["service.version"] == "1.2.3"
