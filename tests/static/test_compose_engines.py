"""The review's defects, held where no Docker engine runs: each test fails on the file as it was.

The upstream facts they encode (image users and directories, Compose's build and pull logic) are
cited next to each; tests/e2e/test_compose_stack.py checks the same on a Docker host.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.compose_merge import PROFILES, merge_all, raw_profile
from tests.static.conftest import REPO
from watchfloor_stack.compose.compose_file import long_running, memory_bytes

MAKEFILE = (REPO / "Makefile").read_text()
MEMORY_LOCK_FILE = REPO / "docker-compose.memory-lock.yml"
# What WATCHFLOOR_MEMORY_LOCK=1 adds to each profile's files (the scale profile: for its other nodes).
MEMORY_LOCK_FILES = {
    "base": (MEMORY_LOCK_FILE,),
    "scale": (MEMORY_LOCK_FILE, REPO / "docker-compose.scale.memory-lock.yml"),
}
# Elasticsearch's discovery: one node skips the production bootstrap checks, three enforce them.
DISCOVERY = {"base": "single-node", "scale": "multi-node"}
# The Make target that starts each profile.
UP_TARGET = {"base": "up", "scale": "up-scale"}
WATCHFLOOR_IMAGE = "watchfloor/python:0.1.0"

# Each non-root image's user and the directories its image creates owned by that user: an empty
# named volume mounted on one of them starts with that owner; mounted anywhere else it is
# root-owned and the user cannot write (Pushgateway's `/data` lost every push on restart).
IMAGE_USERS: dict[str, tuple[str, set[str]]] = {
    # Elastic's images run as uid 1000 and own /usr/share/<product> (data included).
    "docker.elastic.co/elasticsearch/elasticsearch": ("1000", {"/usr/share/elasticsearch/data"}),
    "docker.elastic.co/logstash/logstash": ("1000", {"/usr/share/logstash/data"}),
    # prometheus/prometheus Dockerfile: `chown -R nobody:nobody /etc/prometheus /prometheus`.
    "prom/prometheus": ("65534", {"/prometheus"}),
    # prometheus/alertmanager Dockerfile: `mkdir -p /alertmanager && chown -R nobody:nobody`.
    "prom/alertmanager": ("65534", {"/alertmanager"}),
    # prometheus/pushgateway Dockerfile: `mkdir -p /pushgateway && chown nobody:nobody`.
    "prom/pushgateway": ("65534", {"/pushgateway"}),
    # grafana/grafana Dockerfile: GF_UID 472 owns GF_PATHS_DATA=/var/lib/grafana.
    "grafana/grafana": ("472", {"/var/lib/grafana"}),
    # apache/kafka docker/jvm/Dockerfile: `adduser ... appuser` (Alpine's first uid, 1000) and
    # `chown appuser:root -R /var/lib/kafka`; USER appuser.
    "apache/kafka": ("1000", {"/var/lib/kafka/data"}),
    # VictoriaMetrics' images (deployment/docker/base/Dockerfile on Alpine) set no USER: root.
    "victoriametrics/vmstorage": ("0", set()),
}
# root (uid 0) writes wherever its volume is mounted.
ROOT = "0"


def _dockerfile_owned_dirs() -> dict[str, str]:
    """exporters/Dockerfile's `install -d -o UID ... DIR` lines: directory -> owner uid."""
    dockerfile = (REPO / "exporters" / "Dockerfile").read_text()
    found = re.findall(r"install -d -o (\d+) -g \d+ -m \d+ (\S+)", dockerfile)
    return {path: uid for uid, path in found}


def _users() -> dict[str, tuple[str, set[str]]]:
    owned = _dockerfile_owned_dirs()
    users = dict(IMAGE_USERS)
    for uid in set(owned.values()):
        users.setdefault(WATCHFLOOR_IMAGE.rsplit(":", 1)[0], ("10001", set()))
        users[f"{WATCHFLOOR_IMAGE.rsplit(':', 1)[0]}#{uid}"] = (
            uid,
            {path for path, owner in owned.items() if owner == uid},
        )
    return users


