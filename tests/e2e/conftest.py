"""The e2e suite runs real containers through testcontainers, on Docker hosts only.

Here (CI without a Docker engine or pullable images) every e2e test skips with the reason;
WATCHFLOOR_REQUIRE_DOCKER=1 turns that skip into a failure, for Docker hosts that must run it.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
from testcontainers.compose import DockerCompose

from watchfloor_stack.compose import webauth
from watchfloor_stack.compose.compose_file import load
from watchfloor_stack.compose.dotenv import ensure_env, parse

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.monitoring.yml"
# The images the Compose stack pins (its defaults), so both suites test the same versions.
_DEFAULTS = load(COMPOSE_FILE, {"ELASTIC_PASSWORD": "-"}, required=False)["services"]
LOGSTASH_IMAGE = _DEFAULTS["logstash"]["image"]
JAEGER_IMAGE = _DEFAULTS["jaeger"]["image"]
ELASTICSEARCH_IMAGE = _DEFAULTS["elasticsearch"]["image"]


def _docker_unavailable_reason() -> str | None:
    try:
        import docker

        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as exc:
        return f"no reachable Docker engine ({type(exc).__name__}: {exc})"
    return None


def _compose_v2_missing_reason() -> str | None:
    result = subprocess.run(["docker", "compose", "version", "--short"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if result.returncode != 0 or not result.stdout.strip().lstrip("v").startswith("2"):
        return "no Docker Compose v2 (`docker compose`) plugin"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    e2e = [item for item in items if "tests/e2e/" in str(item.fspath)]
    if not e2e:
        return
    reason = _docker_unavailable_reason()
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
    compose_modules = ("test_compose_stack", "test_scale_profile")
    if reason is None and any(m in str(item.fspath) for item in e2e for m in compose_modules):
        reason = _compose_v2_missing_reason()
    if reason is None:
        return
    message = f"e2e needs a Docker host that can pull images and run Compose v2: {reason}"
    if os.environ.get("WATCHFLOOR_REQUIRE_DOCKER") == "1":
        for item in e2e:
            item.add_marker(pytest.mark.xfail(reason=message, run=False, strict=True))
        raise pytest.UsageError(f"WATCHFLOOR_REQUIRE_DOCKER=1 but {message}")
    for item in e2e:
        item.add_marker(pytest.mark.skip(reason=message))


def prepare_env(
    env_file: Path, port_offset: int, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """What `make up` writes before Compose starts: .env from .env.example with random secrets
    and the derived bcrypt hashes (single-quoted: they hold `$`), here with every published port
    moved by `port_offset` so a developer's running stack is left alone."""
    ensure_env(REPO / ".env.example", env_file)
    webauth.ensure_hashes(env_file)
    env = parse(env_file.read_text())
    for name in [n for n in env if n.endswith("_PORT") and env[n].isdigit()]:
        env[name] = str(int(env[name]) + port_offset)
    env.update(overrides or {})
    env_file.write_text("".join(
        f"{k}='{v}'\n" if k.endswith("_BCRYPT") else f"{k}={v}\n" for k, v in env.items()
    ))  # fmt: skip
    return env


@contextmanager
def compose_up(
    files: list[str], env_file: Path, project: str, *, hup: tuple[str, ...] = ()
) -> Iterator[list[str]]:
    """`docker compose up --build --wait` as project `project` (so a developer's stack is left
    alone), SIGHUP to `hup` and kibana-setup as `make up` does; yields the compose command and
    always takes the project down with its volumes."""
    previous = os.environ.get("COMPOSE_PROJECT_NAME")
    os.environ["COMPOSE_PROJECT_NAME"] = project  # beats the file's `name:`
    compose = DockerCompose(REPO, compose_file_name=files, build=True, wait=True,
                            env_file=str(env_file))  # fmt: skip
    try:
        compose.start()
        base = list(compose.compose_command_property)
        if hup:
            subprocess.run([*base, "kill", "--signal", "SIGHUP", *hup], cwd=REPO, check=True,
                           timeout=120)  # fmt: skip
        subprocess.run([*base, "run", "--rm", "kibana-setup"], cwd=REPO, check=True, timeout=600)
        yield base
    finally:
        subprocess.run([*compose.compose_command_property, "--profile", "setup", "down",
                        "--volumes", "--remove-orphans"], cwd=REPO, check=False, timeout=600)  # fmt: skip
        if previous is None:
            os.environ.pop("COMPOSE_PROJECT_NAME", None)
        else:
            os.environ["COMPOSE_PROJECT_NAME"] = previous


def eventually(what: str, check: Callable[[], T | None], timeout: float) -> T:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
            last = result
        except (httpx.HTTPError, KeyError, ValueError, IndexError) as exc:
            last = exc
        time.sleep(2)
    raise AssertionError(f"{what} within {timeout:.0f} s; last: {last!r}")
