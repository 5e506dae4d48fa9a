"""docker-compose.monitoring.yml: valid compose-spec, and every service held to the same rules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.static.conftest import COMPOSE_FILE, ENV_EXAMPLE, REPO
from watchfloor_stack.compose.compose_file import (
    InterpolationError,
    load,
    long_running,
    memory_budget,
    memory_bytes,
    variables,
)
from watchfloor_stack.compose.dotenv import GENERATED, parse

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
# The one long-running service without a Compose healthcheck, and why.
NO_HEALTHCHECK = {
    "logstash-exporter": "its image is FROM scratch: no shell or HTTP client to run a check; "
    'Prometheus\' up{job="logstash"} and the TargetDown alert watch it'
}
BIND = "${WATCHFLOOR_BIND_ADDRESS:-127.0.0.1}:"
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|_KEY)$")
GIB = 1024**3


def _schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_compose_file_validates_against_the_compose_spec_schema(tmp_path: Path):
    result = _schema_check(COMPOSE_FILE)
    assert result.returncode == 0, result.stdout + result.stderr
    # The same validator refuses a misspelt key, so the pass above means something.
    broken = tmp_path / "compose.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("    restart: unless-stopped\n",
                                                       "    restrat: unless-stopped\n", 1))  # fmt: skip
    assert _schema_check(broken).returncode != 0


def test_no_version_key_one_network_named_volumes(raw_compose: dict[str, Any]):
    assert "version" not in raw_compose
    assert list(raw_compose["networks"]) == ["watchfloor"]
    declared = set(raw_compose["volumes"])
    used = set()
    for name, service in raw_compose["services"].items():
        assert service.get("networks") == ["watchfloor"], name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("./", "/")):
                used.add(source)
    assert used == declared


def test_every_long_running_service_is_pinned_healthchecked_restarted_limited_rotated(
    compose: dict[str, Any], raw_compose: dict[str, Any]
):
    # Pinned in the file itself: no variable can move an image to another tag (or `latest`).
    for name, service in raw_compose["services"].items():
        assert "$" not in service["image"], f"{name}: {service['image']}"
    services = long_running(compose)
    assert len(services) == 16
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and "/" in repository, f"{name}: {image}"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: tag {tag} is not a release"
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service
        else:
            test = service["healthcheck"]["test"]
            assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
        assert service["restart"] == "unless-stopped", name
        assert memory_bytes(service["mem_limit"]) > 0, name
        assert service["logging"]["driver"] == "json-file", name
        assert service["logging"]["options"]["max-size"], name


def test_one_shot_jobs_end_and_are_awaited(compose: dict[str, Any]):
    """`up --wait` fails on a one-shot job nothing waits for; those live in the setup profile."""
    one_shots = {n for n, s in compose["services"].items() if s.get("restart") == "no"}
    assert one_shots == {"setup", "kibana-setup", "alertmanager-config"}
    awaited = {
        dependency
        for service in long_running(compose).values()
        for dependency, spec in service.get("depends_on", {}).items()
        if spec["condition"] == "service_completed_successfully"
    }
    for name in one_shots - awaited:
        assert compose["services"][name].get("profiles") == ["setup"], name
    makefile = (REPO / "Makefile").read_text()
    assert "run --rm kibana-setup" in makefile


def test_the_users_services_wait_for_the_setup_job_that_creates_their_users(
    compose: dict[str, Any],
):
    for name in ("logstash", "kibana", "jaeger", "grafana", "elasticsearch-exporter"):
        condition = compose["services"][name]["depends_on"]["setup"]["condition"]
        assert condition == "service_completed_successfully", name
    assert compose["services"]["setup"]["depends_on"]["elasticsearch"]["condition"] == (
        "service_healthy"
    )
    assert compose["services"]["kibana-setup"]["depends_on"]["kibana"]["condition"] == (
        "service_healthy"
    )
    assert compose["services"]["alertmanager"]["depends_on"]["alertmanager-config"] == {
        "condition": "service_completed_successfully",
        "restart": True,
    }


def test_every_bind_mounted_path_exists(compose: dict[str, Any]):
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"


def test_every_variable_is_in_env_example_and_every_setting_is_used(raw_compose: dict[str, Any]):
    # ${VAR} interpolation, and secrets/configs that Compose creates from a variable's value.
    sourced = [*raw_compose.get("secrets", {}).values(), *raw_compose.get("configs", {}).values()]
    used = variables(COMPOSE_FILE.read_text()) | {
        s["environment"] for s in sourced if "environment" in s
    }
    documented = set(parse(ENV_EXAMPLE.read_text()))
    assert used - documented == set(), "used by Compose, missing from .env.example"
    assert documented - used == set(), "in .env.example, used nowhere"


def test_no_literal_secret_anywhere_and_secrets_are_required(raw_compose: dict[str, Any]):
    for name, service in raw_compose["services"].items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]+|:-)?\}", str(value)), f"{name}.{key}"
    for key, value in parse(ENV_EXAMPLE.read_text()).items():
        if SECRET_NAME.search(key):
            assert value in {GENERATED, ""}, f".env.example holds a value for {key}"
    # Compose refuses to start without a generated secret instead of running with an empty one.
    with pytest.raises(InterpolationError, match="ELASTIC_PASSWORD"):
        load(COMPOSE_FILE, {})


def test_every_published_port_binds_to_the_configured_address(raw_compose: dict[str, Any]):
    published = 0
    for name, service in raw_compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith(BIND), f"{name}: {port}"
            published += 1
    assert published == 15
    assert parse(ENV_EXAMPLE.read_text())["WATCHFLOOR_BIND_ADDRESS"] == "127.0.0.1"


def test_java_and_node_heaps_fit_their_containers(compose: dict[str, Any]):
    es = compose["services"]["elasticsearch"]
    heap = re.search(r"-Xmx(\w+)", es["environment"]["ES_JAVA_OPTS"])
    assert heap and memory_bytes(heap[1]) * 2 <= memory_bytes(es["mem_limit"])
    logstash = compose["services"]["logstash"]
    heap = re.search(r"-Xmx(\w+)", logstash["environment"]["LS_JAVA_OPTS"])
    assert heap and memory_bytes(heap[1]) * 2 <= memory_bytes(logstash["mem_limit"])
    kibana = compose["services"]["kibana"]
    node = int(kibana["environment"]["NODE_OPTIONS"].split("=")[1]) * 1024**2
    assert node < memory_bytes(kibana["mem_limit"])
    assert memory_bytes(es["memswap_limit"]) == memory_bytes(es["mem_limit"])  # no swap


def test_the_documented_memory_budget_is_the_files_and_fits_a_16_gb_box(compose: dict[str, Any]):
    budget = memory_budget(compose) / GIB
    text = f"{budget:.1f} GiB"
    assert budget + 2 <= 16 * 10**9 / GIB  # room for the engine, page cache and the OS
    for document in (COMPOSE_FILE, ENV_EXAMPLE, REPO / "README.md"):
        assert text in document.read_text(), f"{document.name} does not state the {text} budget"


def test_elastic_images_share_one_version(compose: dict[str, Any]):
    versions = {
        compose["services"][n]["image"].rsplit(":", 1)[1]
        for n in ("elasticsearch", "logstash", "kibana")
    }
    assert len(versions) == 1
