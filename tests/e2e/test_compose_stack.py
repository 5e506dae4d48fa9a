"""The whole Compose stack, brought up the way `make up` does, then used the way users use it.

Docker hosts with Compose v2 only (tests/e2e/conftest.py skips the suite elsewhere). The stack
runs as its own Compose project with every host port moved by 20000, beside a developer's own
`make up` stack without touching it; `down --volumes` removes it afterwards. CI sets
WATCHFLOOR_E2E_STACK=running after its own `make up`: the suite then uses that stack (the
repository's .env, project `watchfloor`) and leaves it for `make down`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import COMPOSE_FILE, REPO, compose_up, eventually, prepare_env
from watchfloor_stack.compose.compose_file import load, memory_bytes
from watchfloor_stack.compose.dotenv import parse

PORT_OFFSET = 20000
PROJECT = "watchfloor-e2e"


SHARED_IMAGE = "watchfloor/python:0.1.0"


class Stack:
    def __init__(self, command: list[str], env: dict[str, str], env_file: Path) -> None:
        self.command = command  # `docker compose` with this stack's project, file and .env
        self.env = env
        self.env_file = env_file

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], cwd=REPO, capture_output=True, text=True,
                              check=True, timeout=timeout)  # fmt: skip

    def basic_auth(self, component: str) -> tuple[str, str]:
        """Prometheus', Alertmanager's and Pushgateway's login (README "Authentication")."""
        return ("watchfloor", self.env[f"{component.upper()}_PASSWORD"])

    def url(self, port_variable: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.env[port_variable]}{path}"

    def auth(self, user: str = "elastic") -> tuple[str, str]:
        passwords = {"elastic": "ELASTIC_PASSWORD", "admin": "GRAFANA_ADMIN_PASSWORD"}
        return (user, self.env[passwords[user]])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if os.environ.get("WATCHFLOOR_E2E_STACK") == "running":
        env_file = REPO / ".env"
        command = ["docker", "compose", "-f", str(COMPOSE_FILE), "--env-file", str(env_file)]
        yield Stack(command, parse(env_file.read_text()), env_file)
        return
    env_file = tmp_path_factory.mktemp("stack") / ".env"
    env = prepare_env(env_file, PORT_OFFSET)
    with compose_up([COMPOSE_FILE.name], env_file, PROJECT) as base:
        yield Stack(base, env, env_file)


def test_our_resolution_of_the_compose_file_matches_docker_compose(stack: Stack):
    theirs = json.loads(stack.compose("config", "--format", "json").stdout)["services"]
    ours = load(COMPOSE_FILE, stack.env)["services"]
    for name, service in ours.items():
        if "profiles" in service:
            continue
        assert theirs[name]["image"] == service["image"], name
        assert int(theirs[name]["mem_limit"]) == memory_bytes(service["mem_limit"]), name


def test_elasticsearch_is_healthy_secured_and_on_the_basic_license(stack: Stack):
    url = stack.url("ELASTICSEARCH_PORT")
    assert httpx.get(f"{url}/").status_code == 401
    health = httpx.get(f"{url}/_cluster/health", auth=stack.auth()).json()
    assert health["status"] in {"green", "yellow"}
    license_ = httpx.get(f"{url}/_license", auth=stack.auth()).json()["license"]
    assert license_["type"] == "basic"
    templates = httpx.get(f"{url}/_index_template/logs-watchfloor.*", auth=stack.auth()).json()
    assert len(templates["index_templates"]) == 5


def test_kibana_is_available_with_the_provisioned_data_views(stack: Stack):
    url = stack.url("KIBANA_PORT")
    status = httpx.get(f"{url}/api/status", auth=stack.auth()).json()
    assert status["status"]["overall"]["level"] == "available"
    ndjson = (REPO / "provisioning" / "kibana" / "saved_objects.ndjson").read_text()
    expected = {
        obj["id"] for obj in map(json.loads, ndjson.splitlines()) if obj["type"] == "index-pattern"
    }
    views = httpx.get(f"{url}/api/data_views", auth=stack.auth()).json()["data_view"]
    assert expected <= {view["id"] for view in views}


def test_a_log_line_from_watchfloor_logging_is_searchable_within_30_seconds(
    stack: Stack, tmp_path: Path
):
    from watchfloor.logging import configure_logging, shutdown_logging

    marker = uuid.uuid4().hex
    configure_logging("e2e-compose", stream=None, logstash_host="127.0.0.1",
                      logstash_port=int(stack.env["LOGSTASH_BEATS_PORT"]),
                      spool_dir=str(tmp_path))  # fmt: skip
    logging.getLogger("e2e").warning("order rejected", extra={"marker": marker})
    sent = time.monotonic()
    shutdown_logging(timeout=30)

    def found() -> list[dict[str, Any]]:
        response = httpx.post(
            stack.url("ELASTICSEARCH_PORT", "/logs-watchfloor.*/_search"),
            json={"query": {"match": {"marker": marker}}}, auth=stack.auth(),
        )  # fmt: skip
        hits: list[dict[str, Any]] = response.json()["hits"]["hits"]
        return hits

    hits = eventually(
        "the log line in Elasticsearch", found, timeout=30 - (time.monotonic() - sent)
    )
    assert hits[0]["_index"].startswith(".ds-logs-watchfloor.logs-default-")
    assert hits[0]["_id"] == hits[0]["_source"]["event"]["id"]


