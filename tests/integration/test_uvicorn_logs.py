"""A real uvicorn process: its access lines and an unhandled exception come out as ECS JSON."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

APP = """
import logging

from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from watchfloor.fastapi import instrument_app
from watchfloor.logging import configure_logging

trace.set_tracer_provider(TracerProvider())
configure_logging("uvicorn-logs", stream=__import__("sys").stdout)
app = FastAPI()


@app.get("/ok")
async def ok() -> dict[str, str]:
    logging.getLogger("app").info("handled")
    return {"status": "ok"}


@app.get("/fail")
async def fail() -> None:
    raise RuntimeError("order book exploded")


instrument_app(app, "uvicorn-logs")
"""

# configure_logging runs before uvicorn.run applies its LOGGING_CONFIG (dictConfig).
RUNNER = """
import sys

import uvicorn

import logsapp

log_config = {"default": uvicorn.config.LOGGING_CONFIG, "none": None}[sys.argv[2]]
uvicorn.run(logsapp.app, host="127.0.0.1", port=int(sys.argv[1]), log_config=log_config)
"""


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[list[str]], tuple[int, Path, Path]]]:
    (tmp_path / "logsapp.py").write_text(textwrap.dedent(APP))
    (tmp_path / "runner.py").write_text(textwrap.dedent(RUNNER))
    env = {k: v for k, v in os.environ.items() if not k.startswith("WATCHFLOOR_")}
    env["WATCHFLOOR_LOG_SHUTDOWN_TIMEOUT"] = "2"
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env.get("PYTHONPATH", "")])
    processes: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str]) -> tuple[int, Path, Path]:
        port = free_port()
        out, err = tmp_path / "stdout.log", tmp_path / "stderr.log"
        command = [sys.executable, *[a.replace("PORT", str(port)) for a in argv]]
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=stdout, stderr=stderr)
        processes.append(process)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, err.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    return port, out, err
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"uvicorn did not start: {err.read_text()}")

    yield start
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _events(out: Path, expect: Callable[[list[dict[str, Any]]], bool]) -> list[dict[str, Any]]:
    """stdout as JSON events, once `expect` holds (the writer thread flushes shortly after)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in out.read_text().splitlines() if line.strip()]
        events = [json.loads(line) for line in lines]  # a plain-text line fails here
        if expect(events) or time.monotonic() > deadline:
            return events
        time.sleep(0.1)


def _access(events: list[dict[str, Any]], path: str) -> list[dict[str, Any]]:
    return [
        e for e in events if e["log"]["logger"] == "uvicorn.access" and f" {path} " in e["message"]
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["-m", "uvicorn", "logsapp:app", "--host", "127.0.0.1", "--port", "PORT"],
        ["runner.py", "PORT", "default"],
        ["runner.py", "PORT", "none"],
    ],
    ids=["uvicorn-cli-imports-app", "configure-before-uvicorn-run", "uvicorn-run-log-config-none"],
)
def test_access_lines_and_unhandled_exception_are_ecs(serve, argv):
    port, out, err = serve(argv)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as http:
        ok = http.get("/ok")
        failed = http.get("/fail")
    assert ok.status_code == 200
    assert failed.status_code == 500

    def complete(events: list[dict[str, Any]]) -> bool:
        return bool(_access(events, "/ok") and _access(events, "/fail"))

    events = _events(out, complete)
    (access,) = _access(events, "/ok")
    assert access["correlation"]["id"] == ok.headers["x-correlation-id"]
    assert len(access["trace"]["id"]) == 32

    errors = [e for e in events if "error" in e]
    assert len(errors) == 1, errors  # uvicorn's "Exception in ASGI application" is not a second
    (error,) = errors
    assert error["error"]["type"] == "RuntimeError"
    assert error["error"]["message"] == "order book exploded"
    assert "raise RuntimeError" in error["error"]["stack_trace"]
    assert len(error["correlation"]["id"]) > 0
    assert len(error["trace"]["id"]) == 32
    assert "order book exploded" not in err.read_text()
    if argv[-1] != "default":
        # Only uvicorn.run's own dictConfig, applied before the app's first call, writes a few
        # startup lines beside the pipeline; log_config=None avoids even those.
        assert err.read_text() == ""
