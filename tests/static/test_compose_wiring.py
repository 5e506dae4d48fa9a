"""The services agree with each other: users and roles, ports, Logstash routing, secrets passed."""

from __future__ import annotations

import fnmatch
import json
import logging
import re
from pathlib import Path
from typing import Any

import yaml

from tests.static.conftest import REPO
from watchfloor.logging import ecs
from watchfloor.logging.config import _DEFAULT_PORT
from watchfloor.logging.masking import Masker
from watchfloor_provisioning.elastic import ELASTICSEARCH, USERS

INFRA = REPO / "infrastructure"
PIPELINE = (INFRA / "logstash" / "pipeline" / "watchfloor.conf").read_text()
# Not scraped, and why. Elasticsearch, Logstash and Kibana are scraped through their exporters
# (Kibana: none exists for 9.x without the Elastic agent; its health is Compose's healthcheck; the
# one Elasticsearch exporter reads every node), trace-retention is an hourly sweep whose health is
# its heartbeat, and Kafka has no Prometheus endpoint (the Jaeger collector's and ingester's
# metrics show what goes through it).
UNSCRAPED = {
    "base": {"elasticsearch", "logstash", "kibana", "trace-retention"},
    "scale": {"elasticsearch", "elasticsearch-2", "elasticsearch-3", "logstash", "logstash-2",
              "kibana", "trace-retention", "kafka"},
}  # fmt: skip
# The Jaeger index replicas: none on one node (never assignable), one on three.
JAEGER_REPLICAS = {"base": 0, "scale": 1}


def _target_files(compose: dict[str, Any]) -> list[Path]:
    """The file_sd target files Prometheus mounts (targets/compose; the scale profile's too)."""
    return [
        path
        for volume in compose["services"]["prometheus"]["volumes"]
        if volume.split(":")[1].endswith("targets")
        for path in sorted((REPO / volume.split(":")[0]).glob("*.yml"))
    ]


def _role(name: str) -> dict[str, Any]:
    role: dict[str, Any] = json.loads((ELASTICSEARCH / "roles" / f"{name}.json").read_text())
    return role