def test_a_span_from_watchfloor_tracing_is_in_jaegers_api(stack: Stack):
    from watchfloor.tracing import configure_tracing, shutdown_tracing, traced

    service = f"e2e-compose-{uuid.uuid4().hex[:8]}"
    configure_tracing(service, endpoint=stack.url("JAEGER_OTLP_HTTP_PORT", "/v1/traces"))
    with traced("order.submit"):
        pass
    shutdown_tracing(timeout=10)
    url = stack.url("JAEGER_UI_PORT", f"/api/traces?service={service}")
    traces = eventually("the span in Jaeger", lambda: httpx.get(url).json()["data"], 60)
    assert traces[0]["spans"][0]["operationName"] == "order.submit"


def test_every_grafana_datasource_reports_healthy(stack: Stack):
    url = stack.url("GRAFANA_PORT")
    auth = (stack.env["GRAFANA_ADMIN_USER"], stack.env["GRAFANA_ADMIN_PASSWORD"])
    assert httpx.get(f"{url}/api/datasources").status_code == 401  # no anonymous access
    datasources = httpx.get(f"{url}/api/datasources", auth=auth).json()
    assert {d["uid"] for d in datasources} == {"prometheus", "alertmanager",
                                               "elasticsearch-logs", "jaeger"}  # fmt: skip
    for datasource in datasources:
        health_url = f"{url}/api/datasources/uid/{datasource['uid']}/health"

        def healthy(health_url: str = health_url) -> bool:
            return httpx.get(health_url, auth=auth).json().get("status") == "OK"

        assert eventually(f"datasource {datasource['uid']} healthy", healthy, 60)
    dashboards = httpx.get(f"{url}/api/search", params={"type": "dash-db"}, auth=auth).json()
    assert len(dashboards) == 7


def test_every_prometheus_target_is_up(stack: Stack):
    url = stack.url("PROMETHEUS_PORT", "/api/v1/targets")

    def all_up() -> bool:
        targets = httpx.get(url, auth=stack.basic_auth("prometheus")).json()["data"][
            "activeTargets"
        ]
        down = [(t["labels"]["job"], t["lastError"]) for t in targets if t["health"] != "up"]
        if down:
            raise ValueError(down)
        return len(targets) == 12  # 11 jobs + cadvisor

    assert eventually("every Prometheus target up", all_up, 120)


def test_prometheus_alertmanager_and_pushgateway_refuse_anonymous_requests(stack: Stack):
    """The web configs Compose mounts are in force, and the healthchecks pass through them."""
    for port, path in (("PROMETHEUS_PORT", "/-/reload"), ("ALERTMANAGER_PORT", "/api/v2/silences"),
                       ("PUSHGATEWAY_PORT", "/metrics/job/intruder")):  # fmt: skip
        assert httpx.post(stack.url(port, path)).status_code == 401, port
    for service in ("prometheus", "alertmanager", "pushgateway"):
        assert "(healthy)" in stack.compose("ps", service).stdout, service


def test_alertmanager_has_the_watchdog(stack: Stack):
    url = stack.url("ALERTMANAGER_PORT", "/api/v2/alerts")
    alerts = eventually(
        "Watchdog in Alertmanager",
        lambda: [
            a
            for a in httpx.get(url, auth=stack.basic_auth("alertmanager")).json()
            if a["labels"]["alertname"] == "Watchdog"
        ],
        120,
    )
    assert alerts[0]["status"]["state"] == "active"


