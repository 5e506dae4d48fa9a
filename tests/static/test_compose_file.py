"""The Compose files: valid compose-spec, and every service of each profile held to the same rules."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.compose_merge import PROFILES, SCALE_FILE, load_profile, raw_profile
from tests.static.conftest import COMPOSE_FILE, ENV_EXAMPLE, REPO
from watchfloor_stack.compose.compose_file import (
    InterpolationError,
    long_running,
    memory_budget,
    memory_bytes,
    variables,
)
from watchfloor_stack.compose.dotenv import GENERATED, parse

CHECK_JSONSCHEMA = Path(sys.executable).with_name("check-jsonschema")
# The long-running services without a Compose healthcheck, and why.
_SCRATCH = (
    "its image is FROM scratch: no shell or HTTP client to run a check; "
    'Prometheus\' up{job="logstash"} and the TargetDown alert watch it'
)
NO_HEALTHCHECK = {"logstash-exporter": _SCRATCH, "logstash-exporter-2": _SCRATCH}
# What differs between the profiles: how many long-running services, which one-shot jobs, where
# the memory budget is written down and the host it is sized for.
LONG_RUNNING = {"base": 16, "scale": 30}
ONE_SHOTS = {
    "base": {"setup", "kibana-setup", "alertmanager-config"},
    "scale": {"setup", "kibana-setup", "alertmanager-config", "elasticsearch-certs"},
}
BUDGET_DOCUMENTS = {
    "base": (COMPOSE_FILE, ENV_EXAMPLE, REPO / "README.md"),
    "scale": (SCALE_FILE, REPO / "docs" / "scale-profile.md"),
}
HOST_GB = {"base": 16, "scale": 32}
# Release tags; VictoriaMetrics publishes its cluster components as vX.Y.Z-cluster.
RELEASE_TAG = re.compile(r"v?\d+\.\d+\.\d+")
CLUSTER_TAG = re.compile(r"v\d+\.\d+\.\d+-cluster")
BIND = "${WATCHFLOOR_BIND_ADDRESS:-127.0.0.1}:"
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|_KEY)$")
GIB = 1024**3


def _schema_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_compose_files_validate_against_the_compose_spec_schema(
    tmp_path: Path, profile: str, raw_compose: dict[str, Any]
):
    # Compose validates each file, then the model they merge to.
    merged = tmp_path / "merged.yml"
    merged.write_text(yaml.safe_dump(raw_compose, sort_keys=False))
    for path in (*PROFILES[profile], merged):
        result = _schema_check(path)
        assert result.returncode == 0, f"{path.name}: {result.stdout + result.stderr}"
    # The same validator refuses a misspelt key, so the pass above means something.
    broken = tmp_path / "compose.yml"
    broken.write_text(PROFILES[profile][-1].read_text().replace("    restart: unless-stopped\n",
                                                                "    restrat: unless-stopped\n", 1))  # fmt: skip
    assert _schema_check(broken).returncode != 0


def test_no_version_key_one_network_named_volumes(raw_compose: dict[str, Any]):
    assert "version" not in raw_compose
    assert list(raw_compose["networks"]) == ["watchfloor"]
    declared = set(raw_compose["volumes"])
    used = set()
    for name, service in raw_compose["services"].items():
        # A list, or a mapping when the service has aliases there: the one network either way.
        assert list(service.get("networks") or []) == ["watchfloor"], name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith(("./", "/")):
                used.add(source)
    assert used == declared


def test_every_long_running_service_is_pinned_healthchecked_restarted_limited_rotated(
    compose: dict[str, Any], raw_compose: dict[str, Any], profile: str
):
    # Pinned in the file itself: no variable can move an image to another tag (or `latest`).
    for name, service in raw_compose["services"].items():
        assert "$" not in service["image"], f"{name}: {service['image']}"
    services = long_running(compose)
    assert len(services) == LONG_RUNNING[profile]
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest" and "/" in repository, f"{name}: {image}"
        release = CLUSTER_TAG if repository.startswith("victoriametrics/") else RELEASE_TAG
        assert release.fullmatch(tag), f"{name}: tag {tag} is not a release"
        if name in NO_HEALTHCHECK:
            assert "healthcheck" not in service
        else:
            test = service["healthcheck"]["test"]
            assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1, name
        assert service["restart"] == "unless-stopped", name
        assert memory_bytes(service["mem_limit"]) > 0, name
        assert service["logging"]["driver"] == "json-file", name
        assert service["logging"]["options"]["max-size"], name


def test_one_shot_jobs_end_and_are_awaited(compose: dict[str, Any], profile: str):
    """`up --wait` fails on a one-shot job nothing waits for; those live in the setup profile."""
    one_shots = {n for n, s in compose["services"].items() if s.get("restart") == "no"}
    assert one_shots == ONE_SHOTS[profile]
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
    compose: dict[str, Any], profile: str
):
    users = ["logstash", "kibana", "jaeger", "grafana", "elasticsearch-exporter"]
    if profile == "scale":
        users += ["logstash-2", "jaeger-ingester"]
    for name in users:
        condition = compose["services"][name]["depends_on"]["setup"]["condition"]
        assert condition == "service_completed_successfully", name
    # Setup writes templates and users once every Elasticsearch node is up.
    nodes = [n for n, s in long_running(compose).items() if "/elasticsearch/" in s["image"]]
    for node in nodes:
        assert compose["services"]["setup"]["depends_on"][node]["condition"] == "service_healthy"
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


def _used_variables(files: tuple[Path, ...]) -> set[str]:
    """${VAR} interpolation, and secrets/configs that Compose creates from a variable's value."""
    raw = raw_profile(files)
    sourced = [*raw.get("secrets", {}).values(), *raw.get("configs", {}).values()]
    return set().union(*(variables(path.read_text()) for path in files)) | {
        s["environment"] for s in sourced if "environment" in s
    }


