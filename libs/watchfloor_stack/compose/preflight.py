"""What `make up` checks before starting Compose, each failure with the fix.

The failures peers' users hit most (docker-elk's issue tracker): no Compose v2, a Docker VM with
too little memory (Java killed with exit 137), vm.max_map_count too low for Elasticsearch, a port
already taken by something else, and a disk so full that Elasticsearch makes its indices read-only
(deviantony/docker-elk #219, elastic/start-local #19). Every check runs, so one `make up` lists
every problem.
"""

from __future__ import annotations

import errno
import json
import os
import platform
import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchfloor_stack.compose.compose_file import memory_budget

MAX_MAP_COUNT_MIN = 262144
COMPOSE_MIN = (2, 23, 1)  # inline `configs: content` (the web configs holding bcrypt hashes)
# Beyond the containers' limits: the engine, the page cache Elasticsearch relies on, the OS.
MEMORY_HEADROOM = 2 * 1024**3
# Elasticsearch's flood-stage watermark (its defaults): every index turns read-only once less than
# 5% of the disk is free, that 5% capped at 100 GiB (`flood_stage.max_headroom`) on large disks.
FLOOD_STAGE_FREE_RATIO = 0.05
FLOOD_STAGE_MAX_HEADROOM = 100 * 1024**3
# What the stack writes before it can delete anything: the images (Elasticsearch, Kibana and
# Logstash are over 1 GiB each, about 5 GiB in all) and the first day's logs, metrics and traces.
STACK_FOOTPRINT = 6 * 1024**3
LOCAL_MODE = (
    "without Docker, `make local-up` runs the metrics and alerting half (Prometheus, "
    "Alertmanager, Pushgateway, node-exporter, Jaeger, the exporters, the alert hub) on 127.0.0.1"
)


@dataclass(frozen=True)
class Problem:
    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}\n    fix: {self.fix}"


def check_docker(docker: str = "docker") -> tuple[list[Problem], dict[str, Any]]:
    """Docker reachable and Compose v2 present; returns the engine's `docker info`."""
    if shutil.which(docker) is None:
        install = "install Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/"
        return [Problem("docker is not installed (or not on PATH)", install)], {}
    info = _docker(docker, "info", "--format", "{{json .}}")
    if info.returncode != 0:
        detail = (info.stderr or info.stdout).strip().splitlines()[-1:] or ["no output"]
        fix = "start the Docker daemon (systemctl start docker / open Docker Desktop)"
        if "permission denied" in detail[0].lower():
            fix = "add yourself to the docker group (sudo usermod -aG docker $USER), log in again"
        return [Problem(f"the Docker engine does not answer: {detail[0]}", fix)], {}
    problems = []
    compose = _docker(docker, "compose", "version", "--short")
    version = _version(compose.stdout) if compose.returncode == 0 else None
    if version is None:
        problems.append(Problem(
            "Docker Compose v2 (`docker compose`) is missing; docker-compose v1 cannot run it",
            "install the compose plugin: apt-get install docker-compose-plugin (or Docker Desktop)",
        ))  # fmt: skip
    elif version < COMPOSE_MIN:
        problems.append(Problem(
            f"Docker Compose {'.'.join(map(str, version))} is too old: `up --wait-timeout`, "
            "one-shot jobs awaited by `--wait` and inline `configs:` need "
            f"{'.'.join(map(str, COMPOSE_MIN))} or newer",
            "upgrade the compose plugin (apt-get install --only-upgrade docker-compose-plugin) "
            "or Docker Desktop",
        ))  # fmt: skip
    try:
        parsed: dict[str, Any] = json.loads(info.stdout)
    except json.JSONDecodeError:
        parsed = {}
    return problems, parsed