def _containers(stack: Stack) -> list[dict[str, Any]]:
    lines = stack.compose("ps", "--all", "--format", "json").stdout.splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def test_the_shared_image_is_built_once_and_every_service_runs_that_build(stack: Stack):
    """Defect 1: six `build:` sections on one tag raced in `buildx bake` on a clean machine."""
    config = json.loads(stack.compose("config", "--format", "json").stdout)["services"]
    builders = [name for name, service in config.items() if "build" in service]
    assert builders == ["setup"]
    users = {name for name, service in config.items() if service["image"] == SHARED_IMAGE}
    image_id = subprocess.run(["docker", "image", "inspect", "--format", "{{.Id}}", SHARED_IMAGE],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    running = [c for c in _containers(stack) if c["Service"] in users]
    assert {c["Service"] for c in running} >= users - {"kibana-setup"}
    for container in running:
        used = subprocess.run(["docker", "inspect", "--format", "{{.Image}}", container["ID"]],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        assert used == image_id, f"{container['Service']} runs {used}, not the build {image_id}"
    # A rebuild with nothing changed is a cache hit onto the same tag: the race cannot recur.
    stack.compose("build", "setup")


def test_every_container_started_on_this_engine(stack: Stack):
    """Defect 2 on a Linux engine: node-exporter's root mount and Elasticsearch's ulimits start."""
    states = {c["Service"]: (c["State"], c.get("Health", "")) for c in _containers(stack)}
    for service in ("node-exporter", "elasticsearch", "cadvisor"):
        assert states[service][0] == "running", (service, states[service])
        assert states[service][1] in {"healthy", ""}, (service, states[service])


def test_pushgateway_keeps_pushed_metrics_across_a_restart(stack: Stack):
    """Defect 3: the volume was root-owned, so `nobody` never wrote its persistence file."""
    url = stack.url("PUSHGATEWAY_PORT")
    auth = stack.basic_auth("pushgateway")
    marker = f"e2e_{uuid.uuid4().hex[:8]}"
    pushed = httpx.put(f"{url}/metrics/job/{marker}", content=f"{marker}_total 42\n", auth=auth)
    assert pushed.status_code == 200, pushed.text
    # Graceful stop: Pushgateway writes its persistence file on shutdown, then starts from it.
    stack.compose("restart", "pushgateway")
    eventually("Pushgateway ready after the restart",
                lambda: httpx.get(f"{url}/-/ready", auth=auth).status_code == 200, 60)  # fmt: skip
    assert f"{marker}_total 42" in httpx.get(f"{url}/metrics", auth=auth).text
    files = stack.compose("exec", "-T", "pushgateway", "ls", "-ln", "/pushgateway").stdout
    assert "pushgateway.db" in files and " 65534 " in files


def _alertmanager_config(stack: Stack) -> str:
    url = stack.url("ALERTMANAGER_PORT", "/api/v2/status")
    original: str = httpx.get(url, auth=stack.basic_auth("alertmanager")).json()["config"][
        "original"
    ]
    return original


def test_a_second_make_up_applies_a_changed_receiver(stack: Stack):
    """Defect 5: the re-rendered file was never loaded. Runs `make up`'s Compose steps again."""
    assert "slack_configs" not in _alertmanager_config(stack)
    before = stack.env_file.read_text()
    hook = "https://hooks.slack.com/services/T0000/B0000/e2e"
    try:
        stack.env_file.write_text(before.replace("WATCHFLOOR_SLACK_WEBHOOK_URL=\n",
                                                 f"WATCHFLOOR_SLACK_WEBHOOK_URL={hook}\n"))  # fmt: skip
        stack.compose("up", "-d", "--wait", "--wait-timeout", "300")
        stack.compose("kill", "--signal", "SIGHUP", "prometheus", "alertmanager")
        eventually("the Slack receiver in Alertmanager's running config",
                    lambda: "slack_configs" in _alertmanager_config(stack), 60)  # fmt: skip
    finally:
        stack.env_file.write_text(before)
        stack.compose("up", "-d", "--wait", "--wait-timeout", "300")


def test_a_mapping_rejection_raises_the_dead_letter_queue_alert(stack: Stack):
    """Defect 4: the alert watched 409 duplicates; a 400 goes to the dead-letter queue."""
    document = {"message": "e2e dlq", "event": {"dataset": "watchfloor.logs",
                                                "sequence": "not-a-number"}}  # fmt: skip
    with socket.create_connection(("127.0.0.1", int(stack.env["LOGSTASH_TCP_PORT"])), 10) as tcp:
        tcp.sendall((json.dumps(document) + "\n").encode())
    prometheus = stack.url("PROMETHEUS_PORT")
    auth = stack.basic_auth("prometheus")

    def dlq_bytes() -> float:
        result = httpx.get(f"{prometheus}/api/v1/query", auth=auth, params={
            "query": "sum(logstash_stats_pipeline_dead_letter_queue_size_in_bytes)"}).json()  # fmt: skip
        return float(result["data"]["result"][0]["value"][1])

    baseline = dlq_bytes()
    eventually("the refused event in the dead-letter queue", lambda: dlq_bytes() > baseline, 120)

    def rejected() -> list[dict[str, Any]]:
        alerts = httpx.get(f"{prometheus}/api/v1/alerts", auth=auth).json()["data"]["alerts"]
        return [a for a in alerts if a["labels"]["alertname"] == "LogstashEventsRejected"]

    assert eventually("LogstashEventsRejected in Prometheus", rejected, 120)


def test_cadvisor_reports_each_services_memory_against_its_limit(stack: Stack):
    prometheus = stack.url("PROMETHEUS_PORT", "/api/v1/query")
    query = ('container_spec_memory_limit_bytes{container_label_com_docker_compose_service='
             '"elasticsearch"}')  # fmt: skip

    def limit() -> float:
        result = httpx.get(prometheus, params={"query": query},
                           auth=stack.basic_auth("prometheus")).json()["data"]["result"]  # fmt: skip
        return float(result[0]["value"][1])

    expected = memory_bytes(load(COMPOSE_FILE, stack.env)["services"]["elasticsearch"]["mem_limit"])
    assert eventually("Elasticsearch's limit from cAdvisor", lambda: limit() == expected, 120)