def _named_volumes(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    mounts = []
    for volume in service.get("volumes", []):
        source, target, *options = volume.split(":")
        if not source.startswith(("./", "/")):
            mounts.append((source, target, "ro" in options))
    return mounts


def test_the_shared_image_is_built_by_one_service_and_never_pulled_by_the_others(
    raw_compose: dict[str, Any], compose: dict[str, Any]
):
    """Compose's bake builder makes one target per service with `build:` and exports each onto
    its tag (docker/compose pkg/compose/build_bake.go, no de-duplication by image): six targets
    onto one tag fail with "image already exists". A service without `build:` and the default
    pull_policy would try Docker Hub for the tag (pkg/compose/pull.go mustPull)."""
    users = [n for n, s in compose["services"].items() if s["image"] == WATCHFLOOR_IMAGE]
    assert len(users) >= 6
    builders = [n for n in users if "build" in compose["services"][n]]
    assert builders == ["setup"], f"services that build {WATCHFLOOR_IMAGE}: {builders}"
    assert compose["services"]["setup"]["build"]["dockerfile"] == "exporters/Dockerfile"
    for name in users:
        if name not in builders:
            assert compose["services"][name]["pull_policy"] == "never", name
    # The builder runs on every `make up` (no profile), and `--build` rebuilds after a git pull.
    assert "profiles" not in compose["services"]["setup"]
    assert re.search(r"\$\(COMPOSE\) up -d --build ", MAKEFILE)
    # No other `build:` anywhere, so no second bake target can race for any tag.
    assert [n for n, s in raw_compose["services"].items() if "build" in s] == ["setup"]


def test_no_bind_mount_asks_for_propagation_docker_desktop_refuses(compose: dict[str, Any]):
    """`/:/host:ro,rslave` is refused by Docker Desktop and private-/ hosts: "path / is mounted on
    / but it is not a shared or slave mount" (prometheus/node_exporter #2742, #2002)."""
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            options = volume.split(":")[2:]
            flags = set(",".join(options).split(",")) if options else set()
            assert not flags & {"shared", "rshared", "slave", "rslave"}, f"{name}: {volume}"
    assert "/:/host:ro" in compose["services"]["node-exporter"]["volumes"]


def _elasticsearch_nodes(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service for name, service in long_running(compose).items()
        if service["image"].startswith("docker.elastic.co/elasticsearch/")
    }  # fmt: skip


def test_memory_locking_is_opt_in_and_swap_is_off_for_elasticsearch(
    compose: dict[str, Any], profile: str
):
    """Rootless Docker and Podman cannot raise RLIMIT_MEMLOCK, so `ulimits.memlock: -1` stops the
    container from starting there; with the lock off, no discovery mode enforces the check."""
    for name, service in compose["services"].items():
        assert "memlock" not in service.get("ulimits", {}), f"{name} raises the memlock ulimit"
    nodes = _elasticsearch_nodes(compose)
    assert len(nodes) == {"base": 1, "scale": 3}[profile]
    for name, es in nodes.items():
        assert es["environment"].get("discovery.type", DISCOVERY[profile]) == DISCOVERY[profile]
        # elasticsearch.yml asks for the lock; the environment (-E) overrides it unless opted in.
        assert es["environment"]["bootstrap.memory_lock"] == "false", name
        assert memory_bytes(es["memswap_limit"]) == memory_bytes(es["mem_limit"]), name
    # The opt-in: override files Make adds with WATCHFLOOR_MEMORY_LOCK=1, locking every node.
    raw = raw_profile(PROFILES[profile])
    locked = merge_all([raw, *(yaml.safe_load(p.read_text()) for p in MEMORY_LOCK_FILES[profile])])
    for name in nodes:
        service = locked["services"][name]
        assert service["ulimits"]["memlock"] == {"soft": -1, "hard": -1}, name
        assert service["environment"]["bootstrap.memory_lock"] == "true", name
    for path in MEMORY_LOCK_FILES[profile]:
        assert f"-f {path.name}" in MAKEFILE
    assert "WATCHFLOOR_MEMORY_LOCK" in MAKEFILE


def test_every_named_volume_is_writable_by_its_images_user(compose: dict[str, Any], profile: str):
    users = _users()
    writers: dict[str, str] = {}
    checked = 0
    for name, service in compose["services"].items():
        repository = service["image"].rsplit(":", 1)[0]
        if str(service.get("user", "")).split(":")[0] == ROOT:
            uid, owned = ROOT, set()
        elif repository == WATCHFLOOR_IMAGE.rsplit(":", 1)[0]:
            uid = str(service.get("user", "10001")).split(":")[0]
            owned = {
                path for key, (owner, paths) in users.items()
                if key.startswith(repository) and owner == uid for path in paths
            }  # fmt: skip
        elif repository in users:
            uid, owned = users[repository]
        else:
            assert not _named_volumes(service), f"{name}: add {repository}'s user to IMAGE_USERS"
            continue
        for source, target, read_only in _named_volumes(service):
            if read_only:
                continue
            assert uid == ROOT or target in owned, (
                f"{name}: volume {source} at {target}, which {repository} does not create for "
                f"uid {uid} (it does: {sorted(owned)}), so it is root-owned and not writable"
            )
            # A root job that hands its files over (`chown -R UID:GID`) writes them as UID.
            handed = re.search(r"chown -R (\d+):\d+ ", " ".join(service.get("command") or []))
            writers[source] = handed[1] if uid == ROOT and handed else uid
            checked += 1
    # A read-only mount reads what another service wrote (files 0600): the same user.
    for name, service in compose["services"].items():
        for source, _, read_only in _named_volumes(service):
            if read_only:
                uid = (
                    str(service.get("user", "")).split(":")[0]
                    or users[service["image"].rsplit(":", 1)[0]][0]
                )
                assert writers[source] == uid, f"{name} reads {source} written by {writers[source]}"
    assert checked == {"base": 8, "scale": 19}[profile]


def test_pushgateway_persists_inside_its_volume(compose: dict[str, Any]):
    pushgateway = compose["services"]["pushgateway"]
    flag = next(a for a in pushgateway["command"] if a.startswith("--persistence.file="))
    path = Path(flag.split("=", 1)[1])
    mounted = {target for _, target, _ in _named_volumes(pushgateway)}
    assert str(path.parent) in mounted


def _servers(compose: dict[str, Any], *repositories: str) -> list[str]:
    return [
        name for name, service in long_running(compose).items()
        if service["image"].rsplit(":", 1)[0] in repositories
    ]  # fmt: skip


def test_a_second_make_up_applies_re_rendered_and_mounted_configuration(
    compose: dict[str, Any], profile: str
):
    """Alertmanager reloads only on SIGHUP or POST /-/reload; re-rendering its file is not enough."""
    for name in _servers(compose, "prom/alertmanager"):
        assert compose["services"][name]["depends_on"]["alertmanager-config"] == {
            "condition": "service_completed_successfully", "restart": True,
        }, name  # fmt: skip
    # Compose recreates the job (and so restarts Alertmanager) when its environment changes:
    # every receiver setting of .env reaches it.
    job = compose["services"]["alertmanager-config"]["environment"]
    template = (REPO / "infrastructure" / "alertmanager" / "alertmanager.yml").read_text()
    renderer = (
        REPO / "libs" / "watchfloor_stack" / "localmode" / "alertmanager_config.py"
    ).read_text()
    used = set(re.findall(r"WATCHFLOOR_[A-Z_]+", template + renderer))
    assert used and used <= set(job), f"not passed to alertmanager-config: {used - set(job)}"
    # Template edits do not recreate the job: `make up` tells every server to re-read.
    up = MAKEFILE.split(f"\n{UP_TARGET[profile]}:", 1)[1].split("\n\n", 1)[0]
    start = up.index("up -d --build")
    reload = re.search(r"kill --signal SIGHUP ([a-z0-9 -]+)", up)
    assert reload and start < reload.start()
    servers = _servers(compose, "prom/prometheus", "prom/alertmanager")
    assert sorted(reload[1].split()) == sorted(servers)


def test_cadvisor_is_pinned_limited_healthchecked_and_scraped(compose: dict[str, Any]):
    config = _mounted(compose["services"]["prometheus"], "/etc/prometheus/prometheus.yml")
    cadvisor = compose["services"]["cadvisor"]
    # google/cadvisor publishes v0.53.0 and later on ghcr.io (README; publish-container.yml).
    assert re.fullmatch(r"ghcr\.io/google/cadvisor:v0\.\d+\.\d+", cadvisor["image"])
    assert cadvisor in long_running(compose).values()
    assert memory_bytes(cadvisor["mem_limit"]) <= 256 * 1024**2
    assert "/healthz" in " ".join(cadvisor["healthcheck"]["test"])
    assert "--housekeeping_interval=15s" in cadvisor["command"]
    # No container label or environment variable becomes a metric label (secrets live there).
    assert "--store_container_labels=false" in cadvisor["command"]
    assert not [a for a in cadvisor["command"] if a.startswith("--env_metadata_whitelist")]
    assert "ports" not in cadvisor  # scraped inside the network only
    prometheus = yaml.safe_load(config.read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    assert jobs["cadvisor"]["file_sd_configs"] == [{"files": ["targets/cadvisor.yml"]}]


def _mounted(service: dict[str, Any], target: str) -> Path:
    """The repository file a service bind-mounts at `target` (the last mount there wins)."""
    (source,) = [v.split(":")[0] for v in service["volumes"] if v.split(":")[1] == target]
    return REPO / source


def test_the_compose_files_and_the_memory_lock_overrides_merge_to_a_valid_file(
    compose: dict[str, Any], profile: str
):
    nodes = _elasticsearch_nodes(compose)
    for path in MEMORY_LOCK_FILES[profile]:
        override = yaml.safe_load(path.read_text())
        assert set(override) == {"services"} and set(override["services"]) <= set(nodes), path
        for name, service in override["services"].items():
            assert set(service) <= set(nodes[name]) | {"ulimits"}, name
    assert {name for p in MEMORY_LOCK_FILES[profile]
            for name in yaml.safe_load(p.read_text())["services"]} == set(nodes)  # fmt: skip