def _version(text: str) -> tuple[int, ...] | None:
    match = re.match(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    return tuple(int(part) for part in match.groups(default="0")) if match else None


def docker_desktop(info: Mapping[str, Any]) -> bool:
    return "Docker Desktop" in str(info.get("OperatingSystem", ""))


def host_memory() -> int:
    """This machine's memory: what a Linux engine gets, when the engine cannot be asked."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return 0


def check_memory(
    total_bytes: int, config: Mapping[str, Any], owner: str = "Docker"
) -> list[Problem]:
    """The engine's memory (a Docker Desktop VM's, not the laptop's) against the stack's limits."""
    budget = memory_budget(config)
    if total_bytes and total_bytes < budget + MEMORY_HEADROOM:
        need = (budget + MEMORY_HEADROOM) / 1024**3
        return [Problem(
            f"{owner} has {total_bytes / 1024**3:.1f} GiB of memory; the stack's limits total "
            f"{budget / 1024**3:.1f} GiB and it needs about {need:.1f} GiB to run without exit 137",
            "give Docker more memory (Docker Desktop: Settings > Resources), or lower "
            "ELASTICSEARCH_HEAP/ELASTICSEARCH_MEM_LIMIT and the other *_MEM_LIMIT values in .env",
        )]  # fmt: skip
    return []


def check_max_map_count(
    info: Mapping[str, Any], path: Path = Path("/proc/sys/vm/max_map_count")
) -> list[Problem]:
    """Elasticsearch's mmap store needs vm.max_map_count >= 262144 where its container runs.

    That is this machine's kernel when the engine runs here; Docker Desktop runs containers in
    its own VM, which sets the value itself.
    """
    if platform.system() != "Linux" or docker_desktop(info) or not path.exists():
        return []
    value = int(path.read_text().strip())
    if value < MAX_MAP_COUNT_MIN:
        return [Problem(
            f"vm.max_map_count is {value}; Elasticsearch needs at least {MAX_MAP_COUNT_MIN}",
            f"sudo sysctl -w vm.max_map_count={MAX_MAP_COUNT_MIN} and, to keep it, "
            f"echo vm.max_map_count={MAX_MAP_COUNT_MIN} "
            "| sudo tee /etc/sysctl.d/99-elasticsearch.conf",
        )]  # fmt: skip
    return []


def check_disk(
    info: Mapping[str, Any],
    disk_usage: Callable[[Path], Any] = shutil.disk_usage,
) -> list[Problem]:
    """Free space where Docker keeps volumes and images, against Elasticsearch's flood stage.

    That is Docker's data root (`docker info`'s DockerRootDir; rootless engines keep theirs in the
    user's home), or the nearest existing directory above the default one when Docker does not
    answer. Docker Desktop keeps it on its VM's disk image, which this machine cannot measure.
    """
    if docker_desktop(info):
        return []
    root = Path(str(info.get("DockerRootDir") or "/var/lib/docker"))
    while not root.exists() and root != root.parent:
        root = root.parent
    usage = disk_usage(root)
    flood = min(usage.total * FLOOD_STAGE_FREE_RATIO, FLOOD_STAGE_MAX_HEADROOM)
    if usage.free - STACK_FOOTPRINT >= flood:
        return []
    gib = 1024**3
    return [Problem(
        f"{usage.free / gib:.1f} GiB free on the disk of {root}: Elasticsearch makes every index "
        f"read-only once less than {flood / gib:.1f} GiB is free (its flood-stage watermark), and "
        f"the stack's images and first day of data take about {STACK_FOOTPRINT / gib:.0f} GiB",
        f"free at least {(flood + STACK_FOOTPRINT - usage.free) / gib:.1f} GiB there "
        "(`docker system prune` removes unused images and build cache), or move Docker's "
        "data-root to a larger disk",
    )]  # fmt: skip


def published_ports(config: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(service, host address, host port) of every published port."""
    found = []
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            address, host_port, _ = str(port).rsplit(":", 2)
            found.append((name, address, int(host_port)))
    return found


def check_ports(config: Mapping[str, Any], running: set[str] | None = None) -> list[Problem]:
    """Ports taken by something other than this stack (whose own containers may hold them)."""
    problems = []
    for service, address, port in published_ports(config):
        if running and service in running:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((address, port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    continue
                problems.append(Problem(
                    f"{address}:{port} ({service}) is already in use by another program",
                    f"stop that program, or give {service} another host port in .env "
                    "(the *_PORT variables under 'Host ports')",
                ))  # fmt: skip
    return problems


def running_services(docker: str, compose_files: Sequence[Path]) -> set[str]:
    files = [arg for path in compose_files for arg in ("-f", str(path))]
    result = _docker(docker, "compose", *files, "ps", "--services", "--status", "running")
    return set(result.stdout.split()) if result.returncode == 0 else set()


def _docker(docker: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the docker CLI with our own arguments, no shell
        [docker, *args], capture_output=True, text=True, check=False, timeout=30
    )
