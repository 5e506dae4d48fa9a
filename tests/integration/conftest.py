"""Integration fixtures: real sockets, real processes and native binaries, on loopback only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from watchfloor.testing.beats import BeatsReceiver
from watchfloor_stack.compose import webauth
from watchfloor_stack.localmode.components import DEFAULT_PORTS
from watchfloor_stack.localmode.config import SCRAPED_PORTS

TOKEN = "integration-test-token"


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[BeatsReceiver]:
    with BeatsReceiver() as running:
        yield running


@dataclass
class LocalStack:
    state: Path
    env: dict[str, str]
    ports: dict[str, int]
    token: str

    def url(self, component: str) -> str:
        return f"http://127.0.0.1:{self.ports[component]}"

    def get(self, component: str, path: str, **kwargs: Any) -> httpx.Response:
        """GET from a component, with its basic-auth credentials when it has them."""
        secret = webauth.PASSWORDS.get(component)
        auth = (webauth.USERNAME, self.env[secret]) if secret else None
        return httpx.get(f"{self.url(component)}{path}", auth=auth, **kwargs)

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = self.get("prometheus", "/api/v1/query", params={"query": promql})
        body = response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        if args[:1] == ("up",) and "--timeout" not in args:
            # Eight processes starting at once on two loaded cores: room beyond the default 60 s.
            args = (*args, "--timeout", "180")
        return subprocess.run(
            [sys.executable, "-m", "watchfloor_stack.localmode", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def local_env(state: Path, ports: dict[str, int]) -> dict[str, str]:
    env = {**os.environ, "WATCHFLOOR_LOCAL_DIR": str(state), "WATCHFLOOR_INGEST_TOKEN": TOKEN}
    # Never the developer's .env or a running stack's secrets: each test's own.
    env["WATCHFLOOR_ENV_FILE"] = str(state / "no.env")
    for secret in webauth.PASSWORDS.values():
        env[secret] = f"{secret.lower()}-{state.name}"
    env["WATCHFLOOR_SIMULATOR_SEED"] = "42"
    env["WATCHFLOOR_LOG_STREAM"] = "none"
    for name, port in ports.items():
        env[f"WATCHFLOOR_LOCAL_{name.upper().replace('-', '_')}_PORT"] = str(port)
    return env


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """Local mode, once per session, on free ports, scraping and evaluating every second."""
    state = tmp_path_factory.mktemp("local-mode")
    ports = {name: free_port() for name in DEFAULT_PORTS}
    stack = LocalStack(state, local_env(state, ports), ports, TOKEN)
    started = stack.cli(
        "up", "--scrape-interval", "1s", "--evaluation-interval", "1s", "--group-wait", "1s"
    )
    assert started.returncode == 0, f"local mode did not come up:\n{started.stdout}{started.stderr}"
    try:
        deadline = time.monotonic() + 30
        while len(stack.query('up{job=~".+"} == 1')) < len(SCRAPED_PORTS):
            assert time.monotonic() < deadline, stack.query("up")
            time.sleep(0.5)
        yield stack
    finally:
        stopped = stack.cli("down")
        assert stopped.returncode == 0, stopped.stderr
        assert not list((state / "run").glob("*.pid")), "local-down left pid files behind"
