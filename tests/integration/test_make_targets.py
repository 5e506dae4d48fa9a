"""`make up`, `make down` and `make clean` as a user runs them, on a copy of the repository.

No Docker engine can run here, so `docker` on PATH is a script that answers like a healthy engine
(with or without Compose v2) and records every command; everything else (make, the Makefile, the
helpers' own virtualenv, .env generation, the pre-flight checks on this machine's ports, disk and
vm.max_map_count) is real.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchfloor_stack.compose.dotenv import parse

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
GIB = 1024**3
COMPOSE = "compose -f docker-compose.monitoring.yml"
UP = f"{COMPOSE} up -d --build --wait --wait-timeout 600"
RELOAD = f"{COMPOSE} kill --signal SIGHUP prometheus alertmanager"

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "{log}"
case "$1 $2" in
  "info --format") printf '%s' '{info}' ;;
  "compose version") {compose_version} ;;
esac
exit 0
"""
WITH_COMPOSE = 'echo "2.29.1"'
WITHOUT_COMPOSE = "echo \"docker: 'compose' is not a docker command.\" >&2; exit 1"


@pytest.fixture(scope="module")
def stack_venv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The helpers' virtualenv, built once by the Makefile's own rule (pip, with its cache)."""
    if not (VENV / "bin" / "python").exists():
        pytest.skip("needs the project's .venv (make install)")
    venv = tmp_path_factory.mktemp("stack-venv") / "stack"
    result = subprocess.run(["make", "--no-print-directory", "-C", str(REPO),
                             f"STACK_VENV={venv}", f"{venv}/.installed-stamp"],
                            capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    if result.returncode != 0 and "pip" in result.stderr and "network" in result.stderr.lower():
        pytest.skip(f"pip could not reach the package index: {result.stderr[-300:]}")
    assert result.returncode == 0, result.stdout + result.stderr
    yield venv


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                           cwd=REPO, capture_output=True, text=True, check=True).stdout.split()  # fmt: skip
    copy = tmp_path / "watchfloor"
    for name in files:
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)  # keeps mtimes: the venv stamp stays newer
    return copy


def _make(checkout: Path, target: str, tmp_path: Path, memory: int = 32 * GIB, answer: str = "",
          engine: str = "Docker Desktop", stack_venv: Path | None = None,
          compose: bool = True, docker: str | None = None,
          extra: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], list[str]]:  # fmt: skip
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "docker.log"
    log.write_text("")
    fake = bin_dir / "docker"
    info = json.dumps({"MemTotal": memory, "OperatingSystem": engine})
    fake.write_text(FAKE_DOCKER.format(log=log, info=info,
                                       compose_version=WITH_COMPOSE if compose else WITHOUT_COMPOSE))  # fmt: skip
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    if not (VENV / "bin" / "python").exists():
        pytest.skip("needs the project's .venv (make install)")
    args = ["make", "--no-print-directory", "-C", str(checkout), target, f"VENV={VENV}", *extra]
    if stack_venv is not None:
        args.append(f"STACK_VENV={stack_venv}")
    if docker is not None:
        args.append(f"DOCKER={docker}")
    result = subprocess.run(
        args, input=answer, capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )  # fmt: skip
    return result, log.read_text().splitlines()


def test_make_up_creates_env_checks_starts_waits_provisions_and_prints_urls(
    checkout: Path, tmp_path: Path, stack_venv: Path
):
    result, docker = _make(checkout, "up", tmp_path, stack_venv=stack_venv)
    assert result.returncode == 0, result.stdout + result.stderr
    env = checkout / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert len(parse(env.read_text())["ELASTIC_PASSWORD"]) == 32
    assert docker[:2] == ["info --format {{json .}}", "compose version --short"]
    assert docker[-3:] == [UP, RELOAD, f"{COMPOSE} run --rm kibana-setup"]
    assert "pre-flight ok" in result.stdout
    assert "Grafana" in result.stdout and "http://localhost:3000/" in result.stdout
    assert "Credentials are in .env" in result.stdout
    # A second run keeps every secret (Elasticsearch's volume holds the first ones).
    before = env.read_text()
    assert _make(checkout, "up", tmp_path, stack_venv=stack_venv)[0].returncode == 0
    assert env.read_text() == before


def test_make_up_installs_only_what_its_helpers_need(stack_venv: Path):
    """Not the 384 MB development virtualenv (playwright, mypy, testcontainers...)."""
    size = sum(
        p.stat().st_size for p in stack_venv.rglob("*") if p.is_file() and not p.is_symlink()
    )
    assert size < 60 * 1024**2, f"{size / 1024**2:.0f} MB"
    installed = subprocess.run([str(stack_venv / "bin" / "python"), "-m", "pip", "list",
                                "--format", "json"], capture_output=True, text=True, check=True)  # fmt: skip
    names = {p["name"].lower() for p in json.loads(installed.stdout)}
    assert "pyyaml" in names
    assert not names & {"pytest", "playwright", "mypy", "testcontainers", "ruff", "watchfloor"}


def test_a_second_make_up_applies_a_changed_receiver(
    checkout: Path, tmp_path: Path, stack_venv: Path
):
    """Compose restarts Alertmanager when it recreates alertmanager-config (its environment holds
    the receivers: tests/static); make up also signals both servers after every `up`."""
    assert _make(checkout, "up", tmp_path, stack_venv=stack_venv)[0].returncode == 0
    env = checkout / ".env"
    hook = "https://hooks.slack.com/services/T000/B000/changed"
    env.write_text(env.read_text().replace("WATCHFLOOR_SLACK_WEBHOOK_URL=\n",
                                           f"WATCHFLOOR_SLACK_WEBHOOK_URL={hook}\n"))  # fmt: skip
    result, docker = _make(checkout, "up", tmp_path, stack_venv=stack_venv)
    assert result.returncode == 0, result.stdout + result.stderr
    assert parse(env.read_text())["WATCHFLOOR_SLACK_WEBHOOK_URL"] == hook  # kept, not reset
    assert UP in docker and RELOAD in docker
    assert (
        docker.index(UP) < docker.index(RELOAD) < docker.index(f"{COMPOSE} run --rm kibana-setup")
    )


def test_memory_locking_is_added_only_when_asked_for(
    checkout: Path, tmp_path: Path, stack_venv: Path
):
    result, docker = _make(checkout, "up", tmp_path, stack_venv=stack_venv,
                           extra=("WATCHFLOOR_MEMORY_LOCK=1",))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    locked = "compose -f docker-compose.monitoring.yml -f docker-compose.memory-lock.yml"
    assert f"{locked} up -d --build --wait --wait-timeout 600" in docker


def test_make_up_without_docker_reports_every_problem_at_once_and_the_local_mode(
    checkout: Path, tmp_path: Path, stack_venv: Path
):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (checkout / ".env").write_text(f"GRAFANA_PORT={port}\n")
        result, docker = _make(checkout, "up", tmp_path, stack_venv=stack_venv,
                               docker=str(tmp_path / "no-docker-here"))  # fmt: skip
    assert result.returncode != 0
    assert docker == []
    assert "docker is not installed" in result.stderr and "get-docker" in result.stderr
    assert f"127.0.0.1:{port} (grafana) is already in use" in result.stderr
    assert "make local-up" in result.stderr
    assert "pre-flight problem(s); nothing was started" in result.stderr


def test_make_up_without_compose_v2_and_memory_lists_both_with_their_fixes(
    checkout: Path, tmp_path: Path, stack_venv: Path
):
    result, docker = _make(checkout, "up", tmp_path, stack_venv=stack_venv, compose=False,
                           memory=6 * GIB)  # fmt: skip
    assert result.returncode != 0
    assert "Docker Compose v2 (`docker compose`) is missing" in result.stderr
    assert "docker-compose-plugin" in result.stderr
    assert (
        "Docker has 6.0 GiB of memory" in result.stderr and "Settings > Resources" in result.stderr
    )
    assert "make local-up" in result.stderr
    assert not [line for line in docker if " up " in f" {line} "]


def test_make_up_on_a_linux_engine_checks_this_kernels_max_map_count(
    checkout: Path, tmp_path: Path, stack_venv: Path
):
    result, docker = _make(checkout, "up", tmp_path, engine="Debian GNU/Linux 12 (bookworm)",
                           stack_venv=stack_venv)  # fmt: skip
    value = int(Path("/proc/sys/vm/max_map_count").read_text())
    started = [line for line in docker if " up -d " in line]
    if value < 262144:
        assert result.returncode != 0 and not started
        assert f"vm.max_map_count is {value}" in result.stderr
        assert "sudo sysctl -w vm.max_map_count=262144" in result.stderr
    else:
        assert result.returncode == 0 and started


def test_make_up_stops_before_compose_when_docker_lacks_memory(
    checkout: Path, tmp_path: Path, stack_venv: Path
):
    result, docker = _make(checkout, "up", tmp_path, memory=6 * GIB, stack_venv=stack_venv)
    assert result.returncode != 0
    assert "Docker has 6.0 GiB of memory" in result.stderr
    assert not [line for line in docker if " up " in f" {line} "]


def test_make_clean_asks_before_deleting_volumes(checkout: Path, tmp_path: Path):
    result, docker = _make(checkout, "clean", tmp_path, answer="n\n")
    assert result.returncode != 0 and "kept everything" in result.stdout
    assert docker == []
    result, docker = _make(checkout, "clean", tmp_path, answer="y\n")
    assert result.returncode == 0
    assert docker == [
        "compose -f docker-compose.monitoring.yml --profile setup down --volumes --remove-orphans"
    ]