def _mounted_files(service: dict[str, Any]) -> list[Path]:
    files = []
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if source.startswith("./"):
            path = REPO / source
            files += [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    return files


def _declared_ports(service: dict[str, Any]) -> set[int]:
    """Ports a service's own definition or mounted config says it listens on."""
    text = json.dumps({k: service.get(k) for k in ("ports", "healthcheck", "environment",
                                                     "command")})  # fmt: skip
    text += "".join(p.read_text() for p in _mounted_files(service) if p.suffix in {".yaml", ".yml"})
    ports = {int(p) for p in re.findall(r"(?<![\d.])(\d{4,5})(?![\d.])", text)}
    for port in service.get("ports", []):
        ports.add(int(port.rsplit(":", 1)[1]))
    return ports


def test_prometheus_compose_targets_name_services_on_the_ports_they_listen_on(
    compose: dict[str, Any],
):
    defaults = {"node-exporter": 9100}  # its default listen port, not repeated in its definition
    for path in _target_files(compose):
        for group in yaml.safe_load(path.read_text()):
            for target in group["targets"]:
                host, port = target.rsplit(":", 1)
                assert host in compose["services"], f"{path.name}: no service {host}"
                service = compose["services"][host]
                ports = _declared_ports(service) | {defaults.get(host, 0)}
                assert int(port) in ports, f"{path.name}: {host} does not listen on {port}"


def test_every_long_running_service_with_metrics_is_scraped(compose: dict[str, Any], profile: str):
    scraped = {
        target.rsplit(":", 1)[0]
        for path in _target_files(compose)
        for group in yaml.safe_load(path.read_text())
        for target in group["targets"]
    }
    running = {n for n, s in compose["services"].items() if s.get("restart") != "no"}
    assert running - scraped == UNSCRAPED[profile]


def test_logstash_listens_where_the_library_ships_and_routes_on_fields_it_emits(
    compose: dict[str, Any],
):
    beats = re.search(r"beats\s*\{[^}]*port\s*=>\s*(\d+)", PIPELINE)
    assert beats and int(beats[1]) == int(_DEFAULT_PORT) == 5044
    tcp = re.search(r"tcp\s*\{[^}]*port\s*=>\s*(\d+)[^}]*codec\s*=>\s*json_lines", PIPELINE)
    assert tcp
    published = {int(p.rsplit(":", 1)[1]) for p in compose["services"]["logstash"]["ports"]}
    assert {5044, int(tcp[1]), 9600} <= published
    routed = set(re.findall(r'"(watchfloor\.[a-z]+)"', PIPELINE.split("filter", 1)[1]))
    assert routed - {"watchfloor.system"} == set(ecs.DATASETS)
    # The fields the pipeline reads, in a document the library really produces.
    record = logging.LogRecord("orders", logging.INFO, __file__, 1, "filled", None, None)
    document = ecs.EcsDocumentBuilder("order-router", "dev", Masker()).build(record, "id-1", 1)
    for field in set(re.findall(r"\[event\]\[(\w+)\]", PIPELINE)):
        assert field in document["event"], f"the pipeline reads event.{field}, never emitted"


def test_logstash_writes_only_where_its_role_and_the_index_templates_allow(
    compose: dict[str, Any],
):
    user = re.search(r'user\s*=>\s*"([^"]+)"', PIPELINE)
    password = re.search(r'password\s*=>\s*"\$\{(\w+)\}"', PIPELINE)
    assert (
        user
        and password
        and USERS[user[1]]
        == (
            "watchfloor_logstash_writer",
            password[1],
        )
    )
    assert password[1] in compose["services"]["logstash"]["environment"]
    index = re.search(r'index\s*=>\s*"([^"]+)"', PIPELINE)
    assert index and index[1] == "logs-%{[data_stream][dataset]}-%{[data_stream][namespace]}"
    role = _role("watchfloor_logstash_writer")
    templates = [
        json.loads(p.read_text())["index_patterns"]
        for p in (ELASTICSEARCH / "index_templates").glob("*.json")
    ]
    for dataset in set(re.findall(r'"(watchfloor\.[a-z]+)"', PIPELINE)):
        stream = f"logs-{dataset}-default"
        grants = [
            entry["privileges"]
            for entry in role["indices"]
            if any(fnmatch.fnmatch(stream, pattern) for pattern in entry["names"])
        ]
        assert grants and "create_doc" in grants[0], stream
        assert any(fnmatch.fnmatch(stream, p) for patterns in templates for p in patterns), stream


def _jaeger_configs(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each Jaeger service's mounted config: `jaeger`, and in the scale profile its ingester."""
    configs = {}
    for name, service in compose["services"].items():
        if service["image"].startswith("jaegertracing/"):
            (path,) = [f for f in _mounted_files(service) if f.suffix == ".yaml"]
            configs[name] = yaml.safe_load(path.read_text())
    return configs


def test_jaeger_writes_with_its_own_user_into_indices_its_role_covers(
    compose: dict[str, Any], profile: str
):
    configs = _jaeger_configs(compose)
    role = _role("watchfloor_jaeger_writer")
    names = [n for entry in role["indices"] for n in entry["names"]]
    writers = 0
    for name, config in configs.items():
        backend = config["extensions"]["jaeger_storage"]["backends"]["elasticsearch"]
        backend = backend["elasticsearch"]
        basic = backend["auth"]["basic"]
        variable = re.fullmatch(r"\$\{env:(\w+)\}", basic["password"])
        assert variable and USERS[basic["username"]] == ("watchfloor_jaeger_writer", variable[1])
        assert variable[1] in compose["services"][name]["environment"], name
        assert backend["server_urls"] == ["http://elasticsearch:9200"], name
        prefix = backend.get("indices", {}).get("index_prefix", "")
        assert any(fnmatch.fnmatch(f"{prefix}jaeger-span-2026-11-24", n) for n in names)
        if backend["create_mappings"]:
            writers += 1
            assert "manage_index_templates" in role["cluster"]  # create_mappings: true
            # One node: a replica could never be assigned, and the cluster would stay yellow;
            # three: one replica of each index.
            kinds = ("spans", "services", "dependencies", "sampling")
            replicas = {backend["indices"][kind]["replicas"] for kind in kinds}
            assert replicas == {JAEGER_REPLICAS[profile]}, name
    assert writers == 1  # one service creates the templates and writes the indices
    # Applications send OTLP/HTTP to `jaeger` in both profiles.
    otlp = configs["jaeger"]["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert otlp.endswith(":4318")


def test_grafana_kibana_and_the_exporter_log_in_as_their_least_privilege_users(
    compose: dict[str, Any],
):
    services = compose["services"]
    grafana = services["grafana"]["environment"]
    assert USERS[grafana["GRAFANA_ELASTICSEARCH_USER"]][0] == "watchfloor_grafana_reader"
    datasources = (
        REPO / "provisioning" / "grafana" / "datasources" / "datasources.yml"
    ).read_text()
    body = "\n".join(line for line in datasources.splitlines() if not line.lstrip().startswith("#"))
    for variable in re.findall(r"(?<!\$)\$\{?([A-Z_]+)", body):
        assert variable in grafana, f"datasources.yml reads ${variable}, Grafana lacks it"
    assert services["elasticsearch-exporter"]["environment"]["ES_USERNAME"] in USERS
    kibana = yaml.safe_load((INFRA / "kibana" / "kibana.yml").read_text())
    assert kibana["elasticsearch.username"] == "kibana_system"
    text = (INFRA / "kibana" / "kibana.yml").read_text()
    for variable in re.findall(r"\$\{(\w+)\}", text):
        assert variable in services["kibana"]["environment"], variable
    assert "elastic\n" not in text and "ELASTIC_PASSWORD" not in text


def test_the_setup_jobs_get_every_password_the_setup_code_requires(compose: dict[str, Any]):
    setup = compose["services"]["setup"]["environment"]
    for _, variable in USERS.values():
        assert setup.get(variable), variable
    assert (
        setup["KIBANA_SYSTEM_PASSWORD"]
        == compose["services"]["kibana"]["environment"]["KIBANA_SYSTEM_PASSWORD"]
    )
    assert setup["WATCHFLOOR_PROVISIONING_DIR"] == "/provisioning"
    assert "./provisioning:/provisioning:ro" in compose["services"]["setup"]["volumes"]


def test_elasticsearch_runs_secured_on_the_basic_license():
    config = yaml.safe_load((INFRA / "elasticsearch" / "elasticsearch.yml").read_text())
    assert config["xpack.security.enabled"] is True
    assert config["xpack.license.self_generated.type"] == "basic"
    logstash = yaml.safe_load((INFRA / "logstash" / "config" / "logstash.yml").read_text())
    assert logstash["xpack.monitoring.enabled"] is False
    assert logstash["queue.type"] == "persisted" and logstash["dead_letter_queue.enable"] is True
    assert logstash["pipeline.ecs_compatibility"] == "v8"


def test_named_volumes_of_the_built_services_are_writable_by_their_users(compose: dict[str, Any]):
    """An empty volume takes the owner of the image directory it covers: the Dockerfile's."""
    dockerfile = (REPO / "exporters" / "Dockerfile").read_text()
    owners = {
        path: uid
        for uid, path in re.findall(r"install -d -o (\d+) -g \d+ -m \d+ (\S+)", dockerfile)
    }
    assert len(owners) == 2
    for name, service in compose["services"].items():
        if service["image"] != compose["services"]["setup"]["image"]:  # built from it
            continue
        user = str(service.get("user", "10001")).split(":")[0]
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if not source.startswith("./"):
                assert owners.get(target) == user, f"{name}: {target} not writable by {user}"
    hub = compose["services"]["alert-hub"]["environment"]["WATCHFLOOR_ALERTHUB_DB"]
    assert hub.startswith("/var/lib/watchfloor/")
