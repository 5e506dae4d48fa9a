"""The whole Compose stack, brought up the way `make up` does, then used the way users use it.

Docker hosts with Compose v2 only (tests/e2e/conftest.py skips the suite elsewhere). The stack
runs as its own Compose project with every host port moved by 20000, beside a developer's own
`make up` stack without touching it; `down --volumes` removes it afterwards.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from testcontainers.compose import DockerCompose

from tests.e2e.conftest import COMPOSE_FILE, REPO
from watchfloor.stack.compose_file import load, memory_bytes
from watchfloor.stack.dotenv import ensure_env, parse

PORT_OFFSET = 20000
PROJECT = "watchfloor-e2e"


class Stack:
    def __init__(self, compose: DockerCompose, env: dict[str, str]) -> None:
        self.compose = compose
        self.env = env

    def url(self, port_variable: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.env[port_variable]}{path}"

    def auth(self, user: str = "elastic") -> tuple[str, str]:
        passwords = {"elastic": "ELASTIC_PASSWORD", "admin": "GRAFANA_ADMIN_PASSWORD"}
        return (user, self.env[passwords[user]])


def _eventually(what: str, check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(2)
    raise AssertionError(f"{what} within {timeout:.0f} s; last: {last!r}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env_file = tmp_path_factory.mktemp("stack") / ".env"
    ensure_env(REPO / ".env.example", env_file)  # what `make up` does first
    env = parse(env_file.read_text())
    for name in [n for n in env if n.endswith("_PORT") and env[n].isdigit()]:
        env[name] = str(int(env[name]) + PORT_OFFSET)
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    previous = os.environ.get("COMPOSE_PROJECT_NAME")
    os.environ["COMPOSE_PROJECT_NAME"] = PROJECT  # beats the file's `name:`
    compose = DockerCompose(REPO, compose_file_name=COMPOSE_FILE.name, build=True, wait=True,
                            env_file=str(env_file))  # fmt: skip
    try:
        compose.start()
        base = compose.compose_command_property
        subprocess.run([*base, "run", "--rm", "kibana-setup"], cwd=REPO, check=True, timeout=600)
        yield Stack(compose, env)
    finally:
        subprocess.run([*compose.compose_command_property, "--profile", "setup", "down",
                        "--volumes", "--remove-orphans"], cwd=REPO, check=False, timeout=300)  # fmt: skip
        if previous is None:
            os.environ.pop("COMPOSE_PROJECT_NAME", None)
        else:
            os.environ["COMPOSE_PROJECT_NAME"] = previous


def test_our_resolution_of_the_compose_file_matches_docker_compose(stack: Stack):
    result = subprocess.run([*stack.compose.compose_command_property, "config", "--format",
                             "json"], cwd=REPO, capture_output=True, text=True, check=True)  # fmt: skip
    theirs = json.loads(result.stdout)["services"]
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

    hits = _eventually(
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
    traces = _eventually("the span in Jaeger", lambda: httpx.get(url).json()["data"], 60)
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

        assert _eventually(f"datasource {datasource['uid']} healthy", healthy, 60)
    dashboards = httpx.get(f"{url}/api/search", params={"type": "dash-db"}, auth=auth).json()
    assert len(dashboards) == 7


def test_every_prometheus_target_is_up(stack: Stack):
    url = stack.url("PROMETHEUS_PORT", "/api/v1/targets")

    def all_up() -> bool:
        targets = httpx.get(url).json()["data"]["activeTargets"]
        down = [(t["labels"]["job"], t["lastError"]) for t in targets if t["health"] != "up"]
        if down:
            raise ValueError(down)
        return len(targets) == 11

    assert _eventually("every Prometheus target up", all_up, 120)


def test_alertmanager_has_the_watchdog(stack: Stack):
    url = stack.url("ALERTMANAGER_PORT", "/api/v2/alerts")
    alerts = _eventually(
        "Watchdog in Alertmanager",
        lambda: [a for a in httpx.get(url).json() if a["labels"]["alertname"] == "Watchdog"],
        120,
    )
    assert alerts[0]["status"]["state"] == "active"
