"""The scale profile (`make up-scale`), started the way its Make target does, then checked part by
part: the Elasticsearch cluster and its TLS, replicas surviving a lost node, the Prometheus pair
deduplicated in VictoriaMetrics, the Alertmanager cluster, Jaeger through Kafka with tail
sampling, and our merge of the two files against `docker compose config`.

Docker hosts with Compose v2 and about 20 GiB for Docker only (tests/e2e/conftest.py skips the
suite elsewhere; WATCHFLOOR_REQUIRE_DOCKER=1 makes that a failure). It runs as its own project
with every host port moved by 21000, and `down --volumes` removes it afterwards.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.compose_merge import PROFILES, load_profile
from tests.e2e.conftest import compose_up, eventually, prepare_env
from tests.e2e.test_compose_stack import Stack
from watchfloor_stack.compose.compose_file import memory_bytes

PROJECT = "watchfloor-scale-e2e"
PORT_OFFSET = 21000
FILES = PROFILES["scale"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env_file = tmp_path_factory.mktemp("scale") / ".env"
    # What `make up-scale` does first. Tail sampling keeps only what its rules keep: a dropped
    # trace is dropped for certain.
    env = prepare_env(env_file, PORT_OFFSET, {"JAEGER_TAIL_SAMPLING_PERCENT": "0"})
    servers = ("prometheus", "prometheus-b", "alertmanager", "alertmanager-2", "alertmanager-3")
    with compose_up([p.name for p in FILES], env_file, PROJECT, hup=servers) as base:
        yield Stack(base, env, env_file)


def _es(stack: Stack, path: str, **kwargs: Any) -> Any:
    response = httpx.get(stack.url("ELASTICSEARCH_PORT", path), auth=stack.auth(), timeout=30,
                         **kwargs)  # fmt: skip
    response.raise_for_status()
    return response.json()


def _exec_get(stack: Stack, service: str, url: str) -> Any:
    """A GET from inside the network (the added services publish no port), as JSON."""
    out = stack.compose("exec", "-T", service, "wget", "-qO-", url, timeout=60).stdout
    return json.loads(out)


def test_our_merge_of_the_two_files_is_docker_composes(stack: Stack) -> None:
    theirs = json.loads(stack.compose("config", "--format", "json").stdout)["services"]
    ours = load_profile(FILES, stack.env)["services"]
    for name, service in ours.items():
        if "profiles" in service:
            continue
        assert theirs[name]["image"] == service["image"], name
        assert int(theirs[name]["mem_limit"]) == memory_bytes(service["mem_limit"]), name
        environment = set(service.get("environment") or {})
        assert set(theirs[name].get("environment") or {}) == environment, name
        targets = {v.split(":")[1] for v in service.get("volumes", [])}
        assert {v["target"] for v in theirs[name].get("volumes", [])} == targets, name
        if service.get("command") is not None:
            assert theirs[name]["command"] == service["command"], name
        networks = service["networks"]
        ours_aliases = (
            (networks["watchfloor"] or {}).get("aliases", []) if isinstance(networks, dict) else []
        )
        theirs_aliases = (theirs[name]["networks"]["watchfloor"] or {}).get("aliases", [])
        assert sorted(theirs_aliases) == sorted(ours_aliases), name


def test_three_nodes_form_a_green_cluster_over_tls_with_one_replica_per_index(stack: Stack) -> None:
    def green() -> dict[str, Any] | None:
        health: dict[str, Any] = _es(stack, "/_cluster/health")
        return health if health["status"] == "green" else None

    health = eventually("a green three-node cluster", green, 300)
    assert health["number_of_nodes"] == 3 and health["number_of_data_nodes"] == 3
    # Each node's transport uses the certificate the job issued for it.
    nodes = _es(stack, "/_nodes/settings")["nodes"].values()
    names = {node["name"] for node in nodes}
    assert names == {"elasticsearch", "elasticsearch-2", "elasticsearch-3"}
    for node in nodes:
        assert node["settings"]["xpack"]["security"]["transport"]["ssl"]["enabled"] == "true"
    # The node answering on the published port is the first: its certificate and the CA.
    certificates = {c["path"]: c for c in _es(stack, "/_ssl/certificates")}
    assert {"certs/ca/ca.crt", "certs/elasticsearch/elasticsearch.crt"} <= set(certificates)
    assert certificates["certs/elasticsearch/elasticsearch.crt"]["subject_dn"] == "CN=elasticsearch"
    settings = _es(stack, "/_component_template/watchfloor-settings")
    index = settings["component_templates"][0]["component_template"]["template"]["settings"]
    assert str(index["index"]["number_of_replicas"]) == "1"


def test_a_log_line_is_stored_twice_and_survives_the_loss_of_a_node(stack: Stack) -> None:
    marker = uuid.uuid4().hex
    document = {"message": "scale e2e", "marker": marker, "event": {"dataset": "watchfloor.logs"}}
    with socket.create_connection(("127.0.0.1", int(stack.env["LOGSTASH_TCP_PORT"])), 10) as tcp:
        tcp.sendall((json.dumps(document) + "\n").encode())

    def found() -> list[dict[str, Any]]:
        body = {"query": {"match": {"marker": marker}}}
        response = httpx.post(stack.url("ELASTICSEARCH_PORT", "/logs-watchfloor.*/_search"),
                              json=body, auth=stack.auth(), timeout=30)  # fmt: skip
        hits: list[dict[str, Any]] = response.json()["hits"]["hits"]
        return hits

    (hit,) = eventually("the log line in Elasticsearch", found, 60)
    (shards,) = _es(stack, f"/_cat/indices/{hit['_index']}", params={"format": "json"})
    assert shards["rep"] == "1" and shards["health"] == "green"
    stack.compose("stop", "elasticsearch-3")
    try:
        eventually("two nodes left",
                   lambda: _es(stack, "/_cluster/health")["number_of_nodes"] == 2, 120)  # fmt: skip
        assert _es(stack, "/_cluster/health")["status"] in {"green", "yellow"}  # never red
        assert found()[0]["_id"] == hit["_id"]
    finally:
        stack.compose("start", "elasticsearch-3")
    eventually("green again",
               lambda: _es(stack, "/_cluster/health")["status"] == "green", 300)  # fmt: skip


def test_every_prometheus_target_of_both_replicas_is_up(stack: Stack) -> None:
    url = stack.url("PROMETHEUS_PORT", "/api/v1/targets")

    def all_up() -> list[dict[str, Any]]:
        targets: list[dict[str, Any]] = httpx.get(url, auth=stack.basic_auth("prometheus")).json()[
            "data"]["activeTargets"]  # fmt: skip
        down = [(t["labels"]["job"], t["lastError"]) for t in targets if t["health"] != "up"]
        if down:
            raise ValueError(down)
        return targets

    targets = eventually("every Prometheus target up", all_up, 180)
    jobs = {t["labels"]["job"] for t in targets}
    assert {"victoriametrics", "alertmanager", "prometheus", "jaeger"} <= jobs
    instances = {t["labels"]["instance"] for t in targets}
    assert {
        "prometheus-b:9090",
        "alertmanager-3:9093",
        "jaeger-ingester:8888",
        "vmselect:8481",
    } <= instances


def test_victoriametrics_holds_one_deduplicated_series_without_the_replica_label(
    stack: Stack,
) -> None:
    query = "http://vmselect:8481/select/0/prometheus/api/v1/query?query="

    def series(promql: str) -> list[dict[str, Any]]:
        answer = _exec_get(stack, "prometheus", query + urllib.parse.quote(promql))
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    # Both replicas scrape both Prometheus targets; VictoriaMetrics keeps two series, not four.
    up = eventually("up{job='prometheus'} in VictoriaMetrics",
                    lambda: series('up{job="prometheus"}'), 180)  # fmt: skip
    assert len(up) == 2
    assert all("replica" not in s["metric"] for s in up)
    assert series('count(up{replica!=""})') == []


def test_the_alertmanager_cluster_has_three_peers_and_one_watchdog(stack: Stack) -> None:
    auth = stack.basic_auth("alertmanager")

    def clustered() -> dict[str, Any] | None:
        status: dict[str, Any] = httpx.get(
            stack.url("ALERTMANAGER_PORT", "/api/v2/status"), auth=auth
        ).json()
        return status if status["cluster"]["status"] == "ready" else None

    status = eventually("a ready cluster", clustered, 120)
    assert len(status["cluster"]["peers"]) == 3
    alerts = eventually(
        "the Watchdog",
        lambda: httpx.get(stack.url("ALERTMANAGER_PORT", "/api/v2/alerts"), auth=auth,
                          params={"filter": 'alertname="Watchdog"'}).json(), 180,
    )  # fmt: skip
    # Sent by both replicas to all three peers: one alert, no replica label.
    assert len(alerts) == 1 and "replica" not in alerts[0]["labels"]


# Run twice: first the order the sampler drops, then the two it keeps. Exported at shutdown, so
# the dropped one reaches the ingester first and is decided no later than the others.
TRACES = """
    import sys, time
    from watchfloor.tracing import OrderTrace, configure_tracing, shutdown_tracing
    configure_tracing(sys.argv[2], endpoint=sys.argv[1])
    if sys.argv[3] == "dropped":
        fast = OrderTrace("o-fast", strategy="momo", symbol="AAPL", side="buy", quantity=1.0)
        fast.filled(1.0, 187.5, final=True)
    else:
        slow = OrderTrace("o-slow", strategy="momo", symbol="AAPL", side="buy", quantity=1.0)
        time.sleep(0.3)
        slow.filled(1.0, 187.5, final=True)
        rejected = OrderTrace("o-rejected", strategy="momo", symbol="AAPL", side="buy", quantity=1.0)
        rejected.rejected("over the position limit")
    shutdown_tracing()
