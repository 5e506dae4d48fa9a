"""`make up`, `make down` and `make clean` as a user runs them, on a copy of the repository.

No Docker engine can run here, so `docker` on PATH is a script that answers like a healthy engine
with Compose v2 and records every command; everything else (make, the Makefile, .env generation,
the pre-flight checks on this machine's ports and vm.max_map_count) is real.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from watchfloor.stack.dotenv import parse

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
GIB = 1024**3

FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "{log}"
case "$1 $2" in
  "info --format") printf '%s' '{info}' ;;
  "compose version") echo "2.29.1" ;;
esac
exit 0
"""


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
          engine: str = "Docker Desktop") -> tuple[subprocess.CompletedProcess[str], list[str]]:  # fmt: skip
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "docker.log"
    log.write_text("")
    docker = bin_dir / "docker"
    info = json.dumps({"MemTotal": memory, "OperatingSystem": engine})
    docker.write_text(FAKE_DOCKER.format(log=log, info=info))
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    if not (VENV / "bin" / "python").exists():
        pytest.skip("needs the project's .venv (make install)")
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(checkout), target, f"VENV={VENV}"],
        input=answer, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )  # fmt: skip
    return result, log.read_text().splitlines()


def test_make_up_creates_env_checks_starts_waits_provisions_and_prints_urls(
    checkout: Path, tmp_path: Path
):
    result, docker = _make(checkout, "up", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    env = checkout / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert len(parse(env.read_text())["ELASTIC_PASSWORD"]) == 32
    compose = "compose -f docker-compose.monitoring.yml"
    assert docker[:2] == ["info --format {{json .}}", "compose version --short"]
    assert docker[-2:] == [
        f"{compose} up -d --build --wait --wait-timeout 600",
        f"{compose} run --rm kibana-setup",
    ]
    assert "pre-flight ok" in result.stdout
    assert "Grafana" in result.stdout and "http://localhost:3000/" in result.stdout
    assert "Credentials are in .env" in result.stdout
    # A second run keeps every secret (Elasticsearch's volume holds the first ones).
    before = env.read_text()
    assert _make(checkout, "up", tmp_path)[0].returncode == 0
    assert env.read_text() == before


def test_make_up_on_a_linux_engine_checks_this_kernels_max_map_count(
    checkout: Path, tmp_path: Path
):
    result, docker = _make(checkout, "up", tmp_path, engine="Debian GNU/Linux 12 (bookworm)")
    value = int(Path("/proc/sys/vm/max_map_count").read_text())
    started = [line for line in docker if " up -d " in line]
    if value < 262144:
        assert result.returncode != 0 and not started
        assert f"vm.max_map_count is {value}" in result.stderr
        assert "sudo sysctl -w vm.max_map_count=262144" in result.stderr
    else:
        assert result.returncode == 0 and started


def test_make_up_stops_before_compose_when_docker_lacks_memory(checkout: Path, tmp_path: Path):
    result, docker = _make(checkout, "up", tmp_path, memory=6 * GIB)
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
