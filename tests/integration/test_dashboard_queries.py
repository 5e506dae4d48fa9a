"""Every PromQL target of every dashboard, variables substituted, is valid and has data in local
mode (a real Prometheus fed by the simulators) — except the ones listed below, with the reason."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.integration.conftest import LocalStack

pytestmark = pytest.mark.integration

DASHBOARDS = sorted(
    (Path(__file__).resolve().parents[2] / "provisioning" / "grafana" / "dashboards").glob(
        "*/*.json"
    )
)
# Queries that can only have data on a Docker host: the components behind them are not obtainable here.
ONLY_ON_DOCKER_HOSTS = {
    "elasticsearch_": "Elasticsearch and its exporter run only in the Compose stack",
    "logstash_": "Logstash runs only in the Compose stack",
    "container_": "cAdvisor runs only in the Compose stack",
}


def _queries() -> list[tuple[str, str, str]]:
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text())
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                found.append((path.stem, panel["title"], target["expr"]))
    return found


def _substitute(expr: str) -> str:
    expr = expr.replace("$__rate_interval", "1m").replace("$__interval", "15s")
    return re.sub(r"\$\{?(\w+)\}?", ".*", expr)


def test_every_dashboard_query_has_data(local_stack: LocalStack):
    queries = _queries()
    expected = [(d, t, q) for d, t, q in queries if not any(k in q for k in ONLY_ON_DOCKER_HOSTS)]
    pending = list(expected)
    deadline = time.monotonic() + 120
    while pending and time.monotonic() < deadline:
        still = []
        for dashboard, title, expr in pending:
            response = local_stack.get(
                "prometheus", "/api/v1/query", params={"query": _substitute(expr)}
            )
            body = response.json()
            assert body["status"] == "success", f"{dashboard} / {title}: {body.get('error')}"
            if not body["data"]["result"]:
                still.append((dashboard, title, expr))
        pending = still
        if pending:
            time.sleep(2)
    print(f"{len(expected) - len(pending)}/{len(expected)} dashboard queries have data; "
          f"{len(queries) - len(expected)} only on Docker hosts ({', '.join(ONLY_ON_DOCKER_HOSTS.values())})")  # fmt: skip
    assert not pending, "no data for:\n" + "\n".join(f"{d} / {t}: {q}" for d, t, q in pending)


def test_docker_only_queries_are_still_valid_promql(local_stack: LocalStack):
    for dashboard, title, expr in _queries():
        if any(k in expr for k in ONLY_ON_DOCKER_HOSTS):
            response = local_stack.get(
                "prometheus", "/api/v1/query", params={"query": _substitute(expr)}
            )
            assert response.json()["status"] == "success", f"{dashboard} / {title}"