"""


def test_traces_go_through_kafka_and_tail_sampling_keeps_errors_and_slow_orders(
    stack: Stack,
) -> None:
    service = f"e2e-scale-{uuid.uuid4().hex[:8]}"
    endpoint = stack.url("JAEGER_OTLP_HTTP_PORT", "/v1/traces")
    for which in ("dropped", "kept"):
        subprocess.run([sys.executable, "-c", textwrap.dedent(TRACES), endpoint, service, which],
                       check=True, timeout=60)  # fmt: skip

    def stored() -> set[str]:
        response = httpx.get(stack.url("JAEGER_UI_PORT", "/api/traces"),
                             params={"service": service, "limit": "20"}, timeout=10)  # fmt: skip
        orders = set()
        for trace in response.json()["data"] or []:
            for span in trace["spans"]:
                tags = {tag["key"]: tag["value"] for tag in span["tags"]}
                orders.add(tags["trading.order.id"])
        return orders

    def both_kept() -> set[str] | None:
        orders = stored()
        return orders if {"o-rejected", "o-slow"} <= orders else None

    kept = eventually("the rejected and the slow order in Jaeger", both_kept, 120)
    assert kept == {"o-rejected", "o-slow"}  # the fast one was decided first, and dropped
    # A client JVM with its own small heap, as the healthcheck's, not the broker's 512 MiB.
    topics = stack.compose("exec", "-T", "-e", "KAFKA_HEAP_OPTS=-Xmx64m", "kafka",
                           "/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", "localhost:9092",
                           "--describe", "--topic", "jaeger-spans").stdout  # fmt: skip
    assert "PartitionCount: 6" in topics


def test_grafana_queries_victoriametrics_through_its_provisioned_datasource(stack: Stack) -> None:
    auth = (stack.env["GRAFANA_ADMIN_USER"], stack.env["GRAFANA_ADMIN_PASSWORD"])
    health = stack.url("GRAFANA_PORT", "/api/datasources/uid/victoriametrics/health")
    eventually("the VictoriaMetrics datasource healthy",
               lambda: httpx.get(health, auth=auth, timeout=30).json().get("status") == "OK",
               120)  # fmt: skip
    proxied = stack.url(
        "GRAFANA_PORT", "/api/datasources/proxy/uid/victoriametrics/api/v1/query?query=up"
    )
    result = eventually("up through Grafana's proxy to vmselect",
                        lambda: httpx.get(proxied, auth=auth, timeout=30).json()["data"]["result"],
                        180)  # fmt: skip
    assert all("replica" not in series["metric"] for series in result)
