"""What only the scale profile has (docker-compose.scale.yml, docs/scale-profile.md): the parts
agree with each other and with the single-node stack they extend.

The checks every Compose profile passes (schema, pins, healthchecks, limits, secrets, ports,
volumes, promtool, amtool, jaeger validate) run on it through the `profile` parameter of
tests/static/conftest.py; the e2e suite starts it on Docker hosts (tests/e2e/test_scale_profile.py).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose_merge import PROFILES, SCALE_FILE, load_profile
from tests.static.conftest import REPO
from watchfloor_stack.compose.compose_file import long_running, memory_budget

PROMETHEUS = REPO / "infrastructure" / "prometheus"
JAEGER = REPO / "infrastructure" / "jaeger"
DOC = REPO / "docs" / "scale-profile.md"
MAKEFILE = (REPO / "Makefile").read_text()
DROP_REPLICA = [{"action": "labeldrop", "regex": "replica"}]


@pytest.fixture(scope="module")
def scale(env: dict[str, str]) -> dict[str, Any]:
    return load_profile(PROFILES["scale"], env)


def _running(compose: dict[str, Any], image: str) -> dict[str, dict[str, Any]]:
    return {
        name: service for name, service in long_running(compose).items()
        if service["image"].rsplit(":", 1)[0].endswith(image)
    }  # fmt: skip


def _flags(command: list[str], name: str) -> list[str]:
    return [arg.split("=", 1)[1] for arg in command if arg.lstrip("-").startswith(f"{name}=")]


def _aliases(service: dict[str, Any]) -> set[str]:
    networks = service.get("networks")
    spec = networks.get("watchfloor") if isinstance(networks, dict) else None
    return set((spec or {}).get("aliases", []))


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_the_pair_runs_the_single_node_config_plus_replica_alerting_and_remote_write() -> None:
    base, pair = (
        _yaml(PROMETHEUS / "prometheus.yml"),
        _yaml(PROMETHEUS / "scale" / "prometheus.yml"),
    )
    assert set(pair) == set(base) | {"remote_write"}
    labels = pair["global"]["external_labels"]
    assert labels.pop("replica") == "${PROMETHEUS_REPLICA}"
    assert pair["global"] == base["global"] and pair["rule_files"] == base["rule_files"]
    # Every single-node job, unchanged but for extra target files of the scale profile.
    jobs = {job["job_name"]: job for job in pair["scrape_configs"]}
    for job in base["scrape_configs"]:
        scaled = jobs.pop(job["job_name"])
        _same_but_scale_targets(job, scaled)
    assert set(jobs) == {"victoriametrics"}
    # Alerts: every Alertmanager, one alert whichever replica sent it.
    assert pair["alerting"]["alert_relabel_configs"] == DROP_REPLICA
    _same_but_scale_targets(
        base["alerting"]["alertmanagers"][0], pair["alerting"]["alertmanagers"][0]
    )
    # Samples: the VictoriaMetrics cluster, deduplicated there.
    (remote,) = pair["remote_write"]
    assert remote["url"] == "http://vminsert:8480/insert/0/prometheus/api/v1/write"
    assert remote["write_relabel_configs"] == DROP_REPLICA


def _same_but_scale_targets(base: dict[str, Any], scaled: dict[str, Any]) -> None:
    """`scaled` is `base`, its one file_sd list extended by files of scale/targets only."""
    (files,) = [c["files"] for c in scaled.pop("file_sd_configs")]
    (base_files,) = [c["files"] for c in base["file_sd_configs"]]
    assert scaled == {k: v for k, v in base.items() if k != "file_sd_configs"}, (
        "infrastructure/prometheus/scale/prometheus.yml lags ../prometheus.yml: copy the change"
    )
    assert files[: len(base_files)] == base_files
    for extra in files[len(base_files) :]:
        assert extra.startswith("scale-targets/")
        assert (PROMETHEUS / "scale" / "targets" / extra.removeprefix("scale-targets/")).exists()


def test_the_two_replicas_differ_in_their_replica_label_and_data_volume_only(
    scale: dict[str, Any],
) -> None:
    pair = _running(scale, "prom/prometheus")
    assert set(pair) == {"prometheus", "prometheus-b"}
    a, b = pair["prometheus"], pair["prometheus-b"]
    assert {a["environment"]["PROMETHEUS_REPLICA"], b["environment"]["PROMETHEUS_REPLICA"]} == {
        "a",
        "b",
    }
    assert a["command"] == b["command"] and a["secrets"] == b["secrets"]
    assert a["configs"] == b["configs"] and a["mem_limit"] == b["mem_limit"]
    binds = [sorted(v for v in s["volumes"] if v.startswith("./")) for s in (a, b)]
    assert binds[0] == binds[1]
    assert (
        "./infrastructure/prometheus/scale/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in binds[0]
    )
    data = [{v.split(":")[0] for v in s["volumes"] if not v.startswith("./")} for s in (a, b)]
    assert len(data[0]) == len(data[1]) == 1 and data[0] != data[1]


def test_every_alertmanager_gossips_with_every_other_and_every_replica_alerts_all(
    scale: dict[str, Any],
) -> None:
    managers = _running(scale, "prom/alertmanager")
    assert len(managers) == 3
    for name, service in managers.items():
        (listen,) = _flags(service["command"], "cluster.listen-address")
        assert listen.endswith(":9094"), name  # empty would turn the cluster off
        assert set(_flags(service["command"], "cluster.peer")) == {f"{n}:9094" for n in managers}
    files = ["targets/compose/alertmanager.yml", "scale/targets/alertmanager.yml"]
    targets = {t for f in files for group in _yaml(PROMETHEUS / f) for t in group["targets"]}
    assert targets == {f"{name}:9093" for name in managers}


def test_victoriametrics_replicates_to_two_storage_nodes_and_deduplicates_the_pair(
    scale: dict[str, Any], env: dict[str, str]
) -> None:
    storage = _running(scale, "victoriametrics/vmstorage")
    (insert,) = _running(scale, "victoriametrics/vminsert").values()
    (select,) = _running(scale, "victoriametrics/vmselect").values()
    assert len(storage) >= 2
    (nodes,) = _flags(insert["command"], "storageNode")
    assert nodes.split(",") == [f"{name}:8400" for name in storage]
    (nodes,) = _flags(select["command"], "storageNode")
    assert nodes.split(",") == [f"{name}:8401" for name in storage]
    # Each sample on two nodes: one may be lost; vmselect may answer with one node down.
    for component in (insert, select):
        assert _flags(component["command"], "replicationFactor") == ["2"]
    # One sample per series and scrape interval: the replicas' copies and the replicated ones.
    interval = _yaml(PROMETHEUS / "scale" / "prometheus.yml")["global"]["scrape_interval"]
    for component in (select, *storage.values()):
        assert _flags(component["command"], "dedup.minScrapeInterval") == [interval]
    for service in storage.values():
        assert _flags(service["command"], "retentionPeriod") == [
            env["VICTORIAMETRICS_RETENTION_PERIOD"]
        ]
        assert _flags(service["command"], "storageDataPath") == ["/storage"]
        assert any(v.endswith(":/storage") for v in service["volumes"])
    for service in (insert, select, *storage.values()):
        assert "ports" not in service  # inside the network only, as the exporters


def test_three_elasticsearch_nodes_with_transport_tls_from_the_certificate_job(
    scale: dict[str, Any],
) -> None:
    nodes = _running(scale, "elasticsearch/elasticsearch")
    names = {service: node["environment"]["node.name"] for service, node in nodes.items()}
    assert len(nodes) == 3 and names["elasticsearch"] == "elasticsearch"
    job = scale["services"]["elasticsearch-certs"]
    script = job["command"][-1]
    issued = set(re.findall(r"\{name: ([\w-]+),", script))
    assert issued == set(names.values())  # one certificate per node
    assert "chown -R 1000:0 config/certs" in script  # the image's elasticsearch user
    certs = "elasticsearch-certs:/usr/share/elasticsearch/config/certs"
    assert f"{certs}" in job["volumes"]
    # A node's own name: the one no other node answers to (`elasticsearch` they all do).
    held = {service: {service} | _aliases(node) for service, node in nodes.items()}
    own = {
        service: next(iter(names_ - set().union(*(held[o] for o in nodes if o != service))))
        for service, names_ in held.items()
    }
    for service, node in nodes.items():
        settings, name = node["environment"], names[service]
        assert settings.get("discovery.type", "multi-node") == "multi-node", service
        assert settings["cluster.initial_master_nodes"].split(",") == sorted(names.values())
        assert settings["xpack.security.transport.ssl.enabled"] == "true"
        assert settings["xpack.security.transport.ssl.key"] == f"certs/{name}/{name}.key"
        assert settings["xpack.security.transport.ssl.certificate"] == f"certs/{name}/{name}.crt"
        assert settings["xpack.security.transport.ssl.certificate_authorities"] == "certs/ca/ca.crt"
        # Clients keep plain HTTP inside the network, as in the single-node stack.
        assert settings.get("xpack.security.http.ssl.enabled", "false") == "false"
        assert f"{certs}:ro" in node["volumes"], service
        condition = node["depends_on"]["elasticsearch-certs"]["condition"]
        assert condition == "service_completed_successfully", service
        # Seeds: the other nodes, each by its own name.
        seeds = set(settings["discovery.seed_hosts"].split(","))
        assert seeds == {own[other] for other in nodes if other != service}, service
    # `elasticsearch` reaches every node (clients spread and survive one loss); the first node
    # keeps a name of its own.
    assert all("elasticsearch" in _aliases(nodes[s]) for s in nodes if s != "elasticsearch")
    assert _aliases(nodes["elasticsearch"]) == {"elasticsearch-1"}


def test_every_index_gets_one_replica_which_three_nodes_can_assign(scale: dict[str, Any]) -> None:
    nodes = _running(scale, "elasticsearch/elasticsearch")
    replicas = int(scale["services"]["setup"]["environment"]["WATCHFLOOR_INDEX_REPLICAS"])
    assert 1 <= replicas <= len(nodes) - 1
    settings = _yaml(
        REPO / "provisioning" / "elasticsearch" / "component_templates" / "watchfloor-settings.json"
    )
    assert "number_of_replicas" in settings["template"]["settings"]["index"]  # what setup overrides


def test_two_logstash_nodes_each_read_by_its_own_exporter(scale: dict[str, Any]) -> None:
    nodes = _running(scale, "logstash/logstash")
    assert set(nodes) == {"logstash", "logstash-2"}
    first, second = nodes["logstash"], nodes["logstash-2"]
    binds = [sorted(v for v in n["volumes"] if v.startswith("./")) for n in (first, second)]
    assert binds[0] == binds[1]  # one pipeline, one configuration
    assert first["environment"] == second["environment"]
    assert "logstash" in _aliases(second) and _aliases(first) == {"logstash-1"}
    exporters = _running(scale, "kuskoman/logstash-exporter")
    urls = {s["environment"]["LOGSTASH_URL"] for s in exporters.values()}
    assert urls == {"http://logstash-1:9600", "http://logstash-2:9600"}


def test_the_collector_writes_kafka_partitioned_by_trace_and_the_ingester_reads_it(
    scale: dict[str, Any],
) -> None:
    collector, ingester = _yaml(JAEGER / "collector.yaml"), _yaml(JAEGER / "ingester.yaml")
    assert collector["service"]["pipelines"]["traces"]["exporters"] == ["kafka"]
    pipeline = ingester["service"]["pipelines"]["traces"]
    assert pipeline["receivers"] == ["kafka"]
    assert pipeline["processors"][0] == "tail_sampling"  # whole traces, before batching
    assert pipeline["exporters"] == ["jaeger_storage_exporter"]
    producer, consumer = collector["exporters"]["kafka"], ingester["receivers"]["kafka"]
    assert producer["brokers"] == consumer["brokers"]
    assert producer["traces"] == consumer["traces"]  # topic and encoding
    assert producer["partition_traces_by_id"] is True
    kafka = scale["services"]["kafka"]["environment"]
    (advertised,) = re.findall(r"PLAINTEXT://([\w-]+:\d+)", kafka["KAFKA_ADVERTISED_LISTENERS"])
    assert producer["brokers"] == [advertised] and advertised.startswith("kafka:")
    assert int(kafka["KAFKA_NUM_PARTITIONS"]) > 1  # room for more than one ingester
    for name in ("jaeger", "jaeger-ingester"):
        assert scale["services"][name]["depends_on"]["kafka"]["condition"] == "service_healthy"
    # The broker's heap is not the healthcheck client's.
    check = scale["services"]["kafka"]["healthcheck"]["test"][-1]
    assert check.startswith("KAFKA_HEAP_OPTS=-Xmx64m ")


def test_tail_sampling_keeps_errors_slow_order_path_traces_and_a_set_share_of_the_rest(
    scale: dict[str, Any], env: dict[str, str]
) -> None:
    policies = {
        p["name"]: p
        for p in _yaml(JAEGER / "ingester.yaml")["processors"]["tail_sampling"]["policies"]
    }
    assert policies["errors"]["status_code"] == {"status_codes": ["ERROR"]}
    slow = {p["type"]: p for p in policies["slow-order-path"]["and"]["and_sub_policy"]}
    assert set(slow) == {"ottl_condition", "latency"}
    assert any(
        '"order"' in condition for condition in slow["ottl_condition"]["ottl_condition"]["span"]
    )
    # The threshold is the order latency objective of the SLO rules (the le bucket, seconds).
    slo = (PROMETHEUS / "rules" / "slo.yml").read_text()
    buckets = set(
        re.findall(r'trading_order_execution_duration_seconds_bucket\{le="([\d.]+)"\}', slo)
    )
    (bucket,) = buckets
    assert slow["latency"]["latency"]["threshold_ms"] == round(float(bucket) * 1000)
    share = policies["baseline"]["probabilistic"]["sampling_percentage"]
    assert share == "${env:JAEGER_TAIL_SAMPLING_PERCENT:-10}"
    ingester = scale["services"]["jaeger-ingester"]["environment"]
    assert ingester["JAEGER_TAIL_SAMPLING_PERCENT"] == env["JAEGER_TAIL_SAMPLING_PERCENT"]


def test_make_up_scale_runs_the_profile_as_its_own_project() -> None:
    project = re.search(r"^SCALE_PROJECT := (\S+)$", MAKEFILE, re.MULTILINE)
    assert project and yaml.safe_load(SCALE_FILE.read_text())["name"] == project[1]
    scale_compose = re.search(
        r"^COMPOSE_SCALE := (.+?)(?<!\\)$", MAKEFILE, re.MULTILINE | re.DOTALL
    )
    assert (
        scale_compose
        and "-f docker-compose.monitoring.yml -f docker-compose.scale.yml" in scale_compose[1]
    )
    for target in ("up-scale", "down-scale"):
        recipe = MAKEFILE.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert "$(COMPOSE_SCALE)" in recipe
    assert "--profile setup down" in MAKEFILE.split("\ndown-scale:", 1)[1].split("\n\n", 1)[0]


def test_the_doc_lists_every_service_with_its_memory_limit(scale: dict[str, Any]) -> None:
    rows = dict(
        re.findall(r"^\| `([\w-]+)` +\| ([\d.]+ ?[MG]iB) +\|", DOC.read_text(), re.MULTILINE)
    )
    services = long_running(scale)
    assert set(rows) == set(services)
    for name, service in services.items():
        limit = service["mem_limit"]
        number, unit = re.fullmatch(r"(\d+)([mg])", limit).groups()  # type: ignore[union-attr]
        assert rows[name].replace(" ", "") == f"{number}{unit.upper()}iB", name
    assert f"{memory_budget(scale) / 1024**3:.1f} GiB" in DOC.read_text()
