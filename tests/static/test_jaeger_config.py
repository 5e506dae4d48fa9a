"""infrastructure/jaeger/*.yaml against the Jaeger release Compose pins: config.yaml (the
single-node stack, local mode), collector.yaml and ingester.yaml (the scale profile).

`jaeger validate` decodes the config into the components' structs (unknown or misspelled keys
fail) and runs their Validate methods; it starts nothing, so it needs no Elasticsearch.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.binaries import pinned_binary
from watchfloor_stack.localmode.jaeger_config import DEFAULT_PORTS, render_config, render_jaeger

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "infrastructure" / "jaeger" / "config.yaml"
CONFIGS = sorted((REPO / "infrastructure" / "jaeger").glob("*.yaml"))


def validate(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [pinned_binary("jaeger"), "validate", "--config", str(config)],
        env={**os.environ, "JAEGER_WRITER_PASSWORD": "static-test-dummy"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_the_binary_is_the_release_compose_pins(compose: dict[str, Any]) -> None:
    release = compose["services"]["jaeger"]["image"].rpartition(":")[2]
    result = subprocess.run(
        [pinned_binary("jaeger"), "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    assert result.stdout.split()[-1] == f"v{release}", result.stdout


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_the_compose_config_validates(config: Path) -> None:
    result = validate(config)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("config", CONFIGS, ids=lambda path: path.name)
def test_validate_rejects_a_misspelled_key(config: Path, tmp_path: Path) -> None:
    # Proves the check above bites: a typo in the storage config is an error, not ignored.
    broken = tmp_path / config.name
    broken.write_text(config.read_text().replace("create_mappings:", "create_mapping:"))
    result = validate(broken)
    assert result.returncode != 0
    assert "invalid keys: create_mapping" in result.stderr


def test_the_local_mode_config_validates(tmp_path: Path) -> None:
    result = validate(render_jaeger(tmp_path, dict(DEFAULT_PORTS)))
    assert result.returncode == 0, result.stderr


def test_compose_mounts_the_config_and_checks_the_v2_status_path(
    raw_compose: dict[str, Any],
) -> None:
    jaegers = {n: s for n, s in raw_compose["services"].items() if "jaegertracing/" in s["image"]}
    assert "jaeger" in jaegers
    for name, service in jaegers.items():
        assert service["command"] == ["--config", "/etc/jaeger/config.yaml"], name
        (mounted,) = [v for v in service["volumes"] if ":/etc/jaeger/config.yaml:" in v]
        source = REPO / mounted.split(":")[0]
        assert source in CONFIGS, name  # one of the files validated above
        health = yaml.safe_load(source.read_text())["extensions"]["healthcheckv2"]
        assert health["use_v2"] is True  # v2 serves /status (the legacy extension serves /)
        port = health["http"]["endpoint"].rpartition(":")[2]
        assert f"http://localhost:{port}/status" in " ".join(service["healthcheck"]["test"]), name


def test_local_mode_swaps_only_the_storage_and_binds_every_listener_to_loopback() -> None:
    original = yaml.safe_load(CONFIG.read_text())
    ports = {name: 40000 + index for index, name in enumerate(DEFAULT_PORTS)}
    local = render_config(original, ports)
    extensions = local["extensions"]
    assert extensions["jaeger_storage"] == {
        "backends": {"memory": {"memory": {"max_traces": 100000}}}
    }
    assert extensions["jaeger_query"]["storage"] == {"traces": "memory"}
    assert local["exporters"]["jaeger_storage_exporter"]["trace_storage"] == "memory"
    assert extensions["jaeger_query"]["http"]["endpoint"] == f"127.0.0.1:{ports['jaeger']}"
    assert extensions["jaeger_query"]["grpc"]["endpoint"] == (
        f"127.0.0.1:{ports['jaeger-query-grpc']}"
    )
    assert extensions["healthcheckv2"]["http"]["endpoint"] == (
        f"127.0.0.1:{ports['jaeger-health']}"
    )
    protocols = local["receivers"]["otlp"]["protocols"]
    assert protocols["grpc"]["endpoint"] == f"127.0.0.1:{ports['jaeger-otlp-grpc']}"
    assert protocols["http"]["endpoint"] == f"127.0.0.1:{ports['jaeger-otlp-http']}"
    reader = local["service"]["telemetry"]["metrics"]["readers"][0]["pull"]["exporter"]
    assert reader["prometheus"] == {"host": "127.0.0.1", "port": ports["jaeger-metrics"]}
    # Everything else is the repo's.
    assert local["service"]["pipelines"] == original["service"]["pipelines"]
    assert local["service"]["extensions"] == original["service"]["extensions"]
    assert local["processors"] == original["processors"]
    assert local["service"]["telemetry"]["logs"] == original["service"]["telemetry"]["logs"]
    assert original["extensions"]["jaeger_storage"]["backends"].keys() == {"elasticsearch"}


def test_local_mode_refuses_a_listener_it_cannot_bind_to_loopback() -> None:
    original = yaml.safe_load(CONFIG.read_text())
    original["receivers"]["zipkin"] = {"endpoint": "0.0.0.0:9411"}
    with pytest.raises(ValueError, match=r"receivers\.zipkin\.endpoint"):
        render_config(original, dict(DEFAULT_PORTS))


def test_jaeger_does_not_trace_its_own_queries() -> None:
    # On by default in v2, exporting to localhost:4317 (itself): query traces in Elasticsearch,
    # a 10 s export timeout on every stop, and in local mode traffic to whatever owns :4317.
    query = yaml.safe_load(CONFIG.read_text())["extensions"]["jaeger_query"]
    assert query["enable_tracing"] is False