def test_every_variable_is_in_env_example_and_every_setting_is_used(profile: str):
    documented = set(parse(ENV_EXAMPLE.read_text()))
    used = _used_variables(PROFILES[profile])
    assert used - documented == set(), "used by Compose, missing from .env.example"
    # One .env serves both profiles: a setting may be the scale profile's alone.
    anywhere = set().union(*(_used_variables(files) for files in PROFILES.values()))
    assert documented - anywhere == set(), "in .env.example, used nowhere"


def test_no_literal_secret_anywhere_and_secrets_are_required(
    raw_compose: dict[str, Any], profile: str
):
    for name, service in raw_compose["services"].items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+(:\?[^}]+|:-)?\}", str(value)), f"{name}.{key}"
    for key, value in parse(ENV_EXAMPLE.read_text()).items():
        if SECRET_NAME.search(key):
            assert value in {GENERATED, ""}, f".env.example holds a value for {key}"
    # Compose refuses to start without a generated secret instead of running with an empty one.
    with pytest.raises(InterpolationError, match="ELASTIC_PASSWORD"):
        load_profile(PROFILES[profile], {})


def test_every_published_port_binds_to_the_configured_address(raw_compose: dict[str, Any]):
    published = 0
    for name, service in raw_compose["services"].items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith(BIND), f"{name}: {port}"
            published += 1
    assert published == 15
    assert parse(ENV_EXAMPLE.read_text())["WATCHFLOOR_BIND_ADDRESS"] == "127.0.0.1"


def test_java_and_node_heaps_fit_their_containers(compose: dict[str, Any]):
    # Every JVM (each Elasticsearch and Logstash node, Kafka) at most half its container.
    heaps = {"ES_JAVA_OPTS", "LS_JAVA_OPTS", "KAFKA_HEAP_OPTS"}
    jvms = 0
    for name, service in long_running(compose).items():
        for variable in heaps & set(service.get("environment") or {}):
            heap = re.search(r"-Xmx(\w+)", service["environment"][variable])
            assert heap and memory_bytes(heap[1]) * 2 <= memory_bytes(service["mem_limit"]), name
            jvms += 1
    images = [s["image"] for s in long_running(compose).values()]
    assert jvms == sum(
        "/elasticsearch/" in i or "/logstash/" in i or "/kafka:" in i for i in images
    )
    kibana = compose["services"]["kibana"]
    node = int(kibana["environment"]["NODE_OPTIONS"].split("=")[1]) * 1024**2
    assert node < memory_bytes(kibana["mem_limit"])


def test_the_documented_memory_budget_is_the_files_and_fits_its_host(
    compose: dict[str, Any], profile: str
):
    budget = memory_budget(compose) / GIB
    text = f"{budget:.1f} GiB"
    # Room for the engine, page cache and the OS: 16 GB for make up, 32 GB for make up-scale.
    assert budget + 2 <= HOST_GB[profile] * 10**9 / GIB
    for document in BUDGET_DOCUMENTS[profile]:
        assert text in document.read_text(), f"{document.name} does not state the {text} budget"


def test_elastic_images_share_one_version(compose: dict[str, Any]):
    versions = {
        service["image"].rsplit(":", 1)[1]
        for service in compose["services"].values()
        if service["image"].startswith("docker.elastic.co/")
    }
    assert len(versions) == 1
